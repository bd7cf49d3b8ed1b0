/**
 * Datum provenance spans (T3), fields 3 and 4 of `Datum`:
 *
 *   repeated ProvenanceSpan model_input_spans = 3;
 *   repeated ProvenanceSpan loss_fn_input_spans = 4;
 *   message ProvenanceSpan {
 *     oneof span { PromptProvenanceSpan prompt_tokens = 1; SampledProvenanceSpan sampled_tokens = 2; }
 *   }
 *   message PromptProvenanceSpan / SampledProvenanceSpan {
 *     string sequence_id = 1; int64 offset = 2; int64 length = 3;
 *   }
 *
 * The oneof member maps to the `type` of a `ProvenanceSpan`: "prompt" / "sampled". The codec
 * checks only what the wire needs (a known type, a string id, integers that fit int64 exactly);
 * the span rules (length >= 1, offset >= 0, tiling) belong to validation on either side.
 */

import type { ProvenanceSpan } from "../types.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "./errors.js";
import { checkString, describe, isSafeInteger } from "./integers.js";
import { expectWireType, type ProtoReader } from "./reader.js";
import { ProvenanceSpanField, ProvenanceSpanRangeField, WireType } from "./schema.js";
import type { ProtoWriter } from "./writer.js";

const MEMBER_OF_TYPE = {
  prompt: ProvenanceSpanField.prompt_tokens,
  sampled: ProvenanceSpanField.sampled_tokens,
} as const;

/** Writes one repeated span field (nothing for an absent or empty list, as proto3 does). */
export function writeProvenanceSpans(
  w: ProtoWriter,
  fieldNumber: number,
  spans: readonly ProvenanceSpan[] | undefined,
  path: string,
): void {
  if (spans == null) return;
  if (!Array.isArray(spans))
    throw new ProtobufEncodeError(`${path}: expected an array, got ${describe(spans)}`);
  spans.forEach((span, i) => {
    w.messageField(fieldNumber, (sw) => writeSpan(sw, span, `${path}[${i}]`));
  });
}

function writeSpan(w: ProtoWriter, span: ProvenanceSpan, path: string): void {
  if (typeof span !== "object" || span === null) {
    throw new ProtobufEncodeError(`${path}: expected a provenance span, got ${describe(span)}`);
  }
  const member = Object.hasOwn(MEMBER_OF_TYPE, span.type)
    ? MEMBER_OF_TYPE[span.type as keyof typeof MEMBER_OF_TYPE]
    : undefined;
  if (member === undefined) {
    throw new ProtobufEncodeError(`${path}.type: expected "prompt" or "sampled", got ${describe(span.type)}`);
  }
  checkString(span.sequence_id, `${path}.sequence_id`);
  for (const name of ["offset", "length"] as const) {
    if (!isSafeInteger(span[name])) {
      throw new ProtobufEncodeError(`${path}.${name}: ${describe(span[name])} is not a safe integer`);
    }
  }
  // The member is a message inside a oneof, so it is written even when all its fields are default.
  w.messageField(member, (m) => {
    if (span.sequence_id !== "") m.stringField(ProvenanceSpanRangeField.sequence_id, span.sequence_id);
    if (span.offset !== 0) m.int64Field(ProvenanceSpanRangeField.offset, span.offset);
    if (span.length !== 0) m.int64Field(ProvenanceSpanRangeField.length, span.length);
  });
}

/**
 * Reads one ProvenanceSpan. A span with neither member set is an error, as for a Chunk: it cannot
 * be represented, and dropping it would leave the rest no longer tiling their field.
 */
export function readProvenanceSpan(r: ProtoReader, path: string): ProvenanceSpan {
  let span: ProvenanceSpan | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ProvenanceSpanField.prompt_tokens:
        expectWireType(tag, WireType.LengthDelimited, `${path}.prompt_tokens`);
        span = { type: "prompt", ...readRange(r.message(), `${path}.prompt_tokens`) };
        break;
      case ProvenanceSpanField.sampled_tokens:
        expectWireType(tag, WireType.LengthDelimited, `${path}.sampled_tokens`);
        span = { type: "sampled", ...readRange(r.message(), `${path}.sampled_tokens`) };
        break;
      default:
        r.skip(tag);
    }
  }
  if (span === undefined) {
    throw new ProtobufDecodeError(`${path}: span has neither prompt_tokens nor sampled_tokens`);
  }
  return span;
}

function readRange(r: ProtoReader, path: string): { sequence_id: string; offset: number; length: number } {
  let sequenceId = "";
  let offset = 0;
  let length = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.fieldNumber) {
      case ProvenanceSpanRangeField.sequence_id:
        expectWireType(tag, WireType.LengthDelimited, `${path}.sequence_id`);
        sequenceId = r.string();
        break;
      case ProvenanceSpanRangeField.offset:
        expectWireType(tag, WireType.Varint, `${path}.offset`);
        offset = r.int64();
        break;
      case ProvenanceSpanRangeField.length:
        expectWireType(tag, WireType.Varint, `${path}.length`);
        length = r.int64();
        break;
      default:
        r.skip(tag);
    }
  }
  return { sequence_id: sequenceId, offset, length };
}
