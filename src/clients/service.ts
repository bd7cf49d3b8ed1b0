/**
 * ServiceClient: the entry point. Construction does no network work; the start-up handshake
 * (client config, dynamic config) happens on first use, the session on the first training or
 * sampling client.
 */
import { type ClientOptions, resolveConfig } from "../core/config.js";
import { ValidationError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import { APIFuture } from "../futures/api-future.js";
import { pollFuture } from "../futures/poller.js";
import {
  type CreateModelResponse,
  CreateModelResponseSchema,
  CreateSamplingSessionResponseSchema,
  type GetServerCapabilitiesResponse,
  GetServerCapabilitiesResponseSchema,
  UntypedAPIFutureSchema,
} from "../wire/schemas.js";
import { type CallOptions, withTimeout } from "./call-options.js";
import { Connection } from "./connection.js";
import { SamplingClient } from "./sampling.js";
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

export interface SamplingClientOptions extends CallOptions {
  /** A `tinker://…/sampler_weights/…` path. */
  modelPath?: string;
  /** Sample from a base model. */
  baseModel?: string;
}

export class ServiceClient {
  readonly #connection: Connection;

  constructor(options: ClientOptions = {}) {
    this.#connection = new Connection(resolveConfig(options));
  }

  /** The base models on offer and their context windows. Creates no session. */
  async getServerCapabilities(options: CallOptions = {}): Promise<GetServerCapabilitiesResponse> {
    await this.#connection.clientConfig();
    const signal = withTimeout(options);
    return withGenericRetries(
      () =>
        this.#connection.requestJson(
          { method: "GET", path: "api/v1/get_server_capabilities", signal },
          GetServerCapabilitiesResponseSchema,
          "get_server_capabilities",
        ),
      { signal },
    );
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
    const signal = withTimeout(options);
    const sessionId = await this.#connection.session();
    const body: Record<string, unknown> = {
      session_id: sessionId,
      model_seq_id: this.#connection.nextModelSeqId(),
      base_model: baseModel,
    };
    if (options.userMetadata !== undefined) body.user_metadata = options.userMetadata;
    body.lora_config = lora_config;
    body.type = "create_model";

    const startedAt = Date.now();
    // Only transport retries for create_model, as in the official client.
    const submitted = await this.#connection.requestJson(
      { method: "POST", path: "api/v1/create_model", json: body, signal },
      UntypedAPIFutureSchema,
      "create_model submission",
    );
    const created = await new APIFuture<CreateModelResponse>(({ setRequestId, emit }) => {
      setRequestId(submitted.request_id);
      return pollFuture(this.#connection.http, {
        requestId: submitted.request_id,
        requestType: "CreateModel",
        decoder: { schema: CreateModelResponseSchema },
        roundtripSeconds: (Date.now() - startedAt) / 1000,
        signal,
        onEvent: emit,
      });
    });
    return new TrainingClient(this.#connection, created.model_id);
  }

  /** A sampler for a saved sampler checkpoint (`modelPath`) or a base model (`baseModel`). */
  async createSamplingClient(options: SamplingClientOptions): Promise<SamplingClient> {
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
    const sessionId = await this.#connection.session();
    const body: Record<string, unknown> = {
      session_id: sessionId,
      sampling_session_seq_id: this.#connection.nextSamplingSessionSeqId(),
    };
    if (baseModel !== undefined) body.base_model = baseModel;
    if (modelPath !== undefined) body.model_path = modelPath;
    body.type = "create_sampling_session";
    const response = await this.#connection.requestJson(
      { method: "POST", path: "api/v1/create_sampling_session", json: body, signal },
      CreateSamplingSessionResponseSchema,
      "create_sampling_session",
    );
    return new SamplingClient(this.#connection, response.sampling_session_id);
  }

  /** Stops the session heartbeat; nothing of this client keeps running afterwards. */
  async close(): Promise<void> {
    this.#connection.close();
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
  const issues = [];
  if (!Number.isInteger(rank) || rank < 1)
    issues.push({ path: "rank", message: `must be a positive integer, got ${rank}` });
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    issues.push({ path: "seed", message: `must be an integer, got ${options.seed}` });
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
