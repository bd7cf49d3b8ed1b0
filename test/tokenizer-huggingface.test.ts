/**
 * Hugging Face tokenizers against what Python `transformers` does with the same files
 * (test/fixtures/tokenizers/expected.json, made by golden.py there).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import {
  loadTokenizer,
  type Tokenizer,
  TokenizerError,
  type TokenizerFileLoader,
  tokenizerFromJSON,
} from "../src/lib/tokenizer/index.js";

const FIXTURES = join(import.meta.dirname, "fixtures", "tokenizers");

interface ExpectedCase {
  text: string;
  ids: number[];
  idsNoSpecial: number[];
  decoded: string;
  decodedSkipSpecial: string;
}
interface ExpectedTokenizer {
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  specialTokens: Record<string, number>;
  cases: ExpectedCase[];
}
const expected = JSON.parse(await readFile(join(FIXTURES, "expected.json"), "utf8")) as {
  tokenizers: Record<string, ExpectedTokenizer>;
};

/** Reads a fixture directory, transparently gunzipping `<name>.gz`. */
function fixtureLoader(dir: string): TokenizerFileLoader {
  return async (name) => {
    try {
      return await readFile(join(FIXTURES, dir, name), "utf8");
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") throw error;
      return gunzipSync(await readFile(join(FIXTURES, dir, `${name}.gz`))); // ENOENT propagates: "no such file"
    }
  };
}

for (const name of ["tiny-bpe", "tiny-wordpiece", "qwen3"]) {
  describe(`${name}: same ids and text as Python transformers`, () => {
    const want = expected.tokenizers[name];
    let tokenizer: Tokenizer;
    beforeAll(async () => {
      tokenizer = await loadTokenizer(`fixtures/${name}`, { loadFile: fixtureLoader(name) });
    });

    it("reports the vocabulary size, bos/eos/pad and the special tokens", () => {
      expect(tokenizer.id).toBe(`fixtures/${name}`);
      expect(tokenizer.revision).toBeUndefined();
      expect(tokenizer.vocabSize).toBe(want.vocabSize);
      expect(tokenizer.bosTokenId).toBe(want.bosTokenId);
      expect(tokenizer.eosTokenId).toBe(want.eosTokenId);
      expect(tokenizer.padTokenId).toBe(want.padTokenId);
      expect(Object.fromEntries(tokenizer.specialTokens)).toEqual(want.specialTokens);
    });

    for (const [index, c] of want.cases.entries()) {
      it(`case ${index}: ${JSON.stringify(c.text).slice(0, 50)}`, () => {
        expect(tokenizer.encode(c.text)).toEqual(c.ids);
        expect(tokenizer.encode(c.text, { addSpecialTokens: true })).toEqual(c.ids);
        expect(tokenizer.encode(c.text, { addSpecialTokens: false })).toEqual(c.idsNoSpecial);
        expect(tokenizer.decode(c.ids)).toBe(c.decoded);
        expect(tokenizer.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decodedSkipSpecial);
      });
    }
  });
}

describe("Hugging Face tokenizer details", () => {
  let qwen: Tokenizer;
  let tiny: Tokenizer;
  beforeAll(async () => {
    qwen = await loadTokenizer("Qwen/Qwen3-8B", { loadFile: fixtureLoader("qwen3") });
    tiny = await loadTokenizer("tiny", { loadFile: fixtureLoader("tiny-bpe") });
  });

  it("knows well-known Qwen3 ids", () => {
    expect(qwen.encode("Hello world")).toEqual([9707, 1879]);
    expect(qwen.tokenToId("<|im_end|>")).toBe(151645);
    expect(qwen.tokenToId("<|endoftext|>")).toBe(151643);
    expect(qwen.idToToken(9707)).toBe("Hello");
    expect(qwen.idToToken(1879)).toBe("Ġworld");
    expect(qwen.idToToken(10 ** 9)).toBeUndefined();
  });

  it("drops ids it does not know when decoding, as the Rust decoder does", () => {
    // Qwen3's embedding has 151 936 rows but the tokenizer 151 669 ids: a sampler can emit the others.
    expect(qwen.decode([9707, 151900, 1879])).toBe("Hello world");
    expect(qwen.decode([151900])).toBe("");
    expect(qwen.decode([])).toBe("");
    expect(qwen.decode(new Int32Array([9707, 1879]))).toBe("Hello world");
    expect(() => qwen.decode([1.5])).toThrow(TypeError);
  });

  it("exposes the raw chat template", () => {
    expect(typeof qwen.chatTemplate).toBe("string");
    expect(qwen.chatTemplate).toContain("<|im_start|>");
    expect(tiny.chatTemplate).toEqual({
      default: "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}",
      tool_use: "{{ tools }}",
    });
  });

  it("round-trips text", () => {
    const text =
      "Tinker 🤖 trains: naïve café, 日本語, tabs\tand\r\nnewlines, <|im_start|>specials<|im_end|>";
    expect(qwen.decode(qwen.encode(text))).toBe(text);
    expect(tiny.decode(tiny.encode(text), { skipSpecialTokens: true })).toBe(text);
  });

  it("reads chat_template.jinja when the config has no chat_template, and works without a config", async () => {
    const tokenizerJson = await readFile(join(FIXTURES, "tiny-bpe", "tokenizer.json"), "utf8");
    const requested: string[] = [];
    const withJinja = await loadTokenizer("jinja", {
      cache: false,
      loadFile: async (name) => {
        requested.push(name);
        if (name === "tokenizer.json") return tokenizerJson;
        if (name === "chat_template.jinja") return new TextEncoder().encode("{{ messages }}");
        return null;
      },
    });
    expect(requested.sort()).toEqual(["chat_template.jinja", "tokenizer.json", "tokenizer_config.json"]);
    expect(withJinja.chatTemplate).toBe("{{ messages }}");
    // No config: no declared bos/eos, but the post-processor still adds <|begin|>
    expect(withJinja.bosTokenId).toBeNull();
    expect(withJinja.eosTokenId).toBeNull();
    expect(withJinja.encode("Hello world")).toEqual([0, 283, 281]);

    // A config with a chat template: chat_template.jinja is not read
    requested.length = 0;
    const loader = fixtureLoader("tiny-bpe");
    await loadTokenizer("no-jinja", {
      cache: false,
      loadFile: (name) => {
        requested.push(name);
        return loader(name);
      },
    });
    expect(requested.sort()).toEqual(["tokenizer.json", "tokenizer_config.json"]);
  });

  it("builds from parsed JSON with tokenizerFromJSON", async () => {
    const tokenizerJson = JSON.parse(await readFile(join(FIXTURES, "tiny-bpe", "tokenizer.json"), "utf8"));
    const tokenizerConfig = JSON.parse(
      await readFile(join(FIXTURES, "tiny-bpe", "tokenizer_config.json"), "utf8"),
    );
    const tokenizer = await tokenizerFromJSON(
      { tokenizerJson, tokenizerConfig },
      { id: "mine", revision: "v1" },
    );
    expect(tokenizer.id).toBe("mine");
    expect(tokenizer.revision).toBe("v1");
    expect(tokenizer.encode("Hello world")).toEqual([0, 283, 281]);
    await expect(
      tokenizerFromJSON({ tokenizerJson: { model: { type: "Nope" } } }, { id: "bad" }),
    ).rejects.toThrow(TokenizerError);
  });
});
