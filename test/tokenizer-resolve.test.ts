import { describe, expect, it } from "vitest";
import { TinkerError } from "../src/core/errors.js";
import {
  BYTE_LEVEL_TOKENIZER_ID,
  canonicalTokenizerId,
  isPrivateTokenizerId,
  LLAMA3_TOKENIZER_ID,
  PINNED_TOKENIZER_REVISIONS,
  pinnedTokenizerRevision,
  resolveTokenizerId,
  TokenizerError,
  tokenizerIdForModelName,
} from "../src/lib/tokenizer/index.js";

/** A get_info response as the server sends it. */
function info(model_name: string | null, tokenizer_id?: string | null) {
  return { model_id: "m", model_data: { arch: "x", model_name, tokenizer_id }, model_name };
}

describe("resolveTokenizerId (Python 0.25.0 _load_tokenizer_from_model_info)", () => {
  it("uses model_data.tokenizer_id when the server sends one", () => {
    expect(resolveTokenizerId(info("Qwen/Qwen3-8B", "Qwen/Qwen3-8B-Tokenizer"))).toBe(
      "Qwen/Qwen3-8B-Tokenizer",
    );
    // … even when the model name would trigger a heuristic
    expect(resolveTokenizerId(info("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"))).toBe(
      "meta-llama/Llama-3.1-8B",
    );
    expect(resolveTokenizerId(info("org/model/variant", "org/model/variant"))).toBe("org/model/variant");
  });

  it("does not strip a ':' suffix from an explicit tokenizer_id (Python strips only the model name)", () => {
    expect(resolveTokenizerId(info("Qwen/Qwen3-8B:x", "a/b:c"))).toBe("a/b:c");
  });

  it("falls back to the model name when tokenizer_id is null, missing or empty", () => {
    expect(resolveTokenizerId(info("Qwen/Qwen3-8B", null))).toBe("Qwen/Qwen3-8B");
    expect(resolveTokenizerId(info("Qwen/Qwen3-8B"))).toBe("Qwen/Qwen3-8B");
    expect(resolveTokenizerId(info("Qwen/Qwen3-8B", ""))).toBe("Qwen/Qwen3-8B");
  });

  it("strips everything from the first ':' of the model name", () => {
    expect(resolveTokenizerId(info("Qwen/Qwen3-8B:peft:123"))).toBe("Qwen/Qwen3-8B");
    expect(tokenizerIdForModelName("org/model/variant:tag")).toBe("org/model");
    expect(tokenizerIdForModelName("meta-llama/Llama-3.2-1B:abc")).toBe(LLAMA3_TOKENIZER_ID);
  });

  it("maps every meta-llama/Llama-3* to the ungated Thinking Machines mirror", () => {
    expect(LLAMA3_TOKENIZER_ID).toBe("thinkingmachineslabinc/meta-llama-3-instruct-tokenizer");
    for (const name of [
      "meta-llama/Llama-3.1-8B",
      "meta-llama/Llama-3.1-70B-Instruct",
      "meta-llama/Llama-3.2-1B",
      "meta-llama/Llama-3.3-70B-Instruct",
      "meta-llama/Llama-3",
      "meta-llama/Llama-3.1-8B/some-variant",
    ]) {
      expect(resolveTokenizerId(info(name))).toBe(LLAMA3_TOKENIZER_ID);
    }
    // Only that exact prefix (case-sensitive, as Python's str.startswith)
    expect(resolveTokenizerId(info("meta-llama/Llama-2-7b-hf"))).toBe("meta-llama/Llama-2-7b-hf");
    expect(resolveTokenizerId(info("meta-llama/llama-3.1-8b"))).toBe("meta-llama/llama-3.1-8b");
    expect(resolveTokenizerId(info("Meta-Llama/Llama-3.1-8B"))).toBe("Meta-Llama/Llama-3.1-8B");
  });

  it("drops the variant of three-part names org/model/variant", () => {
    expect(resolveTokenizerId(info("Qwen/Qwen3-30B-A3B/base"))).toBe("Qwen/Qwen3-30B-A3B");
    expect(resolveTokenizerId(info("deepseek-ai/DeepSeek-V3.1/fp8"))).toBe("deepseek-ai/DeepSeek-V3.1");
    // two or three slashes are left alone
    expect(resolveTokenizerId(info("a/b/c/d"))).toBe("a/b/c/d");
    expect(resolveTokenizerId(info("openai/gpt-oss-20b"))).toBe("openai/gpt-oss-20b");
    expect(resolveTokenizerId(info("gpt2"))).toBe("gpt2");
  });

  it("renames moonshotai/Kimi-K2.5-Text-Only to moonshotai/Kimi-K2.5, from either source", () => {
    expect(resolveTokenizerId(info("moonshotai/Kimi-K2.5-Text-Only"))).toBe("moonshotai/Kimi-K2.5");
    expect(resolveTokenizerId(info("x/y", "moonshotai/Kimi-K2.5-Text-Only"))).toBe("moonshotai/Kimi-K2.5");
    expect(canonicalTokenizerId("moonshotai/Kimi-K2.5")).toBe("moonshotai/Kimi-K2.5");
    expect(canonicalTokenizerId("moonshotai/Kimi-K2-Thinking")).toBe("moonshotai/Kimi-K2-Thinking");
  });

  it("pins the Kimi revisions exactly as Python does", () => {
    expect(PINNED_TOKENIZER_REVISIONS).toEqual({
      "moonshotai/Kimi-K2-Thinking": "612681931a8c906ddb349f8ad0f582cb552189cd",
      "moonshotai/Kimi-K2.5": "4d01dfe0332d63057c186e0b262165819efb6611",
      "moonshotai/Kimi-K2.6": "b5aabbfb20227ed42becbf5541dbffd213942c58",
    });
    expect(pinnedTokenizerRevision(resolveTokenizerId(info("moonshotai/Kimi-K2.5-Text-Only")))).toBe(
      "4d01dfe0332d63057c186e0b262165819efb6611",
    );
    expect(pinnedTokenizerRevision("moonshotai/Kimi-K2-Instruct")).toBeUndefined();
    expect(pinnedTokenizerRevision("Qwen/Qwen3-8B")).toBeUndefined();
    expect(pinnedTokenizerRevision("constructor")).toBeUndefined();
  });

  it("keeps TML/ and thinkingmachines/ ids (Python's private tml_tokenizers package) and flags them", () => {
    expect(resolveTokenizerId(info("TML/some-model"))).toBe("TML/some-model");
    expect(resolveTokenizerId(info("thinkingmachines/tok/variant"))).toBe("thinkingmachines/tok");
    expect(isPrivateTokenizerId("TML/some-model")).toBe(true);
    expect(isPrivateTokenizerId("thinkingmachines/x")).toBe(true);
    expect(isPrivateTokenizerId("thinkingmachineslabinc/meta-llama-3-instruct-tokenizer")).toBe(false);
  });

  it("gives the local backend's models the byte-level tokenizer", () => {
    expect(BYTE_LEVEL_TOKENIZER_ID).toBe("tinker-ts/byte-level");
    // TrainingClient: the local backend sends tokenizer_id
    expect(resolveTokenizerId(info("tinker-ts/byte-lm-tiny", "tinker-ts/byte-level"))).toBe(
      BYTE_LEVEL_TOKENIZER_ID,
    );
    // SamplingClient: only the base model is known
    expect(resolveTokenizerId({ model_name: "tinker-ts/byte-lm-tiny" })).toBe(BYTE_LEVEL_TOKENIZER_ID);
    expect(tokenizerIdForModelName("tinker-ts/byte-lm-tiny:ckpt")).toBe(BYTE_LEVEL_TOKENIZER_ID);
  });

  it("reads the top-level model_name when model_data has none (the SamplingClient's base_model)", () => {
    expect(resolveTokenizerId({ model_name: "Qwen/Qwen3-8B" })).toBe("Qwen/Qwen3-8B");
    expect(resolveTokenizerId({ model_data: { model_name: "a/b" }, model_name: "c/d" })).toBe("a/b");
    expect(resolveTokenizerId({ model_data: {}, model_name: "c/d/e" })).toBe("c/d");
  });

  it("throws a TokenizerError when there is nothing to go on", () => {
    for (const bad of [{}, { model_data: null }, info(null, null), { model_name: "" }]) {
      expect(() => resolveTokenizerId(bad)).toThrow(TokenizerError);
    }
    try {
      resolveTokenizerId({});
    } catch (error) {
      expect(error).toBeInstanceOf(TinkerError);
    }
  });
});
