/**
 * `tinker_public.SampleResponse`, the result of asample futures (PROTOCOL.md §3.7, §8.1;
 * UPSTREAM.md §11 for fields 5-6 and SampledSequence field 4). The local backend encodes it; the
 * SDK client decodes it.
 *
 * message SampleResponse {
 *   repeated SampledSequence sequences = 1;
 *   optional bytes prompt_logprobs = 2;                  // float32 LE, NaN = not computed
 *   optional TopkLogprobs topk_prompt_logprobs = 3;
 *   int32 prompt_cache_hit_tokens = 4;
 *   optional Tensor target_prompt_logprobs = 5;          // float32, the request's shape and layout
 *   optional PromptAltTokens prompt_alt_tokens = 6;
 * }
 * message SampledSequence {
 *   StopReason stop_reason = 1; bytes tokens = 2; optional bytes logprobs = 3;
 *   optional TopkLogprobs topk_sampled_logprobs = 4;
 * }
 * message PromptAltTokens { Tensor tokens = 1; Tensor logprobs = 2; }
 *
 * TopkLogprobs lives in `./topk-logprobs.ts`. Lists become fixed-width binary arrays, so the nulls
 * of the JSON form are encoded as sentinels: NaN in prompt_logprobs, and (token 0, logprob -99999)
 * cells in the N×K top-k matrices.
 */

import type {
  PromptAltTokens,
  SampledSequence,
  SampleResponse,
  StopReason,
  TensorData,
  TopkLogprobRows,
} from "../types.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { describe, isInt32 } from "./integers.js";
import { decodeFloat32s, decodeInt32s, encodeFloat32s, encodeInt32s } from "./little-endian.js";
import { expectWireType, ProtoReader } from "./reader.js";
import {
  PromptAltTokensField,
  SampledSequenceField,
  SampleResponseField,
  StopReasonCode,
  WireType,
} from "./schema.js";
import { readTensor, writeTensor } from "./tensor.js";
import { readTopkLogprobs, writeTopkLogprobs } from "./topk-logprobs.js";
import { ProtoWriter } from "./writer.js";

export { TOPK_EMPTY_LOGPROB } from "./topk-logprobs.js";

// ---- encode ----

export function encodeSampleResponse(res: SampleResponse): Uint8Array {
  const w = new ProtoWriter();
  res.sequences.forEach((sequence, i) => {
    w.messageField(SampleResponseField.sequences, (sw) => writeSequence(sw, sequence, `sequences[${i}]`));
  });
  if (res.prompt_logprobs != null) {
    const values = res.prompt_logprobs.map((value) => (value === null ? Number.NaN : value));
    // `optional bytes`: explicit presence, so an empty list is still written.
    w.bytesField(SampleResponseField.prompt_logprobs, encodeFloat32s(values, "prompt_logprobs"));
  }
  if (res.topk_prompt_logprobs != null) {
    const rows = res.topk_prompt_logprobs;
    w.messageField(SampleResponseField.topk_prompt_logprobs, (tw) =>
      writeTopkLogprobs(tw, rows, "topk_prompt_logprobs"),
    );
  }
  const cacheHits = res.prompt_cache_hit_tokens ?? 0;
  if (cacheHits !== 0) {
    if (!isInt32(cacheHits)) {
      throw new ProtobufEncodeError(
        `prompt_cache_hit_tokens: ${describe(cacheHits)} is not a 32-bit integer`,
      );
    }
    w.int32Field(SampleResponseField.prompt_cache_hit_tokens, cacheHits);
  }
  if (res.target_prompt_logprobs != null) {
    const tensor = res.target_prompt_logprobs;
    w.messageField(SampleResponseField.target_prompt_logprobs, (tw) =>
      writeTensor(tw, tensor, "target_prompt_logprobs"),
    );
  }
  if (res.prompt_alt_tokens != null) {
    const alt = res.prompt_alt_tokens;
    w.messageField(SampleResponseField.prompt_alt_tokens, (aw) =>
      writePromptAltTokens(aw, alt, "prompt_alt_tokens"),
    );
  }
  return w.finish();
}

function writePromptAltTokens(w: ProtoWriter, alt: PromptAltTokens, path: string): void {
  if (typeof alt !== "object" || alt === null) {
    throw new ProtobufEncodeError(`${path}: expected { tokens, logprobs }, got ${describe(alt)}`);
  }
  for (const name of ["tokens", "logprobs"] as const) {
    const tensor = alt[name];
    if (typeof tensor !== "object" || tensor === null) {
      throw new ProtobufEncodeError(`${path}.${name}: expected TensorData, got ${describe(tensor)}`);
    }
    w.messageField(PromptAltTokensField[name], (tw) => writeTensor(tw, tensor, `${path}.${name}`));
  }
}

function stopReasonCode(reason: StopReason, path: string): number {
  switch (reason) {
    case "stop":
      return StopReasonCode.STOP;
    case "length":
      return StopReasonCode.LENGTH;
    default:
      throw new ProtobufEncodeError(`${path}: unknown stop_reason ${describe(reason)}`);
  }
}

function writeSequence(w: ProtoWriter, sequence: SampledSequence, path: string): void {
  const code = stopReasonCode(sequence.stop_reason, `${path}.stop_reason`);
  const tokens = encodeInt32s(sequence.tokens, `${path}.tokens`);
  if (code !== StopReasonCode.STOP) w.enumField(SampledSequenceField.stop_reason, code);
  if (tokens.length > 0) w.bytesField(SampledSequenceField.tokens, tokens);
  if (sequence.logprobs != null) {
    w.bytesField(SampledSequenceField.logprobs, encodeFloat32s(sequence.logprobs, `${path}.logprobs`));
  }
  if (sequence.topk_sampled_logprobs != null) {
    const rows = sequence.topk_sampled_logprobs;
    w.messageField(SampledSequenceField.topk_sampled_logprobs, (tw) =>
      writeTopkLogprobs(tw, rows, `${path}.topk_sampled_logprobs`),
    );
  }
  // `sequence_id` is not in the message: the SDK stamps it from the asample answer.
}

// ---- decode ----

/**
 * Decodes a result body like the official client: empty logprobs / prompt_logprobs read as
 * absent, NaN prompt logprobs as null, `prompt_cache_hit_tokens` defaults to 0. Numbers are the
 * float32 values on the wire widened to double (e.g. -0.1 comes back as -0.10000000149011612).
 */
export function decodeSampleResponse(bytes: Uint8Array): SampleResponse {
  const r = new ProtoReader(bytes);
  const sequences: SampledSequence[] = [];
  let promptLogprobs: Uint8Array | undefined;
  let topk: TopkLogprobRows | undefined;
  let cacheHits = 0;
  let targetLogprobs: TensorData | undefined;
  let altTokens: PromptAltTokens | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case SampleResponseField.sequences:
        expectWireType(tag, WireType.LengthDelimited, "sequences");
        sequences.push(readSequence(r.message(), `sequences[${sequences.length}]`));
        break;
      case SampleResponseField.prompt_logprobs:
        expectWireType(tag, WireType.LengthDelimited, "prompt_logprobs");
        promptLogprobs = r.bytes();
        break;
      case SampleResponseField.topk_prompt_logprobs:
        expectWireType(tag, WireType.LengthDelimited, "topk_prompt_logprobs");
        topk = readTopkLogprobs(r.message(), "topk_prompt_logprobs");
        break;
      case SampleResponseField.prompt_cache_hit_tokens:
        expectWireType(tag, WireType.Varint, "prompt_cache_hit_tokens");
        cacheHits = r.int32();
        break;
      case SampleResponseField.target_prompt_logprobs:
        expectWireType(tag, WireType.LengthDelimited, "target_prompt_logprobs");
        targetLogprobs = readTensor(r.message(), "target_prompt_logprobs");
        break;
      case SampleResponseField.prompt_alt_tokens:
        expectWireType(tag, WireType.LengthDelimited, "prompt_alt_tokens");
        altTokens = readPromptAltTokens(r.message(), "prompt_alt_tokens");
        break;
      default:
        r.skip(tag);
    }
  }
  const res: SampleResponse = { sequences, prompt_cache_hit_tokens: cacheHits };
  if (promptLogprobs !== undefined && promptLogprobs.length > 0) {
    res.prompt_logprobs = decodeFloat32s(promptLogprobs, "prompt_logprobs").map((value) =>
      Number.isNaN(value) ? null : value,
    );
  }
  if (topk !== undefined) res.topk_prompt_logprobs = topk;
  if (targetLogprobs !== undefined) res.target_prompt_logprobs = targetLogprobs;
  if (altTokens !== undefined) res.prompt_alt_tokens = altTokens;
  return res;
}

/**
 * Reads PromptAltTokens. The token dtype is whatever `Tensor.dtype` says (the proto comment says
 * int32, the Python type int64); either way it decodes to "int64". A missing tensor is an error:
 * an empty Tensor message has no dtype, so there is nothing meaningful to return.
 */
function readPromptAltTokens(r: ProtoReader, path: string): PromptAltTokens {
  let tokens: TensorData | undefined;
  let logprobs: TensorData | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case PromptAltTokensField.tokens:
        expectWireType(tag, WireType.LengthDelimited, `${path}.tokens`);
        tokens = readTensor(r.message(), `${path}.tokens`);
        break;
      case PromptAltTokensField.logprobs:
        expectWireType(tag, WireType.LengthDelimited, `${path}.logprobs`);
        logprobs = readTensor(r.message(), `${path}.logprobs`);
        break;
      default:
        r.skip(tag);
    }
  }
  if (tokens === undefined || logprobs === undefined) {
    throw new ProtobufDecodeError(`${path}: ${tokens === undefined ? "tokens" : "logprobs"} is missing`);
  }
  return { tokens, logprobs };
}

function stopReasonName(code: number, path: string): StopReason {
  switch (code) {
    case StopReasonCode.STOP:
      return "stop";
    case StopReasonCode.LENGTH:
      return "length";
    default:
      throw new ProtobufDecodeError(`${path}: unknown stop_reason enum value ${code}`);
  }
}

function readSequence(r: ProtoReader, path: string): SampledSequence {
  let code = 0;
  let tokens: number[] = [];
  let logprobs: number[] = [];
  let topk: TopkLogprobRows | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case SampledSequenceField.stop_reason:
        expectWireType(tag, WireType.Varint, `${path}.stop_reason`);
        code = r.int32();
        break;
      case SampledSequenceField.tokens:
        expectWireType(tag, WireType.LengthDelimited, `${path}.tokens`);
        tokens = decodeInt32s(r.bytes(), `${path}.tokens`);
        break;
      case SampledSequenceField.logprobs:
        expectWireType(tag, WireType.LengthDelimited, `${path}.logprobs`);
        logprobs = decodeFloat32s(r.bytes(), `${path}.logprobs`);
        break;
      case SampledSequenceField.topk_sampled_logprobs:
        expectWireType(tag, WireType.LengthDelimited, `${path}.topk_sampled_logprobs`);
        topk = readTopkLogprobs(r.message(), `${path}.topk_sampled_logprobs`);
        break;
      default:
        r.skip(tag);
    }
  }
  const sequence: SampledSequence = { stop_reason: stopReasonName(code, `${path}.stop_reason`), tokens };
  if (logprobs.length > 0) sequence.logprobs = logprobs;
  if (topk !== undefined) sequence.topk_sampled_logprobs = topk;
  return sequence;
}
