/**
 * What a Headers object would refuse in a header record, found when a client is made: a name that
 * is not an HTTP token, a value that is not a string, holds a line break or NUL, or a character past
 * U+00FF (header values are bytes). Caught here, such a header is a ValidationError naming it; sent,
 * it fails every request inside the transport, which reads as a connection that never works.
 */
import type { ValidationIssue } from "./errors.js";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the characters looked for.
const NOT_A_HEADER_BYTE = /[\r\n\u0000\u0100-\uffff]/;

/** An HTTP token (RFC 9110 §5.6.2), as header names must be. */
export const isHeaderName = (name: string): boolean => TOKEN.test(name);

/** Bytes only (U+0000–U+00FF), and none that would end the header early. */
export const isHeaderValue = (value: string): boolean => !NOT_A_HEADER_BYTE.test(value);

/** Headers that carry credentials: never sent to another origin (PROTOCOL.md §13.28), never cached. */
export function isCredentialHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === "x-api-key" ||
    lower === "authorization" ||
    lower === "cookie" ||
    lower === "proxy-authorization" ||
    lower.startsWith("cf-access-")
  );
}

export function headerIssues(headers: Readonly<Record<string, unknown>>, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (!isHeaderName(name)) {
      issues.push({ path, message: `${JSON.stringify(name)} is not a valid header name` });
    } else if (typeof value !== "string") {
      issues.push({ path: `${path}.${name}`, message: `must be a string, got ${typeof value}` });
    } else if (!isHeaderValue(value)) {
      issues.push({
        path: `${path}.${name}`,
        message: "must not contain a line break, NUL or a character past U+00FF",
      });
    }
  }
  return issues;
}
