/**
 * tinker-ts/openai: the client of the OpenAI-compatible routes and the native facade, against the
 * local backend in-process. Both must give the greedy tokens a native sample gives with the same
 * renderer; the facade's logprobs must be `computeLogprobs`'s for the same tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  APIUserAbortError,
  AuthenticationError,
  ModelInput,
  NotFoundError,
  type SamplingClient,
  ServiceClient,
  ValidationError,
} from "../src/index.js";
import { BUILTIN_BASE_MODEL, createLocalTinker, type LocalTinker } from "../src/local/index.js";
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  CompletionStream,
  checkpointModel,
  chunkText,
  createNativeFacade,
  parseModelString,
  TinkerOpenAI,
  withContextLength,
} from "../src/openai/index.js";
import { CHATS, chatRenderer, nativeGreedy, trainChatCheckpoint } from "./openai.helpers.js";

const KEY = "tml-openai-client-key";
let local: LocalTinker;
let service: ServiceClient;
let client: TinkerOpenAI;
let checkpoint: string;
let sampler: SamplingClient;
let native: Awaited<ReturnType<typeof nativeGreedy>>;
const renderer = chatRenderer();
const messages = [{ role: "user" as const, content: CHATS[1]![0]!.content }];
const prompt = renderer.buildGenerationPrompt(messages);

beforeAll(async () => {
  local = createLocalTinker({ apiKeys: [KEY] });
  service = new ServiceClient({ apiKey: KEY, baseURL: "http://local.tinker", fetch: local.fetch });
  checkpoint = await trainChatCheckpoint(service);
  sampler = await service.createSamplingClient({ modelPath: checkpoint });
  native = await nativeGreedy(service, { modelPath: checkpoint }, prompt, {
    max_tokens: 40,
    stop: renderer.stopSequences(),
  });
  client = new TinkerOpenAI({ apiKey: KEY, baseURL: "http://local.tinker", fetch: local.fetch });
}, 60_000);

afterAll(async () => {
  await service?.close();
  await local?.close();
});

async function collect(stream: AsyncIterable<ChatCompletionChunk>) {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return { chunks, text: chunks.map((c) => chunkText(c)).join("") };
}

describe("TinkerOpenAI (the /oai routes)", () => {
  it("gives the native sampler's greedy reply, with its logprobs", async () => {
    const answer = await client.chat.completions.create({
      model: checkpoint,
      messages,
      temperature: 0,
      max_tokens: 40,
      logprobs: true,
      top_logprobs: 2,
    });
    expect(answer.choices[0]!.message.content).toBe(native.text);
    const content = answer.choices[0]!.logprobs!.content!;
    expect(content.map((t) => t.bytes![0])).toEqual(native.tokens);
    for (const [i, t] of content.entries()) expect(t.logprob).toBeCloseTo(native.logprobs[i]!, 5);
  });

  it("streams chunks that join to the same reply, and pass through SSE unchanged", async () => {
    const stream = await client.chat.completions.create({
      model: checkpoint,
      messages,
      temperature: 0,
      max_tokens: 40,
      stream: true,
    });
    // As a Worker would: the stream's SSE bytes, read back as a browser would.
    const relayed = CompletionStream.fromSSE<ChatCompletionChunk>(stream.toReadableStream());
    const { chunks, text } = await collect(relayed);
    expect(text).toBe(native.text);
    expect(chunks.filter((c) => chunkText(c) !== "").length).toBeGreaterThan(1);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.at(-1)!.choices[0]!.finish_reason).not.toBeNull();
  });

  it("text completions, and model strings built by the helpers", async () => {
    const model = checkpointModel(checkpoint, { baseModel: BUILTIN_BASE_MODEL, contextLength: 256 });
    expect(model).toBe(`${BUILTIN_BASE_MODEL}:peft:256;${checkpoint}`);
    const text = new TextDecoder().decode(new Uint8Array(prompt.slice(1))); // without BOS
    const answer = await client.completions.create({ model, prompt: text, temperature: 0, max_tokens: 40 });
    expect(answer.choices[0]!.text).toBe(native.text);
  });

  it("errors in the SDK's tree, without the key; AbortSignal stops a call", async () => {
    const wrong = new TinkerOpenAI({
      apiKey: "tml-not-this-key",
      baseURL: "http://local.tinker",
      fetch: local.fetch,
    });
    const denied = await wrong.chat.completions
      .create({ model: checkpoint, messages })
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AuthenticationError);
    expect(
      JSON.stringify({ m: (denied as Error).message, b: (denied as { body: unknown }).body }),
    ).not.toContain("tml-not-this-key");
    const streamDenied = await wrong.chat.completions
      .create({ model: checkpoint, messages, stream: true })
      .catch((e: unknown) => e);
    expect(streamDenied).toBeInstanceOf(AuthenticationError);
    const missing = await client.chat.completions
      .create({ model: `${checkpoint}x`, messages, stream: true })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    const aborted = await client.chat.completions
      .create({ model: checkpoint, messages }, { signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    expect(aborted).toBeInstanceOf(APIUserAbortError);
    expect(() => client.chat.completions.create({ model: "", messages })).toThrow(ValidationError);
  });

  it("stops reading a stream early without error", async () => {
    const stream = await client.chat.completions.create({
      model: BUILTIN_BASE_MODEL,
      messages,
      max_tokens: 200,
      stream: true,
    });
    let seen = 0;
    for await (const _ of stream) if (++seen === 2) break;
    expect(seen).toBe(2);
  });
});

describe("createNativeFacade (the native SamplingClient + renderer)", () => {
  it("gives the native greedy reply; its logprobs are computeLogprobs'", async () => {
    const facade = createNativeFacade(sampler, renderer, { model: checkpoint });
    const answer = (await facade.chat.completions.create({
      model: checkpoint,
      messages,
      temperature: 0,
      max_tokens: 40,
      logprobs: true,
      top_logprobs: 1,
    })) as ChatCompletion;
    expect(answer.choices[0]!.message.content).toBe(native.text);
    const content = answer.choices[0]!.logprobs!.content!;
    const scored = await sampler.computeLogprobs(ModelInput.fromInts([...prompt, ...native.tokens]));
    expect(content.map((t) => t.logprob)).toEqual(
      scored.slice(prompt.length).map((lp) => expect.closeTo(lp!, 5) as unknown as number),
    );
    expect(content.every((t) => t.top_logprobs.length === 1)).toBe(true);
  });

  it("streams one text chunk per choice, joining to the same reply", async () => {
    const facade = createNativeFacade(sampler, renderer);
    const stream = await facade.chat.completions.create({
      model: "ignored",
      messages,
      temperature: 0,
      max_tokens: 40,
      stream: true,
      stream_options: { include_usage: true },
    });
    const { chunks, text } = await collect(stream);
    expect(text).toBe(native.text);
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? (c.usage ? "usage" : "text"))).toEqual([
      "text",
      "text",
      "stop",
      "usage",
    ]);
  });

  it("refuses bad parameters with a ValidationError before sampling", async () => {
    let sampled = 0;
    const counting = {
      sample: (...args: Parameters<SamplingClient["sample"]>) => {
        sampled++;
        return sampler.sample(...args);
      },
    };
    const facade = createNativeFacade(counting, renderer);
    const error = await facade.chat.completions
      .create({ model: "m", messages, temperature: 9 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toMatch(/temperature/);
    expect(sampled).toBe(0);
  });
});

describe("model strings", () => {
  it("reads and builds the three forms", () => {
    expect(parseModelString("Qwen/Qwen3-8B")).toEqual({ baseModel: "Qwen/Qwen3-8B" });
    expect(parseModelString("tinker://r/sampler_weights/1")).toEqual({
      checkpoint: "tinker://r/sampler_weights/1",
    });
    expect(parseModelString("a/b:peft:1024;tinker://r/sampler_weights/1")).toEqual({
      baseModel: "a/b:peft:1024",
      checkpoint: "tinker://r/sampler_weights/1",
    });
    expect(withContextLength("a/b:peft:1024", 2048)).toBe("a/b:peft:2048");
    expect(checkpointModel("tinker://r/sampler_weights/1")).toBe("tinker://r/sampler_weights/1");
    expect(() => parseModelString("tinker://x;a/b")).toThrow(ValidationError);
    expect(() => checkpointModel("r/sampler_weights/1")).toThrow(ValidationError);
    expect(() => checkpointModel("tinker://r/s/1", { contextLength: 5 })).toThrow(ValidationError);
    expect(() => withContextLength("a/b", 0)).toThrow(ValidationError);
  });
});
