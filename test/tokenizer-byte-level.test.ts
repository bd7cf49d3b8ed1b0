import { describe, expect, it } from "vitest";
import {
  BYTE_LEVEL_BOS_TOKEN,
  BYTE_LEVEL_EOS_TOKEN,
  BYTE_LEVEL_TOKENIZER_ID,
  BYTE_LEVEL_VOCAB_SIZE,
  ByteLevelTokenizer,
  loadTokenizer,
} from "../src/lib/tokenizer/index.js";
import {
  BOS_TOKEN,
  decodeTokens,
  EOS_TOKEN,
  encodeText,
  isValidToken,
  TOKENIZER_ID,
  VOCAB_SIZE,
} from "../src/local/engine/tokenizer.js";

const tokenizer = new ByteLevelTokenizer();

const TEXTS = [
  "",
  "Hello, world",
  "Hi é",
  "naïve café 日本語 😀👍🏽 \u0000 \u007f",
  "<|bos|> is text here",
  "line1\r\nline2\n\ttab",
  "lone surrogates become U+FFFD: \ud800",
];

/** Deterministic pseudo-random ids in [lo, hi). */
function randomIds(count: number, lo: number, hi: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return lo + (state % (hi - lo));
  });
}

describe("ByteLevelTokenizer agrees with the local engine's tokenizer", () => {
  it("has the engine's constants", () => {
    expect(BYTE_LEVEL_BOS_TOKEN).toBe(BOS_TOKEN);
    expect(BYTE_LEVEL_EOS_TOKEN).toBe(EOS_TOKEN);
    expect(BYTE_LEVEL_VOCAB_SIZE).toBe(VOCAB_SIZE);
    expect(BYTE_LEVEL_TOKENIZER_ID).toBe(TOKENIZER_ID);
    expect(tokenizer.id).toBe(TOKENIZER_ID);
    expect(tokenizer.vocabSize).toBe(VOCAB_SIZE);
    expect(tokenizer.bosTokenId).toBe(BOS_TOKEN);
    expect(tokenizer.eosTokenId).toBe(EOS_TOKEN);
    for (let id = -2; id < VOCAB_SIZE + 2; id++) {
      expect(tokenizer.idToToken(id) !== undefined).toBe(isValidToken(id));
    }
  });

  it("encodes as encodeText, with <|bos|> first when special tokens are added", () => {
    for (const text of TEXTS) {
      expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual(encodeText(text));
      expect(tokenizer.encode(text)).toEqual([BOS_TOKEN, ...encodeText(text)]);
      expect(tokenizer.encode(text, { addSpecialTokens: true })).toEqual([BOS_TOKEN, ...encodeText(text)]);
    }
    expect(tokenizer.encode("Hi é", { addSpecialTokens: false })).toEqual([72, 105, 32, 0xc3, 0xa9]);
  });

  it("decodes as decodeTokens, invalid UTF-8, specials and unknown ids included", () => {
    const sequences = [
      [BOS_TOKEN, 104, 105, EOS_TOKEN],
      [0xe6, 0x97, BOS_TOKEN, 0xa5, 0x41],
      [0xff, 0xfe, 0x80],
      [300, -1, 1.5, 65],
      randomIds(500, 0, 256, 1),
      randomIds(500, 0, VOCAB_SIZE, 2),
      randomIds(200, 0, VOCAB_SIZE + 10, 3),
      ...TEXTS.map((text) => encodeText(text)),
    ];
    for (const ids of sequences) {
      expect(tokenizer.decode(ids)).toBe(decodeTokens(ids));
      expect(tokenizer.decode(Int32Array.from(ids.filter(Number.isInteger)))).toBe(
        decodeTokens(ids.filter(Number.isInteger)),
      );
    }
    expect(tokenizer.decode([BOS_TOKEN, 104, 105, EOS_TOKEN])).toBe("<|bos|>hi<|eos|>");
  });
});

describe("ByteLevelTokenizer", () => {
  it("round-trips any text through UTF-8", () => {
    for (const text of [...TEXTS.slice(0, -1), "\ufeffstarts with a BOM", "x\ufeff"]) {
      expect(tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false }))).toBe(text);
      expect(tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
    let all = "";
    for (let cp = 0; cp < 0x11000; cp += 7) if (cp < 0xd800 || cp > 0xdfff) all += String.fromCodePoint(cp);
    expect(tokenizer.decode(tokenizer.encode(all, { addSpecialTokens: false }))).toBe(all);
  });

  it("skips special tokens on request, but still shows unknown ids", () => {
    expect(tokenizer.decode([BOS_TOKEN, 104, EOS_TOKEN, 105], { skipSpecialTokens: true })).toBe("hi");
    expect(tokenizer.decode([999, 104], { skipSpecialTokens: true })).toBe("<|unk:999|>h");
  });

  it("never reads special tokens in text", () => {
    expect(tokenizer.encode("<|eos|>", { addSpecialTokens: false })).toHaveLength(7);
  });

  it("names tokens <0xNN>, <|bos|> and <|eos|>", () => {
    expect(tokenizer.idToToken(0)).toBe("<0x00>");
    expect(tokenizer.idToToken(255)).toBe("<0xFF>");
    expect(tokenizer.idToToken(BOS_TOKEN)).toBe("<|bos|>");
    expect(tokenizer.idToToken(258)).toBeUndefined();
    expect(tokenizer.tokenToId("<0x41>")).toBe(65);
    expect(tokenizer.tokenToId("<|eos|>")).toBe(EOS_TOKEN);
    expect(tokenizer.tokenToId("A")).toBeUndefined();
    expect(tokenizer.specialTokens).toEqual(
      new Map([
        ["<|bos|>", BOS_TOKEN],
        ["<|eos|>", EOS_TOKEN],
      ]),
    );
    expect(tokenizer.chatTemplate).toBeNull();
    expect(tokenizer.padTokenId).toBeNull();
  });

  it("is what loadTokenizer returns for tinker-ts/byte-level, without any I/O", async () => {
    const fetch = () => Promise.reject(new Error("no I/O expected"));
    const loaded = await loadTokenizer(BYTE_LEVEL_TOKENIZER_ID, { fetch, loadFile: fetch });
    expect(loaded).toBeInstanceOf(ByteLevelTokenizer);
    expect(loaded).toBe(await loadTokenizer(BYTE_LEVEL_TOKENIZER_ID));
    expect(loaded.encode("A")).toEqual([BOS_TOKEN, 65]);
  });
});
