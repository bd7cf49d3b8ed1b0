/**
 * Field schemas shared by several endpoints, with the defaults and bounds of the protocol
 * (PROTOCOL.md §3, §O1–§O3, §W1). Each default is stated here once; the SDK sends it and the local
 * backend assumes it for clients that omit the field.
 */
import * as v from "valibot";

/** A finite number with a rule; NaN and ±Infinity are never valid on the wire. */
export function finite(rule: (x: number) => boolean, message: string) {
  return v.pipe(
    v.number(),
    v.check((x) => Number.isFinite(x), "must be a finite number"),
    v.check(rule, message),
  );
}

export const integer = v.pipe(v.number(), v.integer("must be an integer"));

export const nonNegativeInteger = v.pipe(integer, v.minValue(0, "must be ≥ 0"));
export const nonEmptyString = v.pipe(v.string(), v.minLength(1, "must be a non-empty string"));

/**
 * `schema`, but only for a JSON object: valibot's object schemas also accept arrays (`[]` would read
 * as "every field at its default"), which no object field of the protocol means.
 */
export function plainObject<S extends v.GenericSchema>(schema: S) {
  return v.pipe(
    v.custom<v.InferInput<S>>(
      (x) => typeof x === "object" && x !== null && !Array.isArray(x),
      "must be an object",
    ),
    schema,
  );
}

/** Query values arrive as strings on the server and as numbers from the client. */
export function queryInteger(min: number) {
  return v.pipe(
    v.union([v.number(), v.pipe(v.string(), v.regex(/^-?\d+$/, "must be an integer"), v.transform(Number))]),
    integer,
    v.minValue(min, `must be ≥ ${min}`),
  );
}

/** `user_metadata`: string keys to string values (the official TrainingRun schema requires it). */
export const UserMetadataSchema = v.record(v.string(), v.string("values must be strings"));

/** Official AdamW defaults (PROTOCOL.md §3.5). */
export const ADAM_DEFAULTS = {
  learning_rate: 0.0001,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weight_decay: 0.0,
  grad_clip_norm: 0.0,
} as const;

/**
 * Upper bounds of the optimizer settings. The protocol states none, but past these a step is no
 * longer a step: Adam moves each parameter by about `learning_rate`, so 10 already throws a model
 * away, and 1e308 overflows to Infinity and NaN weights. Both sides check them (the SDK before
 * sending, the backend → 400), so an absurd value is refused instead of applied.
 */
export const OPTIMIZER_BOUNDS = {
  learning_rate: 10,
  weight_decay: 10,
  eps: 1,
  grad_clip_norm: 1e12,
  damping: 1e6,
  rank_lr_correction_exponent: 8,
} as const;

const B = OPTIMIZER_BOUNDS;
const learningRate = finite((x) => x >= 0 && x <= B.learning_rate, `must be in [0, ${B.learning_rate}]`);
const gradClipNorm = finite(
  (x) => x >= 0 && x <= B.grad_clip_norm,
  `must be in [0, ${B.grad_clip_norm}] (0 = no clipping)`,
);
const beta = finite((x) => x >= 0 && x < 1, "must be in [0, 1)");

/** `AdamParams`, every field optional with its default; extra fields refused (StrictBase). */
export const AdamParamsSchema = plainObject(
  v.strictObject({
    learning_rate: v.optional(learningRate, ADAM_DEFAULTS.learning_rate),
    beta1: v.optional(beta, ADAM_DEFAULTS.beta1),
    beta2: v.optional(beta, ADAM_DEFAULTS.beta2),
    eps: v.optional(
      finite((x) => x > 0 && x <= B.eps, `must be in (0, ${B.eps}]`),
      ADAM_DEFAULTS.eps,
    ),
    weight_decay: v.optional(
      finite((x) => x >= 0 && x <= B.weight_decay, `must be in [0, ${B.weight_decay}]`),
      ADAM_DEFAULTS.weight_decay,
    ),
    grad_clip_norm: v.optional(gradClipNorm, ADAM_DEFAULTS.grad_clip_norm),
  }),
);

/**
 * Dimuon defaults (PROTOCOL.md §O3). Upstream publishes those of 0.30.4 (grad_clip_norm 0,
 * beta1 0.9); `damping` and `rank_lr_correction_exponent` came later without published defaults, so
 * they are left out of the request when unset and the server picks (the local backend's engine
 * states its own).
 */
export const DIMUON_DEFAULTS = { grad_clip_norm: 0.0, beta1: 0.9 } as const;

/** `DimuonParams` (`type: "dimuon"`); learning_rate is required; extra fields refused. */
export const DimuonParamsSchema = v.strictObject({
  type: v.literal("dimuon"),
  learning_rate: learningRate,
  grad_clip_norm: v.optional(gradClipNorm, DIMUON_DEFAULTS.grad_clip_norm),
  beta1: v.optional(beta, DIMUON_DEFAULTS.beta1),
  damping: v.optional(finite((x) => x > 0 && x <= B.damping, `must be in (0, ${B.damping}]`)),
  rank_lr_correction_exponent: v.optional(
    finite(
      (x) => Math.abs(x) <= B.rank_lr_correction_exponent,
      `must be in [-${B.rank_lr_correction_exponent}, ${B.rank_lr_correction_exponent}]`,
    ),
  ),
});

/** The optimizer family of a run, fixed at its creation (PROTOCOL.md §O1). */
export const OPTIMIZER_TYPES = ["adamw", "dimuon"] as const;
export type OptimizerType = (typeof OPTIMIZER_TYPES)[number];

/** The only version of the Dimuon optimizer config (PROTOCOL.md §O1); another → 400. */
export const DIMUON_CONFIG_VERSION = 1;

/**
 * `OptimizerConfig`: `{type: "adamw"}` or `{type: "dimuon", version: 1}`. The base type keeps
 * unknown fields (forward compatible); the SDK always sends one, AdamW by default.
 */
export const OptimizerConfigSchema = v.variant("type", [
  v.looseObject({ type: v.literal("adamw") }),
  v.looseObject({
    type: v.literal("dimuon"),
    version: v.optional(
      v.literal(DIMUON_CONFIG_VERSION, `must be ${DIMUON_CONFIG_VERSION}`),
      DIMUON_CONFIG_VERSION,
    ),
  }),
]);
export type OptimizerConfig = v.InferOutput<typeof OptimizerConfigSchema>;
export const DEFAULT_OPTIMIZER_CONFIG: OptimizerConfig = { type: "adamw" };

/** LoRA defaults (PROTOCOL.md §3.2): rank 32, every part trained. */
export const LORA_DEFAULTS = { rank: 32, train_unembed: true, train_mlp: true, train_attn: true } as const;

export const LoraConfigSchema = plainObject(
  v.looseObject({
    rank: v.optional(v.pipe(integer, v.minValue(1, "must be a positive integer")), LORA_DEFAULTS.rank),
    seed: v.optional(v.nullable(integer)),
    train_unembed: v.optional(v.boolean(), LORA_DEFAULTS.train_unembed),
    train_mlp: v.optional(v.boolean(), LORA_DEFAULTS.train_mlp),
    train_attn: v.optional(v.boolean(), LORA_DEFAULTS.train_attn),
  }),
);

/**
 * `SamplingParams.max_tokens` is an int32 on the protocol's protobuf wire (the SamplingParams
 * message of docs/PROTOCOL.md), so a larger value cannot be sent in every encoding.
 */
export const MAX_TOKENS_LIMIT = 2 ** 31 - 1;

/**
 * `sampling_params` as the server reads it: an object whose `max_tokens` (when given) is a
 * non-negative int32; the other fields keep their own checks (the SDK's, the engine's).
 */
export const SamplingParamsSchema = plainObject(
  v.looseObject({
    max_tokens: v.optional(
      v.nullable(
        v.pipe(
          integer,
          v.minValue(0, "must be ≥ 0"),
          v.maxValue(MAX_TOKENS_LIMIT, `must be at most ${MAX_TOKENS_LIMIT} (int32)`),
        ),
      ),
    ),
  }),
);

/** Checkpoint TTLs: one hour to ten 365-day years (PROTOCOL.md §W1); null or absent = never. */
export const TTL_BOUNDS_SECONDS = { min: 3_600, max: 315_360_000 } as const;

export const TtlSecondsSchema = v.pipe(
  integer,
  v.minValue(TTL_BOUNDS_SECONDS.min, `must be at least ${TTL_BOUNDS_SECONDS.min} s (one hour)`),
  v.maxValue(TTL_BOUNDS_SECONDS.max, `must be at most ${TTL_BOUNDS_SECONDS.max} s (ten years)`),
);

/** `tinker://<run>/<kind>/<name>` paths. */
export const TinkerPathSchema = v.pipe(v.string(), v.startsWith("tinker://", "must start with tinker://"));
