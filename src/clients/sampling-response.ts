/**
 * What the client adds to and checks in a sample's result: each sequence's id from the submission
 * answer (PROTOCOL.md §P1), and that every output asked for came back (§P2). A server that ignores
 * a field it does not know would otherwise return a result that silently lacks it.
 */
import { ResponseValidationError, type ValidationIssue } from "../core/errors.js";
import type { SampleResponse } from "../wire/types.js";
import type { SampleOutputOptions } from "./sampling-request.js";

/**
 * Stamps `sequence_id` on each sequence from the asample answer's `sample_sequence_ids`. Servers
 * before 0.26.2 send none (the ids stay undefined); a list of the wrong length is a bad answer.
 */
export function stampSequenceIds(response: SampleResponse, ids: readonly string[] | null | undefined): void {
  if (ids == null) return;
  if (ids.length !== response.sequences.length) {
    throw new ResponseValidationError("asample", { sample_sequence_ids: ids }, [
      {
        path: "sample_sequence_ids",
        message: `has ${ids.length} ids for ${response.sequences.length} sampled sequences`,
      },
    ]);
  }
  response.sequences.forEach((sequence, i) => {
    sequence.sequence_id = ids[i];
  });
}

/** Fails when an output asked for is missing from the result, naming the field. */
export function checkRequestedOutputs(response: SampleResponse, options: SampleOutputOptions): void {
  const issues: ValidationIssue[] = [];
  const missing = (path: string, asked: string) =>
    issues.push({
      path,
      message: `missing although ${asked} was asked for; the server may predate this feature`,
    });
  if ((options.topkSampleLogprobs ?? 0) > 0) {
    const index = response.sequences.findIndex((sequence) => sequence.topk_sampled_logprobs == null);
    if (index >= 0) missing(`sequences[${index}].topk_sampled_logprobs`, "topk_sample_logprobs");
  }
  if (options.targetPromptLogprobs !== undefined && response.target_prompt_logprobs == null) {
    missing("target_prompt_logprobs", "target_prompt_logprobs");
  }
  if ((options.promptAltTokensK ?? 0) > 0 && response.prompt_alt_tokens == null) {
    missing("prompt_alt_tokens", "prompt_alt_tokens_k");
  }
  if (issues.length > 0) throw new ResponseValidationError("sample", undefined, issues);
}
