/**
 * `tinker_public.ForwardBackwardRequest`, the body of POST /api/v1/forward_backward (PROTOCOL.md
 * §2.4.1, §8.1), with the 0.26.2 additions (UPSTREAM.md §11): `loss_fn_config_v2` (field 7, see
 * `./loss-config.ts`) and the Datum provenance spans (fields 3-4, see `./provenance.ts`). The SDK
 * client encodes it; the local backend decodes it.
 *
 * Fields are written in field-number order and proto3 defaults are left out, like the official
 * serializer, so the bytes match what the Python client sends for the same request.
 */

import type {
  Datum,
  DatumInput,
  DmelChunk,
  EncodedTextChunk,
  ForwardBackwardRequest,
  ImageChunk,
  ModelInputChunk,
  ProvenanceSpan,
  TensorData,
  TensorInput,
  TrainingInputChunk,
} from "../types.js";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { checkTensorValues, encodableDType, writeTensorValues } from "./dtype.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { checkString, describe, isInt32 } from "./integers.js";
import { decodeInt32s } from "./little-endian.js";
import {
  lossConfigEntries,
  readLossConfigV2Entry,
  writeLegacyLossConfig,
  writeLossConfigV2,
} from "./loss-config.js";
import { entriesOf, keyPath, readDoubleEntry, readMessageEntry } from "./maps.js";
import { checkInt32Values, type Int32Values, type ValueRules, writeInt32s } from "./payload.js";
import { readProvenanceSpan, writeProvenanceSpans } from "./provenance.js";
import { expectWireType, ProtoReader } from "./reader.js";
import {
  ChunkField,
  DatumField,
  DmelChunkField,
  EncodedTextChunkField,
  ForwardBackwardRequestField,
  ImageChunkField,
  MapEntryField,
  TensorField,
  WireType,
} from "./schema.js";
import { delimitedSize, SizedWriter, varintSize } from "./sized-writer.js";
import { checkShape, readTensor, writeTensor } from "./tensor.js";
import { ProtoWriter } from "./writer.js";

const utf8 = new TextEncoder();

// ---- encode ----

/*
 * The request is dominated by a few large arrays (token ids, target tokens, weights), so it is
 * encoded in two passes: `plan*` checks the structure and computes every message's size from the
 * element counts, then `write*` fills one buffer of exactly that size, each payload written once
 * straight into its final place (see `./sized-writer.ts`). The rare parts without a cheap size
 * (image and audio chunks, sparse tensors) are pre-encoded with `ProtoWriter` and copied in.
 */

interface TextChunkPlan {
  readonly tokens: Int32Values;
  readonly path: string;
  /** Size of the EncodedTextChunk message. */
  readonly textSize: number;
}

interface ChunkPlan {
  /** Set for text chunks, the fast path. */
  readonly text: TextChunkPlan | undefined;
  /** Otherwise the Chunk message, pre-encoded. */
  readonly encoded: Uint8Array | undefined;
  /** Size of the Chunk message. */
  readonly size: number;
}

interface TensorPlan {
  readonly key: Uint8Array;
  readonly tensor: TensorInput;
  readonly path: string;
  readonly code: number;
  readonly valueBytes: number;
  /** Packed `shape` run size, or 0 when the shape is not written. */
  readonly shapeSize: number;
  /** Set for sparse tensors: the Tensor message, pre-encoded. */
  readonly encoded: Uint8Array | undefined;
  /** Size of the Tensor message. */
  readonly tensorSize: number;
  /** Size of the map entry message (key + value). */
  readonly entrySize: number;
}

interface DatumPlan {
  readonly chunks: ChunkPlan[];
  readonly inputs: TensorPlan[];
  /** Fields 3-4 (provenance spans), pre-encoded; empty when the datum has none. */
  readonly spans: Uint8Array;
  /** Size of the Datum message. */
  readonly size: number;
}

/**
 * Encodes a request. Datums may carry typed arrays (`DatumInput`): those whose element type is
 * the wire's are copied whole, so a request of Int32Array / Float32Array / BigInt64Array data
 * costs little more than a memcpy.
 */
export function encodeForwardBackwardRequest(req: ForwardBackwardRequest<DatumInput>): Uint8Array {
  return encodeRequest(req, "wire");
}

/**
 * @internal For TrainingClient, which validates with `scanPlainArrays: false` and calls this at
 * once: the plain-array values are checked here, in the loops that write them, by the validation's
 * rules (`ValueRules` "training") instead of in a scan of their own. Any error thrown means "run
 * the full validation"; not part of the public codec.
 */
export function encodeTrainingRequest(req: ForwardBackwardRequest<DatumInput>): Uint8Array {
  return encodeRequest(req, "training");
}

function encodeRequest(req: ForwardBackwardRequest<DatumInput>, rules: ValueRules): Uint8Array {
  checkString(req.model_id, "model_id");
  checkString(req.loss_fn, "loss_fn");
  // seq_id is not optional on the wire; like the official client, send 0 when it is unset.
  const seqId = req.seq_id ?? 0;
  if (!isInt32(seqId))
    throw new ProtobufEncodeError(`seq_id: ${describe(seqId)} is not a 32-bit signed integer`);
  if (!Array.isArray(req.data))
    throw new ProtobufEncodeError(`data: expected an array, got ${describe(req.data)}`);
  // Fields 1-2 and 4-6 are small: ProtoWriter encodes them around the datums (field 3).
  const head = new ProtoWriter();
  if (req.model_id !== "") head.stringField(ForwardBackwardRequestField.model_id, req.model_id);
  if (seqId !== 0) head.int32Field(ForwardBackwardRequestField.seq_id, seqId);
  const plans = req.data.map((datum, i) => planDatum(datum, `data[${i}]`));
  const tail = new ProtoWriter();
  if (req.loss_fn !== "") tail.stringField(ForwardBackwardRequestField.loss_fn, req.loss_fn);
  const config = req.loss_fn_config == null ? [] : lossConfigEntries(req.loss_fn_config, "loss_fn_config");
  writeLegacyLossConfig(tail, config);
  if (req.forward_only === true) tail.boolField(ForwardBackwardRequestField.forward_only, true);
  writeLossConfigV2(tail, config);

  let size = head.length + tail.length;
  for (const plan of plans) size += delimitedSize(plan.size);
  const w = new SizedWriter(size);
  w.raw(head.finish());
  for (const plan of plans) {
    w.delimited(ForwardBackwardRequestField.data, plan.size);
    writeDatum(w, plan, rules);
  }
  w.raw(tail.finish());
  return w.finish();
}

function planDatum(datum: DatumInput, path: string): DatumPlan {
  if (typeof datum !== "object" || datum === null) {
    throw new ProtobufEncodeError(`${path}: expected a Datum, got ${describe(datum)}`);
  }
  const chunkList = datum.model_input?.chunks;
  if (!Array.isArray(chunkList)) {
    throw new ProtobufEncodeError(
      `${path}.model_input.chunks: expected an array, got ${describe(chunkList)}`,
    );
  }
  let size = 0;
  const chunks = chunkList.map((chunk, i) => {
    const plan = planChunk(chunk, `${path}.model_input.chunks[${i}]`);
    size += delimitedSize(plan.size);
    return plan;
  });
  const inputs = entriesOf(datum.loss_fn_inputs, `${path}.loss_fn_inputs`).map(([key, tensor]) => {
    const plan = planTensor(key, tensor, keyPath(`${path}.loss_fn_inputs`, key));
    size += delimitedSize(plan.entrySize);
    return plan;
  });
  const spanWriter = new ProtoWriter();
  writeProvenanceSpans(
    spanWriter,
    DatumField.model_input_spans,
    datum.model_input_spans,
    `${path}.model_input_spans`,
  );
  writeProvenanceSpans(
    spanWriter,
    DatumField.loss_fn_input_spans,
    datum.loss_fn_input_spans,
    `${path}.loss_fn_input_spans`,
  );
  const spans = spanWriter.finish();
  size += spans.length;
  return { chunks, inputs, spans, size };
}

/** Plans the Chunk oneof: exactly one member, always present even when its content is empty. */
function planChunk(chunk: TrainingInputChunk, path: string): ChunkPlan {
  if (chunk?.type === "encoded_text") {
    const tokensPath = `${path}.tokens`;
    checkInt32Values(chunk.tokens, tokensPath);
    const count = chunk.tokens.length;
    const textSize = count > 0 ? delimitedSize(count * 4) : 0;
    const text = { tokens: chunk.tokens, path: tokensPath, textSize };
    return { text, encoded: undefined, size: delimitedSize(textSize) };
  }
  const w = new ProtoWriter();
  writeOtherChunk(w, chunk, path);
  const encoded = w.finish();
  return { text: undefined, encoded, size: encoded.length };
}

function planTensor(key: string, tensor: TensorInput, path: string): TensorPlan {
  const keyBytes = utf8.encode(key);
  if (typeof tensor !== "object" || tensor === null) {
    throw new ProtobufEncodeError(`${path}: expected TensorData, got ${describe(tensor)}`);
  }
  const { code, itemSize } = encodableDType(tensor.dtype, `${path}.data`);
  checkTensorValues(tensor.data, tensor.dtype, `${path}.data`);
  const valueBytes = tensor.data.length * itemSize;
  const keySize = delimitedSize(keyBytes.length);
  // Object literals of one fixed shape, not spreads: a spread is a slow generic copy in V8.
  if (tensor.sparse_crow_indices != null || tensor.sparse_col_indices != null) {
    const w = new ProtoWriter();
    writeTensor(w, tensor, path);
    const encoded = w.finish();
    const tensorSize = encoded.length;
    const entrySize = keySize + delimitedSize(tensorSize);
    return { key: keyBytes, tensor, path, code, valueBytes, shapeSize: 0, encoded, tensorSize, entrySize };
  }
  let shapeSize = 0;
  if (tensor.shape != null) {
    checkShape(tensor.shape, `${path}.shape`);
    for (const dim of tensor.shape) shapeSize += varintSize(dim);
  }
  // `dense` belongs to a oneof, so it has explicit presence: written even when empty.
  let tensorSize = delimitedSize(valueBytes) + 1 + varintSize(code);
  if (shapeSize > 0) tensorSize += delimitedSize(shapeSize);
  const entrySize = keySize + delimitedSize(tensorSize);
  return {
    key: keyBytes,
    tensor,
    path,
    code,
    valueBytes,
    shapeSize,
    encoded: undefined,
    tensorSize,
    entrySize,
  };
}

function writeDatum(w: SizedWriter, plan: DatumPlan, rules: ValueRules): void {
  for (const chunk of plan.chunks) {
    w.delimited(DatumField.model_input, chunk.size);
    const text = chunk.text;
    if (text === undefined) {
      w.raw(chunk.encoded!);
      continue;
    }
    w.delimited(ChunkField.encoded_text, text.textSize);
    if (text.tokens.length > 0) {
      w.delimited(EncodedTextChunkField.tokens, text.tokens.length * 4);
      writeInt32s(w, text.tokens, text.path, rules);
    }
  }
  for (const input of plan.inputs) {
    w.delimited(DatumField.loss_fn_inputs, input.entrySize);
    w.delimited(MapEntryField.key, input.key.length);
    w.raw(input.key);
    w.delimited(MapEntryField.value, input.tensorSize);
    if (input.encoded !== undefined) {
      w.raw(input.encoded);
      continue;
    }
    const tensor = input.tensor;
    w.delimited(TensorField.dense, input.valueBytes);
    writeTensorValues(w, tensor.data, tensor.dtype, `${input.path}.data`, rules);
    w.tag(TensorField.dtype, WireType.Varint);
    w.varint(input.code);
    if (input.shapeSize > 0) {
      w.delimited(TensorField.shape, input.shapeSize);
      for (const dim of tensor.shape!) w.varint(dim);
    }
  }
  w.raw(plan.spans);
}

function bytesFromBase64(text: unknown, path: string): Uint8Array {
  const bytes = typeof text === "string" ? decodeBase64(text) : undefined;
  if (bytes === undefined) {
    throw new ProtobufEncodeError(`${path}: expected standard base64, got ${describe(text)}`);
  }
  return bytes;
}

/** Writes a Chunk message of a non-text chunk. */
function writeOtherChunk(w: ProtoWriter, chunk: TrainingInputChunk, path: string): void {
  switch (chunk?.type) {
    case "image": {
      const data = bytesFromBase64(chunk.data, `${path}.data`);
      const expected = chunk.expected_tokens;
      if (expected != null && !isInt32(expected)) {
        throw new ProtobufEncodeError(
          `${path}.expected_tokens: ${describe(expected)} is not a 32-bit integer`,
        );
      }
      checkString(chunk.format, `${path}.format`);
      w.messageField(ChunkField.image, (m) => {
        if (data.length > 0) m.bytesField(ImageChunkField.data, data);
        if (chunk.format.length > 0) m.stringField(ImageChunkField.format, chunk.format);
        // `optional int32`: explicit presence, so written whenever set, even as 0.
        if (expected != null) m.int32Field(ImageChunkField.expected_tokens, expected);
      });
      return;
    }
    case "dmel": {
      const dmel = bytesFromBase64(chunk.dmel, `${path}.dmel`);
      w.messageField(ChunkField.dmel, (m) => {
        if (dmel.length > 0) m.bytesField(DmelChunkField.dmel, dmel);
      });
      return;
    }
    case "image_asset_pointer":
      throw new ProtobufEncodeError(
        `${path}: image_asset_pointer chunks cannot be sent in a protobuf forward_backward request; ` +
          `pass the image bytes as an "image" chunk instead`,
      );
    default:
      throw new ProtobufEncodeError(
        `${path}: unsupported model input chunk type ${describe((chunk as { type?: unknown } | null)?.type)}`,
      );
  }
}

// ---- decode ----

/**
 * Decodes a request body. The result is normalized: `loss_fn_config` is always an object (empty
 * when absent) and `forward_only` always a boolean, as proto3 cannot tell "unset" from default.
 * `loss_fn_config` comes from field 7 when the request has any field-7 entry (its numbers and
 * strings; entries without a value are left out, see `readLossConfigV2Entry`), else from field 5.
 */
export function decodeForwardBackwardRequest(bytes: Uint8Array): ForwardBackwardRequest {
  const r = new ProtoReader(bytes);
  let modelId = "";
  let seqId = 0;
  const data: Datum[] = [];
  let lossFn = "";
  const legacyConfig = new Map<string, number>();
  let config: Map<string, number | string> | undefined;
  let forwardOnly = false;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ForwardBackwardRequestField.model_id:
        expectWireType(tag, WireType.LengthDelimited, "model_id");
        modelId = r.string();
        break;
      case ForwardBackwardRequestField.seq_id:
        expectWireType(tag, WireType.Varint, "seq_id");
        seqId = r.int32();
        break;
      case ForwardBackwardRequestField.data:
        expectWireType(tag, WireType.LengthDelimited, "data");
        data.push(readDatum(r.message(), `data[${data.length}]`));
        break;
      case ForwardBackwardRequestField.loss_fn:
        expectWireType(tag, WireType.LengthDelimited, "loss_fn");
        lossFn = r.string();
        break;
      case ForwardBackwardRequestField.loss_fn_config: {
        expectWireType(tag, WireType.LengthDelimited, "loss_fn_config");
        const [key, value] = readDoubleEntry(r.message(), "loss_fn_config");
        legacyConfig.set(key, value);
        break;
      }
      case ForwardBackwardRequestField.loss_fn_config_v2: {
        expectWireType(tag, WireType.LengthDelimited, "loss_fn_config_v2");
        const [key, value] = readLossConfigV2Entry(r.message(), "loss_fn_config_v2");
        config ??= new Map();
        // A repeated key takes the last value, so a later empty one removes the earlier.
        if (value === undefined) config.delete(key);
        else config.set(key, value);
        break;
      }
      case ForwardBackwardRequestField.forward_only:
        expectWireType(tag, WireType.Varint, "forward_only");
        forwardOnly = r.bool();
        break;
      default:
        r.skip(tag);
    }
  }
  return {
    model_id: modelId,
    seq_id: seqId,
    data,
    loss_fn: lossFn,
    // fromEntries defines own properties, so a key such as "__proto__" stays an ordinary key.
    loss_fn_config: Object.fromEntries(config ?? legacyConfig),
    forward_only: forwardOnly,
  };
}

function readDatum(r: ProtoReader, path: string): Datum {
  const chunks: ModelInputChunk[] = [];
  const inputs = new Map<string, TensorData>();
  const modelInputSpans: ProvenanceSpan[] = [];
  const lossFnInputSpans: ProvenanceSpan[] = [];
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case DatumField.model_input:
        expectWireType(tag, WireType.LengthDelimited, `${path}.model_input`);
        chunks.push(readChunk(r.message(), `${path}.model_input.chunks[${chunks.length}]`));
        break;
      case DatumField.loss_fn_inputs: {
        expectWireType(tag, WireType.LengthDelimited, `${path}.loss_fn_inputs`);
        const [key, value] = readMessageEntry(r.message(), `${path}.loss_fn_inputs`);
        const valuePath = keyPath(`${path}.loss_fn_inputs`, key);
        inputs.set(key, readTensor(value ?? new ProtoReader(new Uint8Array(0)), valuePath));
        break;
      }
      case DatumField.model_input_spans: {
        const spanPath = `${path}.model_input_spans[${modelInputSpans.length}]`;
        expectWireType(tag, WireType.LengthDelimited, spanPath);
        modelInputSpans.push(readProvenanceSpan(r.message(), spanPath));
        break;
      }
      case DatumField.loss_fn_input_spans: {
        const spanPath = `${path}.loss_fn_input_spans[${lossFnInputSpans.length}]`;
        expectWireType(tag, WireType.LengthDelimited, spanPath);
        lossFnInputSpans.push(readProvenanceSpan(r.message(), spanPath));
        break;
      }
      default:
        r.skip(tag);
    }
  }
  const datum: Datum = { model_input: { chunks }, loss_fn_inputs: Object.fromEntries(inputs) };
  // proto3 cannot tell an empty list from an absent one; absent keeps unannotated datums as before.
  if (modelInputSpans.length > 0) datum.model_input_spans = modelInputSpans;
  if (lossFnInputSpans.length > 0) datum.loss_fn_input_spans = lossFnInputSpans;
  return datum;
}

function readChunk(r: ProtoReader, path: string): ModelInputChunk {
  let chunk: ModelInputChunk | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ChunkField.encoded_text:
        expectWireType(tag, WireType.LengthDelimited, `${path}.encoded_text`);
        chunk = readEncodedText(r.message(), `${path}.encoded_text`);
        break;
      case ChunkField.image:
        expectWireType(tag, WireType.LengthDelimited, `${path}.image`);
        chunk = readImage(r.message(), `${path}.image`);
        break;
      case ChunkField.dmel:
        expectWireType(tag, WireType.LengthDelimited, `${path}.dmel`);
        chunk = readDmel(r.message(), `${path}.dmel`);
        break;
      default:
        r.skip(tag);
    }
  }
  if (chunk === undefined) {
    throw new ProtobufDecodeError(`${path}: chunk has none of encoded_text, image, dmel`);
  }
  return chunk;
}

function readEncodedText(r: ProtoReader, path: string): EncodedTextChunk {
  let tokens: number[] = [];
  while (!r.done) {
    const tag = r.tag();
    if (tag.fieldNumber === EncodedTextChunkField.tokens) {
      expectWireType(tag, WireType.LengthDelimited, `${path}.tokens`);
      tokens = decodeInt32s(r.bytes(), `${path}.tokens`);
    } else {
      r.skip(tag);
    }
  }
  return { type: "encoded_text", tokens };
}

function readImage(r: ProtoReader, path: string): ImageChunk {
  let data: Uint8Array = new Uint8Array(0);
  let format = "";
  let expectedTokens: number | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ImageChunkField.data:
        expectWireType(tag, WireType.LengthDelimited, `${path}.data`);
        data = r.bytes();
        break;
      case ImageChunkField.format:
        expectWireType(tag, WireType.LengthDelimited, `${path}.format`);
        format = r.string();
        break;
      case ImageChunkField.expected_tokens:
        expectWireType(tag, WireType.Varint, `${path}.expected_tokens`);
        expectedTokens = r.int32();
        break;
      default:
        r.skip(tag);
    }
  }
  if (format !== "png" && format !== "jpeg") {
    throw new ProtobufDecodeError(`${path}.format: expected "png" or "jpeg", got ${describe(format)}`);
  }
  const chunk: ImageChunk = { type: "image", data: encodeBase64(data), format };
  if (expectedTokens !== undefined) chunk.expected_tokens = expectedTokens;
  return chunk;
}

function readDmel(r: ProtoReader, path: string): DmelChunk {
  let dmel: Uint8Array = new Uint8Array(0);
  while (!r.done) {
    const tag = r.tag();
    if (tag.fieldNumber === DmelChunkField.dmel) {
      expectWireType(tag, WireType.LengthDelimited, `${path}.dmel`);
      dmel = r.bytes();
    } else {
      r.skip(tag);
    }
  }
  return { type: "dmel", dmel: encodeBase64(dmel) };
}
