/** Datum builders: the shift done once, truncation before the shift, and validation with paths. */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import {
  datumFromConversation,
  datumFromPromptCompletion,
  datumFromTokensAndWeights,
} from "../src/toolkit/index.js";
import type { Datum } from "../src/wire/types.js";

function parts(d: Datum) {
  const chunk = d.model_input.chunks[0]!;
  return {
    input: chunk.type === "encoded_text" ? chunk.tokens : [],
    targets: d.loss_fn_inputs.target_tokens!,
    weights: d.loss_fn_inputs.weights!,
  };
}

function issuePaths(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues.map((i) => i.path);
  }
  throw new Error("expected a ValidationError");
}

describe("datumFromTokensAndWeights", () => {
  it("right-shifts the inputs and left-shifts targets and weights", () => {
    const d = datumFromTokensAndWeights([10, 11, 12, 13], [0, 0, 1, 0.5]);
    const { input, targets, weights } = parts(d);
    expect(d.model_input.chunks).toHaveLength(1);
    expect(input).toEqual([10, 11, 12]);
    expect(targets).toEqual({ data: [11, 12, 13], dtype: "int64", shape: [3] });
    expect(weights).toEqual({ data: [0, 1, 0.5], dtype: "float32", shape: [3] });
  });

  it("truncates the full sequence to maxLength before shifting", () => {
    const d = datumFromTokensAndWeights([1, 2, 3, 4, 5, 6], [0, 1, 1, 1, 1, 1], { maxLength: 4 });
    const { input, targets, weights } = parts(d);
    expect(input).toEqual([1, 2, 3]);
    expect(targets.data).toEqual([2, 3, 4]);
    expect(weights.data).toEqual([1, 1, 1]);
    // A maxLength at or beyond the length changes nothing.
    expect(datumFromTokensAndWeights([1, 2, 3], [0, 1, 1], { maxLength: 3 })).toEqual(
      datumFromTokensAndWeights([1, 2, 3], [0, 1, 1]),
    );
  });

  it("does not keep references to the caller's arrays", () => {
    const tokens = [1, 2, 3];
    const weights = [0, 1, 1];
    const d = datumFromTokensAndWeights(tokens, weights);
    tokens[0] = 99;
    weights[2] = 7;
    expect(parts(d).input).toEqual([1, 2]);
    expect(parts(d).weights.data).toEqual([1, 1]);
  });

  it("rejects bad input with a path", () => {
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2, 3], [0, 1]))).toEqual(["weights"]);
    expect(issuePaths(() => datumFromTokensAndWeights([1], [1]))).toEqual(["tokens"]);
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2, 3], [0, Number.NaN, 1]))).toEqual([
      "weights[1]",
    ]);
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2, 3], [0, 1, -1]))).toEqual(["weights[2]"]);
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2, 3], [0, 1, Number.POSITIVE_INFINITY]))).toEqual([
      "weights[2]",
    ]);
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2.5, 3], [0, 1, 1]))).toEqual(["tokens[1]"]);
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2, 3], [0, 1, 1], { maxLength: 1 }))).toEqual([
      "options.maxLength",
    ]);
  });

  it("rejects a datum that trains nothing unless allowZeroWeights", () => {
    expect(issuePaths(() => datumFromTokensAndWeights([1, 2, 3], [1, 0, 0]))).toEqual(["weights"]);
    // Truncation that cuts every weighted token is the common way to get there.
    expect(() => datumFromTokensAndWeights([1, 2, 3, 4], [0, 0, 0, 1], { maxLength: 3 })).toThrow(
      /all zero after truncation to maxLength 3/,
    );
    const d = datumFromTokensAndWeights([1, 2, 3], [1, 0, 0], { allowZeroWeights: true });
    expect(parts(d).weights.data).toEqual([0, 0]);
  });
});

describe("datumFromPromptCompletion", () => {
  const tokenizer = new ByteLevelTokenizer();

  it("weighs the completion and the EOS only, with the prompt's BOS and no BOS in the completion", () => {
    const d = datumFromPromptCompletion(tokenizer, "Q:", " A");
    const all = [256, 81, 58, 32, 65, 257]; // <|bos|> "Q:" " A" <|eos|>
    const { input, targets, weights } = parts(d);
    expect(input).toEqual(all.slice(0, -1));
    expect(targets.data).toEqual(all.slice(1));
    expect(weights.data).toEqual([0, 0, 1, 1, 1]);
  });

  it("takes token ids as they are and leaves the EOS out when asked", () => {
    const d = datumFromPromptCompletion(tokenizer, [5, 6], [7, 8], { addEos: false });
    expect(parts(d).input).toEqual([5, 6, 7]);
    expect(parts(d).targets.data).toEqual([6, 7, 8]);
    expect(parts(d).weights.data).toEqual([0, 1, 1]);
  });

  it("truncates like datumFromTokensAndWeights and refuses an empty completion", () => {
    const d = datumFromPromptCompletion(tokenizer, [5, 6], [7, 8, 9], { maxLength: 4 });
    expect(parts(d).targets.data).toEqual([6, 7, 8]);
    expect(parts(d).weights.data).toEqual([0, 1, 1]);
    expect(issuePaths(() => datumFromPromptCompletion(tokenizer, [5, 6], [], { addEos: false }))).toEqual([
      "completion",
    ]);
    expect(() => datumFromPromptCompletion(tokenizer, [5, 6, 7, 8], [9], { maxLength: 3 })).toThrow(
      /all zero/,
    );
  });
});

describe("datumFromConversation", () => {
  // A minimal "role: content" renderer over the byte-level tokenizer, implementing the renderer
  // contract the builder uses: it only has to hand over tokens and per-token weights.
  const tokenizer = new ByteLevelTokenizer();
  const renderer = {
    name: "test_role_colon",
    tokenizer,
    buildSupervisedExample(
      messages: { role: string; content: string }[],
      options: { trainOnWhat?: string } = {},
    ) {
      const tokens: number[] = [];
      const weights: number[] = [];
      const lastAssistant = messages.map((m) => m.role).lastIndexOf("assistant");
      messages.forEach((m, i) => {
        const piece = tokenizer.encode(`${m.role}: ${m.content}\n`, { addSpecialTokens: false });
        const trained =
          options.trainOnWhat === "all_tokens" || (m.role === "assistant" && i === lastAssistant);
        tokens.push(...piece);
        weights.push(...piece.map(() => (trained ? 1 : 0)));
      });
      return { tokens, weights };
    },
  };

  it("shifts the renderer's tokens and weights, passing trainOnWhat and maxLength through", () => {
    const messages = [
      { role: "user" as const, content: "hi" },
      { role: "assistant" as const, content: "yo" },
    ];
    const example = renderer.buildSupervisedExample(messages);
    expect(datumFromConversation(renderer as never, messages)).toEqual(
      datumFromTokensAndWeights(example.tokens, example.weights),
    );
    const all = datumFromConversation(renderer as never, messages, { trainOnWhat: "all_tokens" });
    expect((parts(all).weights.data as number[]).every((w) => w === 1)).toBe(true);
    const cut = datumFromConversation(renderer as never, messages, { maxLength: 12 });
    expect(parts(cut).input).toHaveLength(11);
    // Cut to 9 bytes only "user: hi\n" is left: nothing weighted.
    expect(() => datumFromConversation(renderer as never, messages, { maxLength: 9 })).toThrow(/all zero/);
  });
});
