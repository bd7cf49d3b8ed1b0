/**
 * The rule of Datum provenance spans (PROTOCOL.md §T3), checked by the SDK before sending and by
 * the local backend on arrival: the spans of a field cover it exactly, in order, without gap or
 * overlap — the model-input spans add up to the input's token count, the loss spans to the number
 * of target positions (`len(loss_fn_inputs["target_tokens"])`) — and no span is empty. The codec
 * (protobuf/provenance.ts) checks only what the wire needs; the meaning is checked here.
 */
import type { ProvenanceSpan } from "./types.js";

export interface ProvenanceIssue {
  path: string;
  message: string;
}

const SPAN_TYPES: readonly string[] = ["prompt", "sampled"];

/**
 * What is wrong with `spans` as a tiling of a field of `total` positions (`undefined` when the
 * length cannot be known, e.g. an image without `expected_tokens`: then only the spans themselves
 * are checked). `field` names what they tile, for the messages.
 */
export function spanTilingIssues(
  spans: unknown,
  total: number | undefined,
  path: string,
  field: string,
): ProvenanceIssue[] {
  if (!Array.isArray(spans)) return [{ path, message: "must be an array of provenance spans" }];
  const issues: ProvenanceIssue[] = [];
  let covered = 0;
  spans.forEach((span: Partial<ProvenanceSpan> | null, i) => {
    const at = `${path}[${i}]`;
    if (typeof span !== "object" || span === null) {
      issues.push({ path: at, message: "must be a provenance span ({ type, sequence_id, offset, length })" });
      return;
    }
    if (!SPAN_TYPES.includes(span.type as string)) {
      issues.push({
        path: `${at}.type`,
        message: `must be "prompt" or "sampled", got ${JSON.stringify(span.type)}`,
      });
    }
    if (typeof span.sequence_id !== "string") {
      issues.push({ path: `${at}.sequence_id`, message: "must be a string (a SampledSequence.sequence_id)" });
    }
    if (!(Number.isSafeInteger(span.offset) && (span.offset as number) >= 0)) {
      issues.push({ path: `${at}.offset`, message: `must be an integer ≥ 0, got ${String(span.offset)}` });
    }
    if (!(Number.isSafeInteger(span.length) && (span.length as number) >= 1)) {
      issues.push({ path: `${at}.length`, message: `must be an integer ≥ 1, got ${String(span.length)}` });
    } else {
      covered += span.length as number;
    }
  });
  if (issues.length === 0 && total !== undefined && covered !== total) {
    issues.push({
      path,
      message: `the span lengths add up to ${covered}, but ${field} has ${total}; the spans must cover it exactly`,
    });
  }
  return issues;
}

/** The spans of a datum, with the lengths of the two fields they annotate. */
export interface DatumProvenance {
  model_input_spans?: unknown;
  loss_fn_input_spans?: unknown;
}

/**
 * Both span lists of a datum (each optional). `modelInputLength`: the input's tokens;
 * `targetCount`: the positions of `target_tokens` (undefined when unknown or absent).
 */
export function datumProvenanceIssues(
  datum: DatumProvenance,
  modelInputLength: number | undefined,
  targetCount: number | undefined,
  path: string,
): ProvenanceIssue[] {
  const issues: ProvenanceIssue[] = [];
  if (datum.model_input_spans != null) {
    issues.push(
      ...spanTilingIssues(
        datum.model_input_spans,
        modelInputLength,
        `${path}.model_input_spans`,
        "the model input",
      ),
    );
  }
  if (datum.loss_fn_input_spans != null) {
    issues.push(
      ...spanTilingIssues(
        datum.loss_fn_input_spans,
        targetCount,
        `${path}.loss_fn_input_spans`,
        "loss_fn_inputs.target_tokens",
      ),
    );
  }
  return issues;
}
