/**
 * The OpenAI-compatible routes of `tinker-ts serve` (`/oai/api/v1`), driven by the unmodified
 * `openai` npm client over HTTP: chat and text completions from a sampler checkpoint, a base model
 * and `<base>;<checkpoint>`, streaming token by token, logprobs, and OpenAI-shaped errors.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { ServiceClient } from "../src/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/index.js";
import { CHATS, chatRenderer, nativeGreedy, trainChatCheckpoint } from "./openai.helpers.js";

const KEY = "tml-oai-test-key";
let server: RunningServer;
let service: ServiceClient;
let openai: OpenAI;
let checkpoint: string;
/** The native sampler's greedy reply from the checkpoint, and the base model's. */
let expected: { checkpoint: string; base: string; tokens: number };
const TEXT_PROMPT = "User: Count to three\n\nAssistant: ";
let expectedText: string;

const question = [{ role: "user" as const, content: CHATS[0]![0]!.content }];
const greedy = { temperature: 0, max_tokens: 40 } as const;

beforeAll(async () => {
  server = await serve({ port: 0, host: "127.0.0.1", apiKeys: [KEY], longPollMs: 1_000 });
  service = new ServiceClient({ apiKey: KEY, baseURL: server.url });
  checkpoint = await trainChatCheckpoint(service);
  openai = new OpenAI({ apiKey: KEY, baseURL: `${server.url}/oai/api/v1`, maxRetries: 0 });
  const renderer = chatRenderer();
  const prompt = renderer.buildGenerationPrompt(question);
  const params = { max_tokens: greedy.max_tokens, stop: renderer.stopSequences() };
  const fromCheckpoint = await nativeGreedy(service, { modelPath: checkpoint }, prompt, params);
  const fromBase = await nativeGreedy(service, { baseModel: BUILTIN_BASE_MODEL }, prompt, params);
  expected = { checkpoint: fromCheckpoint.text, base: fromBase.text, tokens: fromCheckpoint.tokens.length };
  expectedText = (
    await nativeGreedy(service, { modelPath: checkpoint }, renderer.tokenizer.encode(TEXT_PROMPT), {
      max_tokens: 30,
    })
  ).text;
  // The fine-tune answers otherwise than its base model: which one answers below is visible.
  expect(expected.checkpoint).not.toBe(expected.base);
}, 60_000);

afterAll(async () => {
  await service?.close();
  await server?.close();
});

describe("chat completions through the openai client", () => {
  it("answers from a sampler checkpoint path, rendered with role_colon, with usage", async () => {
    const answer = await openai.chat.completions.create({ model: checkpoint, messages: question, ...greedy });
    expect(answer.object).toBe("chat.completion");
    expect(answer.model).toBe(checkpoint);
    const choice = answer.choices[0]!;
    expect(choice.message.role).toBe("assistant");
    // The LoRA's greedy reply, as the native sampler gives it.
    expect(choice.message.content).toBe(expected.checkpoint);
    const prompt = chatRenderer().buildGenerationPrompt(question);
    const generated = expected.tokens + (choice.finish_reason === "stop" ? 1 : 0); // + EOS
    expect(answer.usage).toEqual({
      prompt_tokens: prompt.length,
      completion_tokens: generated,
      total_tokens: prompt.length + generated,
    });
  });

  it("streams token by token: the deltas join to the greedy answer given whole", async () => {
    const whole = await openai.chat.completions.create({ model: checkpoint, messages: question, ...greedy });
    const stream = await openai.chat.completions.create({
      model: checkpoint,
      messages: question,
      ...greedy,
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      for (const choice of chunk.choices) {
        if (choice.delta.content) deltas.push(choice.delta.content);
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join("")).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  it("returns logprobs with top_logprobs; greedy picks the most likely token", async () => {
    const answer = await openai.chat.completions.create({
      model: checkpoint,
      messages: question,
      ...greedy,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = answer.choices[0]!.logprobs!.content!;
    expect(content.map((t) => t.token).join("")).toBe(answer.choices[0]!.message.content);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.top_logprobs[0]!.token).toBe(entry.token);
      expect(entry.top_logprobs[0]!.logprob).toBeCloseTo(entry.logprob, 10);
    }
  });

  it("takes a base model ID, and <base>;<checkpoint> serves the checkpoint", async () => {
    const base = await openai.chat.completions.create({
      model: BUILTIN_BASE_MODEL,
      messages: question,
      ...greedy,
    });
    const pair = await openai.chat.completions.create({
      model: `${BUILTIN_BASE_MODEL};${checkpoint}`,
      messages: question,
      ...greedy,
    });
    expect(pair.choices[0]!.message.content).toBe(expected.checkpoint);
    expect(base.choices[0]!.message.content).toBe(expected.base);
  });

  it("a context length in the base model ID bounds prompt and reply", async () => {
    const prompt = chatRenderer().buildGenerationPrompt(question).length;
    const answer = await openai.chat.completions.create({
      model: `${BUILTIN_BASE_MODEL}:peft:${prompt + 3};${checkpoint}`,
      messages: question,
      temperature: 0,
    });
    expect(answer.usage!.completion_tokens).toBeLessThanOrEqual(3);
    if (answer.choices[0]!.finish_reason === "length") expect(answer.usage!.total_tokens).toBe(prompt + 3);
    const error = await openai.chat.completions
      .create({ model: `${BUILTIN_BASE_MODEL}:peft:${prompt};${checkpoint}`, messages: question })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ code: "context_length_exceeded" });
  });

  it("n choices with a seed are reproducible", async () => {
    const ask = () =>
      openai.chat.completions.create({
        model: checkpoint,
        messages: question,
        n: 3,
        seed: 7,
        max_tokens: 12,
      });
    const [a, b] = await Promise.all([ask(), ask()]);
    expect(a.choices).toHaveLength(3);
    expect(a.choices.map((c) => c.message.content)).toEqual(b.choices.map((c) => c.message.content));
  });
});

describe("text completions through the openai client", () => {
  it("continues a prompt from the checkpoint, with logprobs, streamed or whole", async () => {
    const prompt = TEXT_PROMPT;
    const whole = await openai.completions.create({
      model: checkpoint,
      prompt,
      max_tokens: 30,
      temperature: 0,
      logprobs: 2,
    });
    expect(whole.object).toBe("text_completion");
    expect(whole.choices[0]!.text).toBe(expectedText);
    expect(whole.choices[0]!.logprobs!.tokens!.join("")).toBe(expectedText);
    expect(Object.keys(whole.choices[0]!.logprobs!.top_logprobs![0]!)[0]).toBe(expectedText[0]);
    const stream = await openai.completions.create({
      model: checkpoint,
      prompt,
      max_tokens: 30,
      temperature: 0,
      stream: true,
    });
    const pieces: string[] = [];
    for await (const chunk of stream) pieces.push(chunk.choices[0]?.text ?? "");
    expect(pieces.filter((p) => p !== "").length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(whole.choices[0]!.text);
  });

  it("ends before a stop string, streamed or whole alike", async () => {
    // A stop string from the middle of the greedy answer: the reply ends just before it.
    const stop = expectedText.slice(4, 6);
    const params = { model: checkpoint, prompt: TEXT_PROMPT, temperature: 0, max_tokens: 30, stop: [stop] };
    const whole = await openai.completions.create(params);
    const cut = expectedText.slice(0, expectedText.indexOf(stop));
    expect(whole.choices[0]).toMatchObject({ text: cut, finish_reason: "stop" });
    const pieces: string[] = [];
    for await (const chunk of await openai.completions.create({ ...params, stream: true })) {
      pieces.push(chunk.choices[0]?.text ?? "");
    }
    expect(pieces.join("")).toBe(cut);
  });
});

describe("errors in OpenAI's form", () => {
  it("404 for an unknown checkpoint", async () => {
    const error = await openai.chat.completions
      .create({ model: `${checkpoint}-missing`, messages: question })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: "model_not_found", param: "model" });
  });

  it("400 for bad parameters, naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ temperature: 5 }, "temperature"],
      [{ top_p: 0 }, "top_p"],
      [{ n: 0 }, "n"],
      [{ max_tokens: -1 }, "max_tokens"],
      [{ top_logprobs: 2 }, "top_logprobs"],
      [{ stop: ["a", "b", "c", "d", "e"] }, "stop"],
      [{ model: `other/model;${checkpoint}` }, "model"],
      [
        { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] },
        "messages[0].content[0]",
      ],
    ];
    for (const [change, param] of cases) {
      const error = await openai.chat.completions
        .create({ model: checkpoint, messages: question, ...change } as never)
        .catch((e: unknown) => e);
      expect(error, param).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as { param: string }).param).toBe(param);
    }
  });

  it("401 for a wrong key, without repeating it", async () => {
    const wrong = new OpenAI({ apiKey: "tml-wrong-key", baseURL: `${server.url}/oai/api/v1`, maxRetries: 0 });
    const error = await wrong.chat.completions
      .create({ model: checkpoint, messages: question })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(JSON.stringify((error as { error: unknown }).error)).not.toContain("tml-wrong-key");
  });
});
