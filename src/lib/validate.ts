/**
 * Client-side checks of training input, so that bad input fails here with a ValidationError naming
 * the datum and field, before any request is sent (and before a seq_id is taken).
 */

import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { describeValue } from "../internal/describe.js";
import type { AdamParams, Datum, LossFnType, ModelInput, TensorData } from "../wire/types.js";

export const LOSS_FUNCTIONS: readonly LossFnType[] = [
  "cross_entropy",
  "importance_sampling",
  "ppo",
  "cispo",
  "dro",
];

/** Inputs each loss needs besides the model input (public Tinker docs, PROTOCOL.md §3.3). */
const REQUIRED_INPUTS: Record<LossFnType, readonly string[]> = {
  cross_entropy: ["target_tokens"],
  importance_sampling: ["target_tokens", "logprobs", "advantages"],
  ppo: ["target_tokens", "logprobs", "advantages"],
  cispo: ["target_tokens", "logprobs", "advantages"],
  dro: ["target_tokens", "logprobs", "advantages"],
};

/** Every input a loss reads; anything else is a mistake the server would ignore or reject. */
const ALLOWED_INPUTS: Record<LossFnType, readonly string[]> = {
  cross_entropy: ["target_tokens", "weights"],
  importance_sampling: ["target_tokens", "logprobs", "advantages", "weights"],
  ppo: ["target_tokens", "logprobs", "advantages", "weights"],
  cispo: ["target_tokens", "logprobs", "advantages", "weights"],
  dro: ["target_tokens", "logprobs", "advantages", "weights"],
};

/**
 * `loss_fn_config` keys per loss. The public docs name the PPO/CISPO clip bounds
 * `clip_low_threshold`/`clip_high_threshold`; the official SDK's own tests use `clip_low`/`clip_high`,
 * so both spellings pass.
 */
const ALLOWED_CONFIG: Record<LossFnType, readonly string[]> = {
  cross_entropy: [],
  importance_sampling: [],
  ppo: ["clip_low_threshold", "clip_high_threshold", "clip_low", "clip_high"],
  cispo: ["clip_low_threshold", "clip_high_threshold", "clip_low", "clip_high"],
  dro: ["beta"],
};

const MAX_INT32 = 2 ** 31 - 1;

export interface InputLimits {
  /** The base model's context window, when known (from get_server_capabilities). */
  maxContextLength?: number;
}

export function validateForwardBackwardInput(
  data: readonly Datum[],
  lossFn: string,
  lossFnConfig: Record<string, number> | undefined,
  limits: InputLimits = {},
): void {
  const issues: ValidationIssue[] = [];
  if (!LOSS_FUNCTIONS.includes(lossFn as LossFnType)) {
    issues.push({
      path: "loss_fn",
      message: `unknown loss ${describeValue(lossFn)}; expected one of ${LOSS_FUNCTIONS.join(", ")}`,
    });
  }
  if (!Array.isArray(data) || data.length === 0) issues.push({ path: "data", message: "No data provided" });
  const known = LOSS_FUNCTIONS.includes(lossFn as LossFnType);
  const allowedConfig = known ? ALLOWED_CONFIG[lossFn as LossFnType] : undefined;
  for (const [key, value] of Object.entries(lossFnConfig ?? {})) {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      issues.push({ path: `loss_fn_config.${key}`, message: "must be a finite number" });
    } else if (allowedConfig && !allowedConfig.includes(key)) {
      const expected =
        allowedConfig.length > 0 ? `; expected ${allowedConfig.join(", ")}` : " (it takes none)";
      issues.push({ path: `loss_fn_config.${key}`, message: `is not a ${lossFn} option${expected}` });
    }
  }
  (Array.isArray(data) ? data : []).forEach((datum, i) => {
    checkDatum(datum, `data[${i}]`, lossFn as LossFnType, limits, issues);
  });
  if (issues.length > 0) throw new ValidationError(issues);
}

function checkDatum(
  datum: Datum,
  path: string,
  lossFn: LossFnType,
  limits: InputLimits,
  issues: ValidationIssue[],
): void {
  // Own keys only: a loss named like an Object.prototype member ("toString") must not find one.
  const known = typeof lossFn === "string" && Object.hasOwn(REQUIRED_INPUTS, lossFn);
  const required = known ? REQUIRED_INPUTS[lossFn] : [];
  const allowed = known ? ALLOWED_INPUTS[lossFn] : undefined;
  if (typeof datum !== "object" || datum === null) {
    issues.push({ path, message: "must be a Datum object" });
    return;
  }
  const length = checkModelInput(datum.model_input, `${path}.model_input`, issues, { trainable: true });
  if (length !== undefined && limits.maxContextLength !== undefined && length > limits.maxContextLength) {
    issues.push({
      path: `${path}.model_input`,
      message: `has ${length} tokens, more than the model's context length ${limits.maxContextLength}`,
    });
  }
  const inputs = datum.loss_fn_inputs ?? {};
  for (const key of required) {
    if (!(key in inputs))
      issues.push({ path: `${path}.loss_fn_inputs.${key}`, message: "is required by this loss" });
  }
  for (const [key, tensor] of Object.entries(inputs)) {
    const tensorPath = `${path}.loss_fn_inputs.${key}`;
    if (allowed && !allowed.includes(key)) {
      issues.push({
        path: tensorPath,
        message: `is not an input of ${lossFn}; expected ${allowed.join(", ")}`,
      });
      continue;
    }
    const elements = checkTensor(tensor, tensorPath, issues);
    if (elements !== undefined && length !== undefined && leadingDim(tensor) !== length) {
      issues.push({
        path: tensorPath,
        message: `has ${leadingDim(tensor)} positions but the model input has ${length} tokens`,
      });
    }
  }
}

/** Returns the model input's length in tokens when it can be known locally. */
export function checkModelInput(
  input: ModelInput,
  path: string,
  issues: ValidationIssue[],
  { trainable }: { trainable: boolean },
): number | undefined {
  if (typeof input !== "object" || input === null || !Array.isArray(input.chunks)) {
    issues.push({ path, message: "must be a ModelInput ({ chunks: [...] })" });
    return undefined;
  }
  let length: number | undefined = 0;
  input.chunks.forEach((chunk, c) => {
    const chunkPath = `${path}.chunks[${c}]`;
    switch (chunk?.type) {
      case "encoded_text":
        if (!Array.isArray(chunk.tokens)) {
          issues.push({ path: `${chunkPath}.tokens`, message: "must be an array of token ids" });
          length = undefined;
          return;
        }
        for (let t = 0; t < chunk.tokens.length; t++) {
          const token = chunk.tokens[t]!;
          if (!Number.isInteger(token) || token < 0 || token > MAX_INT32) {
            issues.push({
              path: `${chunkPath}.tokens[${t}]`,
              message: `invalid token id ${describeValue(token)}`,
            });
            break;
          }
        }
        if (length !== undefined) length += chunk.tokens.length;
        return;
      case "image":
      case "image_asset_pointer":
        if (trainable && chunk.type === "image_asset_pointer") {
          issues.push({
            path: chunkPath,
            message: "image_asset_pointer chunks cannot be trained on; send image bytes",
          });
        }
        if (chunk.format !== "png" && chunk.format !== "jpeg") {
          issues.push({
            path: `${chunkPath}.format`,
            message: `must be "png" or "jpeg", got ${JSON.stringify(chunk.format)}`,
          });
        }
        if (
          chunk.expected_tokens !== undefined &&
          !(Number.isInteger(chunk.expected_tokens) && chunk.expected_tokens > 0)
        ) {
          issues.push({
            path: `${chunkPath}.expected_tokens`,
            message: `must be a positive integer, got ${describeValue(chunk.expected_tokens)}`,
          });
        } else if (trainable && chunk.expected_tokens === undefined) {
          // Without it the loss inputs cannot be aligned with the input's token positions.
          issues.push({
            path: `${chunkPath}.expected_tokens`,
            message: "is required for image chunks in training data",
          });
        }
        if (chunk.expected_tokens === undefined) length = undefined;
        else if (length !== undefined) length += chunk.expected_tokens;
        return;
      case "dmel":
        length = undefined;
        return;
      default:
        issues.push({
          path: `${chunkPath}.type`,
          message: "must be encoded_text, image, image_asset_pointer or dmel",
        });
        length = undefined;
    }
  });
  return length;
}

function checkTensor(tensor: TensorData, path: string, issues: ValidationIssue[]): number | undefined {
  if (typeof tensor !== "object" || tensor === null || !Array.isArray(tensor.data)) {
    issues.push({ path, message: "must be TensorData ({ data, dtype, shape? })" });
    return undefined;
  }
  if (tensor.dtype !== "int64" && tensor.dtype !== "float32") {
    issues.push({
      path: `${path}.dtype`,
      message: `must be "int64" or "float32", got ${JSON.stringify(tensor.dtype)}`,
    });
    return undefined;
  }
  for (let i = 0; i < tensor.data.length; i++) {
    const x = tensor.data[i]!;
    if (typeof x !== "number" || Number.isNaN(x) || (tensor.dtype === "int64" && !Number.isInteger(x))) {
      issues.push({
        path: `${path}.data[${i}]`,
        message: `invalid ${tensor.dtype} value ${describeValue(x)}`,
      });
      return undefined;
    }
  }
  if (tensor.sparse_crow_indices === undefined && tensor.shape) {
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length) {
      issues.push({
        path: `${path}.shape`,
        message: `[${tensor.shape}] needs ${elements} values, data has ${tensor.data.length}`,
      });
      return undefined;
    }
  }
  return tensor.data.length;
}

function leadingDim(tensor: TensorData): number {
  return tensor.shape?.[0] ?? tensor.data.length;
}

export function validateAdamParams(params: Required<AdamParams>): void {
  const issues: ValidationIssue[] = [];
  const check = (key: keyof AdamParams, ok: (x: number) => boolean, rule: string) => {
    const value = params[key];
    if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) {
      issues.push({ path: `adam_params.${key}`, message: `${rule}, got ${describeValue(value)}` });
    }
  };
  check("learning_rate", (x) => x >= 0, "must be ≥ 0");
  check("beta1", (x) => x >= 0 && x < 1, "must be in [0, 1)");
  check("beta2", (x) => x >= 0 && x < 1, "must be in [0, 1)");
  check("eps", (x) => x > 0, "must be > 0");
  check("weight_decay", (x) => x >= 0, "must be ≥ 0");
  check("grad_clip_norm", (x) => x >= 0, "must be ≥ 0 (0 = no clipping)");
  if (issues.length > 0) throw new ValidationError(issues);
}
