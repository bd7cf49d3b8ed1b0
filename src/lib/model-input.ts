/**
 * Helpers that build wire values the way the Python SDK's helpers do (`ModelInput.from_ints`,
 * `TensorData`, `Datum`), so ported code reads the same.
 */
import { ValidationError } from "../core/errors.js";
import type { DType, ModelInput as WireModelInput, TensorData as WireTensorData } from "../wire/types.js";

export type ModelInput = WireModelInput;
export const ModelInput = {
  /** One text chunk of token ids. */
  fromInts(tokens: readonly number[]): WireModelInput {
    return { chunks: [{ type: "encoded_text", tokens: [...tokens] }] };
  },
  /** All tokens of a text-only input (throws for image or audio chunks). */
  toInts(input: WireModelInput): number[] {
    return input.chunks.flatMap((chunk) => {
      if (chunk.type !== "encoded_text") {
        throw new ValidationError([{ path: "chunks", message: `a ${chunk.type} chunk has no token ids` }]);
      }
      return chunk.tokens;
    });
  },
  empty(): WireModelInput {
    return { chunks: [] };
  },
};

export type TensorData = WireTensorData;
export const TensorData = {
  fromArray(values: ArrayLike<number>, dtype: DType, shape?: number[]): WireTensorData {
    return { data: Array.from(values), dtype, shape: shape ?? [values.length] };
  },
};

/** Key → dtype of the plain lists the official client converts for you (PROTOCOL.md §3.2). */
const KNOWN_INPUT_DTYPES: Record<string, DType> = {
  target_tokens: "int64",
  weights: "float32",
  advantages: "float32",
  logprobs: "float32",
  clip_low_threshold: "float32",
  clip_high_threshold: "float32",
};

/**
 * A Datum from a model input and loss inputs given as TensorData or plain number arrays (only for
 * the known keys, whose dtype is fixed).
 */
export function datum(
  modelInput: WireModelInput,
  lossFnInputs: Record<string, WireTensorData | readonly number[]>,
): { model_input: WireModelInput; loss_fn_inputs: Record<string, WireTensorData> } {
  const inputs: Record<string, WireTensorData> = {};
  for (const [key, value] of Object.entries(lossFnInputs)) {
    if (!Array.isArray(value)) {
      inputs[key] = value as WireTensorData;
      continue;
    }
    const dtype = KNOWN_INPUT_DTYPES[key];
    if (!dtype) {
      throw new ValidationError([
        {
          path: `loss_fn_inputs.${key}`,
          message: `pass TensorData; plain arrays are accepted only for ${Object.keys(KNOWN_INPUT_DTYPES).join(", ")}`,
        },
      ]);
    }
    inputs[key] = TensorData.fromArray(value, dtype);
  }
  return { model_input: modelInput, loss_fn_inputs: inputs };
}
