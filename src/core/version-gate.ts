/**
 * The service's version gate (PROTOCOL.md §G1): `create_session` (and possibly `client/config`) is
 * refused with HTTP 400 `{"detail": "Your Tinker SDK version is no longer supported. …"}` when the
 * body's `sdk_version` is below the floor the service currently accepts. Retrying cannot help, so
 * the refusal becomes one typed error that keeps the server's words and says what to do.
 */
import { readEnv } from "./env.js";
import { APIStatusError, SdkVersionUnsupportedError, ValidationError } from "./errors.js";

/** What the hosted service says when it refuses a version; matched loosely, its wording may move. */
const REFUSAL_PATTERN = /version[\s\S]*?(no longer supported|not supported|unsupported|upgrade)/i;

/** `major.minor.patch`, optionally with a pre-release or build suffix. */
const VERSION_PATTERN = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/;

/**
 * The `sdk_version` a client reports: the option, else `TINKER_SDK_VERSION`, else the protocol level
 * this package implements. Overriding it is for a service whose floor moved before a tinker-ts
 * release did; it does not change what the client speaks.
 */
export function resolveSdkVersion(option: string | undefined, implemented: string): string {
  const fromEnv = readEnv("TINKER_SDK_VERSION")?.trim();
  const value = option ?? (fromEnv === "" ? undefined : fromEnv) ?? implemented;
  if (!VERSION_PATTERN.test(value)) {
    const source = option !== undefined ? "sdkVersion" : "TINKER_SDK_VERSION";
    throw new ValidationError([
      { path: source, message: `must be a version such as "0.39.0", got ${JSON.stringify(value)}` },
    ]);
  }
  return value;
}

/** The server's refusal text, when `error` is a version-gate refusal. */
function refusalDetail(error: unknown): string | undefined {
  if (!(error instanceof APIStatusError) || (error.status !== 400 && error.status !== 426)) return undefined;
  const body = error.body;
  const detail =
    typeof body === "object" && body !== null && "detail" in body
      ? (body as { detail: unknown }).detail
      : body;
  const text = typeof detail === "string" ? detail : JSON.stringify(detail ?? "");
  return REFUSAL_PATTERN.test(text) ? text : undefined;
}

/**
 * Turns a version-gate refusal into `SdkVersionUnsupportedError`; any other error is returned as is.
 * `sent` is the `sdk_version` the refused request carried.
 */
export function asVersionRefusal(error: unknown, sent: string, implemented: string): unknown {
  const detail = refusalDetail(error);
  if (detail === undefined) return error;
  const status = error as APIStatusError;
  const advice =
    sent === implemented
      ? `tinker-ts speaks the Tinker protocol of SDK ${implemented}: upgrade tinker-ts, or, if the service only raised its floor, set TINKER_SDK_VERSION (or the sdkVersion option) to a version it accepts.`
      : `This client reported sdk_version ${sent} (set through the sdkVersion option or TINKER_SDK_VERSION; tinker-ts implements ${implemented}): raise or remove that override, or upgrade tinker-ts.`;
  return new SdkVersionUnsupportedError(
    `The Tinker service refused sdk_version ${sent}: ${detail} ${advice}`,
    { status: status.status, headers: status.headers, body: status.body, cause: error },
    sent,
  );
}
