/**
 * Number arrays <-> little-endian byte arrays, the layout of every binary array in the Tinker
 * messages (token ids, tensor values, offsets, logprobs). DataView with an explicit
 * little-endian flag keeps the result independent of the platform's byte order and of the
 * alignment of the input view (typed-array views over protobuf bytes are often misaligned).
 *
 * Encoders validate each value and name the offending element; decoders reject byte lengths that
 * are not a whole number of elements.
 */

import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { describe, INT32_MAX, INT32_MIN, isInt32, joinInt64, splitInt64 } from "./integers.js";

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function elementCount(bytes: Uint8Array, itemSize: number, what: string): number {
  if (bytes.length % itemSize !== 0) {
    throw new ProtobufDecodeError(
      `${what}: ${bytes.length} bytes is not a whole number of ${itemSize}-byte values`,
    );
  }
  return bytes.length / itemSize;
}

function checkArray(values: unknown, what: string): asserts values is readonly unknown[] {
  if (!Array.isArray(values)) {
    throw new ProtobufEncodeError(`${what}: expected an array, got ${describe(values)}`);
  }
}

export function encodeInt32s(values: readonly number[], what: string): Uint8Array {
  checkArray(values, what);
  const out = new Uint8Array(values.length * 4);
  const view = viewOf(out);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!isInt32(value)) {
      throw new ProtobufEncodeError(`${what}[${i}]: ${describe(value)} is not a 32-bit signed integer`);
    }
    view.setInt32(i * 4, value, true);
  }
  return out;
}

export function decodeInt32s(bytes: Uint8Array, what: string): number[] {
  const count = elementCount(bytes, 4, what);
  const view = viewOf(bytes);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
  return out;
}

/** int64 values must be safe integers: a JavaScript number cannot carry more precision anyway. */
export function encodeInt64s(values: readonly number[], what: string): Uint8Array {
  checkArray(values, what);
  const out = new Uint8Array(values.length * 8);
  const view = viewOf(out);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!(typeof value === "number" && Number.isSafeInteger(value))) {
      throw new ProtobufEncodeError(`${what}[${i}]: ${describe(value)} is not an integer within ±2^53`);
    }
    if (value >= INT32_MIN && value <= INT32_MAX) {
      // Fast path (token ids, indices): the high word is just the sign extension.
      view.setInt32(i * 8, value, true);
      view.setInt32(i * 8 + 4, value < 0 ? -1 : 0, true);
    } else {
      const [lo, hi] = splitInt64(value);
      view.setUint32(i * 8, lo, true);
      view.setUint32(i * 8 + 4, hi, true);
    }
  }
  return out;
}

/** Values beyond ±2^53 come back as the nearest double, as they would from a JSON body. */
export function decodeInt64s(bytes: Uint8Array, what: string): number[] {
  const count = elementCount(bytes, 8, what);
  const view = viewOf(bytes);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    out[i] = joinInt64(view.getUint32(i * 8, true), view.getUint32(i * 8 + 4, true), true);
  }
  return out;
}

/** Values are rounded to the nearest float32 (NaN and infinities pass through). */
export function encodeFloat32s(values: readonly number[], what: string): Uint8Array {
  checkArray(values, what);
  const out = new Uint8Array(values.length * 4);
  const view = viewOf(out);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== "number") {
      throw new ProtobufEncodeError(`${what}[${i}]: ${describe(value)} is not a number`);
    }
    view.setFloat32(i * 4, value, true);
  }
  return out;
}

/** float32 values widened to double, exactly as numpy's `tolist()` does. */
export function decodeFloat32s(bytes: Uint8Array, what: string): number[] {
  const count = elementCount(bytes, 4, what);
  const view = viewOf(bytes);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** bfloat16 is the upper half of a float32: shift the 16 bits into place and read as float32. */
export function decodeBfloat16s(bytes: Uint8Array, what: string): number[] {
  const count = elementCount(bytes, 2, what);
  const view = viewOf(bytes);
  const widened = new DataView(new ArrayBuffer(4));
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    widened.setUint32(0, view.getUint16(i * 2, true) << 16, true);
    out[i] = widened.getFloat32(0, true);
  }
  return out;
}
