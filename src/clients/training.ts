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
import { APIFuture } from "../futures/api-future.js";
import { abortError } from "../internal/sleep.js";
import { chunkData, DEFAULT_CHUNK_LIMITS, mergeForwardBackwardOutputs } from "../lib/chunking.js";
import { trainingRunConsoleUrl } from "../lib/console-urls.js";
import { type CustomLoss, forwardBackwardCustom } from "../lib/custom-loss.js";
import { CALL_OPTION_SHAPE, checkOptions, optionShape, shapeOfSchema } from "../lib/strict-options.js";
import type { LoadTokenizerOptions, Tokenizer } from "../lib/tokenizer/index.js";
import { validateForwardBackwardInput } from "../lib/validate.js";
import { type Endpoint, parseBody } from "../wire/endpoints/define.js";
import {
  ADAM_DEFAULTS,
  AdamParamsSchema,
  DimuonParamsSchema,
  type OptimizerConfig,
} from "../wire/endpoints/fields.js";
import * as training from "../wire/endpoints/training.js";
import { encodeTrainingRequest } from "../wire/protobuf/forward-backward-request.js";
import { encodeForwardBackwardRequest } from "../wire/protobuf/index.js";
import type {
  GetInfoResponse,
  LoadWeightsResponse,
  OptimStepResponse,
  SaveWeightsExternalResponse,
  SaveWeightsResponse,
  UnloadModelResponse,
} from "../wire/schemas.js";
import type {
  AdamParams,
  Datum,
  DatumInput,
  DimuonParams,
  ForwardBackwardOutput,
  LossFnConfig,
  LossFnType,
} from "../wire/types.js";
import { type CallInput, call, poll, send, submit } from "./call.js";
import { type CallOptions, checkCall, TOKENIZER_CALL_OPTIONS_SHAPE, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import { createSamplingSession, SamplingClient } from "./sampling.js";
import type { RetryConfig } from "./sampling-retry.js";
import { modelTokenizer } from "./tokenizer.js";

/** The official AdamW defaults (PROTOCOL.md §3.5). */
export const DEFAULT_ADAM_PARAMS: Required<AdamParams> = ADAM_DEFAULTS;

export type GetTokenizerOptions = CallOptions & LoadTokenizerOptions;

export interface SaveOptions extends CallOptions {
  /** Delete the checkpoint after this many seconds, 3600 s to ten years (default: never). */
  ttlSeconds?: number;
  /** Stored with the checkpoint and listed with it (PROTOCOL.md §W1). */
  userMetadata?: Record<string, string>;
}

export interface SaveStateOptions extends SaveOptions {
  /** Replace an existing checkpoint of the same name (and its whole metadata). */
  overwrite?: boolean;
}

export interface SamplingClientCreateOptions extends CallOptions {
  retryConfig?: RetryConfig;
  /** Ask the server to record numerical-stability information with each sample (§S4). */
  recordStabilityInfo?: boolean;
}

export interface LoadStateOptions extends CallOptions {
  /** Credential for a checkpoint owned by another account. */
  weightsAccessToken?: string;
}

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const SAVE_OPTIONS_SHAPE = optionShape<SaveOptions>({
  ...CALL_OPTION_SHAPE,
  ttlSeconds: "number",
  userMetadata: "object",
});
const SAVE_STATE_OPTIONS_SHAPE = optionShape<SaveStateOptions>({
  ...SAVE_OPTIONS_SHAPE,
  overwrite: "boolean",
});
const SAVE_EXTERNAL_OPTIONS_SHAPE = optionShape<CallOptions & { ttlSeconds?: number }>({
  ...CALL_OPTION_SHAPE,
  ttlSeconds: "number",
});
const LOAD_STATE_OPTIONS_SHAPE = optionShape<LoadStateOptions>({
  ...CALL_OPTION_SHAPE,
  weightsAccessToken: "string",
});
const SAMPLING_CLIENT_OPTIONS_SHAPE = optionShape<SamplingClientCreateOptions>({
  ...CALL_OPTION_SHAPE,
  retryConfig: "object",
  recordStabilityInfo: "boolean",
});
/** The optimizer params of each family, read from their wire declarations. */
const ADAM_PARAMS_SHAPE = shapeOfSchema(AdamParamsSchema);
const DIMUON_PARAMS_SHAPE = shapeOfSchema(DimuonParamsSchema);

/** One HTTP submission of an operation (several when a batch is chunked), built for its seq_id. */
type Submission = (seqId: number) => CallInput<unknown>;

export class TrainingClient {
  /** The training run id, e.g. `<session>:train:0`. */
  readonly modelId: string;
  /** The base model, when known (used to check inputs against its context length). */
  readonly baseModel: string | undefined;
  /**
   * The run's optimizer family, fixed at creation (PROTOCOL.md §O1); undefined when the run was
   * created from a checkpoint's optimizer state through a server that does not say which.
   */
  readonly optimizer: OptimizerConfig | undefined;
  readonly #connection: Connection;
  /** Next seq_id as counted at call time; 0 was the model's creation. */
  #nextSeqId = 1;
  /**
   * Seq_ids given back by operations that failed before anything was sent (aborted while waiting
   * for their turn, input that failed to encode): the operations after them are sent with their
   * seq_ids lowered by this much, so the server sees no gap.
   */
  #releasedSeqIds = 0;
  /** Settles when the latest operation has been accepted (or failed to be). */
  #turn: Promise<void> = Promise.resolve();
  /** Set when a submission failed for good: later operations would run out of order. */
  #brokenBy: Error | undefined;

  /** @internal Use `ServiceClient.createLoraTrainingClient` or `createTrainingClientFromState`. */
  constructor(
    connection: Connection,
    modelId: string,
    options: { baseModel?: string; optimizer?: OptimizerConfig } = {},
  ) {
    this.#connection = connection;
    this.modelId = modelId;
    this.baseModel = options.baseModel;
    this.optimizer = options.optimizer;
  }

  /** This run's page in the Tinker console (PROTOCOL.md §S2). */
  getConsoleUrl(): string {
    return trainingRunConsoleUrl(this.modelId);
  }

  /**
   * Forward and backward pass; gradients accumulate on the server until `optimStep`. Large batches
   * are split by the server's limits into several requests (submitted in parallel, run in order)
   * and their results merged: outputs in datum order, metrics reduced by their `:suffix`.
   * `lossFnConfig` values are numbers, or strings for options the server defines (PROTOCOL.md §T1).
   * Datums may carry provenance spans (see `withProvenance`).
   */
  forwardBackward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig?: LossFnConfig,
    options?: CallOptions,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#forwardBackward(data, lossFn, lossFnConfig, false, options);
  }

  /** Forward pass only: outputs (e.g. logprobs) and the loss, no gradient. */
  forward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig?: LossFnConfig,
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
    checkCall(this.#connection, "forwardBackwardCustom", options);
    return forwardBackwardCustom(this, data, loss, options);
  }

  #forwardBackward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig: LossFnConfig | undefined,
    forwardOnly: boolean,
    options: CallOptions | undefined,
  ): APIFuture<ForwardBackwardOutput> {
    checkCall(this.#connection, forwardOnly ? "forward" : "forwardBackward", options);
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
    // The seq_id it will most likely be sent with (an earlier operation may still give some back).
    const firstSeqId = this.#nextSeqId - this.#releasedSeqIds;
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
      binary: {
        contentType: "application/x-protobuf",
        bytes:
          seqId === firstSeqId + i && encoded[i] !== undefined
            ? encoded[i]
            : encodeForwardBackwardRequest(request(chunk, seqId)),
      },
    }));
    const parallel = flags.parallel_fwdbwd_chunks ?? true;
    // A forward is sent to forward_backward (with forward_only) and polled as a `Forward`.
    const future = this.#enqueue(
      training.forwardBackward,
      options,
      submissions,
      parallel,
      forwardOnly ? training.forward : training.forwardBackward,
    );
    return mapFuture(future, mergeForwardBackwardOutputs);
  }

  /**
   * Applies the accumulated gradients with the run's optimizer. AdamW params (the default family)
   * or `{ type: "dimuon", learning_rate, … }` for a Dimuon run (PROTOCOL.md §O2–§O3); unset fields
   * take their defaults on every step.
   */
  optimStep(params: AdamParams | DimuonParams = {}, options?: CallOptions): APIFuture<OptimStepResponse> {
    checkCall(this.#connection, "optimStep", options);
    const family = (params as { type?: unknown } | null)?.type === "dimuon" ? "dimuon" : "adamw";
    checkOptions(params, family === "adamw" ? ADAM_PARAMS_SHAPE : DIMUON_PARAMS_SHAPE, "optimStep(params)");
    if (this.optimizer && this.optimizer.type !== family) {
      throw new ValidationError([
        {
          path: "optim_params",
          message: `${this.modelId} was created with the ${this.optimizer.type} optimizer; a ${family} step cannot be applied to it`,
        },
      ]);
    }
    const paramsField = family === "adamw" ? { adam_params: params } : { optimizer_params: params };
    const body = (seqId: number) => ({ ...paramsField, model_id: this.modelId, seq_id: seqId });
    return this.#enqueueChecked(training.optimStep, options, body);
  }

  /** Saves weights and optimizer state at `tinker://<run>/weights/<name>`, to resume from later. */
  saveState(name: string, options: SaveStateOptions = {}): APIFuture<SaveWeightsResponse> {
    checkCall(this.#connection, "saveState", options, SAVE_STATE_OPTIONS_SHAPE);
    checkName(name);
    const body = (seqId: number) => ({
      model_id: this.modelId,
      path: name,
      seq_id: seqId,
      ttl_seconds: options.ttlSeconds,
      overwrite: options.overwrite ?? false,
      user_metadata: options.userMetadata,
    });
    return this.#enqueueChecked(training.saveWeights, options, body);
  }

  /** Loads the weights of a training checkpoint; the optimizer starts fresh. */
  loadState(path: string, options: LoadStateOptions = {}): APIFuture<LoadWeightsResponse> {
    checkCall(this.#connection, "loadState", options, LOAD_STATE_OPTIONS_SHAPE);
    return this.#loadWeights(path, false, options);
  }

  /** Loads weights and optimizer state, so training continues exactly where the checkpoint was. */
  loadStateWithOptimizer(path: string, options: LoadStateOptions = {}): APIFuture<LoadWeightsResponse> {
    checkCall(this.#connection, "loadStateWithOptimizer", options, LOAD_STATE_OPTIONS_SHAPE);
    return this.#loadWeights(path, true, options);
  }

  #loadWeights(path: string, optimizer: boolean, options: LoadStateOptions): APIFuture<LoadWeightsResponse> {
    checkTinkerPath(path);
    const body = (seqId: number) => ({
      model_id: this.modelId,
      seq_id: seqId,
      path,
      optimizer,
      weights_access_token: options.weightsAccessToken,
    });
    return this.#enqueueChecked(training.loadWeights, options, body);
  }

  /** Saves inference weights at `tinker://<run>/sampler_weights/<name>`. */
  saveWeightsForSampler(name: string, options: SaveOptions = {}): APIFuture<{ path: string }> {
    checkCall(this.#connection, "saveWeightsForSampler", options, SAVE_OPTIONS_SHAPE);
    checkName(name);
    const body = (seqId: number) => ({
      model_id: this.modelId,
      path: name,
      seq_id: seqId,
      ttl_seconds: options.ttlSeconds,
      user_metadata: options.userMetadata,
    });
    const future = this.#enqueueChecked(training.saveWeightsForSampler, options, body);
    return mapFuture(future, (result) => {
      if (!result.path) throw new TinkerError("save_weights_for_sampler returned no path");
      return { path: result.path };
    });
  }

  /**
   * Saves the adapter in Hugging Face PEFT format at `tinker://<run>/external_weights/<name>`
   * (PROTOCOL.md §W2); `RestClient.getExternalWeightsUrls` hands out its files.
   */
  saveWeightsExternal(
    name: string,
    options: CallOptions & { ttlSeconds?: number } = {},
  ): APIFuture<SaveWeightsExternalResponse> {
    checkCall(this.#connection, "saveWeightsExternal", options, SAVE_EXTERNAL_OPTIONS_SHAPE);
    checkName(name);
    const body = (seqId: number) => ({
      model_id: this.modelId,
      path: name,
      seq_id: seqId,
      ttl_seconds: options.ttlSeconds,
    });
    return this.#enqueueChecked(training.saveWeightsExternal, options, body);
  }

  /**
   * Snapshots the current weights into an ephemeral sampler and returns a client for it (the fast
   * weight sync of RL loops). Nothing is persisted.
   */
  async saveWeightsAndGetSamplingClient(
    options: SamplingClientCreateOptions & {
      /** @deprecated Never had an effect; upstream warns when it is passed (PROTOCOL.md §T4). */
      name?: string;
    } = {},
  ): Promise<SamplingClient> {
    checkCall(this.#connection, "saveWeightsAndGetSamplingClient", options, {
      ...SAMPLING_CLIENT_OPTIONS_SHAPE,
      name: "string",
    });
    if (options.name !== undefined) {
      this.#connection.config.logger.warn(
        "saveWeightsAndGetSamplingClient: `name` is deprecated and ignored; use saveWeightsForSampler(name) for a named checkpoint",
      );
    }
    await this.#connection.session(withTimeout(options));
    const result = await this.#enqueueOne(training.saveWeightsForSampler, options, (seqId) => ({
      body: {
        model_id: this.modelId,
        // Taken per attempt, as the official client does (its counter is read inside the retry).
        sampling_session_seq_id: this.#connection.nextSamplingSessionSeqId(),
        seq_id: seqId,
      },
    }));
    if (!result.sampling_session_id)
      throw new TinkerError("save_weights_for_sampler returned no sampling_session_id");
    return new SamplingClient(this.#connection, result.sampling_session_id, {
      retryConfig: options.retryConfig,
      baseModel: this.baseModel,
      recordStabilityInfo: options.recordStabilityInfo,
    });
  }

  /** A sampler for a saved sampler checkpoint (`tinker://…/sampler_weights/…`). */
  createSamplingClient(
    modelPath: string,
    options: SamplingClientCreateOptions = {},
  ): Promise<SamplingClient> {
    checkCall(this.#connection, "createSamplingClient", options, SAMPLING_CLIENT_OPTIONS_SHAPE);
    return createSamplingSession(this.#connection, { ...options, modelPath }, this.baseModel);
  }

  /** Model metadata, including the tokenizer id. Not ordered with the other operations. */
  async getInfo(options: CallOptions = {}): Promise<GetInfoResponse> {
    checkCall(this.#connection, "getInfo", options);
    return call(this.#connection, training.getInfo, {
      body: { model_id: this.modelId },
      signal: withTimeout(options),
    });
  }

  /**
   * The model's tokenizer, resolved from `get_info` as the official client does. Hub downloads use
   * the runtime's fetch, never this client's (which may be the local backend's).
   */
  async getTokenizer(options: GetTokenizerOptions = {}): Promise<Tokenizer> {
    checkCall(this.#connection, "getTokenizer", options, TOKENIZER_CALL_OPTIONS_SHAPE);
    // getInfo takes the call options only; the rest are the loader's.
    const { signal, timeout } = options;
    return modelTokenizer(await this.getInfo({ signal, timeout }), options);
  }

  /** Releases the run's resources on the server; later operations on it fail. */
  unloadModel(options: CallOptions = {}): APIFuture<UnloadModelResponse> {
    checkCall(this.#connection, "unloadModel", options);
    return submit(this.#connection, training.unloadModel, {
      body: { model_id: this.modelId },
      signal: withTimeout(options),
    });
  }

  /** One operation whose body is checked against its declaration now, before its seq_id is taken. */
  #enqueueChecked<T>(
    e: Endpoint<unknown, T>,
    options: CallOptions | undefined,
    body: (seqId: number) => Record<string, unknown>,
  ): APIFuture<T> {
    checkBody(e, body(0));
    return this.#enqueueOne(e, options, (seqId) => ({ body: body(seqId) }));
  }

  #enqueueOne<T>(
    e: Endpoint<unknown, T>,
    options: CallOptions | undefined,
    submission: Submission,
  ): APIFuture<T> {
    return mapFuture(this.#enqueue(e, options, [submission], false), (results) => results[0]!);
  }

  /**
   * Takes consecutive seq_ids now (one per submission), waits for the previous operation's
   * acceptance, submits each through the endpoint's declared retry layers (which keep its seq_id),
   * then polls (as `pollAs` when the result is read under another request type).
   * With `parallel`, submissions 2…n go out together and the first, lowest seq_id, only after
   * they were all accepted (the official order, since the server runs them in seq_id order anyway).
   */
  #enqueue<T>(
    e: Endpoint<unknown, T>,
    options: CallOptions | undefined,
    submissions: Submission[],
    parallel: boolean,
    pollAs: Endpoint<unknown, T> = e,
  ): APIFuture<T[]> {
    const calledSeqId = this.#nextSeqId;
    this.#nextSeqId += submissions.length;
    const previousTurn = this.#turn;
    let releaseTurn!: () => void;
    this.#turn = new Promise((resolve) => (releaseTurn = resolve));
    const startedAt = Date.now();
    const signal = withTimeout(options);
    const connection = this.#connection;

    // Set once a submission may have reached the server: from then on a failure leaves its seq_id
    // in an unknown state, and the operations after it must not be sent.
    let sent = false;
    let firstSeqId = calledSeqId;
    const submitOne = async (index: number): Promise<string> => {
      const input = submissions[index]!(firstSeqId + index);
      sent = true;
      return (await send(connection, e, { ...input, signal })).request_id;
    };

    return new APIFuture<T[]>(async ({ setRequestId, emit }) => {
      const requestIds: string[] = new Array(submissions.length);
      try {
        await previousTurn;
        firstSeqId = calledSeqId - this.#releasedSeqIds;
        if (this.#brokenBy) {
          throw new TinkerError(
            `Not sent: an earlier operation on ${this.modelId} could not be submitted (${this.#brokenBy.message}), so seq_id ${firstSeqId} would run out of order`,
            { cause: this.#brokenBy },
          );
        }
        if (signal?.aborted) throw abortError(signal);
        if (parallel && submissions.length > 1) {
          const rest = await Promise.all(submissions.slice(1).map((_, i) => submitOne(i + 1)));
          rest.forEach((id, i) => {
            requestIds[i + 1] = id;
          });
          requestIds[0] = await submitOne(0);
        } else {
          for (let i = 0; i < submissions.length; i++) requestIds[i] = await submitOne(i);
        }
      } catch (error) {
        if (sent) this.#brokenBy ??= error instanceof Error ? error : new Error(String(error));
        // Nothing of it reached the server: its seq_ids go to the operations after it.
        else if (!this.#brokenBy) this.#releasedSeqIds += submissions.length;
        throw error;
      } finally {
        releaseTurn();
      }
      setRequestId(requestIds[0]!);
      const roundtripSeconds = (Date.now() - startedAt) / 1000;
      return Promise.all(
        requestIds.map((requestId) =>
          poll(connection, pollAs, requestId, { signal, onEvent: emit, roundtripSeconds }),
        ),
      );
    });
  }
}

/** A checkpoint name is required here (an absent one would make save_weights_for_sampler ephemeral). */
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

/** Checks a body against its declaration now, so bad input throws before a seq_id is taken. */
function checkBody(e: Endpoint, body: unknown): void {
  const parsed = parseBody(e, body);
  if (!parsed.ok) throw new ValidationError(parsed.issues);
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

function checkTinkerPath(path: string): void {
  if (typeof path !== "string" || !/^tinker:\/\/[^/]+\/(weights|sampler_weights)\/[^/]+$/.test(path)) {
    throw new ValidationError([
      { path: "path", message: `must look like tinker://<run>/weights/<name>, got ${JSON.stringify(path)}` },
    ]);
  }
}
