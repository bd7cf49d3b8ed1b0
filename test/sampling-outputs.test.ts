/**
 * Sequence ids (PROTOCOL.md §P1), the sampling outputs added in 0.26.2–0.31 (§P2) and
 * record_stability_info (§S4), end to end against the real local backend: the exact request and
 * answer shapes, each output checked against the engine computing the same thing directly, in the
 * protobuf answer the SDK asks for and in the JSON answer lenient servers send.
 */
import { describe, expect, it } from "vitest";
import {
  BadRequestError,
  type Logger,
  ModelInput,
  ResponseValidationError,
  type SampleResponse,
  ServiceClient,
  type TensorData,
  targetPromptLogprobsTensor,
  ValidationError,
} from "../src/index.js";
import {
  createBaseModel,
  createInferenceModel,
  DEFAULT_MODEL_CONFIG,
  hashSeed,
  VOCAB_SIZE,
} from "../src/local/engine/index.js";
import { createLocalTinker, type LocalTinkerOptions } from "../src/local/index.js";
import { closeAfterEach, jsonBody, promptTokens, type RecordedRequest, recordingFetch } from "./helpers.js";

const closers = closeAfterEach();
const MODEL = "tinker-ts/byte-lm-tiny";
const PROMPT_TOKENS = promptTokens("Why?");
const prompt = ModelInput.fromInts(PROMPT_TOKENS);

/** The built-in base model, computed directly by the engine (the backend's weights for MODEL). */
const engine = createInferenceModel(createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed(MODEL)));
/** log p(token | prompt[0..i]) for every token at every position after the first: the reference. */
const reference = (() => {
  const { topk } = engine.promptLogprobs(PROMPT_TOKENS, VOCAB_SIZE);
  return topk!.slice(1).map((row) => new Map(row!.map(([token, logprob]) => [token, logprob])));
})();

interface Rewrites {
  /** Ask for JSON results instead of protobuf (a lenient server's answer). */
  jsonResults?: boolean;
  /** Change the JSON answer of an endpoint, as an older server would send it. */
  answer?: Partial<Record<"asample" | "retrieve_future", (json: Record<string, unknown>) => unknown>>;
  /** Where the client's messages to the user go. */
  logger?: Logger;
}

/** The SDK against a real local backend, every request recorded, some answers rewritten. */
function setup(local: LocalTinkerOptions = {}, rewrites: Rewrites = {}) {
  const backend = createLocalTinker({ longPollMs: 2_000, ...local });
  /** Content type of each result the backend sent. */
  const resultTypes: (string | null)[] = [];
  const rewriting = async (request: Request): Promise<Response> => {
    const endpoint = new URL(request.url).pathname.split("/api/v1/")[1] as "asample" | "retrieve_future";
    let sent = request;
    if (rewrites.jsonResults && endpoint === "retrieve_future") {
      const headers = new Headers(request.headers);
      headers.set("accept", "application/json");
      sent = new Request(request, { headers });
    }
    const response = await backend.fetch(sent);
    if (endpoint === "retrieve_future") resultTypes.push(response.headers.get("content-type"));
    const change = rewrites.answer?.[endpoint];
    if (!change || !response.headers.get("content-type")?.includes("json")) return response;
    return Response.json(change(await response.json()), { status: response.status });
  };
  const recorder = recordingFetch(rewriting);
  const service = new ServiceClient({
    apiKey: "tml-outputs",
    baseURL: "http://local.tinker",
    fetch: recorder.fetch,
    logger: rewrites.logger,
  });
  closers.add(async () => {
    await service.close();
    await backend.close();
  });
  return { service, backend, requests: recorder.requests, resultTypes };
}

const bodies = (requests: RecordedRequest[], endpoint: string) =>
  requests
    .filter((r) => r.path.endsWith(`/api/v1/${endpoint}`))
    .map((r) => jsonBody(r) as Record<string, unknown>);

/** The raw asample answers, read back from the backend's record of what it sent. */
async function submissionAnswer(backend: ReturnType<typeof createLocalTinker>, body: unknown) {
  const response = await backend.fetch(
    new Request("http://local.tinker/api/v1/asample", {
      method: "POST",
      headers: { "X-API-Key": "tml-outputs", "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe("sequence ids (P1)", () => {
  it("answers one unique id per sample, in order, and stamps each on its sequence", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const first = await sampler.sample(prompt, 3, { max_tokens: 2, seed: 1 });
    const second = await sampler.sample(prompt, 2, { max_tokens: 2, seed: 1 });
    const ids = [...first.sequences, ...second.sequences].map((s) => s.sequence_id);
    expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(5);

    // The wire: exactly {request_id, sample_sequence_ids}, and the final result has no ids of its own.
    const answer = await submissionAnswer(t.backend, {
      num_samples: 2,
      prompt,
      sampling_params: { max_tokens: 1 },
      sampling_session_id: sampler.samplingSessionId,
      seq_id: 99,
      type: "sample",
    });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.json)).toEqual(["request_id", "sample_sequence_ids"]);
    const sequenceIds = answer.json.sample_sequence_ids as string[];
    expect(sequenceIds).toHaveLength(2);
    expect(sequenceIds.every((id) => !ids.includes(id))).toBe(true);
  });

  it("leaves sequence_id undefined for a server without the list (0.25), and refuses a list of the wrong length", async () => {
    const old = setup({}, { answer: { asample: ({ sample_sequence_ids: _, ...rest }) => rest } });
    const sampler = await old.service.createSamplingClient({ baseModel: MODEL });
    const result = await sampler.sample(prompt, 2, { max_tokens: 2 });
    expect(result.sequences).toHaveLength(2);
    for (const sequence of result.sequences) expect(sequence).not.toHaveProperty("sequence_id");

    const broken = setup(
      {},
      { answer: { asample: (json) => ({ ...json, sample_sequence_ids: ["only-one"] }) } },
    );
    const other = await broken.service.createSamplingClient({ baseModel: MODEL });
    const error = await other.sample(prompt, 2, { max_tokens: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseValidationError);
    expect(String(error)).toMatch(/sample_sequence_ids: has 1 ids for 2 sampled sequences/);
  });
});

describe("new sampling inputs and outputs (P2)", () => {
  it("sends a plain sample exactly as 0.25 did: no new field", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await sampler.sample(prompt, 1, { max_tokens: 1, seed: 3 });
    const [body] = bodies(t.requests, "asample");
    expect(Object.keys(body!)).toEqual([
      "num_samples",
      "prompt",
      "sampling_params",
      "sampling_session_id",
      "seq_id",
      "prompt_logprobs",
      "topk_prompt_logprobs",
      "type",
    ]);
  });

  it("sends the new fields in declaration order, only when they ask for something", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL, recordStabilityInfo: true });
    const targets = targetPromptLogprobsTensor(PROMPT_TOKENS.slice(1).map((token) => [token]));
    await sampler.sample(
      prompt,
      1,
      { max_tokens: 1, seed: 3 },
      { topkSampleLogprobs: 2, targetPromptLogprobs: targets, promptAltTokensK: 3 },
    );
    await sampler.sample(prompt, 1, { max_tokens: 1 }, { topkSampleLogprobs: 0, promptAltTokensK: 0 });
    const [full, zeros] = bodies(t.requests, "asample");
    expect(Object.keys(full!)).toEqual([
      "num_samples",
      "prompt",
      "sampling_params",
      "sampling_session_id",
      "seq_id",
      "prompt_logprobs",
      "topk_prompt_logprobs",
      "topk_sample_logprobs",
      "target_prompt_logprobs",
      "prompt_alt_tokens_k",
      "record_stability_info",
      "type",
    ]);
    expect(full).toMatchObject({
      topk_sample_logprobs: 2,
      target_prompt_logprobs: targets,
      prompt_alt_tokens_k: 3,
      record_stability_info: true,
    });
    // k = 0 asks for nothing, so nothing new is sent; record_stability_info (§S4) is the sampler's.
    expect(zeros).not.toHaveProperty("topk_sample_logprobs");
    expect(zeros).not.toHaveProperty("prompt_alt_tokens_k");
    expect(zeros).toHaveProperty("record_stability_info", true);
  });

  it("record_stability_info from the training client's samplers too, and the deprecated name only warns", async () => {
    const warnings: string[] = [];
    const t = setup({}, { logger: { info: () => {}, warn: (m) => warnings.push(m), error: () => {} } });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2 });
    const ephemeral = await training.saveWeightsAndGetSamplingClient({
      recordStabilityInfo: true,
      name: "ignored",
    });
    const { path } = await training.saveWeightsForSampler("named");
    const named = await training.createSamplingClient(path, { recordStabilityInfo: true });
    const plain = await training.createSamplingClient(path);
    for (const sampler of [ephemeral, named, plain]) await sampler.sample(prompt, 1, { max_tokens: 1 });
    const sent = bodies(t.requests, "asample");
    expect(sent.map((body) => body.record_stability_info)).toEqual([true, true, undefined]);
    // §T4: `name` never had an effect; upstream warns, so does tinker-ts, once, through the logger.
    expect(warnings).toEqual([expect.stringMatching(/`name` is deprecated and ignored/)]);
    expect(bodies(t.requests, "save_weights_for_sampler")[0]).not.toHaveProperty("path");
  });

  for (const answer of ["protobuf", "json"] as const) {
    it(`returns each output as the engine computes it (${answer} answer)`, async () => {
      const t = setup({}, { jsonResults: answer === "json" });
      const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
      // Ask for each prompt position's actual next token, plus token 0 where the row has room.
      const rows = PROMPT_TOKENS.slice(1).map((token, i) => (i % 2 === 0 ? [token, 0] : [token]));
      const targets = targetPromptLogprobsTensor(rows, "dense");
      const result = await sampler.sample(
        prompt,
        2,
        { max_tokens: 4, temperature: 0 },
        {
          includePromptLogprobs: true,
          topkPromptLogprobs: 1,
          topkSampleLogprobs: 3,
          targetPromptLogprobs: targets,
          promptAltTokensK: 2,
        },
      );
      expect(t.resultTypes.at(-1)).toBe(answer === "json" ? "application/json" : "application/x-protobuf");

      // target_prompt_logprobs: the request's shape, each cell the logprob of its id (0 where -1).
      const tpl = result.target_prompt_logprobs!;
      expect(tpl).toMatchObject({ dtype: "float32", shape: targets.shape });
      rows.forEach((row, i) => {
        for (let j = 0; j < 2; j++) {
          const id = row[j] ?? -1;
          const expected = id === -1 ? 0 : reference[i]!.get(id)!;
          expect(tpl.data[i * 2 + j]).toBeCloseTo(expected, 5);
        }
        // The prompt's own next token, as prompt_logprobs reports it.
        expect(tpl.data[i * 2]).toBeCloseTo(result.prompt_logprobs![i + 1]!, 5);
      });

      // topk_sampled_logprobs: greedy, so the top entry is the sampled token with its logprob.
      for (const sequence of result.sequences) {
        const topk = sequence.topk_sampled_logprobs!;
        expect(topk).toHaveLength(sequence.tokens.length);
        topk.forEach((entries, i) => {
          expect(entries).toHaveLength(3);
          expect(entries![0]![0]).toBe(sequence.tokens[i]);
          expect(entries![0]![1]).toBeCloseTo(sequence.logprobs![i]!, 5);
        });
      }
      const direct = engine.sampleAndScore(PROMPT_TOKENS, {
        numSamples: 1,
        maxTokens: 4,
        temperature: 0,
        topK: -1,
        topP: 1,
        topkSampleLogprobs: 3,
      });
      expect(result.sequences[0]!.tokens).toEqual(direct.sequences[0]!.tokens);
      direct.sequences[0]!.topk!.forEach((entries, i) => {
        expect(result.sequences[0]!.topk_sampled_logprobs![i]!.map(([token]) => token)).toEqual(
          entries.map(([token]) => token),
        );
      });

      // prompt_alt_tokens: at temperature 0 both draws are the most likely token of each position.
      const alt = result.prompt_alt_tokens!;
      const positions = PROMPT_TOKENS.length - 1;
      expect(alt.tokens).toMatchObject({ dtype: "int64", shape: [positions, 2] });
      expect(alt.logprobs).toMatchObject({ dtype: "float32", shape: [positions, 2] });
      for (let i = 0; i < positions; i++) {
        const [best, bestLogprob] = result.topk_prompt_logprobs![i + 1]![0]!;
        expect(alt.tokens.data.slice(i * 2, i * 2 + 2)).toEqual([best, best]);
        expect(alt.logprobs.data[i * 2]).toBeCloseTo(bestLogprob, 5);
      }
    });
  }

  it("draws alternative tokens at the request's temperature, reproducibly, each with its own logprob", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const params = { max_tokens: 1, temperature: 1.5, seed: 42 };
    const a = await sampler.sample(prompt, 1, params, { promptAltTokensK: 4 });
    const b = await sampler.sample(prompt, 1, params, { promptAltTokensK: 4 });
    expect(a.prompt_alt_tokens).toEqual(b.prompt_alt_tokens);
    const { tokens, logprobs } = a.prompt_alt_tokens!;
    expect(new Set(tokens.data).size).toBeGreaterThan(1);
    tokens.data.forEach((token, cell) => {
      expect(logprobs.data[cell]).toBeCloseTo(reference[Math.floor(cell / 4)]!.get(token)!, 5);
    });
  });

  it("answers a sparse request in the same CSR layout", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const rows: number[][] = PROMPT_TOKENS.slice(1).map(() => []);
    rows[1] = [5, 7, 9];
    const sparse = targetPromptLogprobsTensor(rows, "csr");
    const dense = targetPromptLogprobsTensor(rows, "dense");
    const [s, d] = await Promise.all([
      sampler.sample(prompt, 1, { max_tokens: 1 }, { targetPromptLogprobs: sparse }),
      sampler.sample(prompt, 1, { max_tokens: 1 }, { targetPromptLogprobs: dense }),
    ]);
    const answer = s.target_prompt_logprobs!;
    expect(answer.sparse_crow_indices).toEqual(sparse.sparse_crow_indices);
    expect(answer.sparse_col_indices).toEqual(sparse.sparse_col_indices);
    expect(answer.shape).toEqual(sparse.shape);
    expect(answer.data).toHaveLength(3);
    [5, 7, 9].forEach((id, j) => {
      expect(answer.data[j]).toBeCloseTo(reference[1]!.get(id)!, 5);
      expect(d.target_prompt_logprobs!.data[3 + j]).toBeCloseTo(answer.data[j]!, 6);
    });
  });

  it("checks the new options before sending anything", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const rows = PROMPT_TOKENS.length - 1;
    const bad: [string, Parameters<typeof sampler.sample>[3], RegExp][] = [
      ["float targets", { targetPromptLogprobs: { data: [0], dtype: "float32", shape: [rows, 1] } }, /dtype/],
      ["1-D targets", { targetPromptLogprobs: { data: [1, 2], dtype: "int64", shape: [2] } }, /2-D/],
      [
        "one row too many",
        { targetPromptLogprobs: targetPromptLogprobsTensor(new Array(rows + 1).fill([1])) },
        /needs len\(prompt\) - 1 = \d+ rows/,
      ],
      ["negative top-k", { topkSampleLogprobs: -1 }, /topk_sample_logprobs/],
      ["fractional k", { promptAltTokensK: 1.5 }, /prompt_alt_tokens_k/],
    ];
    for (const [what, options, message] of bad) {
      const error = (() => {
        try {
          sampler.sample(prompt, 1, { max_tokens: 1 }, options);
        } catch (e) {
          return e;
        }
      })();
      expect(error, what).toBeInstanceOf(ValidationError);
      expect(String(error), what).toMatch(message);
    }
    expect(bodies(t.requests, "asample")).toHaveLength(0);
  });

  it("answers targets the server cannot score with a 400, never a 500", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const rows = PROMPT_TOKENS.slice(1).map(() => [VOCAB_SIZE + 5]);
    const error = await sampler
      .sample(prompt, 1, { max_tokens: 1 }, { targetPromptLogprobs: targetPromptLogprobsTensor(rows) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(String(error)).toMatch(/target_prompt_logprobs: cell \[0\]\[0\] is \d+/);

    const raw = async (target: TensorData) =>
      submissionAnswer(t.backend, {
        prompt,
        sampling_session_id: sampler.samplingSessionId,
        target_prompt_logprobs: target,
      });
    const wrongRows = await raw({ data: [65], dtype: "int64", shape: [1, 1] });
    expect(wrongRows.status).toBe(400);
    expect(wrongRows.json.detail).toMatch(/needs len\(prompt\) - 1 = \d+ rows/);
    const brokenCsr = await raw({
      data: [65],
      dtype: "int64",
      shape: [rows.length, 1],
      sparse_crow_indices: [0, 1],
      sparse_col_indices: [0],
    });
    expect(brokenCsr.status).toBe(400);
    expect(brokenCsr.json.detail).toMatch(/CSR indices/);
    const floats = await raw({ data: [0.5], dtype: "float32", shape: [rows.length, 1] });
    expect(floats.status).toBe(400);
    const tooManyDraws = await submissionAnswer(t.backend, {
      prompt,
      sampling_session_id: sampler.samplingSessionId,
      prompt_alt_tokens_k: 100_000,
    });
    expect(tooManyDraws.status).toBe(400);
    expect(tooManyDraws.json.detail).toMatch(/prompt_alt_tokens_k/);
  });

  it("fails clearly when a server ignores a requested output", async () => {
    const drop = (field: string) => (json: Record<string, unknown>) => {
      const { [field]: _, ...rest } = json;
      return rest;
    };
    const t = setup({}, { jsonResults: true, answer: { retrieve_future: drop("prompt_alt_tokens") } });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const error = await sampler.sample(prompt, 1, { max_tokens: 1 }, { promptAltTokensK: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(ResponseValidationError);
    expect(String(error)).toMatch(
      /prompt_alt_tokens: missing although prompt_alt_tokens_k was asked for; the server may predate this feature/,
    );
    // Without the option, the same server is fine.
    const plain: SampleResponse = await sampler.sample(prompt, 1, { max_tokens: 1 });
    expect(plain.prompt_alt_tokens).toBeUndefined();
  });
});
