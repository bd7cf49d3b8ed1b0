/** The tokenizer path end to end against the local backend: get_info / base model → id → tokenizer. */
import { afterAll, describe, expect, it } from "vitest";
import { ByteLevelTokenizer as PublicByteLevelTokenizer } from "../src/index.js";
import {
  BYTE_LEVEL_TOKENIZER_ID,
  ByteLevelTokenizer,
  loadTokenizer,
  resolveTokenizerId,
} from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL, decodeTokens } from "../src/local/index.js";
import { localService } from "./helpers.js";

const t = localService();
afterAll(() => t.close());

const noIo = { fetch: () => Promise.reject(new Error("the byte-level tokenizer needs no I/O")) };

describe("tokenizers of the local backend's models", () => {
  it("TrainingClient: get_info names the byte-level tokenizer", async () => {
    const training = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4 });
    const info = await training.getInfo();
    expect(info.model_data.tokenizer_id).toBe(BYTE_LEVEL_TOKENIZER_ID);
    const tokenizer = await loadTokenizer(resolveTokenizerId(info), noIo);
    expect(tokenizer).toBeInstanceOf(ByteLevelTokenizer);
  });

  it("SamplingClient: the base model maps to the byte-level tokenizer, and sampled ids decode", async () => {
    const sampler = await t.service.createSamplingClient({ baseModel: BUILTIN_BASE_MODEL });
    const tokenizer = await loadTokenizer(
      resolveTokenizerId({ model_name: await sampler.getBaseModel() }),
      noIo,
    );
    expect(tokenizer.id).toBe(BYTE_LEVEL_TOKENIZER_ID);
    const prompt = tokenizer.encode("Q: What is 2+2?\nA:");
    const response = await sampler.sample({ chunks: [{ type: "encoded_text", tokens: prompt }] }, 1, {
      max_tokens: 8,
      temperature: 0,
    });
    const tokens = response.sequences[0].tokens;
    expect(tokens.every((id) => id >= 0 && id < tokenizer.vocabSize)).toBe(true);
    expect(tokenizer.decode(tokens)).toBe(decodeTokens(tokens));
  });

  it("getTokenizer(options) of both clients takes the loader's options, and gives the class tinker-ts exports", async () => {
    const training = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4 });
    const sampler = await t.service.createSamplingClient({ baseModel: BUILTIN_BASE_MODEL });
    const [fromTraining, fromSampler] = await Promise.all([
      training.getTokenizer(noIo),
      sampler.getTokenizer(noIo),
    ]);
    for (const tokenizer of [fromTraining, fromSampler]) {
      expect(tokenizer).toBeInstanceOf(PublicByteLevelTokenizer);
      expect(tokenizer.id).toBe(BYTE_LEVEL_TOKENIZER_ID);
    }
  });
});
