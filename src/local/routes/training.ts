/** Training runs and their sequenced operations (PROTOCOL.md §2.3–§2.5, §3, §6.2). */

import type { BodyInput, Endpoint } from "../../wire/endpoints/define.js";
import { parseBody } from "../../wire/endpoints/define.js";
import { training } from "../../wire/endpoints/index.js";
import { decodeForwardBackwardRequest } from "../../wire/protobuf/index.js";
import type { Datum, LossFnConfig } from "../../wire/types.js";
import type { LocalBackend } from "../backend.js";
import { DEFAULT_DIMUON_SETTINGS, type OptimizerSettings } from "../engine/index.js";
import { checkAtMost, checkTensorShape, LOCAL_LIMITS } from "../limits.js";
import { HttpError } from "../responses.js";
import { normalizeModelInput, textTokenCount } from "./model-input.js";
import { futureAccepted, type Route, readJson, route } from "./router.js";

export function trainingRoutes(backend: LocalBackend): Route[] {
  /** forward_backward and forward: one body format; `/forward` always runs forward only. */
  const forwardRoute = (e: Endpoint, legacyJsonKey: string, forwardOnly: boolean) =>
    route(e, async ({ request }) => {
      const input = await readForwardBackward(e, request, legacyJsonKey);
      checkDataBounds(input.data);
      const requestId = backend.forwardBackward(
        input.modelId,
        input.seqId,
        input.data,
        input.lossFn,
        numericLossConfig(input.lossFnConfig),
        forwardOnly || input.forwardOnly,
      );
      return futureAccepted(requestId, input.modelId);
    });

  return [
    route(training.createModel, ({ body }) => {
      const lora = body.lora_config;
      checkAtMost("lora_config.rank", lora.rank, LOCAL_LIMITS.maxLoraRank);
      const requestId = backend.createModel(
        body.session_id,
        body.model_seq_id,
        body.base_model,
        {
          rank: lora.rank,
          seed: lora.seed ?? undefined,
          train_attn: lora.train_attn,
          train_mlp: lora.train_mlp,
          train_unembed: lora.train_unembed,
        },
        body.user_metadata ?? undefined,
        // null: the default family, as when it is absent (clients before 0.29.1).
        body.optimizer_config?.type ?? "adamw",
      );
      return futureAccepted(requestId, null);
    }),
    route(training.getInfo, ({ body }) => backend.getInfo(body.model_id)),
    forwardRoute(training.forwardBackward, "forward_backward_input", false),
    forwardRoute(training.forward, "forward_input", true),
    route(training.optimStep, ({ body }) =>
      futureAccepted(backend.optimStep(body.model_id, body.seq_id, optimizerSettings(body)), body.model_id),
    ),
    route(training.saveWeightsForSampler, ({ body }) =>
      futureAccepted(
        backend.saveWeightsForSampler(
          body.model_id,
          body.seq_id,
          body.path ?? undefined,
          body.sampling_session_seq_id ?? undefined,
          body.ttl_seconds ?? undefined,
          body.user_metadata ?? undefined,
        ),
        body.model_id,
      ),
    ),
    route(training.saveWeightsExternal, ({ body }) =>
      futureAccepted(
        backend.saveWeightsExternal(body.model_id, body.seq_id, body.path, body.ttl_seconds ?? undefined),
        body.model_id,
      ),
    ),
    route(training.saveWeights, ({ body }) =>
      futureAccepted(
        backend.saveWeights(
          body.model_id,
          body.seq_id,
          body.path,
          body.ttl_seconds ?? undefined,
          body.overwrite,
          body.user_metadata ?? undefined,
        ),
        body.model_id,
      ),
    ),
    route(training.loadWeights, ({ body }) => {
      if (body.model_id !== undefined) {
        if (body.seq_id === undefined)
          throw new HttpError(400, "invalid load_weights request: seq_id is required");
        const requestId = backend.loadWeights(body.model_id, body.seq_id, body.path, body.optimizer);
        return futureAccepted(requestId, body.model_id);
      }
      // Create-via-load: the load is the new model's request 0.
      if (body.session_id === undefined || body.model_seq_id === undefined) {
        throw new HttpError(400, "invalid load_weights request: model_id, or session_id and model_seq_id");
      }
      const requestId = backend.createModelFromCheckpoint(
        body.session_id,
        body.model_seq_id,
        body.path,
        body.optimizer,
        body.base_model ?? undefined,
        body.user_metadata ?? undefined,
        body.optimizer_config,
      );
      return { request_id: requestId };
    }),
    route(training.weightsInfo, ({ body }) => backend.weightsInfo(body.tinker_path)),
    // weights_access_token is accepted and ignored: one local user owns everything (§S3).
    route(training.copyWeights, ({ body }) =>
      backend.copyWeights(
        body.session_id,
        body.model_seq_id,
        body.source_path,
        body.ttl_seconds ?? undefined,
      ),
    ),
    route(training.unloadModel, ({ body }) =>
      futureAccepted(backend.unloadModel(body.model_id), body.model_id),
    ),
  ];
}

/** Each datum's input fits the model's context and each tensor's shape is within the limits. */
function checkDataBounds(data: readonly Datum[]): void {
  data.forEach((datum, i) => {
    checkAtMost(
      `data[${i}].model_input`,
      textTokenCount(datum.model_input),
      LOCAL_LIMITS.maxPromptTokens,
      " tokens",
    );
    const inputs = datum.loss_fn_inputs;
    if (typeof inputs !== "object" || inputs === null || Array.isArray(inputs)) {
      throw new HttpError(400, `data[${i}].loss_fn_inputs must be an object`);
    }
    for (const [key, tensor] of Object.entries(inputs)) {
      if (
        typeof tensor !== "object" ||
        tensor === null ||
        !Array.isArray((tensor as { data?: unknown }).data)
      ) {
        throw new HttpError(400, `data[${i}].loss_fn_inputs.${key} must be a tensor with a data array`);
      }
      checkTensorShape(tensor.shape, `data[${i}].loss_fn_inputs.${key}`);
    }
  });
}

type OptimStepBody = BodyInput<typeof training.optimStep>;

/**
 * The engine settings of an optim_step body (§O2): `adam_params` step AdamW, `optimizer_params`
 * (or `optim_params`) the family their `type` names. The declaration has applied the wire
 * defaults; Dimuon settings the wire leaves unset take the engine's (§O3).
 */
function optimizerSettings(body: OptimStepBody): OptimizerSettings {
  const adam = body.adam_params;
  if (adam) {
    return {
      type: "adamw",
      learningRate: adam.learning_rate,
      beta1: adam.beta1,
      beta2: adam.beta2,
      eps: adam.eps,
      weightDecay: adam.weight_decay,
      gradClipNorm: adam.grad_clip_norm,
    };
  }
  const dimuon = (body.optimizer_params ?? body.optim_params)!;
  return {
    ...DEFAULT_DIMUON_SETTINGS,
    type: "dimuon",
    learningRate: dimuon.learning_rate,
    gradClipNorm: dimuon.grad_clip_norm,
    beta1: dimuon.beta1,
    ...(dimuon.damping !== undefined ? { damping: dimuon.damping } : {}),
    ...(dimuon.rank_lr_correction_exponent !== undefined
      ? { rankLrCorrectionExponent: dimuon.rank_lr_correction_exponent }
      : {}),
  };
}

/**
 * The local engine's losses read numeric settings only (clip thresholds, DRO's beta). A string value
 * (§T1) names an option it does not have: refused, rather than silently ignored.
 */
function numericLossConfig(config: LossFnConfig | undefined): Record<string, number> | undefined {
  if (config === undefined) return undefined;
  const numeric: Record<string, number> = {};
  for (const [key, value] of Object.entries(config)) {
    if (typeof value !== "number") {
      throw new HttpError(
        400,
        `loss_fn_config.${key}: the local backend's losses take numeric settings only, got the string ${JSON.stringify(value)}`,
      );
    }
    numeric[key] = value;
  }
  return numeric;
}

interface ForwardBackwardInput {
  modelId: string;
  seqId: number;
  data: Datum[];
  lossFn: string;
  lossFnConfig: LossFnConfig | undefined;
  forwardOnly: boolean;
}

/** Protobuf (0.22.3+ clients) or the legacy JSON form (older clients). */
async function readForwardBackward(
  e: Endpoint,
  request: Request,
  jsonKey: string,
): Promise<ForwardBackwardInput> {
  const contentType = request.headers.get("content-type") ?? "";
  if (contentType.includes("application/x-protobuf")) {
    if (request.headers.get("content-encoding")) {
      throw new HttpError(415, "compressed forward_backward bodies are not supported by the local backend");
    }
    let decoded: ReturnType<typeof decodeForwardBackwardRequest>;
    try {
      decoded = decodeForwardBackwardRequest(new Uint8Array(await request.arrayBuffer()));
    } catch (error) {
      throw new HttpError(400, `invalid ForwardBackwardRequest protobuf: ${(error as Error).message}`);
    }
    return {
      modelId: decoded.model_id,
      seqId: decoded.seq_id,
      data: decoded.data,
      lossFn: decoded.loss_fn,
      lossFnConfig: decoded.loss_fn_config,
      forwardOnly: decoded.forward_only ?? false,
    };
  }
  const parsed = parseBody(e, await readJson(request));
  if (!parsed.ok) {
    const text = parsed.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
    throw new HttpError(400, `invalid ${e.name} request: ${text}`);
  }
  const body = parsed.value as Record<string, unknown> & { model_id: string; seq_id: number };
  const input = body[jsonKey] as {
    data: unknown[];
    loss_fn: string;
    loss_fn_config?: Record<string, number> | null;
  };
  return {
    modelId: body.model_id,
    seqId: body.seq_id,
    data: input.data.map((item, i) => {
      const datum = (item ?? {}) as Record<string, unknown>;
      return {
        model_input: normalizeModelInput(datum.model_input, `data[${i}].model_input`),
        loss_fn_inputs: (datum.loss_fn_inputs ?? {}) as Datum["loss_fn_inputs"],
      };
    }),
    lossFn: input.loss_fn,
    lossFnConfig: input.loss_fn_config ?? undefined,
    forwardOnly: false,
  };
}
