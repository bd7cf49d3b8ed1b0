/**
 * tiktokenTokenizer: a Tokenizer over tiktoken-style ranks (the `tiktoken.model` format Kimi ships),
 * checked with a synthetic rank file made here.
 */

import { describe, expect, it } from "vitest";
import { TokenizerError } from "../src/lib/tokenizer/index.js";
import { type TiktokenTokenizerOptions, tiktokenTokenizer } from "../src/toolkit/renderers/index.js";

const base64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
const BYTES = Array.from({ length: 256 }, (_, b) => `${btoa(String.fromCharCode(b))} ${b}`);
// `bc` ranks before `ab`: tiktoken merges the lowest-ranked pair first, wherever it is.
const MERGES = [
  ["bc", 256],
  ["ab", 257],
  ["cd", 258],
  [" w", 259],
  [" wo", 260],
  ["or", 261],
  ["hello", 262],
] as const;
const RANK_FILE = [...BYTES, ...MERGES.map(([text, rank]) => `${base64(text)} ${rank}`)].join("\n");
const SPECIAL = { "<|end|>": 1000, "<|end|>!": 1001, "<|bos|>": 1002 };
const PATTERN = / ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+/u;

const make = (extra: Partial<TiktokenTokenizerOptions> = {}) =>
  tiktokenTokenizer({ ranks: RANK_FILE, specialTokens: SPECIAL, pattern: PATTERN, ...extra });

describe("tiktokenTokenizer", () => {
  it("merges byte pairs lowest rank first, and takes a whole piece that has a rank", async () => {
    const tokenizer = await make();
    // a b c d: `bc` (256) first, then no pair of the result has a rank.
    expect(tokenizer.encode("abcd")).toEqual([97, 256, 100]);
    expect(tokenizer.encode("hello")).toEqual([262]);
    // The pattern cuts " world" off "hello": " w"+"o" → " wo", then "or" can no longer form.
    expect(tokenizer.encode("hello world")).toEqual([262, 260, 114, 108, 100]);
  });

  it("encodes a piece longer than a spread's argument limit (one 200,000-letter word)", async () => {
    const tokenizer = await make();
    const tokens = tokenizer.encode("x".repeat(200_000));
    expect(tokens).toHaveLength(200_000);
    expect(new Set(tokens)).toEqual(new Set([120]));
  });

  it("recognises special tokens anywhere, longest first, and decodes back", async () => {
    const tokenizer = await make();
    const ids = tokenizer.encode("ab<|end|>!cd<|end|>");
    expect(ids).toEqual([257, 1001, 258, 1000]);
    expect(tokenizer.decode(ids)).toBe("ab<|end|>!cd<|end|>");
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe("abcd");
  });

  it("decodes UTF-8 split across tokens; unknown ids are left out", async () => {
    const tokenizer = await make();
    const ids = tokenizer.encode("é🎉");
    expect(ids).toHaveLength(6); // one id per byte: no merges for them
    expect(tokenizer.decode([...ids, 99_999])).toBe("é🎉");
  });

  it("knows its vocabulary, special tokens, BOS and EOS", async () => {
    const tokenizer = await make({ id: "toy", bosToken: "<|bos|>", eosToken: "<|end|>", addBosToken: true });
    expect(tokenizer.id).toBe("toy");
    expect(tokenizer.vocabSize).toBe(1003);
    expect(tokenizer.bosTokenId).toBe(1002);
    expect(tokenizer.eosTokenId).toBe(1000);
    expect(tokenizer.padTokenId).toBeNull();
    expect(tokenizer.specialTokens.get("<|end|>!")).toBe(1001);
    expect(tokenizer.tokenToId("hello")).toBe(262);
    expect(tokenizer.tokenToId("<|end|>")).toBe(1000);
    expect(tokenizer.tokenToId("zzz")).toBeUndefined();
    expect(tokenizer.idToToken(259)).toBe(" w");
    expect(tokenizer.idToToken(1001)).toBe("<|end|>!");
    expect(tokenizer.encode("ab")).toEqual([1002, 257]);
    expect(tokenizer.encode("ab", { addSpecialTokens: false })).toEqual([257]);
  });

  it("takes the ranks as byte/rank pairs too", async () => {
    const pairs = [
      ...Array.from({ length: 256 }, (_, b) => [Uint8Array.of(b), b] as const),
      [new TextEncoder().encode("bc"), 256] as const,
    ];
    expect((await tiktokenTokenizer({ ranks: pairs, pattern: PATTERN })).encode("abc")).toEqual([97, 256]);
  });

  it("reports bad rank files, missing byte ranks and unknown special names as TokenizerError", async () => {
    await expect(tiktokenTokenizer({ ranks: "not-base64!! x", pattern: PATTERN })).rejects.toThrow(
      TokenizerError,
    );
    const onlyA = await tiktokenTokenizer({ ranks: "YQ== 97\n", pattern: PATTERN });
    expect(() => onlyA.encode("b")).toThrow(/has no rank for the bytes 62/);
    await expect(make({ eosToken: "<|nope|>" })).rejects.toThrow(
      /the EOS token <\|nope\|> is not a special token/,
    );
  });
});
