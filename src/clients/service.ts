/**
 * ServiceClient: the entry point. Construction does no network work; the start-up handshake
 * (client config, dynamic config) happens on first use, the session on the first training or
 * sampling client. `close(status)` finishes the session on the server (PROTOCOL.md §S1).
 */

import * as v from "valibot";
import { type ClientOptions, resolveConfig } from "../core/config.js";
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import type { Telemetry } from "../core/telemetry.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureRequestType, pollFuture, type ResultDecoder } from "../futures/poller.js";
import { describeValue } from "../internal/describe.js";
import { untilAborted } from "../internal/sleep.js";
import { unrefTimer } from "../internal/timers.js";
import { sessionConsoleUrl } from "../lib/console-urls.js";
import { CALL_OPTION_SHAPE, optionShape } from "../lib/strict-options.js";
import {
  DEFAULT_OPTIMIZER_CONFIG,
  LORA_DEFAULTS,
  OPTIMIZER_TYPES,
  type OptimizerConfig,
  OptimizerConfigSchema,
} from "../wire/endpoints/fields.js";
import { futureEndpoint, parseBody, session as sessionEndpoints, training } from "../wire/endpoints/index.js";
import type { SessionFinishStatus } from "../wire/endpoints/session.js";
import type { GetServerCapabilitiesResponse, WeightsInfoResponse } from "../wire/schemas.js";
import { call, poll, send } from "./call.js";
import { type CallOptions, checkCall, withTimeout } from "./call-options.js";
import { Connection } from "./connection.js";
import { RestClient } from "./rest.js";
import {
  createSamplingSession,
  SAMPLING_SESSION_OPTIONS_SHAPE,
  type SamplingClient,
  type SamplingSessionOptions,
} from "./sampling.js";
import { connectionOf, registerConnection } from "./service-connection.js";
import { TrainingClient } from "./training.js";

export type { OptimizerConfig, SessionFinishStatus };

export interface LoraTrainingOptions extends CallOptions {
  /** LoRA rank. Default 32. */
  rank?: number;
  /** Seed of the LoRA initialisation. */
  seed?: number;
  /** Train adapters on the MLP blocks. Default true. */
  trainMlp?: boolean;
  /** Train adapters on the attention blocks. Default true. */
  trainAttn?: boolean;
  /** Train an adapter on the unembedding (output) layer. Default true. */
  trainUnembed?: boolean;
  /** The new run's `user_metadata`: string pairs kept with the run (`TrainingRun.user_metadata`). */
  userMetadata?: Record<string, string>;
  /**
   * The run's optimizer family, fixed for its lifetime (PROTOCOL.md §O1): `{ type: "adamw" }`
   * (default) or `{ type: "dimuon", version: 1 }`. `optimStep` then takes that family's params.
   */
  optimizer?: OptimizerConfig;
}

export interface FromStateOptions extends CallOptions {
  /** Use this base model instead of the checkpoint's (it must be compatible). */
  baseModel?: string;
  /** The new run's `user_metadata`: string pairs kept with the run (`TrainingRun.user_metadata`). */
  userMetadata?: Record<string, string>;
  /** Credential for a checkpoint owned by another account. */
  weightsAccessToken?: string;
  /**
   * The new run's optimizer, when loading weights only (default AdamW). Loading with the optimizer
   * state always keeps the checkpoint's family, so its moments match (§O4).
   */
  optimizer?: OptimizerConfig;
}

export interface CopyWeightsOptions extends CallOptions {
  /** Delete the copy after this many seconds (3600 s to ten years; default never). */
  ttlSeconds?: number;
  /** Credential for a checkpoint owned by another account. */
  weightsAccessToken?: string;
}

export type SamplingClientOptions = SamplingSessionOptions;

export interface WeightsInfoOptions extends CallOptions {
  /** Credential for a checkpoint owned by another account. */
  weightsAccessToken?: string;
}

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const LORA_TRAINING_OPTIONS_SHAPE = optionShape<LoraTrainingOptions>({
  ...CALL_OPTION_SHAPE,
  rank: "number",
  seed: "number",
  trainMlp: "boolean",
  trainAttn: "boolean",
  trainUnembed: "boolean",
  userMetadata: "object",
  optimizer: "object",
});
const FROM_STATE_OPTIONS_SHAPE = optionShape<FromStateOptions>({
  ...CALL_OPTION_SHAPE,
  baseModel: "string",
  userMetadata: "object",
  weightsAccessToken: "string",
  optimizer: "object",
});
const COPY_WEIGHTS_OPTIONS_SHAPE = optionShape<CopyWeightsOptions>({
  ...CALL_OPTION_SHAPE,
  ttlSeconds: "number",
  weightsAccessToken: "string",
});
const WEIGHTS_INFO_OPTIONS_SHAPE = optionShape<WeightsInfoOptions>({
  ...CALL_OPTION_SHAPE,
  weightsAccessToken: "string",
});

/** How long close() may take to finish the session (PROTOCOL.md §S1) before it stops anyway. */
const FINISH_TIMEOUT_MS = 30_000;

// `Symbol.asyncDispose` for consumers whose TypeScript lib predates explicit resource management
// (as @types/node declares it): the published type of `ServiceClient` names it. It merges with the
// lib's own declaration where there is one.
declare global {
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
  }
}

export class ServiceClient {
  /**
   * `await using service = new ServiceClient()`: leaving the scope closes the client, finishing the
   * session as "errored" when the client's last operation failed, else as "success". Present where
   * the runtime has `Symbol.asyncDispose` (Node 20+, Deno, Bun, current browsers).
   */
  declare [Symbol.asyncDispose]: () => Promise<void>;
  readonly #connection: Connection;
  #finished: Promise<void> | undefined;

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
      checkCall(this.#connection, "futures.retrieve", options);
      const signal = withTimeout(options);
      return new APIFuture<T>(async ({ setRequestId, emit }) => {
        setRequestId(requestId);
        await this.#connection.clientConfig(signal);
        return pollFuture(this.#connection.http, {
          requestId,
          requestType,
          decoder: futureEndpoint(requestType).result as ResultDecoder<T>,
          signal,
          onEvent: emit,
        });
      });
    },
  };

  constructor(options: ClientOptions = {}) {
    this.#connection = new Connection(resolveConfig(options));
    registerConnection(this, this.#connection);
  }

  /**
   * The base models on offer and their context windows. Creates no session.
   * @deprecated Upstream deprecated `get_server_capabilities` in 0.38 (PROTOCOL.md §S6); it still
   * works against every server, and the model list moves to the REST client when upstream says where.
   */
  async getServerCapabilities(options: CallOptions = {}): Promise<GetServerCapabilitiesResponse> {
    checkCall(this.#connection, "getServerCapabilities", options);
    return this.#connection.fetchCapabilities(withTimeout(options));
  }

  /** Creates a new LoRA training run on `baseModel` and returns its client. */
  async createLoraTrainingClient(
    baseModel: string,
    options: LoraTrainingOptions = {},
  ): Promise<TrainingClient> {
    checkCall(this.#connection, "createLoraTrainingClient", options, LORA_TRAINING_OPTIONS_SHAPE);
    const lora_config = loraConfig(options);
    const optimizer = optimizerConfig(options.optimizer);
    if (typeof baseModel !== "string" || baseModel === "") {
      throw new ValidationError([{ path: "base_model", message: "must be a non-empty string" }]);
    }
    return this.#createModel(baseModel, lora_config, optimizer, options.userMetadata, options);
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
  async createSamplingClient(options: SamplingClientOptions): Promise<SamplingClient> {
    checkCall(this.#connection, "createSamplingClient", options, SAMPLING_SESSION_OPTIONS_SHAPE);
    return createSamplingSession(this.#connection, options);
  }

  /**
   * A client for runs, checkpoints, sessions and usage. It shares this client's connection and
   * creates no session.
   */
  createRestClient(): RestClient {
    this.#connection.checkOpen("createRestClient");
    return new RestClient(this.#connection);
  }

  /** The base model, LoRA settings and optimizer family of a checkpoint (`POST /weights_info`). */
  async getWeightsInfo(path: string, options: WeightsInfoOptions = {}): Promise<WeightsInfoResponse> {
    checkCall(this.#connection, "getWeightsInfo", options, WEIGHTS_INFO_OPTIONS_SHAPE);
    return this.#weightsInfo(path, options.weightsAccessToken, withTimeout(options));
  }

  async #weightsInfo(
    path: string,
    credential: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<WeightsInfoResponse> {
    await this.#connection.clientConfig(signal);
    return call(this.#connection, training.weightsInfo, { body: { tinker_path: path }, credential, signal });
  }

  /**
   * Copies a checkpoint (either kind; it keeps its kind) into this client's project (PROTOCOL.md
   * §S3) and returns the copy's `tinker://` path. Storage is shared, no bytes are duplicated; the copy
   * belongs to a new run that cannot be trained in place.
   */
  async copyWeights(path: string, options: CopyWeightsOptions = {}): Promise<string> {
    checkCall(this.#connection, "copyWeights", options, COPY_WEIGHTS_OPTIONS_SHAPE);
    const body = (sessionId: string, modelSeqId: number) => ({
      session_id: sessionId,
      model_seq_id: modelSeqId,
      source_path: path,
      ttl_seconds: options.ttlSeconds,
      weights_access_token: options.weightsAccessToken,
    });
    // Checked before the session's model counter is taken, so bad input leaves no gap in it.
    const checked = parseBody(training.copyWeights, body("-", 0));
    if (!checked.ok) throw new ValidationError(checked.issues);
    const signal = withTimeout(options);
    const sessionId = await this.#connection.session(signal);
    const answer = await call(this.#connection, training.copyWeights, {
      body: body(sessionId, this.#connection.nextModelSeqId()),
      signal,
    });
    return answer.tinker_path;
  }

  /** This session's page in the Tinker console (the sessions list before a session exists). */
  getConsoleUrl(): string {
    return sessionConsoleUrl(this.#connection.sessionId);
  }

  /** Custom telemetry events and an explicit flush (PROTOCOL.md §11); a no-op when off. */
  get telemetry(): Telemetry {
    return this.#connection.telemetry;
  }

  /**
   * Finishes the session on the server with `status` (PROTOCOL.md §S1: it becomes terminal, later
   * operations on it are refused, the first reason given wins), then stops the heartbeat and every
   * other timer and sends what telemetry is queued: nothing of this client keeps running
   * afterwards. A client that never opened a session sends nothing. Calling it again returns the
   * first call's promise. `await using service = new ServiceClient()` closes with `"success"`, or
   * `"errored"` when the client's last operation failed.
   */
  close(status: SessionFinishStatus = "success", detail?: string): Promise<void> {
    this.#connection.beginClose();
    this.#finished ??= this.#finish(status, detail);
    return this.#finished;
  }

  async #finish(status: SessionFinishStatus, detail: string | undefined): Promise<void> {
    // One bound for the whole finish. A timer of our own, cleared at the end: a pending
    // AbortSignal.timeout would keep some runtimes (edge VMs) alive for its full length.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), FINISH_TIMEOUT_MS);
    unrefTimer(timer);
    try {
      // A session still being created is waited for (so it is finished too), within the same
      // bound: close() never waits longer than that for a stalled start-up.
      const sessionId = await untilAborted(this.#connection.existingSession(), deadline.signal).catch(
        () => undefined,
      );
      if (sessionId !== undefined) {
        await call(this.#connection, sessionEndpoints.finishSession, {
          params: { session_id: sessionId },
          body: { reason: { type: status }, detail: detail ?? null },
          signal: deadline.signal,
        }).catch((error: unknown) => {
          // Servers before 0.29 have no finish route; the session then ends by heartbeat expiry.
          this.#connection.config.logger.warn(
            `could not finish session ${sessionId}: ${error instanceof Error ? error.message : String(error)}`,
          );
        });
      }
    } finally {
      clearTimeout(timer);
      await this.#connection.close();
    }
  }

  async #createModel(
    baseModel: string,
    loraConfigBody: Record<string, unknown>,
    optimizer: OptimizerConfig,
    userMetadata: Record<string, string> | undefined,
    options: CallOptions,
  ): Promise<TrainingClient> {
    const signal = withTimeout(options);
    const sessionId = await this.#connection.session(signal);
    const body = {
      session_id: sessionId,
      model_seq_id: this.#connection.nextModelSeqId(),
      base_model: baseModel,
      user_metadata: userMetadata,
      lora_config: loraConfigBody,
      optimizer_config: optimizer,
    };
    const startedAt = Date.now();
    const submitted = await send(this.#connection, training.createModel, { body, signal });
    const created = await poll(this.#connection, training.createModel, submitted.request_id, {
      signal,
      roundtripSeconds: (Date.now() - startedAt) / 1000,
    });
    // Known context lengths let the clients reject overlong inputs before sending them.
    await this.#connection.prefetchCapabilities();
    return new TrainingClient(this.#connection, created.model_id, { baseModel, optimizer });
  }

  /**
   * Both server flows of PROTOCOL.md §7.4: weights_info → create_model → load_weights (seq_id 1),
   * or, when the server sets `create_model_via_load_weights`, one load_weights that creates the run.
   */
  async #fromState(path: string, withOptimizer: boolean, options: FromStateOptions): Promise<TrainingClient> {
    const where = withOptimizer
      ? "createTrainingClientFromStateWithOptimizer"
      : "createTrainingClientFromState";
    checkCall(this.#connection, where, options, FROM_STATE_OPTIONS_SHAPE);
    if (typeof path !== "string" || !/^tinker:\/\/[^/]+\/weights\/[^/]+$/.test(path)) {
      throw new ValidationError([
        {
          path: "path",
          message: `must be a training checkpoint tinker://<run>/weights/<name>, got ${JSON.stringify(path)}`,
        },
      ]);
    }
    const requested = options.optimizer === undefined ? undefined : optimizerConfig(options.optimizer);
    const signal = withTimeout(options);
    const flags = await this.#connection.clientConfig(signal);
    if (flags.create_model_via_load_weights) {
      const sessionId = await this.#connection.session(signal);
      const modelSeqId = this.#connection.nextModelSeqId();
      const body = {
        session_id: sessionId,
        model_seq_id: modelSeqId,
        base_model: options.baseModel,
        user_metadata: options.userMetadata,
        path,
        optimizer: withOptimizer,
        // With the optimizer state the checkpoint's family is kept (null); else the caller's.
        optimizer_config: withOptimizer ? null : (requested ?? DEFAULT_OPTIMIZER_CONFIG),
        weights_access_token: options.weightsAccessToken,
      };
      const submitted = await send(this.#connection, training.loadWeights, { body, signal });
      await poll(this.#connection, training.loadWeights, submitted.request_id, { signal });
      // The id is derived, as the official client does: the load was the model's request 0.
      await this.#connection.prefetchCapabilities();
      return new TrainingClient(this.#connection, `${sessionId}:train:${modelSeqId}`, {
        baseModel: options.baseModel,
        optimizer: withOptimizer ? undefined : (requested ?? DEFAULT_OPTIMIZER_CONFIG),
      });
    }
    const info = await this.#weightsInfo(path, options.weightsAccessToken, signal);
    const lora = {
      rank: info.lora_rank ?? LORA_DEFAULTS.rank,
      train_unembed: info.train_unembed ?? LORA_DEFAULTS.train_unembed,
      train_mlp: info.train_mlp ?? LORA_DEFAULTS.train_mlp,
      train_attn: info.train_attn ?? LORA_DEFAULTS.train_attn,
    };
    const saved = optimizerConfig((info.optimizer_config ?? DEFAULT_OPTIMIZER_CONFIG) as OptimizerConfig);
    const optimizer = withOptimizer ? saved : (requested ?? DEFAULT_OPTIMIZER_CONFIG);
    const client = await this.#createModel(
      options.baseModel ?? info.base_model,
      lora,
      optimizer,
      options.userMetadata,
      { signal },
    );
    const loadOptions = { signal, weightsAccessToken: options.weightsAccessToken };
    const load = withOptimizer
      ? client.loadStateWithOptimizer(path, loadOptions)
      : client.loadState(path, loadOptions);
    await load;
    return client;
  }
}

// `await using service = new ServiceClient()` (declared in the class): installed only where the
// runtime knows the symbol.
const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
if (asyncDispose) {
  Object.defineProperty(ServiceClient.prototype, asyncDispose, {
    value(this: ServiceClient) {
      const failure = connectionOf(this)?.lastFailure;
      return failure ? this.close("errored", failure.message) : this.close("success");
    },
  });
}

function optimizerConfig(value: OptimizerConfig | undefined): OptimizerConfig {
  if (value === undefined) return DEFAULT_OPTIMIZER_CONFIG;
  const type = (value as { type?: unknown })?.type;
  if (!OPTIMIZER_TYPES.includes(type as (typeof OPTIMIZER_TYPES)[number])) {
    throw new ValidationError([
      {
        path: "optimizer.type",
        message: `must be one of ${OPTIMIZER_TYPES.join(", ")}, got ${describeValue(type)}`,
      },
    ]);
  }
  // The rest (Dimuon's version) by the declaration's schema, before any counter is taken.
  const parsed = v.safeParse(OptimizerConfigSchema, value);
  if (!parsed.success) {
    throw new ValidationError(
      parsed.issues.map((issue) => ({
        path: ["optimizer", v.getDotPath(issue)].filter(Boolean).join("."),
        message: issue.message,
      })),
    );
  }
  return parsed.output;
}

function loraConfig(options: LoraTrainingOptions): Record<string, unknown> {
  const rank = options.rank ?? LORA_DEFAULTS.rank;
  const issues: ValidationIssue[] = [];
  if (!Number.isInteger(rank) || rank < 1)
    issues.push({ path: "rank", message: `must be a positive integer, got ${describeValue(rank)}` });
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    issues.push({ path: "seed", message: `must be an integer, got ${describeValue(options.seed)}` });
  }
  const train_unembed = options.trainUnembed ?? LORA_DEFAULTS.train_unembed;
  const train_mlp = options.trainMlp ?? LORA_DEFAULTS.train_mlp;
  const train_attn = options.trainAttn ?? LORA_DEFAULTS.train_attn;
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
