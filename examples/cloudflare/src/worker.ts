/**
 * A Cloudflare Worker that samples from a Tinker model on behalf of a browser page:
 *
 *   GET  /        the page (src/page.html)
 *   POST /sample  {"prompt": "…"} → {"text", "model", "stop_reason", "note"?}
 *   POST /chat    {"messages": [{"role", "content"}, …]} → the reply streamed token by token as
 *                 OpenAI chat chunks (server-sent events), through tinker-ts/openai
 *
 * With the secret TINKER_API_KEY set, it calls the Tinker service (or TINKER_BASE_URL, any
 * Tinker-compatible server such as `tinker-ts serve`). Without it, the SDK's embedded backend
 * answers in-process with its tiny byte-level base model, which is untrained: its output is random
 * bytes, and the response's `note` says so. Point TINKER_MODEL at the `tinker://` sampler weights
 * of a fine-tune (README.md, "From babble to answers") to get answers.
 *
 * The key stays here: it goes only into the SDK's requests to Tinker. Nothing the Worker sends
 * back is built from `env` or from upstream error messages; the page gets the sampled text or a
 * fixed error, and the sampling parameters are fixed server-side so the page cannot spend more.
 * (The endpoint itself is public: put rate limiting or Cloudflare Access in front of a real one.)
 *
 * Wrangler bundles "tinker-ts", "tinker-ts/local" and "tinker-ts/openai" (in this repository,
 * tsconfig.json maps them to the sources).
 */
import { ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker, type LocalTinker } from "tinker-ts/local";
import {
  type ChatCompletionChunk,
  type ChatCompletionMessageParam,
  CompletionStream,
  SSE_HEADERS,
  TinkerOpenAI,
} from "tinker-ts/openai";
import page from "./page.html";

export interface Env {
  /** Secret: `wrangler secret put TINKER_API_KEY`. Unset means the embedded backend. */
  TINKER_API_KEY?: string;
  /** Another Tinker-compatible server than the service (used only with a key). */
  TINKER_BASE_URL?: string;
  /** A base model name or a `tinker://…` sampler path. */
  TINKER_MODEL?: string;
}

const MAX_PROMPT_CHARS = 500;
/** The answer ends at the first newline, as the quickstart's Q/A training data does. */
const STOP = "\n";
const SAMPLING_PARAMS = { max_tokens: 48, temperature: 0.7, stop: [STOP] };

/** What the page shows next to a base model's output that no one has trained. */
const UNTRAINED_NOTE =
  "This is the untrained tiny base model: its output is random bytes. Fine-tune it and set " +
  "TINKER_MODEL to the tinker:// path of its sampler weights to get answers.";

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === "/" && request.method === "GET") {
      return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    if (pathname === "/sample" && request.method === "POST") return sampleRoute(request, env);
    if (pathname === "/chat" && request.method === "POST") return chatRoute(request, env);
    return json({ error: "not found" }, 404);
  },
};

async function sampleRoute(request: Request, env: Env): Promise<Response> {
  const body = (await request.json().catch(() => null)) as { prompt?: unknown } | null;
  const prompt = body?.prompt;
  if (typeof prompt !== "string" || prompt.length === 0 || prompt.length > MAX_PROMPT_CHARS) {
    return json({ error: `send {"prompt": "…"} with 1 to ${MAX_PROMPT_CHARS} characters` }, 400);
  }
  try {
    return json(await sample(prompt, env));
  } catch (error) {
    // The details go to the Worker's logs (`wrangler tail`), not to the page.
    console.error("sampling failed:", error);
    return json({ error: "sampling failed" }, 502);
  }
}

interface SampleResult {
  text: string;
  model: string;
  stop_reason: string;
  /** Set when the model is a tinker-ts base model: untrained, so its text means nothing. */
  note?: string;
}

async function sample(prompt: string, env: Env): Promise<SampleResult> {
  // A fresh embedded backend per request: a Worker must not leave one request waiting on
  // promises or timers that another request started, and the tiny model loads in milliseconds.
  const local = env.TINKER_API_KEY ? undefined : createLocalTinker();
  const service = local
    ? new ServiceClient({ apiKey: "tml-local", baseURL: "http://local.tinker", fetch: local.fetch })
    : new ServiceClient({ apiKey: env.TINKER_API_KEY, baseURL: env.TINKER_BASE_URL || undefined });
  try {
    const model = env.TINKER_MODEL || (local ? BUILTIN_BASE_MODEL : "meta-llama/Llama-3.2-1B");
    const sampler = await service.createSamplingClient(
      model.startsWith("tinker://") ? { modelPath: model } : { baseModel: model },
    );
    // The model's own tokenizer: byte-level locally, the Hugging Face one on the service. `encode`
    // starts the prompt with BOS, as the model saw it in training.
    const tokenizer = await sampler.getTokenizer();
    const result = await sampler.sample(ModelInput.fromInts(tokenizer.encode(prompt)), 1, SAMPLING_PARAMS);
    const { tokens, stop_reason } = result.sequences[0]!;
    const text = tokenizer.decode(tokens, { skipSpecialTokens: true });
    return {
      // The returned tokens end with the stop sequence; the page wants the answer alone.
      text: stop_reason === "stop" && text.endsWith(STOP) ? text.slice(0, -STOP.length) : text,
      model,
      stop_reason,
      ...(model.startsWith("tinker-ts/") ? { note: UNTRAINED_NOTE } : {}),
    };
  } finally {
    await service.close();
    local?.close();
  }
}

function json(value: unknown, status = 200): Response {
  return Response.json(value, { status, headers: { "cache-control": "no-store" } });
}

const MAX_MESSAGES = 20;
/** Fixed server-side, like SAMPLING_PARAMS: the page cannot ask for more. */
const CHAT_PARAMS = { max_tokens: 96, temperature: 0.7 };

/** The conversation the page sent, or undefined when it is not a short list of short text turns. */
function readMessages(body: unknown): ChatCompletionMessageParam[] | undefined {
  const messages = (body as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) return undefined;
  const valid = messages.every(
    (m) =>
      (m?.role === "user" || m?.role === "assistant") &&
      typeof m.content === "string" &&
      m.content.length <= MAX_PROMPT_CHARS,
  );
  return valid ? messages.map((m) => ({ role: m.role, content: m.content })) : undefined;
}

/**
 * The reply to a conversation, streamed: the chunks of the OpenAI-compatible route (Tinker's, or
 * the embedded backend's), passed on to the page as server-sent events as they arrive. A failure
 * before the stream starts is a fixed 502; one during it, a fixed error event. The key is only in
 * the request to Tinker.
 */
async function chatRoute(request: Request, env: Env): Promise<Response> {
  const messages = readMessages(await request.json().catch(() => null));
  if (!messages) {
    return json({ error: `send {"messages": [...]} with 1 to ${MAX_MESSAGES} user/assistant turns` }, 400);
  }
  const local = env.TINKER_API_KEY ? undefined : createLocalTinker();
  const client = local
    ? new TinkerOpenAI({ apiKey: "tml-local", baseURL: "http://local.tinker", fetch: local.fetch })
    : new TinkerOpenAI({ apiKey: env.TINKER_API_KEY!, baseURL: env.TINKER_BASE_URL || undefined });
  const model = env.TINKER_MODEL || (local ? BUILTIN_BASE_MODEL : "meta-llama/Llama-3.2-1B");
  try {
    const stream = await client.chat.completions.create({ model, messages, ...CHAT_PARAMS, stream: true });
    return new Response(new CompletionStream(relay(stream, local)).toReadableStream(), {
      headers: { ...SSE_HEADERS },
    });
  } catch (error) {
    console.error("chat failed:", error);
    await local?.close();
    return json({ error: "chat failed" }, 502);
  }
}

/** The chunks as they come; an upstream failure becomes one fixed error event. */
async function* relay(
  stream: AsyncIterable<ChatCompletionChunk>,
  local: LocalTinker | undefined,
): AsyncGenerator<ChatCompletionChunk | { error: { message: string } }> {
  try {
    for await (const chunk of stream) yield chunk;
  } catch (error) {
    console.error("chat stream failed:", error);
    yield { error: { message: "chat failed" } };
  } finally {
    await local?.close();
  }
}
