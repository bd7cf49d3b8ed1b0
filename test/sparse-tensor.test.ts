/** TensorData.fromSparse, the official from_torch_sparse: CSR without the pad cells when smaller. */
import { describe, expect, it } from "vitest";
import { TensorData } from "../src/index.js";

describe("TensorData.fromSparse", () => {
  it("sends a mostly-pad 2-D tensor as CSR without its pad cells, and reads back the same grid", () => {
    const grid = [
      [-1, 7, -1, -1],
      [-1, -1, -1, -1],
      [3, -1, -1, 9],
    ];
    const tensor = TensorData.fromSparse(grid.flat(), "int64", [3, 4], -1);
    expect(tensor).toEqual({
      data: [7, 3, 9],
      dtype: "int64",
      shape: [3, 4],
      sparse_crow_indices: [0, 1, 1, 3],
      sparse_col_indices: [1, 0, 3],
    });
    // Expanding the CSR form with the pad gives the grid back.
    const dense = new Array(12).fill(-1);
    const rows = tensor.sparse_crow_indices!;
    for (let r = 0; r + 1 < rows.length; r++) {
      for (let k = rows[r]!; k < rows[r + 1]!; k++)
        dense[r * 4 + tensor.sparse_col_indices![k]!] = tensor.data[k];
    }
    expect(dense).toEqual(grid.flat());
  });

  it("stays dense when CSR would not be smaller, and for other ranks", () => {
    expect(TensorData.fromSparse([1, 2, 0, 4], "float32", [2, 2])).toEqual({
      data: [1, 2, 0, 4],
      dtype: "float32",
      shape: [2, 2],
    });
    expect(TensorData.fromSparse([0, 0, 0, 1], "float32", [4])).toEqual({
      data: [0, 0, 0, 1],
      dtype: "float32",
      shape: [4],
    });
  });
});
