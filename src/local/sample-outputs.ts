/**
 * The sampling outputs added in 0.26.2–0.31 (PROTOCOL.md §P2) between their wire form and the
 * engine's: the `target_prompt_logprobs` request tensor (dense or CSR, int64) becomes the engine's
 * id matrix, and the engine's answers become the SampleResponse tensors — the target logprobs in
 * the request's own shape and layout, the alternative tokens as two [len(prompt) − 1, k] tensors.
 */
import type { TensorData } from "../wire/types.js";
import type { Matrix, PromptOutputs } from "./engine/index.js";
import { LocalBackendError } from "./errors.js";

/** The id a cell of `target_prompt_logprobs` holds when it asks for nothing (also CSR's padding). */
const SKIP = -1;

/**
 * The request's ids as a dense [rows, cols] matrix, −1 where a CSR tensor lists no cell. A tensor
 * that is not a 2-D int64 TensorData, or whose CSR indices are inconsistent, is refused (400);
 * the engine checks the ids and the row count against the prompt.
 */
export function targetIdMatrix(value: unknown): Matrix<number[]> {
  const fail = (reason: string) => new LocalBackendError("invalid", `target_prompt_logprobs: ${reason}`);
  const tensor = value as Partial<TensorData>;
  if (tensor.dtype !== "int64") throw fail(`dtype must be int64, got ${JSON.stringify(tensor.dtype)}`);
  const shape = tensor.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw fail(`shape must be [rows, cols], got ${JSON.stringify(shape)}`);
  }
  const [rows, cols] = shape as [number, number];
  const data = tensor.data;
  if (!Array.isArray(data) || !data.every((id) => typeof id === "number")) {
    throw fail("data must be an array of token ids");
  }
  const crow = tensor.sparse_crow_indices;
  const col = tensor.sparse_col_indices;
  if (crow == null && col == null) return { rows, cols, data };
  if (!Array.isArray(crow) || !Array.isArray(col)) {
    throw fail("a sparse tensor needs both sparse_crow_indices and sparse_col_indices");
  }
  const consistent =
    crow.length === rows + 1 &&
    crow[0] === 0 &&
    crow[rows] === data.length &&
    col.length === data.length &&
    crow.every((start, i) => Number.isSafeInteger(start) && (i === 0 || start >= crow[i - 1]!)) &&
    col.every((c) => Number.isSafeInteger(c) && c >= 0 && c < cols);
  if (!consistent)
    throw fail(`CSR indices do not describe a [${rows}, ${cols}] tensor of ${data.length} values`);
  const dense = new Array<number>(rows * cols).fill(SKIP);
  for (let row = 0; row < rows; row++) {
    for (let k = crow[row]!; k < crow[row + 1]!; k++) dense[row * cols + col[k]!] = data[k]!;
  }
  return { rows, cols, data: dense };
}

/**
 * The answer's `target_prompt_logprobs`: float32 in the request's layout — the same CSR index
 * arrays when it was sparse, values only at the listed cells.
 */
export function targetLogprobsTensor(request: TensorData, logprobs: Matrix<Float64Array>): TensorData {
  const shape = [logprobs.rows, logprobs.cols];
  const crow = request.sparse_crow_indices;
  const col = request.sparse_col_indices;
  if (crow == null || col == null) return { data: Array.from(logprobs.data), dtype: "float32", shape };
  const data: number[] = [];
  for (let row = 0; row < logprobs.rows; row++) {
    for (let k = crow[row]!; k < crow[row + 1]!; k++)
      data.push(logprobs.data[row * logprobs.cols + col[k]!]!);
  }
  return { data, dtype: "float32", shape, sparse_crow_indices: [...crow], sparse_col_indices: [...col] };
}

/** The answer's `prompt_alt_tokens`: ids (int64) and their logprobs (float32), [len(prompt) − 1, k]. */
export function promptAltTokens(alt: NonNullable<PromptOutputs["altTokens"]>) {
  const shape = [alt.tokens.rows, alt.tokens.cols];
  return {
    tokens: { data: Array.from(alt.tokens.data), dtype: "int64", shape } satisfies TensorData,
    logprobs: { data: Array.from(alt.logprobs.data), dtype: "float32", shape } satisfies TensorData,
  };
}
