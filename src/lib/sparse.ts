/**
 * Sparse CSR tensors (PROTOCOL.md §3.2): a 2-D tensor whose cells are mostly one value (the pad) can
 * travel as its other cells plus `sparse_crow_indices` / `sparse_col_indices`. The official client
 * sends CSR when it is smaller, by one rule stated here once: `(rows + 1) + 2·nnz < rows·cols`.
 */
import type { DType, TensorData } from "../wire/types.js";

/** Whether CSR is smaller than the dense form for a `rows × cols` tensor with `nnz` cells set. */
export function csrIsSmaller(rows: number, cols: number, nnz: number): boolean {
  return rows + 1 + 2 * nnz < rows * cols;
}

/**
 * A dense row-major 2-D tensor as CSR, leaving out the cells equal to `pad` (which a reader fills
 * back in: 0 for weights, -1 for the ids of `target_prompt_logprobs`).
 */
export function toCsr(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  dtype: DType,
  pad: number,
): TensorData {
  const data: number[] = [];
  const columns: number[] = [];
  const rowStarts = [0];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const value = values[r * cols + c]!;
      if (value === pad) continue;
      data.push(value);
      columns.push(c);
    }
    rowStarts.push(data.length);
  }
  return { data, dtype, shape: [rows, cols], sparse_crow_indices: rowStarts, sparse_col_indices: columns };
}

/**
 * The official `TensorData.from_torch_sparse(tensor, pad_value)`: a dense row-major tensor of
 * `shape`, sent as CSR (without the `pad` cells) when that is smaller, else dense. Only 2-D tensors
 * have a CSR form.
 */
export function sparseTensor(
  values: ArrayLike<number>,
  dtype: DType,
  shape: readonly number[],
  pad = 0,
): TensorData {
  if (shape.length === 2) {
    const [rows, cols] = shape as [number, number];
    let nnz = 0;
    for (let i = 0; i < values.length; i++) if (values[i] !== pad) nnz++;
    if (csrIsSmaller(rows, cols, nnz)) return toCsr(values, rows, cols, dtype, pad);
  }
  return { data: Array.from(values), dtype, shape: [...shape] };
}
