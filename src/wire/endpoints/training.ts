/**
 * Training runs: creation, the sequenced operations of a run, and checkpoints written by it
 * (PROTOCOL.md §2.3–§2.5, §3, §6.2, §O1–§O4, §T1, §W1, §W2, §S3).
 *
 * Sequenced operations carry the run's next `seq_id`; the server runs them in that order, so every
 * one of them is sent through the generic loop, which keeps the seq_id across its retries.
 */
import * as v from "valibot";
import { ForwardBackwardOutputSchema } from "../json-schemas.js";
// The codec's module, not its index (see sampling.ts): the REST client, which declares weights_info
// through this module, does not need the forward_backward request encoder.
import { decodeForwardBackwardOutput } from "../protobuf/forward-backward-output.js";
import {
  CopyWeightsResponseSchema,
  CreateModelResponseSchema,
  GetInfoResponseSchema,
  LoadWeightsResponseSchema,
  OptimStepResponseSchema,
  SaveWeightsExternalResponseSchema,
  SaveWeightsForSamplerResponseSchema,
  SaveWeightsResponseSchema,
  UnloadModelResponseSchema,
  WeightsInfoResponseSchema,
} from "../schemas.js";
import { endpoint } from "./define.js";
import {
  AdamParamsSchema,
  DEFAULT_OPTIMIZER_CONFIG,
  DimuonParamsSchema,
  integer,
  LoraConfigSchema,
  nonEmptyString,
  OptimizerConfigSchema,
  TinkerPathSchema,
  TtlSecondsSchema,
  UserMetadataSchema,
} from "./fields.js";

const modelId = nonEmptyString;
const seqId = integer;
const ttlSeconds = v.optional(v.nullable(TtlSecondsSchema));
const userMetadata = v.optional(v.nullable(UserMetadataSchema));

/** A checkpoint name: not empty, no `/` (it becomes one path segment). */
const checkpointName = v.pipe(
  v.string(),
  v.minLength(1, "must be a non-empty checkpoint name"),
  v.check((name) => !name.includes("/"), 'must not contain "/"'),
);

/**
 * `POST create_model` (future, `CreateModel`). The optimizer family is fixed here (§O1); the SDK
 * always sends one. Transport retries only: a retried creation would be a second run.
 */
export const createModel = endpoint({
  name: "create_model",
  method: "POST",
  path: "create_model",
  body: v.looseObject({
    session_id: nonEmptyString,
    model_seq_id: integer,
    base_model: nonEmptyString,
    user_metadata: userMetadata,
    lora_config: v.optional(LoraConfigSchema, {}),
    optimizer_config: v.optional(v.nullable(OptimizerConfigSchema), DEFAULT_OPTIMIZER_CONFIG),
    type: v.optional(v.literal("create_model"), "create_model"),
  }),
  result: { schema: CreateModelResponseSchema },
  future: "CreateModel",
  retry: "transport",
});

/** `loss_fn_config` values: numbers, and strings since 0.26.2 (§T1). */
export const LossFnConfigSchema = v.record(v.string(), v.union([v.number(), v.string()]));

/** The legacy JSON form of a forward/forward_backward body (clients before 0.22.3). */
function legacyForwardBody(inputKey: string) {
  return v.looseObject({
    model_id: modelId,
    seq_id: seqId,
    [inputKey]: v.optional(
      v.looseObject({
        data: v.optional(v.array(v.unknown()), []),
        loss_fn: v.optional(v.string(), "cross_entropy"),
        loss_fn_config: v.optional(v.nullable(LossFnConfigSchema)),
      }),
      {},
    ),
  });
}

const forwardBackwardResult = { schema: ForwardBackwardOutputSchema, protobuf: decodeForwardBackwardOutput };

/** `POST forward_backward` (future): protobuf body since 0.22.3, legacy JSON before (§2.4.1). */
export const forwardBackward = endpoint({
  name: "forward_backward",
  method: "POST",
  path: "forward_backward",
  protobufBody: true,
  body: legacyForwardBody("forward_backward_input"),
  result: forwardBackwardResult,
  future: "ForwardBackward",
  retry: "generic",
});

/** `POST forward` (legacy clients; newer ones send forward_backward with `forward_only`). */
export const forward = endpoint({
  name: "forward",
  method: "POST",
  path: "forward",
  protobufBody: true,
  body: legacyForwardBody("forward_input"),
  result: forwardBackwardResult,
  future: "Forward",
  retry: "generic",
});

/** Non-AdamW step params, dispatched on `type`; Dimuon is the only other family (§O2, §O3). */
const optimizerParams = v.optional(v.nullable(v.variant("type", [DimuonParamsSchema])));

/** The params keys of an optim_step body; exactly one of them is given (§O2). */
export const OPTIM_STEP_PARAMS_KEYS = ["adam_params", "optimizer_params", "optim_params"] as const;

/**
 * `POST optim_step` (future). AdamW params travel as `adam_params`, any other family's as
 * `optimizer_params` with its `type` (§O2); the SDK never sends `optim_params`, which the official
 * request model also accepts, read here like `optimizer_params`. Exactly one of the three.
 */
export const optimStep = endpoint({
  name: "optim_step",
  method: "POST",
  path: "optim_step",
  body: v.pipe(
    v.looseObject({
      adam_params: v.optional(v.nullable(AdamParamsSchema)),
      optimizer_params: optimizerParams,
      optim_params: optimizerParams,
      model_id: modelId,
      seq_id: seqId,
      type: v.optional(v.literal("optim_step"), "optim_step"),
    }),
    v.check(
      (body) => OPTIM_STEP_PARAMS_KEYS.filter((key) => body[key] != null).length === 1,
      "give exactly one of adam_params and optimizer_params",
    ),
  ),
  result: { schema: OptimStepResponseSchema },
  future: "OptimStep",
  retry: "generic",
});

/** `POST save_weights` (future): weights and optimizer state at `tinker://<run>/weights/<path>`. */
export const saveWeights = endpoint({
  name: "save_weights",
  method: "POST",
  path: "save_weights",
  body: v.looseObject({
    model_id: modelId,
    path: checkpointName,
    seq_id: seqId,
    ttl_seconds: ttlSeconds,
    overwrite: v.optional(v.boolean(), false),
    user_metadata: userMetadata,
    type: v.optional(v.literal("save_weights"), "save_weights"),
  }),
  result: { schema: SaveWeightsResponseSchema },
  future: "SaveWeights",
  retry: "generic",
  transportRetries: 0,
});

/**
 * `POST load_weights` (future). With `model_id` it loads into a running run (sequenced); without,
 * it creates a run from the checkpoint when the server sets `create_model_via_load_weights` (§7.4).
 */
export const loadWeights = endpoint({
  name: "load_weights",
  method: "POST",
  path: "load_weights",
  body: v.looseObject({
    model_id: v.optional(modelId),
    seq_id: v.optional(seqId),
    session_id: v.optional(nonEmptyString),
    model_seq_id: v.optional(integer),
    base_model: v.optional(v.nullable(nonEmptyString)),
    user_metadata: userMetadata,
    path: TinkerPathSchema,
    optimizer: v.optional(v.boolean(), false),
    /** Create-via-load only: the new run's optimizer (null: the checkpoint's, for the with-optimizer load). */
    optimizer_config: v.optional(v.nullable(OptimizerConfigSchema)),
    weights_access_token: v.optional(v.nullable(v.string())),
    type: v.optional(v.literal("load_weights"), "load_weights"),
  }),
  result: { schema: LoadWeightsResponseSchema },
  future: "LoadWeights",
  retry: "generic",
});

/**
 * `POST save_weights_for_sampler` (future). With `path`, a named sampler checkpoint; with
 * `sampling_session_seq_id`, an ephemeral sampler whose id the result names.
 */
export const saveWeightsForSampler = endpoint({
  name: "save_weights_for_sampler",
  method: "POST",
  path: "save_weights_for_sampler",
  body: v.looseObject({
    model_id: modelId,
    path: v.optional(v.nullable(checkpointName)),
    sampling_session_seq_id: v.optional(v.nullable(integer)),
    seq_id: seqId,
    ttl_seconds: ttlSeconds,
    user_metadata: userMetadata,
    type: v.optional(v.literal("save_weights_for_sampler"), "save_weights_for_sampler"),
  }),
  result: { schema: SaveWeightsForSamplerResponseSchema },
  future: "SaveWeightsForSampler",
  retry: "generic",
  transportRetries: 0,
});

/** `POST save_weights_external` (future, 0.28): HF/PEFT-format adapter at `…/external_weights/<path>` (§W2). */
export const saveWeightsExternal = endpoint({
  name: "save_weights_external",
  method: "POST",
  path: "save_weights_external",
  body: v.looseObject({
    model_id: modelId,
    path: checkpointName,
    seq_id: seqId,
    ttl_seconds: ttlSeconds,
    type: v.optional(v.literal("save_weights_external"), "save_weights_external"),
  }),
  result: { schema: SaveWeightsExternalResponseSchema },
  future: "SaveWeightsExternal",
  retry: "generic",
  transportRetries: 0,
  since: "0.28.0",
});

/** `POST get_info`: model metadata, including the tokenizer id; not sequenced (§2.3.2). */
export const getInfo = endpoint({
  name: "get_info",
  method: "POST",
  path: "get_info",
  body: v.looseObject({
    model_id: modelId,
    type: v.optional(v.literal("get_info"), "get_info"),
  }),
  result: { schema: GetInfoResponseSchema },
  retry: "generic",
});

/** `POST unload_model` (future): releases the run; later operations on it fail. */
export const unloadModel = endpoint({
  name: "unload_model",
  method: "POST",
  path: "unload_model",
  body: v.looseObject({
    model_id: modelId,
    type: v.optional(v.literal("unload_model"), "unload_model"),
  }),
  result: { schema: UnloadModelResponseSchema },
  future: "UnloadModel",
  retry: "generic",
});

/** `POST weights_info`: a checkpoint's base model, LoRA settings and optimizer family (§O4). */
export const weightsInfo = endpoint({
  name: "weights_info",
  method: "POST",
  path: "weights_info",
  body: v.looseObject({ tinker_path: TinkerPathSchema }),
  result: { schema: WeightsInfoResponseSchema },
  retry: "generic",
});

/**
 * `POST copy_weights` (direct, §S3): a copy of a checkpoint in this client's project, held by a new,
 * untrainable run whose `model_seq_id` is the session's next model counter.
 */
export const copyWeights = endpoint({
  name: "copy_weights",
  method: "POST",
  path: "copy_weights",
  body: v.looseObject({
    session_id: nonEmptyString,
    model_seq_id: integer,
    source_path: TinkerPathSchema,
    ttl_seconds: ttlSeconds,
    weights_access_token: v.optional(v.nullable(v.string())),
  }),
  result: { schema: CopyWeightsResponseSchema },
  retry: "generic",
  since: "0.26.2",
});
