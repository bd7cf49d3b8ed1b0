/**
 * A sample request as the client builds it: the checks made before anything is sent (a bad request
 * is a ValidationError and takes no seq_id), the request form of the sampling parameters and of the
 * outputs asked for (PROTOCOL.md §2.6.1, §P2), and the prompt's size for the submission budget.
 */
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { describeValue } from "../internal/describe.js";
import { checkModelInput } from "../lib/validate.js";
import type { ModelInput, SamplingParams, TensorData } from "../wire/types.js";

/** What a sample may return besides its sequences. */
export interface SampleOutputOptions {
  /** Also return the logprob of every prompt token (first position null). */
  includePromptLogprobs?: boolean;
  /** Also return the top-k alternatives at every prompt position. */
  topkPromptLogprobs?: number;
  /**
   * Also return the top-k logprobs at every generated position, as each sequence's
   * `topk_sampled_logprobs` (Python `topk_sample_logprobs`, PROTOCOL.md §P2).
   */
  topkSampleLogprobs?: number;
  /**
   * Token ids whose logprobs to return at prompt positions: an int64 `[len(prompt) − 1, K]` tensor,
   * row i for position i + 1, -1 = none (build it with `targetPromptLogprobsTensor`). The answer's
   * `target_prompt_logprobs` has the same shape and layout (§P2).
   */
  targetPromptLogprobs?: TensorData;
  /**
   * Also draw this many alternative tokens at every prompt position after the first, at the
   * request's temperature, with their logprobs: the answer's `prompt_alt_tokens` (§P2).
   */
  promptAltTokensK?: number;
}

/** The request form of SamplingParams: official defaults filled in, unset optional fields omitted. */
export function samplingParamsBody(params: SamplingParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (params.max_tokens !== undefined) body.max_tokens = params.max_tokens;
  if (params.seed !== undefined) body.seed = params.seed;
  if (params.stop !== undefined) body.stop = params.stop;
  body.temperature = params.temperature ?? 1.0;
  body.top_k = params.top_k ?? -1;
  body.top_p = params.top_p ?? 1.0;
  return body;
}

/**
 * The output fields of the request body. The two of 0.25 are always sent; the ones added later
 * only when they ask for something, so a plain sample reads exactly as 0.25's did.
 */
export function sampleOutputFields(options: SampleOutputOptions): Record<string, unknown> {
  const whenPositive = (k: number | undefined) => (k !== undefined && k > 0 ? k : undefined);
  return {
    prompt_logprobs: options.includePromptLogprobs ?? false,
    topk_prompt_logprobs: options.topkPromptLogprobs ?? 0,
    topk_sample_logprobs: whenPositive(options.topkSampleLogprobs),
    target_prompt_logprobs: options.targetPromptLogprobs,
    prompt_alt_tokens_k: whenPositive(options.promptAltTokensK),
  };
}

/** The official estimate of a prompt's size for the byte budget: 10 bytes per text token. */
export function promptBytes(prompt: ModelInput): number {
  let bytes = 0;
  for (const chunk of prompt.chunks) {
    if (chunk.type === "encoded_text") bytes += 10 * chunk.tokens.length;
    else if (chunk.type === "image") bytes += chunk.data.length;
    else if (chunk.type === "image_asset_pointer") bytes += chunk.location.length;
    else bytes += chunk.dmel.length;
  }
  return bytes;
}

/** Every check of a sample request; throws one ValidationError listing each problem. */
export function validateSampleRequest(
  prompt: ModelInput,
  numSamples: number,
  params: SamplingParams,
  options: SampleOutputOptions,
  contextLength: number | undefined,
): void {
  const issues: ValidationIssue[] = [];
  const promptLength = checkModelInput(prompt, "prompt", issues, { trainable: false });
  if (promptLength !== undefined && contextLength !== undefined) {
    const total = promptLength + (params?.max_tokens ?? 1);
    if (total > contextLength) {
      issues.push({
        path: "sampling_params.max_tokens",
        message: `prompt (${promptLength} tokens) + max_tokens (${params?.max_tokens ?? "unset"}) exceeds the model's context length ${contextLength}`,
      });
    }
  }
  if (!Number.isInteger(numSamples) || numSamples < 1) {
    issues.push({
      path: "num_samples",
      message: `must be a positive integer, got ${describeValue(numSamples)}`,
    });
  }
  checkSamplingParams(params ?? {}, issues);
  checkCount(options.topkPromptLogprobs, "topk_prompt_logprobs", issues);
  checkCount(options.topkSampleLogprobs, "topk_sample_logprobs", issues);
  checkCount(options.promptAltTokensK, "prompt_alt_tokens_k", issues);
  if (options.targetPromptLogprobs !== undefined) {
    checkTargets(options.targetPromptLogprobs, promptLength, issues);
  }
  if (issues.length > 0) throw new ValidationError(issues);
}

function checkSamplingParams(p: SamplingParams, issues: ValidationIssue[]): void {
  if (p.max_tokens !== undefined && (!Number.isInteger(p.max_tokens) || p.max_tokens < 1)) {
    issues.push({
      path: "sampling_params.max_tokens",
      message: `must be a positive integer, got ${describeValue(p.max_tokens)}`,
    });
  }
  if (p.temperature !== undefined && !(p.temperature >= 0)) {
    issues.push({
      path: "sampling_params.temperature",
      message: `must be ≥ 0, got ${describeValue(p.temperature)}`,
    });
  }
  if (p.top_p !== undefined && !(p.top_p > 0 && p.top_p <= 1)) {
    issues.push({
      path: "sampling_params.top_p",
      message: `must be in (0, 1], got ${describeValue(p.top_p)}`,
    });
  }
  if (p.top_k !== undefined && (!Number.isInteger(p.top_k) || (p.top_k < 1 && p.top_k !== -1))) {
    issues.push({
      path: "sampling_params.top_k",
      message: `must be -1 (no limit) or ≥ 1, got ${describeValue(p.top_k)}`,
    });
  }
  if (p.seed !== undefined && !Number.isInteger(p.seed)) {
    issues.push({
      path: "sampling_params.seed",
      message: `must be an integer, got ${describeValue(p.seed)}`,
    });
  }
}

/** A count of extra outputs (top-k widths, draws): an integer ≥ 0. */
function checkCount(k: number | undefined, path: string, issues: ValidationIssue[]): void {
  if (k !== undefined && (!Number.isInteger(k) || k < 0)) {
    issues.push({ path, message: `must be a non-negative integer, got ${describeValue(k)}` });
  }
}

/**
 * `target_prompt_logprobs`: an int64 2-D TensorData of token ids (≥ -1) with one row per prompt
 * position after the first, dense or with consistent CSR indices. The server checks the ids
 * against its vocabulary.
 */
function checkTargets(value: TensorData, promptLength: number | undefined, issues: ValidationIssue[]): void {
  const path = "target_prompt_logprobs";
  const tensor = value as Partial<TensorData> | null;
  if (typeof tensor !== "object" || tensor === null) {
    issues.push({ path, message: `must be a TensorData, got ${describeValue(value)}` });
    return;
  }
  if (tensor.dtype !== "int64") {
    issues.push({ path: `${path}.dtype`, message: `must be "int64", got ${describeValue(tensor.dtype)}` });
  }
  const shape = tensor.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    issues.push({ path: `${path}.shape`, message: `must be 2-D [rows, K], got ${describeValue(shape)}` });
    return;
  }
  const [rows, cols] = shape as [number, number];
  if (promptLength !== undefined && rows !== promptLength - 1) {
    issues.push({
      path: `${path}.shape`,
      message: `needs len(prompt) - 1 = ${promptLength - 1} rows (one per prompt position after the first), got ${rows}`,
    });
  }
  const data = tensor.data;
  if (!Array.isArray(data) || !data.every((id) => Number.isSafeInteger(id) && id >= -1)) {
    issues.push({ path: `${path}.data`, message: "must be token ids or -1 (skip)" });
    return;
  }
  const crow = tensor.sparse_crow_indices;
  const col = tensor.sparse_col_indices;
  if (crow == null && col == null) {
    if (data.length !== rows * cols) {
      issues.push({
        path: `${path}.data`,
        message: `has ${data.length} values, shape [${rows}, ${cols}] needs ${rows * cols}`,
      });
    }
    return;
  }
  if (!Array.isArray(crow) || !Array.isArray(col) || crow.length !== rows + 1 || col.length !== data.length) {
    issues.push({
      path,
      message: `sparse CSR needs ${rows + 1} sparse_crow_indices and one sparse_col_indices entry per value`,
    });
  }
}
