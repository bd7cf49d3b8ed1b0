/**
 * `Tensor` (dense bytes or CSR-sparse) <-> `TensorData`, as used in `Datum.loss_fn_inputs`.
 *
 * message Tensor {
 *   oneof encoding { bytes dense = 1; SparseCsr sparse_csr = 2; }
 *   DType dtype = 3;
 *   repeated int64 shape = 4;
 * }
 * message SparseCsr { bytes values = 1; bytes crow_indices = 2; bytes col_indices = 3; }
 */

import type { TensorData, TensorInput } from "../types.js";
import { decodableDType, encodeValues } from "./dtype.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { describe } from "./integers.js";
import { decodeInt64s, encodeInt64s } from "./little-endian.js";
import { expectWireType, type ProtoReader } from "./reader.js";
import { SparseCsrField, TensorField, WireType } from "./schema.js";
import type { ProtoWriter } from "./writer.js";

/** Checks a shape: dimensions are non-negative integers. */
export function checkShape(shape: unknown, what: string): asserts shape is readonly number[] {
  if (!Array.isArray(shape)) {
    throw new ProtobufEncodeError(`${what}: expected an array, got ${describe(shape)}`);
  }
  shape.forEach((dim, i) => {
    if (!(typeof dim === "number" && Number.isSafeInteger(dim) && dim >= 0)) {
      throw new ProtobufEncodeError(`${what}[${i}]: ${describe(dim)} is not a valid dimension`);
    }
  });
}

/** Writes the fields of a Tensor message (the caller wraps them in the enclosing field). */
export function writeTensor(w: ProtoWriter, tensor: TensorInput, path: string): void {
  const values = encodeValues(tensor.data, tensor.dtype, `${path}.data`);
  const crow = tensor.sparse_crow_indices;
  const col = tensor.sparse_col_indices;
  if (crow != null || col != null) {
    if (crow == null || col == null) {
      throw new ProtobufEncodeError(
        `${path}: sparse_crow_indices and sparse_col_indices must be set together`,
      );
    }
    const crowBytes = encodeInt64s(crow, `${path}.sparse_crow_indices`);
    const colBytes = encodeInt64s(col, `${path}.sparse_col_indices`);
    w.messageField(TensorField.sparse_csr, (csr) => {
      if (values.bytes.length > 0) csr.bytesField(SparseCsrField.values, values.bytes);
      if (crowBytes.length > 0) csr.bytesField(SparseCsrField.crow_indices, crowBytes);
      if (colBytes.length > 0) csr.bytesField(SparseCsrField.col_indices, colBytes);
    });
  } else {
    // `dense` belongs to a oneof, so it has explicit presence: written even when empty.
    w.bytesField(TensorField.dense, values.bytes);
  }
  w.enumField(TensorField.dtype, values.code);
  if (tensor.shape != null) {
    checkShape(tensor.shape, `${path}.shape`);
    if (tensor.shape.length > 0) w.packedInt64Field(TensorField.shape, tensor.shape);
  }
}

interface SparseCsrBytes {
  values: Uint8Array;
  crow: Uint8Array;
  col: Uint8Array;
}

const EMPTY = new Uint8Array(0);

function readSparseCsr(r: ProtoReader, path: string): SparseCsrBytes {
  const csr: SparseCsrBytes = { values: EMPTY, crow: EMPTY, col: EMPTY };
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case SparseCsrField.values:
        expectWireType(tag, WireType.LengthDelimited, `${path}.values`);
        csr.values = r.bytes();
        break;
      case SparseCsrField.crow_indices:
        expectWireType(tag, WireType.LengthDelimited, `${path}.crow_indices`);
        csr.crow = r.bytes();
        break;
      case SparseCsrField.col_indices:
        expectWireType(tag, WireType.LengthDelimited, `${path}.col_indices`);
        csr.col = r.bytes();
        break;
      default:
        r.skip(tag);
    }
  }
  return csr;
}

/**
 * Reads a Tensor message. INT32 / BFLOAT16 values are widened to "int64" / "float32"; an empty
 * shape is left out (it means "1-D" to TensorData); CSR tensors keep their sparse fields.
 */
export function readTensor(r: ProtoReader, path: string): TensorData {
  let dense: Uint8Array | undefined;
  let sparse: SparseCsrBytes | undefined;
  let dtypeCode = 0;
  const shape: number[] = [];
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case TensorField.dense:
        expectWireType(tag, WireType.LengthDelimited, `${path}.dense`);
        dense = r.bytes();
        sparse = undefined; // oneof: the last member on the wire wins
        break;
      case TensorField.sparse_csr:
        expectWireType(tag, WireType.LengthDelimited, `${path}.sparse_csr`);
        sparse = readSparseCsr(r.message(), `${path}.sparse_csr`);
        dense = undefined;
        break;
      case TensorField.dtype:
        expectWireType(tag, WireType.Varint, `${path}.dtype`);
        dtypeCode = r.int32();
        break;
      case TensorField.shape:
        r.repeatedInt64(tag, `${path}.shape`, shape);
        break;
      default:
        r.skip(tag);
    }
  }
  const spec = decodableDType(dtypeCode);
  if (spec === undefined) {
    throw new ProtobufDecodeError(`${path}.dtype: unsupported DType value ${dtypeCode}`);
  }
  if (shape.some((dim) => dim < 0)) {
    throw new ProtobufDecodeError(`${path}.shape: negative dimension in [${shape.join(", ")}]`);
  }
  const tensor: TensorData = {
    data: spec.decode(sparse?.values ?? dense ?? EMPTY, `${path}.data`),
    dtype: spec.publicDType,
  };
  if (shape.length > 0) tensor.shape = shape;
  if (sparse !== undefined) {
    tensor.sparse_crow_indices = decodeInt64s(sparse.crow, `${path}.sparse_csr.crow_indices`);
    tensor.sparse_col_indices = decodeInt64s(sparse.col, `${path}.sparse_csr.col_indices`);
  }
  return tensor;
}
