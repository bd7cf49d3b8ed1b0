/**
 * Helpers that build wire values the way the Python SDK's helpers do (`ModelInput.from_ints`,
 * `TensorData`, `Datum`), so ported code reads the same.
 */

import { ValidationError } from "../core/errors.js";
import { base64ToBytes } from "../internal/base64.js";
import { datumProvenanceIssues } from "../wire/provenance.js";
import type {
  DatumInput,
  DType,
  ModelInputChunk,
  ProvenanceSpan,
  TensorInput,
  TrainingModelInput,
  Datum as WireDatum,
  ModelInput as WireModelInput,
  TensorData as WireTensorData,
} from "../wire/types.js";
import { sparseTensor } from "./sparse.js";

/** Typed arrays a tensor may hold (see `TensorValues`): kept as they are, never spread to numbers. */
type TypedTensorValues = Float32Array | Int32Array | BigInt64Array;

function isTypedTensorValues(values: unknown): values is TypedTensorValues {
  return values instanceof Float32Array || values instanceof Int32Array || values instanceof BigInt64Array;
}

export type ModelInput = WireModelInput;
export const ModelInput = {
  /**
   * One text chunk of token ids. A plain array is copied. An Int32Array or Uint32Array is kept as
   * it is, not copied (training input only): TrainingClient copies its values straight into the
   * request bytes during the `forward` / `forwardBackward` call (the codec's own encoder reads it
   * when called), so leave it unchanged until then.
   */
  fromInts: fromInts as {
    (tokens: readonly number[]): WireModelInput;
    (tokens: Int32Array | Uint32Array): TrainingModelInput;
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
  /**
   * Length in tokens: text tokens plus each image's `expected_tokens` (required here, as in the
   * official client, since an image's token count is otherwise unknown) and each audio chunk's frames.
   */
  length(input: WireModelInput): number {
    let total = 0;
    input.chunks.forEach((chunk, i) => {
      if (chunk.type === "encoded_text") total += chunk.tokens.length;
      else if (chunk.type === "dmel") total += dmelLength(chunk.dmel);
      else if (chunk.expected_tokens !== undefined) total += chunk.expected_tokens;
      else
        throw new ValidationError([
          { path: `chunks[${i}].expected_tokens`, message: "is needed to know the length" },
        ]);
    });
    return total;
  },
  /** A new input with `chunk` added at the end (the original is not changed). */
  append(input: WireModelInput, chunk: ModelInputChunk): WireModelInput {
    return { chunks: [...input.chunks, chunk] };
  },
  /** A new input with one more token, as a one-token text chunk (like the official `append_int`). */
  appendInt(input: WireModelInput, token: number): WireModelInput {
    return { chunks: [...input.chunks, { type: "encoded_text", tokens: [token] }] };
  },
};

function fromInts(tokens: readonly number[] | Int32Array | Uint32Array): TrainingModelInput {
  const kept = ArrayBuffer.isView(tokens) ? tokens : Array.isArray(tokens) ? tokens.slice() : [...tokens];
  return { chunks: [{ type: "encoded_text", tokens: kept }] };
}

/**
 * Frames of a DMel "TensorContainer": optional marker byte 254, a dtype byte, a LEB128 `ndim`,
 * then LEB128 dims; the length is dim 0 (PROTOCOL.md §3.1).
 */
function dmelLength(base64: string): number {
  const bytes = base64ToBytes(base64);
  let offset = bytes[0] === 254 ? 1 : 0;
  offset++; // dtype
  const readVarint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[offset++];
      if (byte === undefined)
        throw new ValidationError([{ path: "dmel", message: "truncated TensorContainer header" }]);
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  };
  const ndim = readVarint();
  return ndim === 0 ? 1 : readVarint();
}

export type TensorData = WireTensorData;
export const TensorData = {
  /**
   * A tensor of `values`. A plain array (or array-like) is copied into a number[]. A Float32Array,
   * Int32Array or BigInt64Array is kept as it is, not copied (training input only): TrainingClient
   * copies its values straight into the request bytes during the `forward` / `forwardBackward`
   * call, so leave it unchanged until then.
   */
  fromArray: tensorFromArray as {
    (values: TypedTensorValues, dtype: DType, shape?: number[]): TensorInput;
    (values: ArrayLike<number>, dtype: DType, shape?: number[]): WireTensorData;
  },
  /**
   * The official `TensorData.from_torch_sparse(tensor, pad_value)`: a dense row-major 2-D tensor
   * sent as sparse CSR, without its `pad` cells (default 0), when that is smaller; else dense.
   */
  fromSparse: sparseTensor,
};

function tensorFromArray(
  values: ArrayLike<number> | TypedTensorValues,
  dtype: DType,
  shape?: number[],
): TensorInput {
  const data = isTypedTensorValues(values)
    ? values
    : Array.isArray(values)
      ? (values as number[]).slice()
      : Array.from(values);
  return { data, dtype, shape: shape ?? [values.length] };
}

/** Key → dtype of the plain lists the official client converts for you (PROTOCOL.md §3.2). */
const KNOWN_INPUT_DTYPES: Record<string, DType> = {
  target_tokens: "int64",
  weights: "float32",
  advantages: "float32",
  logprobs: "float32",
  clip_low_threshold: "float32",
  clip_high_threshold: "float32",
};

/** Plain arrays, or typed arrays, that `datum` converts for the known keys. */
type LossInputValues = readonly number[] | TypedTensorValues;

/**
 * A Datum from a model input and loss inputs given as TensorData or plain number arrays (only for
 * the known keys, whose dtype is fixed). Typed arrays (Float32Array for float32 keys, Int32Array or
 * BigInt64Array for target_tokens) are accepted like plain arrays and kept as they are (see
 * `TensorData.fromArray`); such a datum is a `DatumInput`, for forward / forward_backward.
 */
export const datum = buildDatum as {
  (modelInput: WireModelInput, lossFnInputs: Record<string, WireTensorData | readonly number[]>): WireDatum;
  (modelInput: TrainingModelInput, lossFnInputs: Record<string, TensorInput | LossInputValues>): DatumInput;
};

function buildDatum(
  modelInput: TrainingModelInput,
  lossFnInputs: Record<string, TensorInput | LossInputValues>,
): DatumInput {
  const inputs: Record<string, TensorInput> = {};
  for (const [key, value] of Object.entries(lossFnInputs)) {
    if (!(Array.isArray(value) || isTypedTensorValues(value))) {
      inputs[key] = value as TensorInput;
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
    inputs[key] = tensorFromArray(value, dtype);
  }
  return { model_input: modelInput, loss_fn_inputs: inputs };
}

/** The provenance spans `withProvenance` attaches: of the model input, and of the loss inputs. */
export interface ProvenanceInput {
  /** Spans tiling the model input's tokens, in order. */
  modelInput?: readonly ProvenanceSpan[];
  /** Spans tiling the positions of `loss_fn_inputs.target_tokens`, in order. */
  lossFnInputs?: readonly ProvenanceSpan[];
}

/**
 * The datum with provenance spans (PROTOCOL.md §T3; Python `Datum.with_provenance`): where each run
 * of its tokens came from, as prompt or sampled positions of a `SampledSequence.sequence_id`. Each
 * list must tile its field exactly — the model-input spans add up to the input's token count, the
 * loss spans to the number of `target_tokens` positions — and every span has `length ≥ 1`; else a
 * ValidationError. A list not given keeps the datum's current one. The datum itself is not changed.
 */
export function withProvenance<D extends DatumInput>(datum: D, spans: ProvenanceInput): D {
  const annotated: D = { ...datum };
  // Copies, so later changes to the caller's arrays do not alter the checked datum.
  const copy = (list: readonly ProvenanceSpan[]) =>
    (Array.isArray(list) ? list.map((span) => ({ ...span })) : list) as ProvenanceSpan[];
  if (spans.modelInput !== undefined) annotated.model_input_spans = copy(spans.modelInput);
  if (spans.lossFnInputs !== undefined) annotated.loss_fn_input_spans = copy(spans.lossFnInputs);
  const targets = datum.loss_fn_inputs?.["target_tokens"];
  const issues = datumProvenanceIssues(
    annotated,
    ModelInput.length(datum.model_input as WireModelInput),
    targets === undefined ? undefined : (targets.shape?.[0] ?? targets.data.length),
    "datum",
  );
  if (issues.length > 0) throw new ValidationError(issues);
  return annotated;
}
