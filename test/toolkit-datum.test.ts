/** Datum builders: the shift done once, truncation before the shift, and validation with paths. */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import {
  type ChatMessage,
  datumFromConversation,
  datumFromPromptCompletion,
  datumFromTokensAndWeights,
  getRenderer,
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
  const renderer = getRenderer("role_colon", new ByteLevelTokenizer());
  const messages: ChatMessage[] = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "yo" },
    { role: "user", content: "again?" },
    { role: "assistant", content: "sure" },
  ];

  it("is the renderer's supervised example, shifted once", () => {
    for (const trainOnWhat of ["last_assistant_message", "all_assistant_messages", "all_tokens"] as const) {
      const example = renderer.buildSupervisedExample(messages, { trainOnWhat });
      const d = datumFromConversation(renderer, messages, { trainOnWhat });
      expect(d).toEqual(datumFromTokensAndWeights(example.tokens, example.weights));
      expect(parts(d).input).toEqual(example.tokens.slice(0, -1));
      expect(parts(d).weights.data).toEqual(example.weights.slice(1));
    }
    // Without trainOnWhat the renderer's default applies.
    const byDefault = renderer.buildSupervisedExample(messages);
    expect(datumFromConversation(renderer, messages)).toEqual(
      datumFromTokensAndWeights(byDefault.tokens, byDefault.weights),
    );
  });

  it("truncates to maxLength, and refuses a cut that leaves nothing to train on", () => {
    const { tokens, weights } = renderer.buildSupervisedExample(messages, {
      trainOnWhat: "all_assistant_messages",
    });
    const firstWeighted = weights.indexOf(1);
    const cut = datumFromConversation(renderer, messages, {
      trainOnWhat: "all_assistant_messages",
      maxLength: firstWeighted + 2,
    });
    expect(parts(cut).input).toEqual(tokens.slice(0, firstWeighted + 1));
    expect(parts(cut).weights.data).toEqual(weights.slice(1, firstWeighted + 2));
    expect(() =>
      datumFromConversation(renderer, messages, {
        trainOnWhat: "all_assistant_messages",
        maxLength: firstWeighted,
      }),
    ).toThrow(/all zero after truncation/);
  });
});
