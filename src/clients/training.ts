/**
 * TrainingClient: one LoRA training run. Every operation takes its `seq_id` synchronously at call
 * time and is submitted only after the previous one was accepted (PROTOCOL.md §6.2), so calls
 * made back to back pipeline into the same server cycle:
 *
 *   const fb = training.forwardBackward(batch, "cross_entropy");
 *   const step = training.optimStep({ learning_rate: 1e-4 });
 *   const [out, stats] = await Promise.all([fb, step]);
 */
import { TinkerError, ValidationError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import type { HttpRequest } from "../core/http.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureRequestType, pollFuture, type ResultDecoder } from "../futures/poller.js";
import { chunkData, DEFAULT_CHUNK_LIMITS, mergeForwardBackwardOutputs } from "../lib/chunking.js";
import { type CustomLoss, forwardBackwardCustom } from "../lib/custom-loss.js";
import {
  type LoadTokenizerOptions,
  loadTokenizer,
  resolveTokenizerId,
  type Tokenizer,
} from "../lib/tokenizer/index.js";
import { validateAdamParams, validateForwardBackwardInput } from "../lib/validate.js";
import { ForwardBackwardOutputSchema } from "../wire/json-schemas.js";
import { encodeTrainingRequest } from "../wire/protobuf/forward-backward-request.js";
import { decodeForwardBackwardOutput, encodeForwardBackwardRequest } from "../wire/protobuf/index.js";
import {
  type GetInfoResponse,
  GetInfoResponseSchema,
  type LoadWeightsResponse,
  LoadWeightsResponseSchema,
  type OptimStepResponse,
  OptimStepResponseSchema,
  parseResponse,
  type SaveWeightsForSamplerResponse,
  SaveWeightsForSamplerResponseSchema,
  type SaveWeightsResponse,
  SaveWeightsResponseSchema,
  type UnloadModelResponse,
  UnloadModelResponseSchema,
  UntypedAPIFutureSchema,
} from "../wire/schemas.js";
import type { AdamParams, Datum, DatumInput, ForwardBackwardOutput, LossFnType } from "../wire/types.js";
import { type CallOptions, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import { createSamplingSession, SamplingClient } from "./sampling.js";
import type { RetryConfig } from "./sampling-retry.js";

export const DEFAULT_ADAM_PARAMS: Required<AdamParams> = {
  learning_rate: 0.0001,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weight_decay: 0.0,
  grad_clip_norm: 0.0,
};

export type GetTokenizerOptions = CallOptions & LoadTokenizerOptions;

export interface SaveStateOptions extends CallOptions {
  /** Delete the checkpoint after this many seconds (default: never). */
  ttlSeconds?: number;
  /** Replace an existing checkpoint of the same name. */
  overwrite?: boolean;
}

export interface LoadStateOptions extends CallOptions {
  /** Credential for a checkpoint owned by another account. */
  weightsAccessToken?: string;
}

const forwardBackwardDecoder: ResultDecoder<ForwardBackwardOutput> = {
  schema: ForwardBackwardOutputSchema,
  protobuf: decodeForwardBackwardOutput,
};

/** One HTTP submission of an operation; an operation has several when a batch is chunked. */
type Submission = (seqId: number) => HttpRequest;

export class TrainingClient {
  /** The training run id, e.g. `<session>:train:0`. */
  readonly modelId: string;
  /** The base model, when known (used to check inputs against its context length). */
  readonly baseModel: string | undefined;
  readonly #connection: Connection;
  /** Next seq_id; 0 was the model's creation. */
  #nextSeqId = 1;
  /** Settles when the latest operation has been accepted (or failed to be). */
  #turn: Promise<void> = Promise.resolve();
  /** Set when a submission failed for good: later operations would run out of order. */
  #brokenBy: Error | undefined;

  /** @internal Use `ServiceClient.createLoraTrainingClient` or `createTrainingClientFromState`. */
  constructor(connection: Connection, modelId: string, options: { baseModel?: string } = {}) {
    this.#connection = connection;
    this.modelId = modelId;
    this.baseModel = options.baseModel;
  }

  /**
   * Forward and backward pass; gradients accumulate on the server until `optimStep`. Large batches
   * are split by the server's limits into several requests (submitted in parallel, run in order)
   * and their results merged: outputs in datum order, metrics reduced by their `:suffix`.
   */
  forwardBackward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig?: Record<string, number>,
    options?: CallOptions,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#forwardBackward(data, lossFn, lossFnConfig, false, options);
  }

  /** Forward pass only: outputs (e.g. logprobs) and the loss, no gradient. */
  forward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig?: Record<string, number>,
    options?: CallOptions,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#forwardBackward(data, lossFn, lossFnConfig, true, options);
  }

  /**
   * Forward and backward pass on a loss computed here on the client from the per-token logprobs
   * (PROTOCOL.md §7.2; see `forwardBackwardCustom` in lib/custom-loss.ts). It runs as two operations
   * of this run, a forward and then a forward_backward; submit the next operation (e.g. optimStep)
   * once the returned future's `requestId` has resolved, or it will run between the two.
   */
  forwardBackwardCustom(
    data: Datum[],
    loss: CustomLoss,
    options?: CallOptions,
  ): APIFuture<ForwardBackwardOutput> {
    return forwardBackwardCustom(this, data, loss, options);
  }

  #forwardBackward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig: Record<string, number> | undefined,
    forwardOnly: boolean,
    options: CallOptions | undefined,
  ): APIFuture<ForwardBackwardOutput> {
    const limits = { maxContextLength: this.#connection.contextLength(this.baseModel) };
    // The values of plain arrays are checked below, by the loops that encode them.
    validateForwardBackwardInput(data, lossFn, lossFnConfig, limits, { scanPlainArrays: false });
    const flags = this.#connection.serverFlags;
    // Typed-array datums go through unchanged: chunkData reads only lengths, which they have too.
    const chunks = chunkData(data as Datum[], {
      maxDatums: flags.fwdbwd_max_chunk_len ?? DEFAULT_CHUNK_LIMITS.maxDatums,
      maxBytes: flags.fwdbwd_max_chunk_bytes_count ?? DEFAULT_CHUNK_LIMITS.maxBytes,
    });
    const request = (chunk: DatumInput[], seqId: number) => ({
      model_id: this.modelId,
      seq_id: seqId,
      data: chunk,
      loss_fn: lossFn,
      loss_fn_config: lossFnConfig,
      forward_only: forwardOnly,
    });
    // Every chunk is encoded now, in the call, with the seq_ids `#enqueue` is about to take: each
    // value is read once, checked (by the validation's rules) while it is written, and the request
    // holds the data as it was at the time of the call, even if the caller changes its arrays
    // (typed arrays included) before the request is sent. Should any value fail, the full
    // validation runs and throws the usual ValidationError, before any seq_id is taken. If it
    // passes (a value the wire cannot hold, e.g. an int64 beyond ±2^53), that chunk is encoded
    // at submission instead, as before, whose error then fails the operation.
    const firstSeqId = this.#nextSeqId;
    let failed = false;
    const encoded = chunks.map((chunk, i) => {
      try {
        return encodeTrainingRequest(request(chunk, firstSeqId + i));
      } catch {
        failed = true;
        return undefined;
      }
    });
    if (failed) validateForwardBackwardInput(data, lossFn, lossFnConfig, limits);
    const submissions: Submission[] = chunks.map((chunk, i) => (seqId) => ({
      method: "POST",
      path: "api/v1/forward_backward",
      binary: {
        contentType: "application/x-protobuf",
        bytes:
          seqId === firstSeqId + i && encoded[i] !== undefined
            ? encoded[i]
            : encodeForwardBackwardRequest(request(chunk, seqId)),
      },
    }));
    const parallel = flags.parallel_fwdbwd_chunks ?? true;
    const future = this.#enqueue(
      forwardOnly ? "Forward" : "ForwardBackward",
      forwardBackwardDecoder,
      options,
      submissions,
      parallel,
    );
    return mapFuture(future, mergeForwardBackwardOutputs);
  }

  /** Applies the accumulated gradients with AdamW. Unset fields take the official defaults. */
  optimStep(adamParams: AdamParams = {}, options?: CallOptions): APIFuture<OptimStepResponse> {
    const adam_params = { ...DEFAULT_ADAM_PARAMS, ...adamParams };
    validateAdamParams(adam_params);
    return this.#enqueueOne("OptimStep", { schema: OptimStepResponseSchema }, options, (seqId) => ({
      method: "POST",
      path: "api/v1/optim_step",
      json: { adam_params, model_id: this.modelId, seq_id: seqId, type: "optim_step" },
    }));
  }

  /** Saves weights and optimizer state at `tinker://<run>/weights/<name>`, to resume from later. */
  saveState(name: string, options: SaveStateOptions = {}): APIFuture<SaveWeightsResponse> {
    checkName(name);
    return this.#enqueueOne("SaveWeights", { schema: SaveWeightsResponseSchema }, options, (seqId) => {
      const json: Record<string, unknown> = { model_id: this.modelId, path: name, seq_id: seqId };
      if (options.ttlSeconds !== undefined) json.ttl_seconds = options.ttlSeconds;
      json.overwrite = options.overwrite ?? false;
      json.type = "save_weights";
      return { method: "POST", path: "api/v1/save_weights", json, maxRetries: 0 };
    });
  }

  /** Loads the weights of a training checkpoint; the optimizer starts fresh. */
  loadState(path: string, options: LoadStateOptions = {}): APIFuture<LoadWeightsResponse> {
    return this.#loadWeights(path, false, options);
  }

  /** Loads weights and optimizer state, so training continues exactly where the checkpoint was. */
  loadStateWithOptimizer(path: string, options: LoadStateOptions = {}): APIFuture<LoadWeightsResponse> {
    return this.#loadWeights(path, true, options);
  }

  #loadWeights(path: string, optimizer: boolean, options: LoadStateOptions): APIFuture<LoadWeightsResponse> {
    checkTinkerPath(path);
    return this.#enqueueOne("LoadWeights", { schema: LoadWeightsResponseSchema }, options, (seqId) => {
      const json: Record<string, unknown> = { model_id: this.modelId, seq_id: seqId, path, optimizer };
      if (options.weightsAccessToken !== undefined) json.weights_access_token = options.weightsAccessToken;
      json.type = "load_weights";
      return { method: "POST", path: "api/v1/load_weights", json };
    });
  }

  /** Saves inference weights at `tinker://<run>/sampler_weights/<name>`. */
  saveWeightsForSampler(
    name: string,
    options: CallOptions & { ttlSeconds?: number } = {},
  ): APIFuture<{ path: string }> {
    checkName(name);
    const decoder: ResultDecoder<SaveWeightsForSamplerResponse> = {
      schema: SaveWeightsForSamplerResponseSchema,
    };
    const future = this.#enqueueOne("SaveWeightsForSampler", decoder, options, (seqId) => {
      const json: Record<string, unknown> = { model_id: this.modelId, path: name, seq_id: seqId };
      if (options.ttlSeconds !== undefined) json.ttl_seconds = options.ttlSeconds;
      json.type = "save_weights_for_sampler";
      return { method: "POST", path: "api/v1/save_weights_for_sampler", json, maxRetries: 0 };
    });
    return mapFuture(future, (result) => {
      if (!result.path) throw new TinkerError("save_weights_for_sampler returned no path");
      return { path: result.path };
    });
  }

  /**
   * Snapshots the current weights into an ephemeral sampler and returns a client for it (the fast
   * weight sync of RL loops). Nothing is persisted.
   */
  async saveWeightsAndGetSamplingClient(
    options: CallOptions & { retryConfig?: RetryConfig } = {},
  ): Promise<SamplingClient> {
    await this.#connection.session();
    const decoder: ResultDecoder<SaveWeightsForSamplerResponse> = {
      schema: SaveWeightsForSamplerResponseSchema,
    };
    const result = await this.#enqueueOne("SaveWeightsForSampler", decoder, options, (seqId) => ({
      method: "POST",
      path: "api/v1/save_weights_for_sampler",
      json: {
        model_id: this.modelId,
        // Taken per attempt, as the official client does (its counter is read inside the retry).
        sampling_session_seq_id: this.#connection.nextSamplingSessionSeqId(),
        seq_id: seqId,
        type: "save_weights_for_sampler",
      },
      maxRetries: 0,
    }));
    if (!result.sampling_session_id)
      throw new TinkerError("save_weights_for_sampler returned no sampling_session_id");
    return new SamplingClient(this.#connection, result.sampling_session_id, {
      retryConfig: options.retryConfig,
      baseModel: this.baseModel,
    });
  }

  /** A sampler for a saved sampler checkpoint (`tinker://…/sampler_weights/…`). */
  createSamplingClient(
    modelPath: string,
    options: CallOptions & { retryConfig?: RetryConfig } = {},
  ): Promise<SamplingClient> {
    return createSamplingSession(this.#connection, { ...options, modelPath }, this.baseModel);
  }

  /** Model metadata, including the tokenizer id. Not ordered with the other operations. */
  async getInfo(options: CallOptions = {}): Promise<GetInfoResponse> {
    const signal = withTimeout(options);
    return withGenericRetries(
      () =>
        this.#connection.requestJson(
          {
            method: "POST",
            path: "api/v1/get_info",
            json: { model_id: this.modelId, type: "get_info" },
            signal,
          },
          GetInfoResponseSchema,
          "get_info",
        ),
      { signal },
    );
  }

  /**
   * The model's tokenizer, resolved from `get_info` as the official client does. Hub downloads use
   * the runtime's fetch, never this client's (which may be the local backend's).
   */
  async getTokenizer(options: GetTokenizerOptions = {}): Promise<Tokenizer> {
    return loadTokenizer(resolveTokenizerId(await this.getInfo(options)), options);
  }

  /** Releases the run's resources on the server; later operations on it fail. */
  unloadModel(options: CallOptions = {}): APIFuture<UnloadModelResponse> {
    const signal = withTimeout(options);
    return new APIFuture(async ({ setRequestId, emit }) => {
      const startedAt = Date.now();
      const response = await withGenericRetries(
        () =>
          this.#connection.http.request({
            method: "POST",
            path: "api/v1/unload_model",
            json: { model_id: this.modelId, type: "unload_model" },
            signal,
          }),
        { signal },
      );
      const requestId = parseResponse(
        UntypedAPIFutureSchema,
        response.json(),
        "unload_model submission",
      ).request_id;
      setRequestId(requestId);
      return pollFuture(this.#connection.http, {
        requestId,
        requestType: "UnloadModel",
        decoder: { schema: UnloadModelResponseSchema },
        roundtripSeconds: (Date.now() - startedAt) / 1000,
        signal,
        onEvent: emit,
      });
    });
  }

  #enqueueOne<T>(
    requestType: FutureRequestType,
    decoder: ResultDecoder<T>,
    options: CallOptions | undefined,
    submission: Submission,
  ): APIFuture<T> {
    return mapFuture(
      this.#enqueue(requestType, decoder, options, [submission], false),
      (results) => results[0]!,
    );
  }

  /**
   * Takes consecutive seq_ids now (one per submission), waits for the previous operation's
   * acceptance, submits (each with the generic retry loop, which keeps its seq_id), then polls.
   * With `parallel`, submissions 2…n go out together and the first, lowest seq_id, only after
   * they were all accepted (the official order, since the server runs them in seq_id order anyway).
   */
  #enqueue<T>(
    requestType: FutureRequestType,
    decoder: ResultDecoder<T>,
    options: CallOptions | undefined,
    submissions: Submission[],
    parallel: boolean,
  ): APIFuture<T[]> {
    const firstSeqId = this.#nextSeqId;
    this.#nextSeqId += submissions.length;
    const previousTurn = this.#turn;
    let releaseTurn!: () => void;
    this.#turn = new Promise((resolve) => (releaseTurn = resolve));
    const startedAt = Date.now();
    const signal = withTimeout(options);
    const http = this.#connection.http;

    const submit = async (index: number): Promise<string> => {
      const request = submissions[index]!(firstSeqId + index);
      const response = await withGenericRetries(() => http.request({ ...request, signal }), {
        signal,
        billingPauseMs: this.#connection.billingPauseMs,
      });
      return parseResponse(UntypedAPIFutureSchema, response.json(), `${requestType} submission`).request_id;
    };

    return new APIFuture<T[]>(async ({ setRequestId, emit }) => {
      const requestIds: string[] = new Array(submissions.length);
      try {
        await previousTurn;
        if (this.#brokenBy) {
          throw new TinkerError(
            `Not sent: an earlier operation on ${this.modelId} could not be submitted (${this.#brokenBy.message}), so seq_id ${firstSeqId} would run out of order`,
            { cause: this.#brokenBy },
          );
        }
        if (parallel && submissions.length > 1) {
          const rest = await Promise.all(submissions.slice(1).map((_, i) => submit(i + 1)));
          rest.forEach((id, i) => {
            requestIds[i + 1] = id;
          });
          requestIds[0] = await submit(0);
        } else {
          for (let i = 0; i < submissions.length; i++) requestIds[i] = await submit(i);
        }
      } catch (error) {
        this.#brokenBy ??= error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        releaseTurn();
      }
      setRequestId(requestIds[0]!);
      const roundtripSeconds = (Date.now() - startedAt) / 1000;
      return Promise.all(
        requestIds.map((requestId) =>
          pollFuture(http, {
            requestId,
            requestType,
            decoder,
            roundtripSeconds,
            signal,
            onEvent: emit,
            billingPauseMs: this.#connection.billingPauseMs,
          }),
        ),
      );
    });
  }
}

/** A future whose result is `map` of another's, sharing its request id and events. */
function mapFuture<A, B>(source: APIFuture<A>, map: (value: A) => B): APIFuture<B> {
  return new APIFuture<B>(async ({ setRequestId, emit }) => {
    source.requestId.then(setRequestId, () => {});
    const forwarding = (async () => {
      for await (const event of source.events()) emit(event);
    })();
    const value = await source;
    await forwarding;
    return map(value);
  });
}

function checkName(name: string): void {
  if (typeof name !== "string" || name === "" || name.includes("/")) {
    throw new ValidationError([
      {
        path: "name",
        message: `must be a non-empty checkpoint name without "/", got ${JSON.stringify(name)}`,
      },
    ]);
  }
}

function checkTinkerPath(path: string): void {
  if (typeof path !== "string" || !/^tinker:\/\/[^/]+\/(weights|sampler_weights)\/[^/]+$/.test(path)) {
    throw new ValidationError([
      { path: "path", message: `must look like tinker://<run>/weights/<name>, got ${JSON.stringify(path)}` },
    ]);
  }
}
