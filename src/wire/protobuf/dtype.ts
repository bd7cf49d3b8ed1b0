/**
 * The protobuf `DType` enum against the wire's two public dtypes. The client only ever writes
 * FLOAT32 and INT64; servers may also answer with INT32 and BFLOAT16, which are widened to the
 * public "int64" / "float32" exactly as the official client does.
 */

import type { DType } from "../types.js";
import { ProtobufEncodeError } from "./errors.js";
import { describe } from "./integers.js";
import {
  decodeBfloat16s,
  decodeFloat32s,
  decodeInt32s,
  decodeInt64s,
  encodeFloat32s,
  encodeInt64s,
} from "./little-endian.js";
import { DTypeCode } from "./schema.js";

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

export interface EncodedValues {
  readonly code: number;
  readonly itemSize: number;
  readonly bytes: Uint8Array;
}

/** Encodes values of a public dtype: float32 as FLOAT32, int64 as INT64. */
export function encodeValues(values: readonly number[], dtype: DType, what: string): EncodedValues {
  switch (dtype) {
    case "float32":
      return { code: DTypeCode.FLOAT32, itemSize: 4, bytes: encodeFloat32s(values, what) };
    case "int64":
      return { code: DTypeCode.INT64, itemSize: 8, bytes: encodeInt64s(values, what) };
    default:
      throw new ProtobufEncodeError(
        `${what}: dtype ${describe(dtype)} is not supported (expected "float32" or "int64")`,
      );
  }
}
