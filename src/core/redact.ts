/**
 * Masking of credentials in what the SDK builds from a server's answer (errors above all). A page
 * that echoes the request's headers — a proxy's 5xx page, a debug endpoint — would otherwise put
 * the API key into an error's message, stack, body and JSON, and from there into logs and
 * telemetry. Every credential a client sends is registered here when it is sent, and every
 * TinkerError masks the registered values wherever they appear (errors.ts).
 *
 * The registry is process-wide (under a global symbol, so that the ESM and CJS builds share it):
 * an error does not know which client it came from, and masking another client's key too is only
 * safer. It is bounded, keeping the most recently registered values.
 */

/** What a masked credential reads as. */
export const REDACTED = "[redacted]";

/** Shorter values are not masked: they would mask ordinary words (and are no real credential). */
const MIN_SECRET_LENGTH = 8;
const MAX_SECRETS = 64;

/** Longest excerpt of a body that goes into an error message. */
export const MAX_BODY_EXCERPT = 500;

const REGISTRY = Symbol.for("tinker-ts.redact.secrets");

function secrets(): Set<string> {
  const holder = globalThis as { [REGISTRY]?: Set<string> };
  holder[REGISTRY] ??= new Set();
  return holder[REGISTRY];
}

/**
 * Registers a credential to mask. A bearer-style value is registered without its scheme too, and
 * a JWT's signature on its own (the part that makes it a credential).
 */
export function registerSecret(value: string | undefined): void {
  if (typeof value !== "string") return;
  const set = secrets();
  const add = (v: string) => {
    const trimmed = v.trim();
    if (trimmed.length < MIN_SECRET_LENGTH || set.has(trimmed)) return;
    set.add(trimmed);
    if (set.size > MAX_SECRETS) set.delete(set.values().next().value as string);
  };
  add(value);
  const scheme = /^(?:bearer|basic|token)\s+(.+)$/i.exec(value.trim());
  if (scheme) add(scheme[1]!);
  const jwt = /^[\w-]+\.[\w-]+\.([\w-]+)$/.exec(scheme ? scheme[1]!.trim() : value.trim());
  if (jwt) add(jwt[1]!);
}

/** `text` with every registered credential replaced by `[redacted]`. */
export function redactText(text: string): string {
  let out = text;
  // Longest first, so that a token is masked whole before its signature alone would be.
  for (const secret of [...secrets()].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
  }
  return out;
}

/** True when `text` holds a registered credential. */
export function holdsSecret(text: string): boolean {
  for (const secret of secrets()) if (text.includes(secret)) return true;
  return false;
}

/** A copy of a JSON-like value with every string masked (objects and arrays copied only when needed). */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (typeof value !== "object" || value === null || depth > 32) return value;
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const copy = value.map((item) => {
      const masked = redactValue(item, depth + 1);
      if (masked !== item) changed = true;
      return masked;
    });
    return changed ? copy : value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
    return value;
  let changed = false;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const maskedKey = redactText(key);
    const masked = redactValue(item, depth + 1);
    if (masked !== item || maskedKey !== key) changed = true;
    copy[maskedKey] = masked;
  }
  return changed ? copy : value;
}

/** Headers with every registered credential masked; the same object when none holds one. */
export function redactHeaders(headers: Headers | undefined): Headers | undefined {
  if (!headers) return headers;
  let leaking = false;
  headers.forEach((value) => {
    if (holdsSecret(value)) leaking = true;
  });
  if (!leaking) return headers;
  const copy = new Headers();
  headers.forEach((value, name) => {
    copy.append(name, redactText(value));
  });
  return copy;
}

/**
 * An error's `cause` with credentials masked: an Error whose message or stack holds one is replaced
 * by a plain Error with the masked text (and a masked cause of its own); other values are masked
 * as values.
 */
export function redactCause(cause: unknown, depth = 0): unknown {
  if (!(cause instanceof Error)) return redactValue(cause);
  const own = holdsSecret(cause.message) || holdsSecret(cause.stack ?? "");
  const inner = depth < 8 ? redactCause(cause.cause, depth + 1) : undefined;
  if (!own && inner === cause.cause) return cause;
  const copy = new Error(redactText(cause.message), inner === undefined ? undefined : { cause: inner });
  copy.name = cause.name;
  copy.stack = redactText(cause.stack ?? "");
  return copy;
}

/**
 * At most `max` characters of a body for a message: whitespace runs collapsed (an HTML page reads
 * on one line), credentials masked, and the full length said when it was cut.
 */
export function bodyExcerpt(text: string, max = MAX_BODY_EXCERPT): string {
  const flat = redactText(text).replace(/\s+/g, " ").trim();
  if (flat.length <= max) return flat;
  return `${flat.slice(0, max)}… (${text.length} characters)`;
}
