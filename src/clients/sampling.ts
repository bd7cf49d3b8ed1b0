/**
 * SamplingClient: generates from a base model or a saved sampler. Each attempt of `sample()` takes
 * the next per-client `seq_id` once and keeps it across submission retries and 429 back-offs
 * (PROTOCOL.md §6.4); the retry handler (§5.4) re-runs a failed attempt with a new one. A client
 * rebuilt from a sampler handle (§P4) is a clone whose seq_ids live in their own block (§P3).
 * Results carry one id per sequence (§P1); the server may batch the waiting for them (§F1) and take
 * cancels of abandoned samples (§F2).
 */

import { type ClientOptions, resolveConfig } from "../core/config.js";
import { RateLimitError, ValidationError } from "../core/errors.js";
import { APIFuture } from "../futures/api-future.js";
import { untilAborted } from "../internal/sleep.js";
import { CALL_OPTION_SHAPE, checkOptions, optionShape } from "../lib/strict-options.js";
import type { LoadTokenizerOptions, Tokenizer } from "../lib/tokenizer/index.js";
import * as sampling from "../wire/endpoints/sampling.js";
import type { GetSamplerResponse, UntypedAPIFuture } from "../wire/schemas.js";
import type { ModelInput, SampleResponse, SamplingParams } from "../wire/types.js";
import { call, poll, send } from "./call.js";
import { type CallOptions, checkCall, TOKENIZER_CALL_OPTIONS_SHAPE, withTimeout } from "./call-options.js";
import { Connection } from "./connection.js";
import { RATE_LIMITED } from "./sample-dispatch.js";
import { sampleCanceller } from "./sampling-cancel.js";
import { acquireCloneId } from "./sampling-clone.js";
import { CompletionWatcher } from "./sampling-completions.js";
import { decodeSamplerHandle, encodeSamplerHandle } from "./sampling-handle.js";
import {
  promptBytes,
  type SampleOutputOptions,
  sampleOutputFields,
  samplingParamsBody,
  validateSampleRequest,
} from "./sampling-request.js";
import { checkRequestedOutputs, stampSequenceIds } from "./sampling-response.js";
import { type RetryConfig, SamplingRetryHandler } from "./sampling-retry.js";
import type { ServiceClient } from "./service.js";
import { connectionOf } from "./service-connection.js";
import { modelTokenizer } from "./tokenizer.js";

export { samplingParamsBody };

/** Options of `sample()`: the outputs wanted besides the sequences, and the call's signal and timeout. */
export interface SampleOptions extends CallOptions, SampleOutputOptions {}

/** Options of `SamplingClient.fromSamplerHandle`. */
export interface FromSamplerHandleOptions {
  /** The sampling retry handler's settings (PROTOCOL.md §5.4). */
  retryConfig?: RetryConfig;
}

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const SAMPLING_PARAMS_SHAPE = optionShape<SamplingParams>({
  max_tokens: "number",
  seed: "number",
  stop: ["string", "array"],
  temperature: "number",
  top_k: "number",
  top_p: "number",
});
const SAMPLE_OPTIONS_SHAPE = optionShape<SampleOptions>({
  ...CALL_OPTION_SHAPE,
  includePromptLogprobs: "boolean",
  topkPromptLogprobs: "number",
  topkSampleLogprobs: "number",
  targetPromptLogprobs: "object",
  promptAltTokensK: "number",
});
const FROM_SAMPLER_HANDLE_OPTIONS_SHAPE = optionShape<FromSamplerHandleOptions>({ retryConfig: "object" });

/** The sampling parameters of `compute_logprobs`: one token, plain distribution (§7.3). */
const LOGPROB_PARAMS: SamplingParams = { max_tokens: 1, temperature: 1.0, top_k: -1, top_p: 1.0 };

interface SamplingClientSettings {
  retryConfig?: RetryConfig;
  baseModel?: string;
  recordStabilityInfo?: boolean;
  /** A clone (§P3): its clone id is joined or drawn before its first sample. */
  clone?: boolean;
  /** The session the sampler belongs to, when it is not the connection's (clones). */
  sessionId?: string;
  /** The connection was made for this client alone; `close()` closes it. */
  ownsConnection?: boolean;
}

export class SamplingClient {
  /** The sampler id on the server, e.g. `<session>:sample:0`. */
  readonly samplingSessionId: string;
  /** The base model, when known (used to check prompts against its context length). */
  readonly baseModel: string | undefined;
  /** Whether samples ask the server to record stability information (§S4). */
  readonly recordStabilityInfo: boolean;
  readonly #connection: Connection;
  readonly #retryHandler: SamplingRetryHandler;
  readonly #sessionId: string | undefined;
  readonly #ownsConnection: boolean;
  /** 0 for the original client; a clone's once joined or drawn (§P3). */
  #cloneId: number | undefined;
  #cloneIdRequest: Promise<number> | undefined;
  #completions: CompletionWatcher | undefined;
  #nextSeqId = 0;

  /** @internal Use `ServiceClient.createSamplingClient`, `TrainingClient.saveWeightsAndGetSamplingClient` or `fromSamplerHandle`. */
  constructor(connection: Connection, samplingSessionId: string, settings: SamplingClientSettings = {}) {
    this.#connection = connection;
    this.samplingSessionId = samplingSessionId;
    this.baseModel = settings.baseModel;
    this.recordStabilityInfo = settings.recordStabilityInfo ?? false;
    this.#sessionId = settings.sessionId;
    this.#ownsConnection = settings.ownsConnection ?? false;
    this.#cloneId = settings.clone ? undefined : 0;
    this.#retryHandler = new SamplingRetryHandler(settings.retryConfig, connection.serverFlags);
  }

  /**
   * A clone of the sampler a handle names (from `getSamplerHandle()`, possibly in another process),
   * authenticating with the caller's own credentials: those of `source`, a ServiceClient whose
   * connection it shares, or of the ClientOptions given, with which it opens a connection of its
   * own (closed by `close()`). Python `SamplingClient.from_sampler_handle` (§P4). Its samples take
   * seq_ids in a block of their own (§P3). Performs the start-up handshake; creates no session.
   */
  static async fromSamplerHandle(
    handle: string,
    source: ServiceClient | ClientOptions,
    options: FromSamplerHandleOptions = {},
  ): Promise<SamplingClient> {
    checkOptions(options, FROM_SAMPLER_HANDLE_OPTIONS_SHAPE, "fromSamplerHandle(options)");
    const fields = decodeSamplerHandle(handle);
    const shared = connectionOf(source);
    shared?.checkOpen("fromSamplerHandle");
    const connection = shared ?? new Connection(resolveConfig(source as ClientOptions));
    try {
      await connection.clientConfig();
    } catch (error) {
      if (!shared) await connection.close();
      throw error;
    }
    await connection.prefetchCapabilities();
    return new SamplingClient(connection, fields.sampling_session_id, {
      retryConfig: options.retryConfig,
      baseModel: fields.base_model,
      recordStabilityInfo: fields.record_stability_info,
      clone: true,
      sessionId: fields.session_id,
      ownsConnection: shared === undefined,
    });
  }

  /**
   * A handle to this sampler for `SamplingClient.fromSamplerHandle` (Python `get_sampler_handle`,
   * §P4): URL-safe base64 of the sampler id, its session, base model and `recordStabilityInfo`.
   * It holds no credential: whoever uses it authenticates with their own.
   */
  getSamplerHandle(): string {
    return encodeSamplerHandle({
      sampling_session_id: this.samplingSessionId,
      session_id: this.#sessionId ?? this.#connection.sessionId,
      base_model: this.baseModel,
      record_stability_info: this.recordStabilityInfo,
    });
  }

  /**
   * Closes the connection this client opened for itself (`fromSamplerHandle` with ClientOptions);
   * a no-op for a client that shares a ServiceClient's, which that client's `close()` ends.
   */
  async close(): Promise<void> {
    if (this.#ownsConnection) await this.#connection.close();
  }

  /**
   * Generates `numSamples` completions of `prompt`. Options ask for prompt logprobs and top-k,
   * per-token top-k of the samples, logprobs of chosen prompt tokens and alternative prompt tokens
   * (§P2); each returned sequence carries its `sequence_id` when the server gives one (§P1).
   */
  sample(
    prompt: ModelInput,
    numSamples: number,
    samplingParams: SamplingParams,
    options: SampleOptions = {},
  ): APIFuture<SampleResponse> {
    checkCall(this.#connection, "sample", options, SAMPLE_OPTIONS_SHAPE);
    checkOptions(samplingParams, SAMPLING_PARAMS_SHAPE, "sample(samplingParams)");
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
    const outputs = sampleOutputFields(options);
    const bytes = promptBytes(prompt);
    return new APIFuture(async ({ setRequestId, emit }) => {
      const cloneId = await this.#resolveCloneId(userSignal);
      let first = true;
      return this.#retryHandler.run(
        async (signal) => {
          const body = {
            num_samples: numSamples,
            prompt,
            sampling_params,
            sampling_session_id: this.samplingSessionId,
            seq_id: cloneId * sampling.CLONE_SEQ_ID_BLOCK + this.#nextSeqId++,
            ...outputs,
            // Sent only when asked for, so a plain sample reads as 0.25's did (§S4).
            record_stability_info: this.recordStabilityInfo ? true : undefined,
          };
          const startedAt = Date.now();
          const submitted = await this.#connection
            .sampleDispatcher()
            .submit(bytes, () => this.#send(body, signal), signal);
          const requestId = submitted.request_id;
          if (first) setRequestId(requestId);
          first = false;
          try {
            await this.#completionWatcher(cloneId)?.wait(requestId, signal);
            const response = await poll(this.#connection, sampling.asample, requestId, {
              roundtripSeconds: (Date.now() - startedAt) / 1000,
              signal,
              onEvent: emit,
            });
            stampSequenceIds(response, submitted.sample_sequence_ids);
            checkRequestedOutputs(response, options);
            return response;
          } catch (error) {
            // Nobody waits for this request any more (abort, timeout, stuck detection): stop it (§F2).
            if (signal.aborted) sampleCanceller(this.#connection).cancel(requestId);
            throw error;
          }
        },
        userSignal,
        retry,
      );
    });
  }

  /** One submission through the generic loop; a 429 is handed back to the dispatcher. */
  async #send(
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<UntypedAPIFuture | typeof RATE_LIMITED> {
    try {
      return await send(this.#connection, sampling.asample, { body, signal });
    } catch (error) {
      if (error instanceof RateLimitError) return RATE_LIMITED;
      throw error;
    }
  }

  /** This client's clone id: 0 for the original; a clone's is acquired once, before its first sample. */
  async #resolveCloneId(signal: AbortSignal | undefined): Promise<number> {
    if (this.#cloneId !== undefined) return this.#cloneId;
    this.#cloneIdRequest ??= acquireCloneId(this.#connection, this.samplingSessionId).then(
      (id) => {
        this.#cloneId = id;
        return id;
      },
      (error: unknown) => {
        // The next sample asks again.
        this.#cloneIdRequest = undefined;
        throw error;
      },
    );
    return untilAborted(this.#cloneIdRequest, signal);
  }

  /** The batched completion poller of this client's clone, when the server offers one (§F1). */
  #completionWatcher(cloneId: number): CompletionWatcher | undefined {
    if (this.#connection.serverFlags.sample_use_retrieve_futures !== true) return undefined;
    this.#completions ??= new CompletionWatcher(this.#connection, this.samplingSessionId, cloneId);
    return this.#completions;
  }

  /** The tokenizer of this sampler's base model (resolved as the official client does). */
  async getTokenizer(options: CallOptions & LoadTokenizerOptions = {}): Promise<Tokenizer> {
    checkCall(this.#connection, "getTokenizer", options, TOKENIZER_CALL_OPTIONS_SHAPE);
    // getBaseModel takes the call options only; the rest are the loader's.
    const { signal, timeout } = options;
    return modelTokenizer({ model_name: await this.getBaseModel({ signal, timeout }) }, options);
  }

  /** Log-probabilities of the prompt's own tokens; the first position is null. */
  async computeLogprobs(prompt: ModelInput, options: CallOptions = {}): Promise<(number | null)[]> {
    checkCall(this.#connection, "computeLogprobs", options);
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
    checkCall(this.#connection, "computeLogprobsBatch", options);
    return Promise.all(prompts.map((prompt) => this.computeLogprobs(prompt, options)));
  }

  /** The sampler's record on the server: its base model and checkpoint path. */
  async getSampler(options: CallOptions = {}): Promise<GetSamplerResponse> {
    checkCall(this.#connection, "getSampler", options);
    return call(this.#connection, sampling.getSampler, {
      params: { sampler_id: this.samplingSessionId },
      signal: withTimeout(options),
    });
  }

  /** The base model this sampler runs on. */
  async getBaseModel(options: CallOptions = {}): Promise<string> {
    checkCall(this.#connection, "getBaseModel", options);
    return (await this.getSampler(options)).base_model;
  }
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

export const SAMPLING_SESSION_OPTIONS_SHAPE = optionShape<SamplingSessionOptions>({
  ...CALL_OPTION_SHAPE,
  modelPath: "string",
  baseModel: "string",
  retryConfig: "object",
  recordStabilityInfo: "boolean",
});

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
  const sessionId = await connection.session(signal);
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
