/**
 * The protobuf `DType` enum against the wire's two public dtypes. The client only ever writes
 * FLOAT32 and INT64; servers may also answer with INT32 and BFLOAT16, which are widened to the
 * public "int64" / "float32" exactly as the official client does.
 */

import type { DType } from "../types.js";
import { ProtobufEncodeError } from "./errors.js";
import { describe } from "./integers.js";
import { decodeBfloat16s, decodeFloat32s, decodeInt32s, decodeInt64s } from "./little-endian.js";
import {
  checkFloat32Values,
  checkInt64Values,
  type Float32Values,
  type Int64Values,
  type ValueRules,
  writeFloat32s,
  writeInt64s,
} from "./payload.js";
import { DTypeCode } from "./schema.js";
import { SizedWriter } from "./sized-writer.js";

export interface DTypeSpec {
  readonly code: number;
  /** Bytes per element in the message (offsets in BatchedTensor count bytes of this size). */
  readonly itemSize: number;
  /** The public dtype the values are widened to. */
  readonly publicDType: DType;
  decode(bytes: Uint8Array, what: string): number[];
}

const DECODABLE = new Map<number, DTypeSpec>([
  [
    DTypeCode.FLOAT32,
    { code: DTypeCode.FLOAT32, itemSize: 4, publicDType: "float32", decode: decodeFloat32s },
  ],
  [DTypeCode.INT64, { code: DTypeCode.INT64, itemSize: 8, publicDType: "int64", decode: decodeInt64s }],
  [DTypeCode.INT32, { code: DTypeCode.INT32, itemSize: 4, publicDType: "int64", decode: decodeInt32s }],
  [
    DTypeCode.BFLOAT16,
    { code: DTypeCode.BFLOAT16, itemSize: 2, publicDType: "float32", decode: decodeBfloat16s },
  ],
]);

/** How to read values of a DType received on the wire; undefined for UNSPECIFIED or unknown codes. */
export function decodableDType(code: number): DTypeSpec | undefined {
  return DECODABLE.get(code);
}

/** Values of either public dtype: `TensorValues`, or a read-only plain array. */
export type EncodableValues = Float32Values | Int64Values;

export interface EncodedValues {
  readonly code: number;
  readonly itemSize: number;
  readonly bytes: Uint8Array;
}

/** Wire code and element size of a public dtype: float32 as FLOAT32, int64 as INT64. */
export function encodableDType(dtype: DType, what: string): { code: number; itemSize: number } {
  switch (dtype) {
    case "float32":
      return { code: DTypeCode.FLOAT32, itemSize: 4 };
    case "int64":
      return { code: DTypeCode.INT64, itemSize: 8 };
    default:
      throw new ProtobufEncodeError(
        `${what}: dtype ${describe(dtype)} is not supported (expected "float32" or "int64")`,
      );
  }
}

/**
 * Checks that `values` suit `dtype` (a typed array must be one the dtype takes, see
 * `TensorValues`), so that the bytes can be sized from the element count before writing.
 */
export function checkTensorValues(values: EncodableValues, dtype: DType, what: string): void {
  if (dtype === "float32") checkFloat32Values(values, what);
  else checkInt64Values(values, what);
}

/**
 * Writes values of a public dtype that `checkTensorValues` accepted. (int64 has one rule: a
 * safe integer, stricter than validation's "an integer", so `rules` matters only for float32.)
 */
export function writeTensorValues(
  w: SizedWriter,
  values: EncodableValues,
  dtype: DType,
  what: string,
  rules: ValueRules = "wire",
): void {
  if (dtype === "float32") writeFloat32s(w, values as Float32Values, what, rules);
  else writeInt64s(w, values as Int64Values, what);
}

/** Encodes values of a public dtype: float32 as FLOAT32, int64 as INT64. */
export function encodeValues(values: EncodableValues, dtype: DType, what: string): EncodedValues {
  const { code, itemSize } = encodableDType(dtype, what);
  checkTensorValues(values, dtype, what);
  const w = new SizedWriter(values.length * itemSize);
  writeTensorValues(w, values, dtype, what);
  return { code, itemSize, bytes: w.finish() };
}
