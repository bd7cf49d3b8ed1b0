/**
 * Reading a JWT's claims without verifying it (PROTOCOL.md §1.4). The client only decodes tokens it
 * received from the Tinker server itself, to learn when to refresh (`exp`) and who it is
 * (`sub`, `email`, `iss`); checking signatures is the server's job.
 */

/** The claims the SDK uses. Other claims are kept in the object but not typed. */
export interface JwtClaims {
  /** Subject: the user's URN (`whoami.user_urn`). */
  sub?: string;
  email?: string;
  /** Issuer: `passport-…` marks an identity token, `tinker-ts-local` the local backend. */
  iss?: string;
  /** Expiry in seconds since the epoch. */
  exp?: number;
  [claim: string]: unknown;
}

const decoder = new TextDecoder();

/** The payload of `token`, or undefined when it is not a JWT with a JSON object payload. */
export function decodeJwtClaims(token: string): JwtClaims | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const payload: unknown = JSON.parse(decoder.decode(base64UrlToBytes(parts[1]!)));
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return undefined;
    return payload as JwtClaims;
  } catch {
    return undefined;
  }
}

/** Seconds until `token` expires (negative when it has); undefined when `exp` cannot be read. */
export function secondsUntilExpiry(token: string, nowMs: number = Date.now()): number | undefined {
  const exp = decodeJwtClaims(token)?.exp;
  if (typeof exp !== "number" || !Number.isFinite(exp)) return undefined;
  return exp - nowMs / 1000;
}

/** base64url (RFC 4648 §5), padding optional, as JWTs use it. */
export function base64UrlToBytes(text: string): Uint8Array {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function bytesToBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
