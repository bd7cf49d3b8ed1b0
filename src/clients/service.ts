/**
 * ServiceClient: the entry point. Construction does no network work; the start-up handshake
 * (client config, dynamic config) happens on first use, the session on the first training or
 * sampling client. `close(status)` finishes the session on the server (PROTOCOL.md §S1).
 */

import { type ClientOptions, resolveConfig } from "../core/config.js";
import type { Telemetry } from "../core/telemetry.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureRequestType, pollFuture, type ResultDecoder } from "../futures/poller.js";
import { untilAborted } from "../internal/sleep.js";
import { unrefTimer } from "../internal/timers.js";
import { sessionConsoleUrl } from "../lib/console-urls.js";
import type { OptimizerConfig } from "../wire/endpoints/fields.js";
import type { SessionFinishStatus } from "../wire/endpoints/session.js";
import * as sessionEndpoints from "../wire/endpoints/session.js";
import type { GetServerCapabilitiesResponse, WeightsInfoResponse } from "../wire/schemas.js";
import { call } from "./call.js";
import { type CallOptions, checkCall, withTimeout } from "./call-options.js";
import { Connection } from "./connection.js";
import { loadOnFirstUse } from "./load-on-first-use.js";
import { RestClient } from "./rest.js";
import {
  createSamplingSession,
  SAMPLING_SESSION_OPTIONS_SHAPE,
  type SamplingClient,
  type SamplingSessionOptions,
} from "./sampling.js";
import { connectionOf, registerConnection } from "./service-connection.js";
import type { TrainingClient } from "./training.js";

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

/**
 * The training side (./service-training.ts: creating training runs, weights info, copies, with the
 * training client) loads with the first call that needs it, so an app that only samples never
 * downloads it. Every such call is async and awaits this (once loaded, an already settled promise).
 */
const loadTraining = /* @__PURE__ */ loadOnFirstUse("training client", () => import("./service-training.js"));

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
        const { futureEndpoint } = await loadTraining();
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

  /**
   * The training side (src/clients/service-training.ts), loaded on first use. The client must be
   * open when `method` is called: that is checked at once, not after the load.
   */
  #trainingSide(method: string): Promise<typeof import("./service-training.js")> {
    this.#connection.checkOpen(method);
    return loadTraining();
  }

  /** Creates a new LoRA training run on `baseModel` and returns its client. */
  async createLoraTrainingClient(
    baseModel: string,
    options: LoraTrainingOptions = {},
  ): Promise<TrainingClient> {
    return (await this.#trainingSide("createLoraTrainingClient")).createLoraTrainingClient(
      this.#connection,
      baseModel,
      options,
    );
  }

  /**
   * A new training run with the weights of a training checkpoint (`tinker://…/weights/…`); the
   * optimizer starts fresh.
   */
  async createTrainingClientFromState(path: string, options: FromStateOptions = {}): Promise<TrainingClient> {
    return (await this.#trainingSide("createTrainingClientFromState")).createTrainingClientFromState(
      this.#connection,
      path,
      false,
      options,
    );
  }

  /** A new training run with the weights and optimizer state of a checkpoint: an exact resume. */
  async createTrainingClientFromStateWithOptimizer(
    path: string,
    options: FromStateOptions = {},
  ): Promise<TrainingClient> {
    return (
      await this.#trainingSide("createTrainingClientFromStateWithOptimizer")
    ).createTrainingClientFromState(this.#connection, path, true, options);
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
    return (await this.#trainingSide("getWeightsInfo")).getWeightsInfo(this.#connection, path, options);
  }

  /**
   * Copies a checkpoint (either kind; it keeps its kind) into this client's project (PROTOCOL.md
   * §S3) and returns the copy's `tinker://` path. Storage is shared, no bytes are duplicated; the copy
   * belongs to a new run that cannot be trained in place.
   */
  async copyWeights(path: string, options: CopyWeightsOptions = {}): Promise<string> {
    return (await this.#trainingSide("copyWeights")).copyWeights(this.#connection, path, options);
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
