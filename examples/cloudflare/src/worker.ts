/**
 * A Cloudflare Worker that samples from a Tinker model on behalf of a browser page:
 *
 *   GET  /        the page (src/page.html)
 *   POST /sample  {"prompt": "…"} → {"text", "model", "stop_reason", "note"?}
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
 * Wrangler bundles "tinker-ts" and "tinker-ts/local" (in this repository, tsconfig.json maps them
 * to the sources).
 */
import { ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
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
