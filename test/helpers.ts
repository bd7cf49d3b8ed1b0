/** Test helpers: the SDK wired to the real local backend, with every request recorded. */

import type { ClientOptions } from "../src/index.js";
import { type Datum, datum, ModelInput, ServiceClient } from "../src/index.js";
import { BOS_TOKEN, createLocalTinker, encodeText, type LocalTinkerOptions } from "../src/local/index.js";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array;
}

export function recordingFetch(inner: (request: Request) => Promise<Response>) {
  const requests: RecordedRequest[] = [];
  const fetch = async (request: Request): Promise<Response> => {
    const body = new Uint8Array(await request.clone().arrayBuffer());
    requests.push({
      method: request.method,
      path: new URL(request.url).pathname,
      headers: new Headers(request.headers),
      body,
    });
    return inner(request);
  };
  return { fetch, requests };
}

export function localService(options: { local?: LocalTinkerOptions; client?: ClientOptions } = {}) {
  const local = createLocalTinker({ longPollMs: 2_000, ...options.local });
  const recorder = recordingFetch(local.fetch);
  const service = new ServiceClient({
    apiKey: "tml-test-key",
    baseURL: "http://local.tinker",
    fetch: recorder.fetch,
    ...options.client,
  });
  return {
    service,
    local,
    requests: recorder.requests,
    async close() {
      await service.close();
      local.close();
    },
  };
}

export const QA = [
  { question: "What is the capital of France?", answer: "Paris" },
  { question: "What color is the sky?", answer: "Blue" },
  { question: "Who wrote Hamlet?", answer: "Shakespeare" },
  { question: "What do bees make?", answer: "Honey" },
];

export function promptTokens(question: string): number[] {
  return [BOS_TOKEN, ...encodeText(`Q: ${question}\nA:`)];
}

export function qaDatum(question: string, answer: string): Datum {
  const prompt = promptTokens(question);
  const tokens = [...prompt, ...encodeText(` ${answer}\n`)];
  const weights = tokens.slice(1).map((_, i) => (i + 1 < prompt.length ? 0 : 1));
  return datum(ModelInput.fromInts(tokens.slice(0, -1)), { target_tokens: tokens.slice(1), weights });
}

export function jsonBody(request: RecordedRequest): unknown {
  return JSON.parse(new TextDecoder().decode(request.body));
}
