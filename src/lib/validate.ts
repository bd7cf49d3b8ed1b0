/**
 * Client-side checks of training input, so that bad input fails here with a ValidationError naming
 * the datum and field, before any request is sent (and before a seq_id is taken).
 */

import * as v from "valibot";
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { describeValue } from "../internal/describe.js";
import { AdamParamsSchema } from "../wire/endpoints/fields.js";
import { datumProvenanceIssues } from "../wire/provenance.js";
import type {
  AdamParams,
  DatumInput,
  LossFnConfig,
  LossFnType,
  ModelInput,
  TensorInput,
  TrainingModelInput,
} from "../wire/types.js";

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

/**
 * Throws a ValidationError listing every issue of the input. With `scanPlainArrays: false` (for
 * TrainingClient, which then checks those values itself while encoding, see
 * `encodeTrainingRequest`) the values of plain arrays are not scanned; typed arrays still are.
 * The issues are the same either way: when that lighter pass finds any, the full one runs.
 */
export function validateForwardBackwardInput(
  data: readonly DatumInput[],
  lossFn: string,
  lossFnConfig: LossFnConfig | undefined,
  limits: InputLimits = {},
  { scanPlainArrays = true }: { scanPlainArrays?: boolean } = {},
): void {
  let issues = forwardBackwardIssues(data, lossFn, lossFnConfig, limits, scanPlainArrays);
  if (issues.length > 0 && !scanPlainArrays)
    issues = forwardBackwardIssues(data, lossFn, lossFnConfig, limits, true);
  if (issues.length > 0) throw new ValidationError(issues);
}

function forwardBackwardIssues(
  data: readonly DatumInput[],
  lossFn: string,
  lossFnConfig: LossFnConfig | undefined,
  limits: InputLimits,
  scanPlain: boolean,
): ValidationIssue[] {
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
    // Since 0.26.2 a value may be a string (§T1); what it may say is the server's to check.
    if (typeof value !== "string" && (typeof value !== "number" || !Number.isFinite(value))) {
      issues.push({ path: `loss_fn_config.${key}`, message: "must be a finite number or a string" });
    } else if (allowedConfig && !allowedConfig.includes(key)) {
      const expected =
        allowedConfig.length > 0 ? `; expected ${allowedConfig.join(", ")}` : " (it takes none)";
      issues.push({ path: `loss_fn_config.${key}`, message: `is not a ${lossFn} option${expected}` });
    }
  }
  (Array.isArray(data) ? data : []).forEach((datum, i) => {
    checkDatum(datum, `data[${i}]`, lossFn as LossFnType, limits, issues, scanPlain);
  });
  return issues;
}

function checkDatum(
  datum: DatumInput,
  path: string,
  lossFn: LossFnType,
  limits: InputLimits,
  issues: ValidationIssue[],
  scanPlain: boolean,
): void {
  // Own keys only: a loss named like an Object.prototype member ("toString") must not find one.
  const known = typeof lossFn === "string" && Object.hasOwn(REQUIRED_INPUTS, lossFn);
  const required = known ? REQUIRED_INPUTS[lossFn] : [];
  const allowed = known ? ALLOWED_INPUTS[lossFn] : undefined;
  if (typeof datum !== "object" || datum === null) {
    issues.push({ path, message: "must be a Datum object" });
    return;
  }
  const length = checkModelInput(datum.model_input, `${path}.model_input`, issues, {
    trainable: true,
    scanPlain,
  });
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
    const elements = checkTensor(tensor, tensorPath, issues, scanPlain);
    if (elements !== undefined && length !== undefined && leadingDim(tensor) !== length) {
      issues.push({
        path: tensorPath,
        message: `has ${leadingDim(tensor)} positions but the model input has ${length} tokens`,
      });
    }
  }
  const targets = (inputs as Record<string, TensorInput | undefined>)["target_tokens"];
  const targetCount =
    Array.isArray(targets?.data) || ArrayBuffer.isView(targets?.data) ? leadingDim(targets!) : undefined;
  issues.push(...datumProvenanceIssues(datum, length, targetCount, path));
}

/**
 * Returns the model input's length in tokens when it can be known locally. Training input
 * (`trainable`) travels as protobuf, so its tokens may also be an Int32Array or Uint32Array;
 * sampling prompts travel as JSON and must be plain arrays. `scanPlain: false` skips the values
 * of plain token arrays (see `validateForwardBackwardInput`).
 */
export function checkModelInput(
  input: ModelInput | TrainingModelInput,
  path: string,
  issues: ValidationIssue[],
  { trainable, scanPlain = true }: { trainable: boolean; scanPlain?: boolean },
): number | undefined {
  if (typeof input !== "object" || input === null || !Array.isArray(input.chunks)) {
    issues.push({ path, message: "must be a ModelInput ({ chunks: [...] })" });
    return undefined;
  }
  let length: number | undefined = 0;
  input.chunks.forEach((chunk, c) => {
    const chunkPath = `${path}.chunks[${c}]`;
    switch (chunk?.type) {
      case "encoded_text": {
        const tokens = chunk.tokens;
        const typed = tokens instanceof Int32Array || tokens instanceof Uint32Array;
        if (!(Array.isArray(tokens) || (trainable && typed))) {
          issues.push({
            path: `${chunkPath}.tokens`,
            message: trainable
              ? "must be an array, Int32Array or Uint32Array of token ids"
              : "must be an array of token ids",
          });
          length = undefined;
          return;
        }
        const bad = scanPlain || typed ? firstInvalidToken(tokens) : -1;
        if (bad >= 0) {
          issues.push({
            path: `${chunkPath}.tokens[${bad}]`,
            message: `invalid token id ${describeValue(tokens[bad])}`,
          });
        }
        if (length !== undefined) length += tokens.length;
        return;
      }
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

function checkTensor(
  tensor: TensorInput,
  path: string,
  issues: ValidationIssue[],
  scanPlain: boolean,
): number | undefined {
  const data = tensor?.data;
  if (typeof tensor !== "object" || tensor === null || !(Array.isArray(data) || isTensorTypedArray(data))) {
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
  if (!Array.isArray(data)) {
    // A typed array must hold the dtype's kind of value: no silent float → int conversion.
    const expected = tensor.dtype === "float32" ? "Float32Array" : "Int32Array or BigInt64Array";
    if ((tensor.dtype === "float32") !== data instanceof Float32Array) {
      issues.push({
        path: `${path}.data`,
        message: `a ${data.constructor.name} cannot hold ${tensor.dtype} values; pass a ${expected} or a plain array`,
      });
      return undefined;
    }
  }
  const bad =
    !scanPlain && Array.isArray(data)
      ? -1
      : tensor.dtype === "float32"
        ? firstInvalidFloat(data)
        : firstInvalidInteger(data);
  if (bad >= 0) {
    issues.push({
      path: `${path}.data[${bad}]`,
      message: `invalid ${tensor.dtype} value ${describeValue(data[bad])}`,
    });
    return undefined;
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

function isTensorTypedArray(data: unknown): data is Float32Array | Int32Array | BigInt64Array {
  return data instanceof Float32Array || data instanceof Int32Array || data instanceof BigInt64Array;
}

/*
 * The value scans below run over every token and tensor value of a batch, so each is one tight
 * loop per array kind, returning the index of the first bad value or -1. Typed arrays whose kind
 * already rules out bad values skip the scan.
 */

/** Token ids are int32 values ≥ 0 (negative ids have no meaning; the wire field is int32). */
function firstInvalidToken(tokens: readonly unknown[] | Int32Array | Uint32Array): number {
  if (tokens instanceof Uint32Array) return firstAbove(tokens, MAX_INT32);
  if (tokens instanceof Int32Array) return firstNegative(tokens);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    // `token | 0` equals the token exactly for int32 numbers (not for NaN or fractions).
    if (typeof token !== "number" || (token | 0) !== token || token < 0) return i;
  }
  return -1;
}

function firstAbove(values: Uint32Array, max: number): number {
  for (let i = 0; i < values.length; i++) if (values[i]! > max) return i;
  return -1;
}

function firstNegative(values: Int32Array): number {
  for (let i = 0; i < values.length; i++) if (values[i]! < 0) return i;
  return -1;
}

/** float32 values: any number but NaN (infinities are representable and pass, as with arrays). */
function firstInvalidFloat(data: readonly unknown[] | Float32Array | Int32Array | BigInt64Array): number {
  if (data instanceof Float32Array) return firstNaN(data);
  if (!Array.isArray(data)) return -1; // an integer typed array: rejected before, as a dtype mismatch
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (typeof x !== "number" || Number.isNaN(x)) return i;
  }
  return -1;
}

function firstNaN(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (Number.isNaN(x)) return i;
  }
  return -1;
}

/** int64 values given as numbers must be integers; Int32Array and BigInt64Array always are. */
function firstInvalidInteger(data: readonly unknown[] | Float32Array | Int32Array | BigInt64Array): number {
  if (!Array.isArray(data)) return -1; // Int32Array / BigInt64Array (Float32Array was rejected before)
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (typeof x !== "number" || ((x | 0) !== x && !Number.isInteger(x))) return i;
  }
  return -1;
}

function leadingDim(tensor: TensorInput): number {
  return tensor.shape?.[0] ?? tensor.data.length;
}

/**
 * AdamParams checked by the rules the endpoint declares (src/wire/endpoints/fields.ts), before
 * anything is sent; unset fields are fine (they take the protocol's defaults).
 */
export function validateAdamParams(params: AdamParams): void {
  const result = v.safeParse(AdamParamsSchema, params);
  if (result.success) return;
  throw new ValidationError(
    result.issues.map((issue) => ({
      path: `adam_params${issue.path ? `.${v.getDotPath(issue)}` : ""}`,
      message: `${issue.message}, got ${describeValue(issue.input)}`,
    })),
  );
}
