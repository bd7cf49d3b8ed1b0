/**
 * ServiceClient: the entry point. Construction does no network work; the start-up handshake
 * (client config, dynamic config) happens on first use, the session on the first training or
 * sampling client.
 */

import { type ClientOptions, resolveConfig } from "../core/config.js";
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import type { Telemetry } from "../core/telemetry.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureRequestType, pollFuture, type ResultDecoder } from "../futures/poller.js";
import { describeValue } from "../internal/describe.js";
import { ForwardBackwardOutputSchema, SampleResponseSchema } from "../wire/json-schemas.js";
import { decodeForwardBackwardOutput, decodeSampleResponse } from "../wire/protobuf/index.js";
import {
  CreateModelResponseSchema,
  type GetServerCapabilitiesResponse,
  LoadWeightsResponseSchema,
  OptimStepResponseSchema,
  SaveWeightsForSamplerResponseSchema,
  SaveWeightsResponseSchema,
  UnloadModelResponseSchema,
  UntypedAPIFutureSchema,
  type WeightsInfoResponse,
  WeightsInfoResponseSchema,
} from "../wire/schemas.js";
import { type CallOptions, withTimeout } from "./call-options.js";
import { Connection } from "./connection.js";
import { RestClient } from "./rest.js";
import { createSamplingSession, type SamplingClient, type SamplingSessionOptions } from "./sampling.js";
import { TrainingClient } from "./training.js";

export interface LoraTrainingOptions extends CallOptions {
  /** LoRA rank. Default 32. */
  rank?: number;
  /** Seed of the LoRA initialisation. */
  seed?: number;
  trainMlp?: boolean;
  trainAttn?: boolean;
  trainUnembed?: boolean;
  userMetadata?: Record<string, string>;
}

export interface FromStateOptions extends CallOptions {
  /** Use this base model instead of the checkpoint's (it must be compatible). */
  baseModel?: string;
  userMetadata?: Record<string, string>;
  /** Credential for a checkpoint owned by another account. */
  weightsAccessToken?: string;
}

export type SamplingClientOptions = SamplingSessionOptions;

/** Result decoders per request type, for re-attaching to a saved request id. */
const DECODERS: Record<FutureRequestType, ResultDecoder<unknown>> = {
  CreateModel: { schema: CreateModelResponseSchema },
  ForwardBackward: { schema: ForwardBackwardOutputSchema, protobuf: decodeForwardBackwardOutput },
  Forward: { schema: ForwardBackwardOutputSchema, protobuf: decodeForwardBackwardOutput },
  OptimStep: { schema: OptimStepResponseSchema },
  SaveWeights: { schema: SaveWeightsResponseSchema },
  LoadWeights: { schema: LoadWeightsResponseSchema },
  SaveWeightsForSampler: { schema: SaveWeightsForSamplerResponseSchema },
  Sample: { schema: SampleResponseSchema, protobuf: decodeSampleResponse },
  UnloadModel: { schema: UnloadModelResponseSchema },
};

export class ServiceClient {
  readonly #connection: Connection;

  /** Futures by request id: re-attach to an operation whose id you saved. */
  readonly futures = {
    /**
     * Polls a request id until its result: `requestType` says how to read the result (as the
     * `X-Tinker-Request-Type` of the original operation).
     */
    retrieve: <T = unknown>(
      requestId: string,
      requestType: FutureRequestType,
      options: CallOptions = {},
    ): APIFuture<T> => {
      const signal = withTimeout(options);
      return new APIFuture<T>(async ({ setRequestId, emit }) => {
        setRequestId(requestId);
        await this.#connection.clientConfig();
        return pollFuture(this.#connection.http, {
          requestId,
          requestType,
          decoder: DECODERS[requestType] as ResultDecoder<T>,
          signal,
          onEvent: emit,
        });
      });
    },
  };

  constructor(options: ClientOptions = {}) {
    this.#connection = new Connection(resolveConfig(options));
  }

  /** The base models on offer and their context windows. Creates no session. */
  getServerCapabilities(options: CallOptions = {}): Promise<GetServerCapabilitiesResponse> {
    return this.#connection.fetchCapabilities(withTimeout(options));
  }

  /** Creates a new LoRA training run on `baseModel` and returns its client. */
  async createLoraTrainingClient(
    baseModel: string,
    options: LoraTrainingOptions = {},
  ): Promise<TrainingClient> {
    const lora_config = loraConfig(options);
    if (typeof baseModel !== "string" || baseModel === "") {
      throw new ValidationError([{ path: "base_model", message: "must be a non-empty string" }]);
    }
    return this.#createModel(baseModel, lora_config, options.userMetadata, options);
  }

  /**
   * A new training run with the weights of a training checkpoint (`tinker://…/weights/…`); the
   * optimizer starts fresh.
   */
  createTrainingClientFromState(path: string, options: FromStateOptions = {}): Promise<TrainingClient> {
    return this.#fromState(path, false, options);
  }

  /** A new training run with the weights and optimizer state of a checkpoint: an exact resume. */
  createTrainingClientFromStateWithOptimizer(
    path: string,
    options: FromStateOptions = {},
  ): Promise<TrainingClient> {
    return this.#fromState(path, true, options);
  }

  /** A sampler for a saved sampler checkpoint (`modelPath`) or a base model (`baseModel`). */
  createSamplingClient(options: SamplingClientOptions): Promise<SamplingClient> {
    return createSamplingSession(this.#connection, options);
  }

  /**
   * A client for runs, checkpoints, sessions and usage. It shares this client's connection and
   * creates no session.
   */
  createRestClient(): RestClient {
    return new RestClient(this.#connection);
  }

  /** The base model and LoRA settings of a checkpoint (`POST /weights_info`). */
  async getWeightsInfo(
    path: string,
    options: CallOptions & { weightsAccessToken?: string } = {},
  ): Promise<WeightsInfoResponse> {
    await this.#connection.clientConfig();
    const signal = withTimeout(options);
    return withGenericRetries(
      () =>
        this.#connection.requestJson(
          {
            method: "POST",
            path: "api/v1/weights_info",
            json: { tinker_path: path },
            credential: options.weightsAccessToken,
            signal,
          },
          WeightsInfoResponseSchema,
          "weights_info",
        ),
      { signal },
    );
  }

  /** Custom telemetry events and an explicit flush (PROTOCOL.md §11); a no-op when off. */
  get telemetry(): Telemetry {
    return this.#connection.telemetry;
  }

  /**
   * Stops the heartbeat and every other timer, and sends what telemetry is queued (one bounded
   * attempt); nothing of this client keeps running afterwards.
   */
  async close(): Promise<void> {
    await this.#connection.close();
  }

  async #createModel(
    baseModel: string,
    loraConfigBody: Record<string, unknown>,
    userMetadata: Record<string, string> | undefined,
    options: CallOptions,
  ): Promise<TrainingClient> {
    const signal = withTimeout(options);
    const sessionId = await this.#connection.session();
    const body: Record<string, unknown> = {
      session_id: sessionId,
      model_seq_id: this.#connection.nextModelSeqId(),
      base_model: baseModel,
    };
    if (userMetadata !== undefined) body.user_metadata = userMetadata;
    body.lora_config = loraConfigBody;
    body.type = "create_model";
    // Only transport retries for create_model, as in the official client.
    const created = await this.#submitAndPoll("api/v1/create_model", body, "CreateModel", signal);
    // Known context lengths let the clients reject overlong inputs before sending them.
    await this.#connection.prefetchCapabilities();
    return new TrainingClient(this.#connection, (created as { model_id: string }).model_id, { baseModel });
  }

  /**
   * Both server flows of PROTOCOL.md §7.4: weights_info → create_model → load_weights (seq_id 1),
   * or, when the server sets `create_model_via_load_weights`, one load_weights that creates the run.
   */
  async #fromState(path: string, optimizer: boolean, options: FromStateOptions): Promise<TrainingClient> {
    if (typeof path !== "string" || !/^tinker:\/\/[^/]+\/weights\/[^/]+$/.test(path)) {
      throw new ValidationError([
        {
          path: "path",
          message: `must be a training checkpoint tinker://<run>/weights/<name>, got ${JSON.stringify(path)}`,
        },
      ]);
    }
    const flags = await this.#connection.clientConfig();
    if (flags.create_model_via_load_weights) {
      const signal = withTimeout(options);
      const sessionId = await this.#connection.session();
      const modelSeqId = this.#connection.nextModelSeqId();
      const body: Record<string, unknown> = { session_id: sessionId, model_seq_id: modelSeqId };
      if (options.baseModel !== undefined) body.base_model = options.baseModel;
      if (options.userMetadata !== undefined) body.user_metadata = options.userMetadata;
      body.path = path;
      body.optimizer = optimizer;
      if (options.weightsAccessToken !== undefined) body.weights_access_token = options.weightsAccessToken;
      body.type = "load_weights";
      await this.#submitAndPoll("api/v1/load_weights", body, "LoadWeights", signal, true);
      // The id is derived, as the official client does: the load was the model's request 0.
      await this.#connection.prefetchCapabilities();
      return new TrainingClient(this.#connection, `${sessionId}:train:${modelSeqId}`, {
        baseModel: options.baseModel,
      });
    }
    const info = await this.getWeightsInfo(path, options);
    const lora: Record<string, unknown> = { rank: info.lora_rank ?? 32 };
    lora.train_unembed = info.train_unembed ?? true;
    lora.train_mlp = info.train_mlp ?? true;
    lora.train_attn = info.train_attn ?? true;
    const training = await this.#createModel(
      options.baseModel ?? info.base_model,
      lora,
      options.userMetadata,
      options,
    );
    const load = optimizer
      ? training.loadStateWithOptimizer(path, options)
      : training.loadState(path, options);
    await load;
    return training;
  }

  async #submitAndPoll(
    path: string,
    body: Record<string, unknown>,
    requestType: FutureRequestType,
    signal: AbortSignal | undefined,
    genericRetries = false,
  ): Promise<unknown> {
    const startedAt = Date.now();
    const submit = () =>
      this.#connection.requestJson(
        { method: "POST", path, json: body, signal },
        UntypedAPIFutureSchema,
        `${requestType} submission`,
      );
    const submitted = genericRetries ? await withGenericRetries(submit, { signal }) : await submit();
    return pollFuture(this.#connection.http, {
      requestId: submitted.request_id,
      requestType,
      decoder: DECODERS[requestType],
      roundtripSeconds: (Date.now() - startedAt) / 1000,
      signal,
    });
  }
}

// `await using service = new ServiceClient()` where the runtime knows explicit resource management.
const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
if (asyncDispose) {
  Object.defineProperty(ServiceClient.prototype, asyncDispose, {
    value(this: ServiceClient) {
      return this.close();
    },
  });
}

function loraConfig(options: LoraTrainingOptions): Record<string, unknown> {
  const rank = options.rank ?? 32;
  const issues: ValidationIssue[] = [];
  if (!Number.isInteger(rank) || rank < 1)
    issues.push({ path: "rank", message: `must be a positive integer, got ${describeValue(rank)}` });
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    issues.push({ path: "seed", message: `must be an integer, got ${describeValue(options.seed)}` });
  }
  const train_unembed = options.trainUnembed ?? true;
  const train_mlp = options.trainMlp ?? true;
  const train_attn = options.trainAttn ?? true;
  if (!train_unembed && !train_mlp && !train_attn) {
    issues.push({
      path: "trainMlp",
      message: "at least one of trainMlp, trainAttn, trainUnembed must be true",
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  const config: Record<string, unknown> = { rank };
  if (options.seed !== undefined) config.seed = options.seed;
  return { ...config, train_unembed, train_mlp, train_attn };
}
