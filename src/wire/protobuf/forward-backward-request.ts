/**
 * `tinker_public.ForwardBackwardRequest`, the body of POST /api/v1/forward_backward (PROTOCOL.md
 * §2.4.1, §8.1). The SDK client encodes it; the local backend decodes it.
 *
 * Fields are written in field-number order and proto3 defaults are left out, like the official
 * serializer, so the bytes match what the Python client sends for the same request.
 */

import type {
  Datum,
  DmelChunk,
  EncodedTextChunk,
  ForwardBackwardRequest,
  ImageChunk,
  ModelInputChunk,
  TensorData,
} from "../types.js";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { checkString, describe, isInt32 } from "./integers.js";
import { decodeInt32s, encodeInt32s } from "./little-endian.js";
import { keyPath, readDoubleEntry, readMessageEntry, writeDoubleMap, writeMessageMap } from "./maps.js";
import { expectWireType, ProtoReader } from "./reader.js";
import {
  ChunkField,
  DatumField,
  DmelChunkField,
  EncodedTextChunkField,
  ForwardBackwardRequestField,
  ImageChunkField,
  WireType,
} from "./schema.js";
import { readTensor, writeTensor } from "./tensor.js";
import { ProtoWriter } from "./writer.js";

// ---- encode ----

export function encodeForwardBackwardRequest(req: ForwardBackwardRequest): Uint8Array {
  checkString(req.model_id, "model_id");
  checkString(req.loss_fn, "loss_fn");
  // seq_id is not optional on the wire; like the official client, send 0 when it is unset.
  const seqId = req.seq_id ?? 0;
  if (!isInt32(seqId))
    throw new ProtobufEncodeError(`seq_id: ${describe(seqId)} is not a 32-bit signed integer`);
  const w = new ProtoWriter();
  if (req.model_id !== "") w.stringField(ForwardBackwardRequestField.model_id, req.model_id);
  if (seqId !== 0) w.int32Field(ForwardBackwardRequestField.seq_id, seqId);
  req.data.forEach((datum, i) => {
    w.messageField(ForwardBackwardRequestField.data, (dw) => writeDatum(dw, datum, `data[${i}]`));
  });
  if (req.loss_fn !== "") w.stringField(ForwardBackwardRequestField.loss_fn, req.loss_fn);
  if (req.loss_fn_config != null) {
    writeDoubleMap(w, ForwardBackwardRequestField.loss_fn_config, req.loss_fn_config, "loss_fn_config");
  }
  if (req.forward_only === true) w.boolField(ForwardBackwardRequestField.forward_only, true);
  return w.finish();
}

function writeDatum(w: ProtoWriter, datum: Datum, path: string): void {
  datum.model_input.chunks.forEach((chunk, i) => {
    w.messageField(DatumField.model_input, (cw) => writeChunk(cw, chunk, `${path}.model_input.chunks[${i}]`));
  });
  writeMessageMap<TensorData>(
    w,
    DatumField.loss_fn_inputs,
    datum.loss_fn_inputs,
    `${path}.loss_fn_inputs`,
    writeTensor,
  );
}

function bytesFromBase64(text: unknown, path: string): Uint8Array {
  const bytes = typeof text === "string" ? decodeBase64(text) : undefined;
  if (bytes === undefined) {
    throw new ProtobufEncodeError(`${path}: expected standard base64, got ${describe(text)}`);
  }
  return bytes;
}

/** Writes the Chunk oneof: exactly one member, always present even when its content is empty. */
function writeChunk(w: ProtoWriter, chunk: ModelInputChunk, path: string): void {
  switch (chunk.type) {
    case "encoded_text": {
      const tokens = encodeInt32s(chunk.tokens, `${path}.tokens`);
      w.messageField(ChunkField.encoded_text, (m) => {
        if (tokens.length > 0) m.bytesField(EncodedTextChunkField.tokens, tokens);
      });
      return;
    }
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
        `${path}: unsupported model input chunk type ${describe((chunk as { type?: unknown }).type)}`,
      );
  }
}

// ---- decode ----

/**
 * Decodes a request body. The result is normalized: `loss_fn_config` is always an object (empty
 * when absent) and `forward_only` always a boolean, as proto3 cannot tell "unset" from default.
 */
export function decodeForwardBackwardRequest(bytes: Uint8Array): ForwardBackwardRequest {
  const r = new ProtoReader(bytes);
  let modelId = "";
  let seqId = 0;
  const data: Datum[] = [];
  let lossFn = "";
  const config = new Map<string, number>();
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
        config.set(key, value);
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
    loss_fn_config: Object.fromEntries(config),
    forward_only: forwardOnly,
  };
}

function readDatum(r: ProtoReader, path: string): Datum {
  const chunks: ModelInputChunk[] = [];
  const inputs = new Map<string, TensorData>();
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
      default:
        r.skip(tag);
    }
  }
  return { model_input: { chunks }, loss_fn_inputs: Object.fromEntries(inputs) };
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
