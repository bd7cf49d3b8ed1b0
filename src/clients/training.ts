/**
 * TrainingClient: one LoRA training run. Every operation takes the next `seq_id` synchronously at
 * call time and is submitted only after the previous one was accepted (PROTOCOL.md §6.2), so calls
 * made back to back pipeline into the same server cycle:
 *
 *   const fb = training.forwardBackward(batch, "cross_entropy");
 *   const step = training.optimStep({ learning_rate: 1e-4 });
 *   const [out, stats] = await Promise.all([fb, step]);
 */

import { TinkerError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import type { HttpRequest } from "../core/http.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureRequestType, pollFuture, type ResultDecoder } from "../futures/poller.js";
import { validateAdamParams, validateForwardBackwardInput } from "../lib/validate.js";
import { ForwardBackwardOutputSchema } from "../wire/json-schemas.js";
import { decodeForwardBackwardOutput, encodeForwardBackwardRequest } from "../wire/protobuf/index.js";
import {
  type GetInfoResponse,
  GetInfoResponseSchema,
  type OptimStepResponse,
  OptimStepResponseSchema,
  parseResponse,
  type SaveWeightsForSamplerResponse,
  SaveWeightsForSamplerResponseSchema,
  UntypedAPIFutureSchema,
} from "../wire/schemas.js";
import type { AdamParams, Datum, ForwardBackwardOutput, LossFnType } from "../wire/types.js";
import { type CallOptions, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import { SamplingClient } from "./sampling.js";

export const DEFAULT_ADAM_PARAMS: Required<AdamParams> = {
  learning_rate: 0.0001,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weight_decay: 0.0,
  grad_clip_norm: 0.0,
};

const forwardBackwardDecoder: ResultDecoder<ForwardBackwardOutput> = {
  schema: ForwardBackwardOutputSchema,
  protobuf: decodeForwardBackwardOutput,
};

export class TrainingClient {
  /** The training run id, e.g. `<session>:train:0`. */
  readonly modelId: string;
  readonly #connection: Connection;
  /** Next seq_id; 0 was the model's creation. */
  #nextSeqId = 1;
  /** Settles when the latest operation has been accepted (or failed to be). */
  #turn: Promise<void> = Promise.resolve();
  /** Set when a submission failed for good: later operations would run out of order. */
  #brokenBy: Error | undefined;

  /** @internal Use `ServiceClient.createLoraTrainingClient`. */
  constructor(connection: Connection, modelId: string) {
    this.#connection = connection;
    this.modelId = modelId;
  }

  /** Forward and backward pass; gradients accumulate on the server until `optimStep`. */
  forwardBackward(
    data: Datum[],
    lossFn: LossFnType,
    lossFnConfig?: Record<string, number>,
    options?: CallOptions,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#forwardBackward(data, lossFn, lossFnConfig, false, options);
  }

  /** Forward pass only: outputs (e.g. logprobs) and the loss, no gradient. */
  forward(
    data: Datum[],
    lossFn: LossFnType,
    lossFnConfig?: Record<string, number>,
    options?: CallOptions,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#forwardBackward(data, lossFn, lossFnConfig, true, options);
  }

  #forwardBackward(
    data: Datum[],
    lossFn: LossFnType,
    lossFnConfig: Record<string, number> | undefined,
    forwardOnly: boolean,
    options: CallOptions | undefined,
  ): APIFuture<ForwardBackwardOutput> {
    validateForwardBackwardInput(data, lossFn, lossFnConfig);
    return this.#enqueue(
      forwardOnly ? "Forward" : "ForwardBackward",
      forwardBackwardDecoder,
      options,
      (seqId) => ({
        method: "POST",
        path: "api/v1/forward_backward",
        binary: {
          contentType: "application/x-protobuf",
          bytes: encodeForwardBackwardRequest({
            model_id: this.modelId,
            seq_id: seqId,
            data,
            loss_fn: lossFn,
            loss_fn_config: lossFnConfig,
            forward_only: forwardOnly,
          }),
        },
      }),
    );
  }

  /** Applies the accumulated gradients with AdamW. Unset fields take the official defaults. */
  optimStep(adamParams: AdamParams = {}, options?: CallOptions): APIFuture<OptimStepResponse> {
    const adam_params = { ...DEFAULT_ADAM_PARAMS, ...adamParams };
    validateAdamParams(adam_params);
    return this.#enqueue("OptimStep", { schema: OptimStepResponseSchema }, options, (seqId) => ({
      method: "POST",
      path: "api/v1/optim_step",
      json: { adam_params, model_id: this.modelId, seq_id: seqId, type: "optim_step" },
    }));
  }

  /** Saves inference weights at `tinker://<run>/sampler_weights/<name>`. */
  saveWeightsForSampler(
    name: string,
    options: CallOptions & { ttlSeconds?: number } = {},
  ): APIFuture<{ path: string }> {
    const decoder: ResultDecoder<SaveWeightsForSamplerResponse> = {
      schema: SaveWeightsForSamplerResponseSchema,
    };
    const future = this.#enqueue("SaveWeightsForSampler", decoder, options, (seqId) => {
      const json: Record<string, unknown> = { model_id: this.modelId, path: name, seq_id: seqId };
      if (options.ttlSeconds !== undefined) json.ttl_seconds = options.ttlSeconds;
      json.type = "save_weights_for_sampler";
      return { method: "POST", path: "api/v1/save_weights_for_sampler", json, maxRetries: 0 };
    });
    return new APIFuture(async (hooks) => {
      future.requestId.then(hooks.setRequestId, () => {});
      const result = await future;
      if (!result.path) throw new TinkerError("save_weights_for_sampler returned no path");
      return { path: result.path };
    });
  }

  /**
   * Snapshots the current weights into an ephemeral sampler and returns a client for it (the fast
   * weight sync of RL loops). Nothing is persisted.
   */
  async saveWeightsAndGetSamplingClient(options: CallOptions = {}): Promise<SamplingClient> {
    const sessionId = await this.#connection.session();
    const decoder: ResultDecoder<SaveWeightsForSamplerResponse> = {
      schema: SaveWeightsForSamplerResponseSchema,
    };
    const result = await this.#enqueue("SaveWeightsForSampler", decoder, options, (seqId) => ({
      method: "POST",
      path: "api/v1/save_weights_for_sampler",
      // The official client reads the counter inside its retried send; we take it once per attempt.
      json: {
        model_id: this.modelId,
        sampling_session_seq_id: this.#connection.nextSamplingSessionSeqId(),
        seq_id: seqId,
        type: "save_weights_for_sampler",
      },
      maxRetries: 0,
    }));
    if (!result.sampling_session_id) {
      throw new TinkerError(
        `save_weights_for_sampler returned no sampling_session_id (session ${sessionId})`,
      );
    }
    return new SamplingClient(this.#connection, result.sampling_session_id);
  }

  /** Model metadata, including the tokenizer id. Not ordered with the other operations. */
  async getInfo(options: CallOptions = {}): Promise<GetInfoResponse> {
    return withGenericRetries(
      () =>
        this.#connection.requestJson(
          {
            method: "POST",
            path: "api/v1/get_info",
            json: { model_id: this.modelId, type: "get_info" },
            signal: options.signal,
            timeoutMs: options.timeout,
          },
          GetInfoResponseSchema,
          "get_info",
        ),
      { signal: options.signal },
    );
  }

  /**
   * Takes the next seq_id now, waits for the previous operation's acceptance, submits (with the
   * generic retry loop, which keeps the seq_id), then polls the future.
   */
  #enqueue<T>(
    requestType: FutureRequestType,
    decoder: ResultDecoder<T>,
    options: CallOptions | undefined,
    buildRequest: (seqId: number) => HttpRequest,
  ): APIFuture<T> {
    const seqId = this.#nextSeqId++;
    const previousTurn = this.#turn;
    let releaseTurn!: () => void;
    this.#turn = new Promise((resolve) => (releaseTurn = resolve));
    const startedAt = Date.now();
    const signal = withTimeout(options);

    return new APIFuture<T>(async ({ setRequestId, emit }) => {
      let requestId: string;
      try {
        await previousTurn;
        if (this.#brokenBy) {
          throw new TinkerError(
            `Not sent: an earlier operation on ${this.modelId} could not be submitted (${this.#brokenBy.message}), so seq_id ${seqId} would run out of order`,
            { cause: this.#brokenBy },
          );
        }
        const http = this.#connection.http;
        const response = await withGenericRetries(() => http.request({ ...buildRequest(seqId), signal }), {
          signal,
        });
        requestId = parseResponse(
          UntypedAPIFutureSchema,
          response.json(),
          `${requestType} submission`,
        ).request_id;
      } catch (error) {
        this.#brokenBy ??= error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        releaseTurn();
      }
      setRequestId(requestId);
      return pollFuture(this.#connection.http, {
        requestId,
        requestType,
        decoder,
        roundtripSeconds: (Date.now() - startedAt) / 1000,
        signal,
        onEvent: emit,
      });
    });
  }
}
