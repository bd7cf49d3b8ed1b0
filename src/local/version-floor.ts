/**
 * The hosted service's version gate, reproduced on demand (`--min-sdk-version`, PROTOCOL.md §G1):
 * a `create_session` whose `sdk_version` is below the floor is refused with the service's 400 shape.
 * Off by default: the local backend serves every client from 0.6 on.
 */
import { HttpError } from "./responses.js";

/** The service's words, so clients meet locally exactly what they would meet on the service. */
export const VERSION_REFUSAL_DETAIL =
  "Your Tinker SDK version is no longer supported. Please upgrade to the latest version.";

/** Numeric `major.minor.patch` parts; anything after the patch number (pre-release) is ignored. */
function versionParts(version: string): number[] | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  return match ? match.slice(1, 4).map(Number) : undefined;
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`. */
export function compareVersions(a: string, b: string): number {
  const left = versionParts(a) ?? [0, 0, 0];
  const right = versionParts(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (left[i] !== right[i]) return left[i]! - right[i]!;
  return 0;
}

/** Throws the service's 400 when `reported` (absent counts as oldest) is below `floor`. */
export function checkVersionFloor(reported: unknown, floor: string | undefined): void {
  if (floor === undefined) return;
  const version = typeof reported === "string" ? reported : "0.0.0";
  if (compareVersions(version, floor) < 0) throw new HttpError(400, VERSION_REFUSAL_DETAIL);
}
