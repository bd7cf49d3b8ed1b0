/**
 * targetPromptLogprobsTensor: the int64 request tensor of sample(target_prompt_logprobs) (UPSTREAM.md
 * P2), dense or CSR, whose float32 answer is SampleResponse field 5.
 */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../src/core/errors.js";
import { targetPromptLogprobsTensor } from "../src/lib/target-prompt-logprobs.js";
import { decodeSampleResponse, encodeSampleResponse } from "../src/wire/protobuf/index.js";

describe("targetPromptLogprobsTensor", () => {
  it("is dense when that is smaller, padding short rows with -1", () => {
    expect(targetPromptLogprobsTensor([[5, 6], [7], [8, -1]])).toStrictEqual({
      data: [5, 6, 7, -1, 8, -1],
      dtype: "int64",
      shape: [3, 2],
    });
  });

  it("is CSR when (rows + 1) + 2·nnz < rows·K, listing only the ids (unlisted cells mean -1)", () => {
    // 4 rows, K = 3, 2 ids: 5 + 4 = 9 < 12.
    expect(targetPromptLogprobsTensor([[], [-1, -1, 42], [], [7]])).toStrictEqual({
      data: [42, 7],
      dtype: "int64",
      shape: [4, 3],
      sparse_crow_indices: [0, 0, 1, 1, 2],
      sparse_col_indices: [2, 0],
    });
    // At equality (3 rows, K = 2, 1 id: 4 + 2 = 6) dense is kept.
    expect(targetPromptLogprobsTensor([[3], [], []]).sparse_crow_indices).toBeUndefined();
  });

  it("honours a forced layout", () => {
    expect(targetPromptLogprobsTensor([[1, 2]], "csr")).toStrictEqual({
      data: [1, 2],
      dtype: "int64",
      shape: [1, 2],
      sparse_crow_indices: [0, 2],
      sparse_col_indices: [0, 1],
    });
    expect(targetPromptLogprobsTensor([[], [], [], [9]], "dense").data).toEqual([-1, -1, -1, 9]);
  });

  it("rejects bad ids and a tensor naming no id, with ValidationError paths", () => {
    const issues = (targets: unknown) => {
      try {
        targetPromptLogprobsTensor(targets as number[][]);
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).issues.map((issue) => issue.path);
      }
      throw new Error("expected a ValidationError");
    };
    expect(issues([[1, -2], [0.5], [2 ** 53]])).toEqual([
      "target_prompt_logprobs[0][1]",
      "target_prompt_logprobs[1][0]",
      "target_prompt_logprobs[2][0]",
    ]);
    expect(issues([[1], "2"])).toEqual(["target_prompt_logprobs[1]"]);
    expect(issues([[], [-1]])).toEqual(["target_prompt_logprobs"]);
    expect(issues([])).toEqual(["target_prompt_logprobs"]);
    expect(issues("ids")).toEqual(["target_prompt_logprobs"]);
  });
});

describe("target_prompt_logprobs request and answer", () => {
  it("an answer in the request's CSR layout keeps its indices through SampleResponse field 5", () => {
    const request = targetPromptLogprobsTensor([[], [-1, -1, 42], [], [7]]);
    const answer = {
      data: [-1.5, -0.25],
      dtype: "float32" as const,
      shape: request.shape,
      sparse_crow_indices: request.sparse_crow_indices,
      sparse_col_indices: request.sparse_col_indices,
    };
    const decoded = decodeSampleResponse(
      encodeSampleResponse({ sequences: [], target_prompt_logprobs: answer }),
    );
    expect(decoded.target_prompt_logprobs).toStrictEqual(answer);
  });
});
