/**
 * The protocol state of the local backend: sessions, training runs (each with its seq_id queue),
 * samplers, sampler checkpoints and futures, and the operations behind each endpoint. The HTTP
 * routing lives in handler.ts; the model maths in engine/.
 */
import { uuid4 } from "../internal/uuid.js";
import { encodeForwardBackwardOutput, encodeSampleResponse } from "../wire/protobuf/index.js";
import type { Datum, ForwardBackwardOutput, ModelInput, SampleResponse } from "../wire/types.js";
import {
  type BaseModel,
  createBaseModel,
  createInferenceModel,
  DEFAULT_MODEL_CONFIG,
  EngineError,
  hashSeed,
  type InferenceModel,
  TOKENIZER_ID,
  TrainableModel,
} from "./engine/index.js";
import { type FutureOutcome, FutureStore } from "./future-store.js";
import { ModelQueue } from "./model-queue.js";
import { HttpError } from "./responses.js";

/** The model this backend ships. Any other name gets the same architecture with its own fixed weights. */
export const BUILTIN_BASE_MODEL = "tinker-ts/byte-lm-tiny";

export interface LocalBackendOptions {
  /**
   * Accept base-model names other than the built-in one (e.g. `Qwen/Qwen3-8B`), each mapped to a
   * tiny model with weights fixed by its name, so code written for the service runs unchanged.
   * Default true.
   */
  acceptAnyBaseModel?: boolean;
}

interface Session {
  id: string;
  lastHeartbeatAt: number;
}

interface TrainingRun {
  modelId: string;
  baseModel: string;
  rank: number;
  model: TrainableModel;
  queue: ModelQueue;
}

interface Sampler {
  id: string;
  baseModel: string;
  modelPath: string | null;
  model: InferenceModel;
}

interface SamplerCheckpoint {
  baseModel: string;
  model: InferenceModel;
}

export interface LoraRequest {
  rank: number;
  seed?: number;
  train_unembed?: boolean;
  train_mlp?: boolean;
  train_attn?: boolean;
}

export class LocalBackend {
  readonly futures = new FutureStore();
  readonly #options: Required<LocalBackendOptions>;
  readonly #sessions = new Map<string, Session>();
  readonly #runs = new Map<string, TrainingRun>();
  readonly #samplers = new Map<string, Sampler>();
  readonly #samplerCheckpoints = new Map<string, SamplerCheckpoint>();
  readonly #baseModels = new Map<string, BaseModel>();

  constructor(options: LocalBackendOptions = {}) {
    this.#options = { acceptAnyBaseModel: options.acceptAnyBaseModel ?? true };
  }

  capabilities(): { supported_models: { model_name: string; max_context_length: number }[] } {
    return {
      supported_models: [
        { model_name: BUILTIN_BASE_MODEL, max_context_length: DEFAULT_MODEL_CONFIG.maxSeqLen },
      ],
    };
  }

  createSession(): string {
    const id = `session-${uuid4()}`;
    this.#sessions.set(id, { id, lastHeartbeatAt: Date.now() });
    return id;
  }

  heartbeat(sessionId: string): void {
    this.#session(sessionId).lastHeartbeatAt = Date.now();
  }

  /** create_model: a future whose result is the model id `<session>:train:<model_seq_id>`. */
  createModel(sessionId: string, modelSeqId: number, baseModel: string, lora: LoraRequest): string {
    this.#session(sessionId);
    const requestId = this.futures.create();
    const modelId = `${sessionId}:train:${modelSeqId}`;
    this.#runLater(requestId, () => {
      if (this.#runs.has(modelId)) return { kind: "json", body: { model_id: modelId, type: "create_model" } };
      const base = this.#baseModel(baseModel);
      const model = new TrainableModel(base, {
        rank: lora.rank,
        seed: lora.seed ?? 0,
        trainAttn: lora.train_attn ?? true,
        trainMlp: lora.train_mlp ?? true,
        trainUnembed: lora.train_unembed ?? true,
      });
      this.#runs.set(modelId, { modelId, baseModel, rank: lora.rank, model, queue: new ModelQueue(1) });
      return { kind: "json", body: { model_id: modelId, type: "create_model" } };
    });
    return requestId;
  }

  getInfo(modelId: string): unknown {
    const run = this.#run(modelId);
    return {
      model_id: modelId,
      model_data: { arch: "byte-transformer", model_name: run.baseModel, tokenizer_id: TOKENIZER_ID },
      is_lora: true,
      lora_rank: run.rank,
      model_name: run.baseModel,
      type: "get_info",
    };
  }

  forwardBackward(
    modelId: string,
    seqId: number,
    data: Datum[],
    lossFn: string,
    lossFnConfig: Record<string, number> | undefined,
    forwardOnly: boolean,
  ): string {
    return this.#ordered(modelId, seqId, (run) => {
      const batch = data.map((datum, i) => ({
        tokens: modelInputTokens(datum.model_input, i),
        lossFnInputs: lossInputs(datum),
      }));
      const result = run.model.forwardBackward(batch, lossFn, lossFnConfig, forwardOnly);
      const output: ForwardBackwardOutput = {
        loss_fn_output_type: "ArrayRecord",
        loss_fn_outputs: result.logprobs.map((lp) => ({
          logprobs: { data: Array.from(lp), dtype: "float32", shape: [lp.length] },
        })),
        metrics: result.metrics,
      };
      return { kind: "dual", json: output, protobuf: () => encodeForwardBackwardOutput(output) };
    });
  }

  optimStep(modelId: string, seqId: number, adam: Record<string, number>): string {
    return this.#ordered(modelId, seqId, (run) => {
      const metrics = run.model.optimStep({
        learningRate: adam.learning_rate ?? 1e-4,
        beta1: adam.beta1 ?? 0.9,
        beta2: adam.beta2 ?? 0.95,
        eps: adam.eps ?? 1e-12,
        weightDecay: adam.weight_decay ?? 0,
        gradClipNorm: adam.grad_clip_norm ?? 0,
      });
      return { kind: "json", body: { metrics, type: "optim_step" } };
    });
  }

  /**
   * save_weights_for_sampler: with a name, a persistent sampler checkpoint; without one, an
   * ephemeral sampler registered under `<session>:sample:<sampling_session_seq_id>` right away
   * (the client will sample from it without calling create_sampling_session).
   */
  saveWeightsForSampler(
    modelId: string,
    seqId: number,
    name: string | undefined,
    samplingSessionSeqId: number | undefined,
  ): string {
    if (name === undefined && samplingSessionId(modelId, samplingSessionSeqId) === undefined) {
      throw new HttpError(400, "save_weights_for_sampler needs either path or sampling_session_seq_id");
    }
    return this.#ordered(modelId, seqId, (run) => {
      const snapshot = run.model.snapshot();
      if (name !== undefined) {
        const path = `tinker://${modelId}/sampler_weights/${name}`;
        this.#samplerCheckpoints.set(path, { baseModel: run.baseModel, model: snapshot });
        return { kind: "json", body: { path, type: "save_weights_for_sampler" } };
      }
      const id = samplingSessionId(modelId, samplingSessionSeqId)!;
      this.#samplers.set(id, { id, baseModel: run.baseModel, modelPath: null, model: snapshot });
      return { kind: "json", body: { sampling_session_id: id, type: "save_weights_for_sampler" } };
    });
  }

  createSamplingSession(sessionId: string, seqId: number, baseModel?: string, modelPath?: string): string {
    this.#session(sessionId);
    const id = `${sessionId}:sample:${seqId}`;
    if (modelPath !== undefined) {
      const checkpoint = this.#samplerCheckpoints.get(modelPath);
      if (!checkpoint) throw new HttpError(404, `sampler checkpoint not found: ${modelPath}`);
      this.#samplers.set(id, { id, baseModel: checkpoint.baseModel, modelPath, model: checkpoint.model });
    } else if (baseModel !== undefined) {
      this.#samplers.set(id, {
        id,
        baseModel,
        modelPath: null,
        model: createInferenceModel(this.#baseModel(baseModel)),
      });
    } else {
      throw new HttpError(400, "create_sampling_session needs base_model or model_path");
    }
    return id;
  }

  getSampler(id: string): unknown {
    const sampler = this.#samplers.get(id);
    if (!sampler) throw new HttpError(404, `sampler not found: ${id}`);
    return { sampler_id: id, base_model: sampler.baseModel, model_path: sampler.modelPath };
  }

  sample(request: {
    sampling_session_id?: string;
    base_model?: string;
    num_samples: number;
    prompt: ModelInput;
    sampling_params: Record<string, unknown>;
    prompt_logprobs: boolean;
    topk_prompt_logprobs: number;
  }): string {
    const model = this.#samplerModel(request);
    const requestId = this.futures.create();
    this.#runLater(requestId, () => {
      const prompt = modelInputTokens(request.prompt, 0);
      const params = request.sampling_params;
      const stop = params.stop;
      const sequences = model.sample(prompt, {
        numSamples: request.num_samples,
        maxTokens: numberOrUndefined(params.max_tokens),
        temperature: numberOrUndefined(params.temperature) ?? 1,
        topK: numberOrUndefined(params.top_k) ?? -1,
        topP: numberOrUndefined(params.top_p) ?? 1,
        seed: numberOrUndefined(params.seed),
        stopStrings:
          typeof stop === "string"
            ? [stop]
            : Array.isArray(stop) && typeof stop[0] === "string"
              ? (stop as string[])
              : undefined,
        stopTokens: Array.isArray(stop) && typeof stop[0] === "number" ? (stop as number[]) : undefined,
      });
      const response: SampleResponse = {
        sequences: sequences.map((s) => ({
          stop_reason: s.stopReason,
          tokens: s.tokens,
          logprobs: s.logprobs,
        })),
        prompt_cache_hit_tokens: 0,
      };
      const wantsTopK = request.topk_prompt_logprobs > 0;
      if (request.prompt_logprobs || wantsTopK) {
        const scored = model.promptLogprobs(prompt, request.topk_prompt_logprobs);
        if (request.prompt_logprobs) response.prompt_logprobs = scored.logprobs;
        if (wantsTopK) response.topk_prompt_logprobs = scored.topk;
      }
      return {
        kind: "dual",
        json: { ...response, type: "sample" },
        protobuf: () => encodeSampleResponse(response),
      };
    });
    return requestId;
  }

  /** Runs `job` for a model in seq_id order; a repeated seq_id returns the first request id. */
  #ordered(modelId: string, seqId: number, job: (run: TrainingRun) => FutureOutcome): string {
    const run = this.#run(modelId);
    const known = run.queue.requestIdFor(seqId);
    if (known !== undefined) return known;
    if (seqId < run.queue.nextSeqId) {
      throw new HttpError(
        400,
        `seq_id ${seqId} of ${modelId} is behind the next expected one (${run.queue.nextSeqId})`,
      );
    }
    const requestId = this.futures.create();
    run.queue.submit(seqId, requestId, () =>
      this.futures.settle(
        requestId,
        outcomeOf(() => job(run)),
      ),
    );
    return requestId;
  }

  /** Runs `job` after the submission has been answered. */
  #runLater(requestId: string, job: () => FutureOutcome): void {
    setTimeout(() => this.futures.settle(requestId, outcomeOf(job)), 0);
  }

  #session(id: string): Session {
    const session = this.#sessions.get(id);
    if (!session) throw new HttpError(404, `session not found: ${id}`);
    return session;
  }

  #run(modelId: string): TrainingRun {
    const run = this.#runs.get(modelId);
    if (!run) throw new HttpError(404, `model not found: ${modelId}`);
    return run;
  }

  #baseModel(name: string): BaseModel {
    let base = this.#baseModels.get(name);
    if (!base) {
      if (name !== BUILTIN_BASE_MODEL && !this.#options.acceptAnyBaseModel) {
        throw new EngineError(`unknown base model "${name}"; this backend serves ${BUILTIN_BASE_MODEL}`);
      }
      base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed(name));
      this.#baseModels.set(name, base);
    }
    return base;
  }

  #samplerModel(request: { sampling_session_id?: string; base_model?: string }): InferenceModel {
    if (request.sampling_session_id !== undefined) {
      const sampler = this.#samplers.get(request.sampling_session_id);
      if (!sampler) throw new HttpError(404, `sampler not found: ${request.sampling_session_id}`);
      return sampler.model;
    }
    if (request.base_model !== undefined) return createInferenceModel(this.#baseModel(request.base_model));
    throw new HttpError(400, "asample needs sampling_session_id or base_model");
  }
}

/** Engine errors are the caller's fault ("user"); anything else is ours ("server"). */
function outcomeOf(job: () => FutureOutcome): FutureOutcome {
  try {
    return job();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const category = error instanceof EngineError || error instanceof HttpError ? "user" : "server";
    return { kind: "failed", error: message, category };
  }
}

function samplingSessionId(modelId: string, seqId: number | undefined): string | undefined {
  if (seqId === undefined) return undefined;
  const sessionId = modelId.split(":train:")[0];
  return `${sessionId}:sample:${seqId}`;
}

function modelInputTokens(input: ModelInput, datumIndex: number): number[] {
  const tokens: number[] = [];
  for (const chunk of input.chunks) {
    if (chunk.type !== "encoded_text") {
      throw new EngineError(
        `datum ${datumIndex}: the local model reads text tokens only, not ${chunk.type} chunks`,
      );
    }
    tokens.push(...chunk.tokens);
  }
  return tokens;
}

function lossInputs(datum: Datum): Record<string, number[]> {
  const inputs: Record<string, number[]> = {};
  for (const [key, tensor] of Object.entries(datum.loss_fn_inputs)) inputs[key] = tensor.data;
  return inputs;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}
