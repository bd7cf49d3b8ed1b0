/** Test helpers: the SDK wired to the real local backend, with every request recorded. */

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";
import { QA_PAIRS, supervisedExample } from "../examples/qa-dataset.js";
import type { ClientOptions } from "../src/index.js";
import { type Datum, datum, ModelInput, ServiceClient } from "../src/index.js";
import { createLocalTinker, type LocalTinkerOptions } from "../src/local/index.js";

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

export const QA = QA_PAIRS.slice(0, 4);
export { promptTokens } from "../examples/qa-dataset.js";

export function qaDatum(question: string, answer: string): Datum {
  const { input, targets, weights } = supervisedExample(question, answer);
  return datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
}

/**
 * A sample result without its sequence ids, which are new for every submission (PROTOCOL.md §P1):
 * what a rerun with the same seed must reproduce.
 */
export function sampleContent<T extends { sequences: readonly { sequence_id?: string }[] }>(response: T) {
  return { ...response, sequences: response.sequences.map(({ sequence_id: _id, ...sequence }) => sequence) };
}

export function jsonBody(request: RecordedRequest): unknown {
  return JSON.parse(new TextDecoder().decode(request.body));
}

/**
 * Closers (backends, clients) to run after each test, newest first; call at the top of a test file.
 * `closeAll()` runs them now, for a test that must see everything closed before it ends.
 */
export function closeAfterEach(): { add(close: () => unknown): void; closeAll(): Promise<void> } {
  let closers: (() => unknown)[] = [];
  const closeAll = async () => {
    const pending = closers.reverse();
    closers = [];
    for (const close of pending) await close();
  };
  afterEach(closeAll);
  return {
    add(close) {
      closers.push(close);
    },
    closeAll,
  };
}

/**
 * The lines of a conformance recording (`requests-<version>.jsonl`: what an official client really
 * sent). Read from `TINKER_CONFORMANCE_DIR`, else from the project's shared/conformance beside the
 * checkout, else from the copy in test/fixtures/conformance, so a lone clone runs the tests too.
 */
export function readConformance<T>(name: string): T[] {
  const shared = fileURLToPath(new URL("../../shared/conformance/", import.meta.url));
  const dir =
    process.env.TINKER_CONFORMANCE_DIR ??
    (existsSync(`${shared}/${name}`)
      ? shared
      : fileURLToPath(new URL("./fixtures/conformance/", import.meta.url)));
  return readFileSync(`${dir}/${name}`, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as T);
}

/**
 * `localService()` closed after each test: the `setup` of most files. `closers` takes anything else
 * the file's tests open.
 */
export function localServicesClosedAfterEach() {
  const closers = closeAfterEach();
  const setup = (...args: Parameters<typeof localService>) => {
    const t = localService(...args);
    closers.add(t.close);
    return t;
  };
  return { setup, closers };
}
