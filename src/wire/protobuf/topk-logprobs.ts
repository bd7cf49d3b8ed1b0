/**
 * `TopkLogprobs` <-> rows of `[token_id, logprob]` pairs, shared by the prompt top-k
 * (`SampleResponse.topk_prompt_logprobs`) and the sampled top-k
 * (`SampledSequence.topk_sampled_logprobs`).
 *
 * message TopkLogprobs { bytes token_ids = 1; bytes logprobs = 2; uint32 k = 3; uint32 length = 4; }
 *
 * (named `TopkPromptLogprobs`, with field 4 `prompt_length`, up to 0.26.2; same bytes). The two
 * byte fields are row-major N×K matrices, int32 and float32 little-endian, N being `length`.
 * Rows are ragged and may be null in the JSON form, so the matrices pad with empty cells: token
 * id 0 paired with logprob -99999.
 */

import type { TopkLogprobRows } from "../types.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { decodeFloat32s, decodeInt32s, encodeFloat32s, encodeInt32s } from "./little-endian.js";
import { expectWireType, type ProtoReader } from "./reader.js";
import { TopkLogprobsField, WireType } from "./schema.js";
import type { ProtoWriter } from "./writer.js";

/** Logprob of an empty top-k cell (paired with token id 0); MASK_LOGPROB in the official client. */
export const TOPK_EMPTY_LOGPROB = -99999.0;
const TOPK_EMPTY_TOKEN = 0;

/**
 * Writes the fields of a TopkLogprobs message, the ragged rows laid out as an N×K matrix, K being
 * the longest row. K is at least 1 when there are rows, because the decoder reads k == 0 as
 * "top-k not requested" and would lose all-null rows.
 */
export function writeTopkLogprobs(w: ProtoWriter, rows: TopkLogprobRows, path: string): void {
  if (!Array.isArray(rows)) throw new ProtobufEncodeError(`${path}: expected an array of rows`);
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
        throw new ProtobufEncodeError(`${path}[${i}][${j}]: expected a [token_id, logprob] pair`);
      }
      tokenIds[i * k + j] = pair[0];
      logprobs[i * k + j] = pair[1];
    });
  });
  const tokenBytes = encodeInt32s(tokenIds, `${path} token_ids`);
  const logprobBytes = encodeFloat32s(logprobs, `${path} logprobs`);
  if (tokenBytes.length > 0) w.bytesField(TopkLogprobsField.token_ids, tokenBytes);
  if (logprobBytes.length > 0) w.bytesField(TopkLogprobsField.logprobs, logprobBytes);
  if (k !== 0) w.uint32Field(TopkLogprobsField.k, k);
  if (n !== 0) w.uint32Field(TopkLogprobsField.length, n);
}

/**
 * Reads the N×K matrices back into rows: undefined when k or length is 0 (not requested), null
 * for a row whose first cell is empty, and trailing empty cells trimmed from the others.
 */
export function readTopkLogprobs(r: ProtoReader, path: string): TopkLogprobRows | undefined {
  let tokenBytes: Uint8Array = new Uint8Array(0);
  let logprobBytes: Uint8Array = new Uint8Array(0);
  let k = 0;
  let n = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case TopkLogprobsField.token_ids:
        expectWireType(tag, WireType.LengthDelimited, `${path}.token_ids`);
        tokenBytes = r.bytes();
        break;
      case TopkLogprobsField.logprobs:
        expectWireType(tag, WireType.LengthDelimited, `${path}.logprobs`);
        logprobBytes = r.bytes();
        break;
      case TopkLogprobsField.k:
        expectWireType(tag, WireType.Varint, `${path}.k`);
        k = r.uint32();
        break;
      case TopkLogprobsField.length:
        expectWireType(tag, WireType.Varint, `${path}.length`);
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
      `${path}: ${n}×${k} matrices need ${cells * 4} bytes each, got ` +
        `${tokenBytes.length} (token_ids) and ${logprobBytes.length} (logprobs)`,
    );
  }
  const tokenIds = decodeInt32s(tokenBytes.subarray(0, cells * 4), `${path}.token_ids`);
  const logprobs = decodeFloat32s(logprobBytes.subarray(0, cells * 4), `${path}.logprobs`);
  const isEmpty = (cell: number) =>
    tokenIds[cell] === TOPK_EMPTY_TOKEN && logprobs[cell] === TOPK_EMPTY_LOGPROB;
  const rows: TopkLogprobRows = [];
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
