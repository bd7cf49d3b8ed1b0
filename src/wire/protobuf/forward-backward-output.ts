/**
 * `tinker_public.ForwardBackwardOutput`, the result of forward / forward_backward futures
 * (PROTOCOL.md §3.5, §8.1). The local backend encodes it; the SDK client decodes it.
 *
 * message ForwardBackwardOutput {
 *   string loss_fn_output_type = 1;
 *   repeated ArrayRecord loss_fn_outputs = 2;   // batched records, concatenated in order
 *   map<string, double> metrics = 3;
 * }
 * message ArrayRecord { string type_tag = 1; map<string, BatchedTensor> fields = 2; int64 num_datums = 3; }
 * message BatchedTensor { bytes data = 1; bytes offsets = 2; DType dtype = 3; repeated int64 trailing_shape = 4; }
 *
 * Per-datum outputs are not sent one message per datum: each output name becomes one
 * BatchedTensor holding every datum's values back to back, with int64 *byte* offsets marking where
 * each datum starts, and a trailing shape shared by the datums of the record.
 */

import type { DType, ForwardBackwardOutput, TensorData } from "../types.js";
import { decodableDType, encodeValues } from "./dtype.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { checkString, describe } from "./integers.js";
import { decodeInt64s, encodeInt64s } from "./little-endian.js";
import { keyPath, readDoubleEntry, readMessageEntry, writeDoubleMap } from "./maps.js";
import { expectWireType, ProtoReader } from "./reader.js";
import {
  ArrayRecordField,
  BatchedTensorField,
  ForwardBackwardOutputField,
  MapEntryField,
  WireType,
} from "./schema.js";
import { checkShape } from "./tensor.js";
import { ProtoWriter } from "./writer.js";

const DEFAULT_OUTPUT_TYPE = "ArrayRecord";

// ---- encode ----

/** One datum's output under one name, flattened: values plus the shape after the leading dim. */
interface FlatOutput {
  values: readonly number[];
  dtype: DType;
  trailing: readonly number[];
  /** Where the tensor came from, for error messages. */
  path: string;
}

/** A run of consecutive datums whose outputs share dtype and trailing shape per name. */
interface RecordPlan {
  datums: Record<string, FlatOutput>[];
  signature: string;
}

export function encodeForwardBackwardOutput(out: ForwardBackwardOutput): Uint8Array {
  const outputType = out.loss_fn_output_type;
  checkString(outputType, "loss_fn_output_type");
  const w = new ProtoWriter();
  if (outputType !== "") w.stringField(ForwardBackwardOutputField.loss_fn_output_type, outputType);
  const names = outputNames(out.loss_fn_outputs);
  for (const record of planRecords(out.loss_fn_outputs, names)) {
    w.messageField(ForwardBackwardOutputField.loss_fn_outputs, (rw) =>
      writeArrayRecord(rw, record, names, outputType || DEFAULT_OUTPUT_TYPE),
    );
  }
  if (out.metrics != null) writeDoubleMap(w, ForwardBackwardOutputField.metrics, out.metrics, "metrics");
  return w.finish();
}

/**
 * The output names shared by every datum. The decoder matches datums across records by position
 * within each name, so all datums must carry the same names (as the official server guarantees).
 */
function outputNames(outputs: readonly Record<string, TensorData>[]): string[] {
  if (outputs.length === 0) return [];
  const names = Object.keys(outputs[0]);
  outputs.forEach((datum, i) => {
    const own = Object.keys(datum);
    if (own.length !== names.length || !names.every((name) => Object.hasOwn(datum, name))) {
      throw new ProtobufEncodeError(
        `loss_fn_outputs[${i}]: output names [${own.join(", ")}] differ from loss_fn_outputs[0] ` +
          `[${names.join(", ")}]; every datum must have the same outputs`,
      );
    }
  });
  return names;
}

/**
 * Groups datums into records. One record suffices when every datum agrees on each output's dtype
 * and trailing shape (the usual case: 1-D logprobs of any length); a change starts a new record,
 * which the decoder concatenates back in order.
 */
function planRecords(outputs: readonly Record<string, TensorData>[], names: readonly string[]): RecordPlan[] {
  const records: RecordPlan[] = [];
  outputs.forEach((datum, i) => {
    const flat: Record<string, FlatOutput> = {};
    const parts: string[] = [];
    for (const name of names) {
      const output = flatten(datum[name], keyPath(`loss_fn_outputs[${i}]`, name));
      flat[name] = output;
      parts.push(`${output.dtype}[${output.trailing.join(",")}]`);
    }
    const signature = parts.join(";");
    const last = records.at(-1);
    if (last !== undefined && last.signature === signature) last.datums.push(flat);
    else records.push({ datums: [flat], signature });
  });
  return records;
}

function flatten(tensor: TensorData, path: string): FlatOutput {
  const shape = tensor.shape;
  if (shape != null) checkShape(shape, `${path}.shape`);
  const values =
    tensor.sparse_crow_indices != null || tensor.sparse_col_indices != null
      ? densify(tensor, path)
      : tensor.data;
  if (shape != null && shape.length > 0) {
    const expected = shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected) {
      throw new ProtobufEncodeError(
        `${path}: ${values.length} values do not fill shape [${shape.join(", ")}]`,
      );
    }
  }
  // A missing or empty shape means a flat list: trailing shape [] and the leading dim = length.
  const trailing = shape != null && shape.length > 0 ? shape.slice(1) : [];
  return { values, dtype: tensor.dtype, trailing, path: `${path}.data` };
}

/** Expands a CSR tensor (2-D by definition) to its dense row-major values. */
function densify(tensor: TensorData, path: string): number[] {
  const crow = tensor.sparse_crow_indices;
  const col = tensor.sparse_col_indices;
  const shape = tensor.shape;
  if (crow == null || col == null || shape == null || shape.length !== 2) {
    throw new ProtobufEncodeError(
      `${path}: a sparse tensor needs sparse_crow_indices, sparse_col_indices and a 2-D shape`,
    );
  }
  const [rows, cols] = shape;
  if (crow.length !== rows + 1 || col.length !== tensor.data.length) {
    throw new ProtobufEncodeError(`${path}: CSR index arrays do not match the shape and the values`);
  }
  const dense = new Array<number>(rows * cols).fill(0);
  for (let row = 0; row < rows; row++) {
    const from = crow[row];
    const to = crow[row + 1];
    if (!(from >= 0 && to >= from && to <= col.length)) {
      throw new ProtobufEncodeError(`${path}.sparse_crow_indices: invalid row pointers for row ${row}`);
    }
    for (let k = from; k < to; k++) {
      const c = col[k];
      if (!(Number.isInteger(c) && c >= 0 && c < cols)) {
        throw new ProtobufEncodeError(`${path}.sparse_col_indices[${k}]: ${describe(c)} is out of range`);
      }
      dense[row * cols + c] = tensor.data[k];
    }
  }
  return dense;
}

function writeArrayRecord(
  w: ProtoWriter,
  record: RecordPlan,
  names: readonly string[],
  typeTag: string,
): void {
  w.stringField(ArrayRecordField.type_tag, typeTag);
  for (const name of names) {
    const outputs = record.datums.map((datum) => datum[name]);
    w.messageField(ArrayRecordField.fields, (entry) => {
      entry.stringField(MapEntryField.key, name);
      entry.messageField(MapEntryField.value, (bw) => writeBatchedTensor(bw, outputs, name));
    });
  }
  w.int64Field(ArrayRecordField.num_datums, record.datums.length);
}

function writeBatchedTensor(w: ProtoWriter, outputs: readonly FlatOutput[], name: string): void {
  // Encode datum by datum and join the bytes: cheaper than joining large number arrays first.
  const parts = outputs.map((output) => encodeValues(output.values, output.dtype, output.path));
  // Byte offsets: datum i occupies data[offsets[i] .. offsets[i + 1]].
  const offsets = [0];
  let end = 0;
  for (const part of parts) {
    end += part.bytes.length;
    offsets.push(end);
  }
  const data = new Uint8Array(end);
  parts.forEach((part, i) => {
    data.set(part.bytes, offsets[i]);
  });
  if (data.length > 0) w.bytesField(BatchedTensorField.data, data);
  w.bytesField(BatchedTensorField.offsets, encodeInt64s(offsets, `${name} offsets`));
  w.enumField(BatchedTensorField.dtype, parts[0].code);
  const trailing = outputs[0].trailing;
  if (trailing.length > 0) w.packedInt64Field(BatchedTensorField.trailing_shape, trailing);
}

// ---- decode ----

/** One datum's slice of a BatchedTensor, widened to the public dtype. */
interface DatumSlice {
  values: number[];
  dtype: DType;
  trailing: number[];
}

interface DecodedRecord {
  numDatums: number;
  fields: Map<string, DatumSlice[]>;
}

/**
 * Decodes a result body, following the official client: datums are counted as the sum of
 * `num_datums` (falling back to the first field's count), each field's records are concatenated,
 * and each slice is reshaped to `[elements / prod(trailing_shape), ...trailing_shape]`.
 */
export function decodeForwardBackwardOutput(bytes: Uint8Array): ForwardBackwardOutput {
  const r = new ProtoReader(bytes);
  let outputType = "";
  const records: DecodedRecord[] = [];
  const metrics = new Map<string, number>();
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ForwardBackwardOutputField.loss_fn_output_type:
        expectWireType(tag, WireType.LengthDelimited, "loss_fn_output_type");
        outputType = r.string();
        break;
      case ForwardBackwardOutputField.loss_fn_outputs:
        expectWireType(tag, WireType.LengthDelimited, "loss_fn_outputs");
        records.push(readArrayRecord(r.message(), `loss_fn_outputs[${records.length}]`));
        break;
      case ForwardBackwardOutputField.metrics: {
        expectWireType(tag, WireType.LengthDelimited, "metrics");
        const [key, value] = readDoubleEntry(r.message(), "metrics");
        metrics.set(key, value);
        break;
      }
      default:
        r.skip(tag);
    }
  }

  if (records.length === 0) {
    return {
      loss_fn_output_type: outputType || DEFAULT_OUTPUT_TYPE,
      loss_fn_outputs: [],
      metrics: Object.fromEntries(metrics),
    };
  }

  const perField = new Map<string, DatumSlice[]>();
  for (const record of records) {
    for (const [name, slices] of record.fields) {
      const all = perField.get(name);
      if (all === undefined) perField.set(name, [...slices]);
      else all.push(...slices);
    }
  }
  let numDatums = records.reduce((sum, record) => sum + record.numDatums, 0);
  if (numDatums === 0 && perField.size > 0) numDatums = perField.values().next().value?.length ?? 0;

  const outputs: Record<string, TensorData>[] = [];
  for (let i = 0; i < numDatums; i++) {
    const datum = new Map<string, TensorData>();
    for (const [name, slices] of perField) {
      const slice = slices[i];
      if (slice === undefined) {
        throw new ProtobufDecodeError(
          `loss_fn_outputs: field ${JSON.stringify(name)} has ${slices.length} datums, expected ${numDatums}`,
        );
      }
      datum.set(name, reshape(slice, keyPath(`loss_fn_outputs[${i}]`, name)));
    }
    outputs.push(Object.fromEntries(datum));
  }
  return {
    // Servers may send a qualified class name; the client keeps the bare name after the last ":".
    loss_fn_output_type: outputType.slice(outputType.lastIndexOf(":") + 1),
    loss_fn_outputs: outputs,
    metrics: Object.fromEntries(metrics),
  };
}

function reshape(slice: DatumSlice, path: string): TensorData {
  const trailingSize = slice.trailing.reduce((a, b) => a * b, 1);
  const size = slice.values.length;
  if (trailingSize === 0 ? size !== 0 : size % trailingSize !== 0) {
    throw new ProtobufDecodeError(
      `${path}: ${size} values do not divide into rows of trailing shape [${slice.trailing.join(", ")}]`,
    );
  }
  const leading = trailingSize === 0 ? 0 : size / trailingSize;
  return { data: slice.values, dtype: slice.dtype, shape: [leading, ...slice.trailing] };
}

function readArrayRecord(r: ProtoReader, path: string): DecodedRecord {
  let numDatums = 0;
  const fields = new Map<string, DatumSlice[]>();
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ArrayRecordField.fields: {
        expectWireType(tag, WireType.LengthDelimited, `${path}.fields`);
        const [name, value] = readMessageEntry(r.message(), `${path}.fields`);
        const fieldPath = keyPath(`${path}.fields`, name);
        fields.set(name, readBatchedTensor(value ?? new ProtoReader(new Uint8Array(0)), fieldPath));
        break;
      }
      case ArrayRecordField.num_datums: {
        expectWireType(tag, WireType.Varint, `${path}.num_datums`);
        numDatums = r.int64();
        if (numDatums < 0) throw new ProtobufDecodeError(`${path}.num_datums: negative value ${numDatums}`);
        break;
      }
      default:
        // type_tag (1) is informational; the client does not read it.
        r.skip(tag);
    }
  }
  return { numDatums, fields };
}

function readBatchedTensor(r: ProtoReader, path: string): DatumSlice[] {
  let data: Uint8Array = new Uint8Array(0);
  let offsetBytes: Uint8Array = new Uint8Array(0);
  let dtypeCode = 0;
  const trailing: number[] = [];
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case BatchedTensorField.data:
        expectWireType(tag, WireType.LengthDelimited, `${path}.data`);
        data = r.bytes();
        break;
      case BatchedTensorField.offsets:
        expectWireType(tag, WireType.LengthDelimited, `${path}.offsets`);
        offsetBytes = r.bytes();
        break;
      case BatchedTensorField.dtype:
        expectWireType(tag, WireType.Varint, `${path}.dtype`);
        dtypeCode = r.int32();
        break;
      case BatchedTensorField.trailing_shape:
        r.repeatedInt64(tag, `${path}.trailing_shape`, trailing);
        break;
      default:
        r.skip(tag);
    }
  }
  const spec = decodableDType(dtypeCode);
  if (spec === undefined) {
    throw new ProtobufDecodeError(`${path}.dtype: unsupported DType value ${dtypeCode}`);
  }
  if (trailing.some((dim) => dim < 0)) {
    throw new ProtobufDecodeError(`${path}.trailing_shape: negative dimension in [${trailing.join(", ")}]`);
  }
  if (data.length % spec.itemSize !== 0) {
    throw new ProtobufDecodeError(
      `${path}.data: ${data.length} bytes is not a whole number of ${spec.itemSize}-byte values`,
    );
  }
  const offsets = decodeInt64s(offsetBytes, `${path}.offsets`);
  const slices: DatumSlice[] = [];
  for (let i = 0; i + 1 < offsets.length; i++) {
    const start = offsets[i];
    const end = offsets[i + 1];
    if (!(start >= 0 && start <= end && end <= data.length)) {
      throw new ProtobufDecodeError(
        `${path}.offsets: datum ${i} spans bytes ${start}..${end} outside the ${data.length} data bytes`,
      );
    }
    if (start % spec.itemSize !== 0 || end % spec.itemSize !== 0) {
      throw new ProtobufDecodeError(
        `${path}.offsets: datum ${i} spans bytes ${start}..${end}, not a multiple of the ${spec.itemSize}-byte item size`,
      );
    }
    // Each datum is decoded from its own byte range: no batch-wide number[] to slice up again.
    slices.push({
      values: spec.decode(data.subarray(start, end), `${path}.data`),
      dtype: spec.publicDType,
      trailing: [...trailing],
    });
  }
  return slices;
}
