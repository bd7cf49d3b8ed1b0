/**
 * SamplingClient: generates from a base model or a saved sampler. Each attempt of `sample()` takes
 * the next per-client `seq_id` once and keeps it across submission retries and 429 back-offs
 * (PROTOCOL.md §6.4); the retry handler (§5.4) re-runs a failed attempt with a new one.
 */

import { RateLimitError, ValidationError, type ValidationIssue } from "../core/errors.js";
import { APIFuture } from "../futures/api-future.js";
import { describeValue } from "../internal/describe.js";
import {
  type LoadTokenizerOptions,
  loadTokenizer,
  resolveTokenizerId,
  type Tokenizer,
} from "../lib/tokenizer/index.js";
import { checkModelInput } from "../lib/validate.js";
import { sampling } from "../wire/endpoints/index.js";
import type { GetSamplerResponse } from "../wire/schemas.js";
import type { ModelInput, SampleResponse, SamplingParams } from "../wire/types.js";
import { call, poll, send } from "./call.js";
import { type CallOptions, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import { RATE_LIMITED } from "./sample-dispatch.js";
import { type RetryConfig, SamplingRetryHandler } from "./sampling-retry.js";

export interface SampleOptions extends CallOptions {
  /** Also return the logprob of every prompt token (first position null). */
  includePromptLogprobs?: boolean;
  /** Also return the top-k alternatives at every prompt position. */
  topkPromptLogprobs?: number;
}

/** The sampling parameters of `compute_logprobs`: one token, plain distribution (§7.3). */
const LOGPROB_PARAMS: SamplingParams = { max_tokens: 1, temperature: 1.0, top_k: -1, top_p: 1.0 };

export class SamplingClient {
  /** The sampler id on the server, e.g. `<session>:sample:0`. */
  readonly samplingSessionId: string;
  /** The base model, when known (used to check prompts against its context length). */
  readonly baseModel: string | undefined;
  /** Whether samples ask the server to record stability information (§S4). */
  readonly recordStabilityInfo: boolean;
  readonly #connection: Connection;
  readonly #retryHandler: SamplingRetryHandler;
  #nextSeqId = 0;

  /** @internal Use `ServiceClient.createSamplingClient` or `TrainingClient.saveWeightsAndGetSamplingClient`. */
  constructor(
    connection: Connection,
    samplingSessionId: string,
    options: { retryConfig?: RetryConfig; baseModel?: string; recordStabilityInfo?: boolean } = {},
  ) {
    this.#connection = connection;
    this.samplingSessionId = samplingSessionId;
    this.baseModel = options.baseModel;
    this.recordStabilityInfo = options.recordStabilityInfo ?? false;
    this.#retryHandler = new SamplingRetryHandler(options.retryConfig, connection.serverFlags);
  }

  /** Generates `numSamples` completions of `prompt`. */
  sample(
    prompt: ModelInput,
    numSamples: number,
    samplingParams: SamplingParams,
    options: SampleOptions = {},
  ): APIFuture<SampleResponse> {
    validateSampleRequest(prompt, numSamples, samplingParams, options, this.#contextLength());
    // The server may ask for no client retries of sample() (never of computeLogprobs()).
    const retry = this.#connection.serverFlags.sample_no_retries !== true;
    return this.#run(prompt, numSamples, samplingParams, options, retry);
  }

  #run(
    prompt: ModelInput,
    numSamples: number,
    samplingParams: SamplingParams,
    options: SampleOptions,
    retry: boolean,
  ): APIFuture<SampleResponse> {
    const userSignal = withTimeout(options);
    const sampling_params = samplingParamsBody(samplingParams);
    const bytes = promptBytes(prompt);
    return new APIFuture(async ({ setRequestId, emit }) => {
      let first = true;
      return this.#retryHandler.run(
        async (signal) => {
          const body = {
            num_samples: numSamples,
            prompt,
            sampling_params,
            sampling_session_id: this.samplingSessionId,
            seq_id: this.#nextSeqId++,
            prompt_logprobs: options.includePromptLogprobs ?? false,
            topk_prompt_logprobs: options.topkPromptLogprobs ?? 0,
            // Sent only when asked for, so a plain sample reads as 0.25's did (§S4).
            record_stability_info: this.recordStabilityInfo ? true : undefined,
          };
          const startedAt = Date.now();
          const requestId = await this.#connection
            .sampleDispatcher()
            .submit(bytes, () => this.#send(body, signal), signal);
          if (first) setRequestId(requestId);
          first = false;
          return poll(this.#connection, sampling.asample, requestId, {
            roundtripSeconds: (Date.now() - startedAt) / 1000,
            signal,
            onEvent: emit,
          });
        },
        userSignal,
        retry,
      );
    });
  }

  /** One submission through the generic loop; a 429 is handed back to the dispatcher. */
  async #send(body: Record<string, unknown>, signal: AbortSignal): Promise<string | typeof RATE_LIMITED> {
    try {
      return (await send(this.#connection, sampling.asample, { body, signal })).request_id;
    } catch (error) {
      if (error instanceof RateLimitError) return RATE_LIMITED;
      throw error;
    }
  }

  /** The tokenizer of this sampler's base model (resolved as the official client does). */
  async getTokenizer(options: CallOptions & LoadTokenizerOptions = {}): Promise<Tokenizer> {
    return loadTokenizer(resolveTokenizerId({ model_name: await this.getBaseModel(options) }), options);
  }

  /** Log-probabilities of the prompt's own tokens; the first position is null. */
  async computeLogprobs(prompt: ModelInput, options: CallOptions = {}): Promise<(number | null)[]> {
    validateSampleRequest(prompt, 1, LOGPROB_PARAMS, {}, this.#contextLength());
    const response = await this.#run(
      prompt,
      1,
      LOGPROB_PARAMS,
      { ...options, includePromptLogprobs: true, topkPromptLogprobs: 0 },
      true,
    );
    return (response.prompt_logprobs ?? []).map((lp) => (lp === null || Number.isNaN(lp) ? null : lp));
  }

  #contextLength(): number | undefined {
    return this.#connection.contextLength(this.baseModel);
  }

  /** `computeLogprobs` for many prompts at once (run concurrently, results in input order). */
  computeLogprobsBatch(
    prompts: readonly ModelInput[],
    options: CallOptions = {},
  ): Promise<(number | null)[][]> {
    return Promise.all(prompts.map((prompt) => this.computeLogprobs(prompt, options)));
  }

  /** The sampler's record on the server: its base model and checkpoint path. */
  async getSampler(options: CallOptions = {}): Promise<GetSamplerResponse> {
    return call(this.#connection, sampling.getSampler, {
      params: { sampler_id: this.samplingSessionId },
      signal: withTimeout(options),
    });
  }

  /** The base model this sampler runs on. */
  async getBaseModel(options: CallOptions = {}): Promise<string> {
    return (await this.getSampler(options)).base_model;
  }
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

/** The official estimate of a prompt's size for the byte budget: 10 bytes per text token. */
function promptBytes(prompt: ModelInput): number {
  let bytes = 0;
  for (const chunk of prompt.chunks) {
    if (chunk.type === "encoded_text") bytes += 10 * chunk.tokens.length;
    else if (chunk.type === "image") bytes += chunk.data.length;
    else if (chunk.type === "image_asset_pointer") bytes += chunk.location.length;
    else bytes += chunk.dmel.length;
  }
  return bytes;
}

function validateSampleRequest(
  prompt: ModelInput,
  numSamples: number,
  params: SamplingParams,
  options: SampleOptions,
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
  const p = params ?? {};
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
  const k = options.topkPromptLogprobs;
  if (k !== undefined && (!Number.isInteger(k) || k < 0)) {
    issues.push({
      path: "topk_prompt_logprobs",
      message: `must be a non-negative integer, got ${describeValue(k)}`,
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
}

export interface SamplingSessionOptions extends CallOptions {
  /** A `tinker://…/sampler_weights/…` (or training `weights/…`) path. */
  modelPath?: string;
  /** Sample from a base model. */
  baseModel?: string;
  /** The sampling retry handler's settings (PROTOCOL.md §5.4). */
  retryConfig?: RetryConfig;
  /** Ask the server to record numerical-stability information with each sample (§S4). */
  recordStabilityInfo?: boolean;
}

/** `create_sampling_session`: a sampler for a checkpoint or a base model (PROTOCOL.md §2.2.5). */
export async function createSamplingSession(
  connection: Connection,
  options: SamplingSessionOptions,
  knownBaseModel?: string,
): Promise<SamplingClient> {
  const { modelPath, baseModel } = options;
  if (modelPath === undefined && baseModel === undefined) {
    throw new ValidationError([
      { path: "modelPath", message: "either modelPath or baseModel must be given" },
    ]);
  }
  if (modelPath !== undefined && !modelPath.startsWith("tinker://")) {
    throw new ValidationError([
      { path: "modelPath", message: `must start with tinker://, got "${modelPath}"` },
    ]);
  }
  const signal = withTimeout(options);
  const sessionId = await connection.session();
  const response = await call(connection, sampling.createSamplingSession, {
    body: {
      session_id: sessionId,
      sampling_session_seq_id: connection.nextSamplingSessionSeqId(),
      base_model: baseModel,
      model_path: modelPath,
    },
    signal,
  });
  await connection.prefetchCapabilities();
  return new SamplingClient(connection, response.sampling_session_id, {
    retryConfig: options.retryConfig,
    baseModel: baseModel ?? knownBaseModel,
    recordStabilityInfo: options.recordStabilityInfo,
  });
}
