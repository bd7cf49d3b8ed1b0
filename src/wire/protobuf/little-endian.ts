/**
 * Number arrays <-> little-endian byte arrays, the layout of every binary array in the Tinker
 * messages (token ids, tensor values, offsets, logprobs). DataView with an explicit
 * little-endian flag keeps the result independent of the platform's byte order and of the
 * alignment of the input view (typed-array views over protobuf bytes are often misaligned).
 *
 * Encoders validate each value and name the offending element; decoders reject byte lengths that
 * are not a whole number of elements.
 */

import { ProtobufDecodeError } from "./errors.js";
import { LITTLE_ENDIAN_HOST } from "./host.js";
import { joinInt64 } from "./integers.js";
import {
  checkFloat32Values,
  checkInt32Values,
  checkInt64Values,
  type Float32Values,
  type Int32Values,
  type Int64Values,
  writeFloat32s,
  writeInt32s,
  writeInt64s,
} from "./payload.js";
import { SizedWriter } from "./sized-writer.js";

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

/** int32 values (token ids) as little-endian bytes; typed arrays go through `./payload.ts`'s fast paths. */
export function encodeInt32s(values: Int32Values, what: string): Uint8Array {
  checkInt32Values(values, what);
  const w = new SizedWriter(values.length * 4);
  writeInt32s(w, values, what);
  return w.finish();
}

export function decodeInt32s(bytes: Uint8Array, what: string): number[] {
  const count = elementCount(bytes, 4, what);
  const out = new Array<number>(count);
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) {
    // Aligned (the usual case for a body read into its own buffer): read through a typed view.
    const values = new Int32Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = values[i]!;
    return out;
  }
  const view = viewOf(bytes);
  for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
  return out;
}

/** int64 values: safe-integer numbers, Int32Array (sign-extended) or BigInt64Array (copied). */
export function encodeInt64s(values: Int64Values, what: string): Uint8Array {
  checkInt64Values(values, what);
  const w = new SizedWriter(values.length * 8);
  writeInt64s(w, values, what);
  return w.finish();
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
export function encodeFloat32s(values: Float32Values, what: string): Uint8Array {
  checkFloat32Values(values, what);
  const w = new SizedWriter(values.length * 4);
  writeFloat32s(w, values, what);
  return w.finish();
}

/** float32 values widened to double, exactly as numpy's `tolist()` does. */
export function decodeFloat32s(bytes: Uint8Array, what: string): number[] {
  const count = elementCount(bytes, 4, what);
  const out = new Array<number>(count);
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) {
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = values[i]!;
    return out;
  }
  const view = viewOf(bytes);
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
