/**
 * The request tensor of `sample(..., target_prompt_logprobs)` (P2): which token ids to score at
 * each prompt position, as the int64 `[len(prompt) - 1, K]` TensorData the wire takes.
 *
 * Row `i` lists the ids asked for at prompt position `i + 1`; a cell of -1 asks for nothing. Rows
 * may have different lengths: K is the longest, and shorter rows are padded with -1. The result
 * is sparse CSR when that is smaller, by the official client's rule for 2-D tensors (PROTOCOL.md
 * §3.2): `(rows + 1) + 2·nnz < rows·K`. In the CSR form the cells not listed are -1 (the pad value
 * upstream's `TensorData.from_torch_sparse(ids, pad_value=-1)` leaves out), not 0. The server
 * answers with a float32 tensor of the same shape and layout (`SampleResponse.target_prompt_logprobs`).
 */
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import type { TensorData } from "../wire/types.js";
import { csrIsSmaller, toCsr } from "./sparse.js";

/** The id of a cell that asks for nothing. */
export const TARGET_PROMPT_LOGPROBS_SKIP = -1;

export type TargetPromptLogprobsLayout = "auto" | "dense" | "csr";

/**
 * Builds the tensor from per-position id lists (`targets.length` must be `len(prompt) - 1`, which
 * the sampling client checks against the prompt). `layout` forces dense or CSR; "auto" (default)
 * picks the smaller. Throws ValidationError for ids that are not integers >= -1 or when no id is
 * asked for at all (the server needs at least one).
 */
export function targetPromptLogprobsTensor(
  targets: readonly (readonly number[])[],
  layout: TargetPromptLogprobsLayout = "auto",
): TensorData {
  const issues: ValidationIssue[] = [];
  if (!Array.isArray(targets)) {
    throw new ValidationError([{ path: "target_prompt_logprobs", message: "must be an array of rows" }]);
  }
  let cols = 0;
  let named = 0;
  targets.forEach((row, i) => {
    if (!Array.isArray(row)) {
      issues.push({ path: `target_prompt_logprobs[${i}]`, message: "must be an array of token ids" });
      return;
    }
    cols = Math.max(cols, row.length);
    row.forEach((id, j) => {
      if (!(Number.isSafeInteger(id) && id >= TARGET_PROMPT_LOGPROBS_SKIP)) {
        issues.push({
          path: `target_prompt_logprobs[${i}][${j}]`,
          message: `must be a token id or -1 (skip), got ${String(id)}`,
        });
      } else if (id !== TARGET_PROMPT_LOGPROBS_SKIP) {
        named++;
      }
    });
  });
  if (issues.length === 0 && named === 0) {
    issues.push({ path: "target_prompt_logprobs", message: "names no token id; at least one is needed" });
  }
  if (issues.length > 0) throw new ValidationError(issues);

  const rows = targets.length;
  const cells = denseCells(targets, rows, cols);
  const sparse = layout === "csr" || (layout === "auto" && csrIsSmaller(rows, cols, named));
  return sparse
    ? toCsr(cells, rows, cols, "int64", TARGET_PROMPT_LOGPROBS_SKIP)
    : { data: cells, dtype: "int64", shape: [rows, cols] };
}

/** The rows as a row-major `rows × cols` grid, short rows padded with -1 (skip). */
function denseCells(targets: readonly (readonly number[])[], rows: number, cols: number): number[] {
  const data = new Array<number>(rows * cols).fill(TARGET_PROMPT_LOGPROBS_SKIP);
  targets.forEach((row, i) => {
    row.forEach((id, j) => {
      data[i * cols + j] = id;
    });
  });
  return data;
}
