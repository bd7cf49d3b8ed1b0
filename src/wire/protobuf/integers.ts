/**
 * Integer helpers shared by the writer, the reader and the array codecs.
 *
 * JavaScript numbers hold integers exactly up to 2^53, while protobuf and the tensor bytes use
 * 64-bit integers. Instead of converting every value through BigInt (slow for tensors of many
 * elements) we split a safe integer into two unsigned 32-bit halves, which is all the varint and
 * little-endian encodings need, and join the halves back on the way in.
 */

import { ProtobufEncodeError } from "./errors.js";

const TWO_POW_32 = 0x1_0000_0000;

export const INT32_MIN = -0x8000_0000;
export const INT32_MAX = 0x7fff_ffff;
export const UINT32_MAX = 0xffff_ffff;

/**
 * Two's-complement halves of a safe integer: `value = hi * 2^32 + lo` (mod 2^64), both halves
 * unsigned 32-bit. Callers must pass a safe integer.
 */
export function splitInt64(value: number): [lo: number, hi: number] {
  const magnitude = Math.abs(value);
  let lo = magnitude % TWO_POW_32;
  let hi = Math.floor(magnitude / TWO_POW_32);
  if (value < 0) {
    // Negate in two's complement: invert both halves and add one, carrying into `hi` when the
    // low half wraps around to zero.
    const carry = lo === 0 ? 1 : 0;
    lo = (~lo + 1) >>> 0;
    hi = (~hi + carry) >>> 0;
  }
  return [lo, hi];
}

/**
 * Joins two unsigned 32-bit halves into a number. The multiplication by 2^32 is exact and the sum
 * is correctly rounded, so the result is exact whenever the 64-bit value is a safe integer and the
 * nearest double otherwise (callers that need exactness check `Number.isSafeInteger`).
 */
export function joinInt64(lo: number, hi: number, signed: boolean): number {
  const high = signed ? hi | 0 : hi >>> 0;
  return high * TWO_POW_32 + (lo >>> 0);
}

export function isInt32(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

export function isUint32(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= UINT32_MAX;
}

export function isSafeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

/** Guards string fields: TextEncoder would otherwise quietly encode `undefined` as "undefined". */
export function checkString(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string")
    throw new ProtobufEncodeError(`${what}: expected a string, got ${describe(value)}`);
}

/** Describes a value for an error message without dumping huge arrays or objects. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
    return String(value);
  }
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
