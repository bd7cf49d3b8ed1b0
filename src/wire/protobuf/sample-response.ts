/**
 * `tinker_public.SampleResponse`, the result of asample futures (PROTOCOL.md §3.7, §8.1). The
 * local backend encodes it; the SDK client decodes it.
 *
 * message SampleResponse {
 *   repeated SampledSequence sequences = 1;
 *   optional bytes prompt_logprobs = 2;                  // float32 LE, NaN = not computed
 *   optional TopkPromptLogprobs topk_prompt_logprobs = 3;
 *   int32 prompt_cache_hit_tokens = 4;
 * }
 * message SampledSequence { StopReason stop_reason = 1; bytes tokens = 2; optional bytes logprobs = 3; }
 * message TopkPromptLogprobs { bytes token_ids = 1; bytes logprobs = 2; uint32 k = 3; uint32 prompt_length = 4; }
 *
 * Lists become fixed-width binary arrays, so the nulls of the JSON form are encoded as sentinels:
 * NaN in prompt_logprobs, and (token 0, logprob -99999) cells in the N×K top-k matrices.
 */

import type { SampledSequence, SampleResponse, StopReason } from "../types.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { describe, isInt32 } from "./integers.js";
import { decodeFloat32s, decodeInt32s, encodeFloat32s, encodeInt32s } from "./little-endian.js";
import { expectWireType, ProtoReader } from "./reader.js";
import {
  SampledSequenceField,
  SampleResponseField,
  StopReasonCode,
  TopkPromptLogprobsField,
  WireType,
} from "./schema.js";
import { ProtoWriter } from "./writer.js";

/** Logprob of an empty top-k cell (paired with token id 0); MASK_LOGPROB in the official client. */
export const TOPK_EMPTY_LOGPROB = -99999.0;
const TOPK_EMPTY_TOKEN = 0;

type TopkRows = NonNullable<SampleResponse["topk_prompt_logprobs"]>;

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
    w.messageField(SampleResponseField.topk_prompt_logprobs, (tw) => writeTopk(tw, rows));
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
  return w.finish();
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
}

/**
 * Lays the ragged rows out as an N×K matrix, K being the longest row. K is at least 1 when there
 * are rows, because the decoder reads k == 0 as "top-k not requested" and would lose null rows.
 */
function writeTopk(w: ProtoWriter, rows: TopkRows): void {
  const n = rows.length;
  let k = 0;
  for (const row of rows) if (row != null) k = Math.max(k, row.length);
  if (n > 0) k = Math.max(k, 1);
  const tokenIds = new Array<number>(n * k).fill(TOPK_EMPTY_TOKEN);
  const logprobs = new Array<number>(n * k).fill(TOPK_EMPTY_LOGPROB);
  rows.forEach((row, i) => {
    if (row == null) return;
    row.forEach((pair, j) => {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new ProtobufEncodeError(
          `topk_prompt_logprobs[${i}][${j}]: expected a [token_id, logprob] pair`,
        );
      }
      tokenIds[i * k + j] = pair[0];
      logprobs[i * k + j] = pair[1];
    });
  });
  const tokenBytes = encodeInt32s(tokenIds, "topk_prompt_logprobs token_ids");
  const logprobBytes = encodeFloat32s(logprobs, "topk_prompt_logprobs logprobs");
  if (tokenBytes.length > 0) w.bytesField(TopkPromptLogprobsField.token_ids, tokenBytes);
  if (logprobBytes.length > 0) w.bytesField(TopkPromptLogprobsField.logprobs, logprobBytes);
  if (k !== 0) w.uint32Field(TopkPromptLogprobsField.k, k);
  if (n !== 0) w.uint32Field(TopkPromptLogprobsField.prompt_length, n);
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
  let topk: TopkRows | undefined;
  let cacheHits = 0;
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
        topk = readTopk(r.message());
        break;
      case SampleResponseField.prompt_cache_hit_tokens:
        expectWireType(tag, WireType.Varint, "prompt_cache_hit_tokens");
        cacheHits = r.int32();
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
  return res;
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
      default:
        r.skip(tag);
    }
  }
  const sequence: SampledSequence = { stop_reason: stopReasonName(code, `${path}.stop_reason`), tokens };
  if (logprobs.length > 0) sequence.logprobs = logprobs;
  return sequence;
}

/**
 * Reads the N×K matrices back into rows: undefined when k or prompt_length is 0 (not requested),
 * null for a row whose first cell is empty, and trailing empty cells trimmed from the others.
 */
function readTopk(r: ProtoReader): TopkRows | undefined {
  let tokenBytes: Uint8Array = new Uint8Array(0);
  let logprobBytes: Uint8Array = new Uint8Array(0);
  let k = 0;
  let n = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case TopkPromptLogprobsField.token_ids:
        expectWireType(tag, WireType.LengthDelimited, "topk_prompt_logprobs.token_ids");
        tokenBytes = r.bytes();
        break;
      case TopkPromptLogprobsField.logprobs:
        expectWireType(tag, WireType.LengthDelimited, "topk_prompt_logprobs.logprobs");
        logprobBytes = r.bytes();
        break;
      case TopkPromptLogprobsField.k:
        expectWireType(tag, WireType.Varint, "topk_prompt_logprobs.k");
        k = r.uint32();
        break;
      case TopkPromptLogprobsField.prompt_length:
        expectWireType(tag, WireType.Varint, "topk_prompt_logprobs.prompt_length");
        n = r.uint32();
        break;
      default:
        r.skip(tag);
    }
  }
  if (k === 0 || n === 0) return undefined;
  const cells = n * k;
  if (tokenBytes.length < cells * 4 || logprobBytes.length < cells * 4) {
    throw new ProtobufDecodeError(
      `topk_prompt_logprobs: ${n}×${k} matrices need ${cells * 4} bytes each, got ` +
        `${tokenBytes.length} (token_ids) and ${logprobBytes.length} (logprobs)`,
    );
  }
  const tokenIds = decodeInt32s(tokenBytes.subarray(0, cells * 4), "topk_prompt_logprobs.token_ids");
  const logprobs = decodeFloat32s(logprobBytes.subarray(0, cells * 4), "topk_prompt_logprobs.logprobs");
  const isEmpty = (cell: number) =>
    tokenIds[cell] === TOPK_EMPTY_TOKEN && logprobs[cell] === TOPK_EMPTY_LOGPROB;
  const rows: TopkRows = [];
  for (let i = 0; i < n; i++) {
    const start = i * k;
    if (isEmpty(start)) {
      rows.push(null);
      continue;
    }
    let end = start + k;
    while (end > start && isEmpty(end - 1)) end--;
    const row: [number, number][] = [];
    for (let cell = start; cell < end; cell++) row.push([tokenIds[cell], logprobs[cell]]);
    rows.push(row);
  }
  return rows;
}
