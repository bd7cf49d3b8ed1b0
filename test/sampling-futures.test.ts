/**
 * Batched completions (`retrieve_futures`, PROTOCOL.md §F1) and sample cancellation
 * (`cancel_future`, §F2), SDK and local backend together: the routes' exact shapes and rules, the
 * SDK taking each path only when the server's flag says so (requests counted), its single poll
 * loop per client, cancels on abandoned samples, and no timer left behind.
 */
import { describe, expect, it } from "vitest";
import {
  APITimeoutError,
  APIUserAbortError,
  type ClientOptions,
  ModelInput,
  SamplingClient,
  ServiceClient,
} from "../src/index.js";
import { LocalBackend } from "../src/local/backend.js";
import { createLocalTinker, type LocalTinkerOptions, MemoryStore } from "../src/local/index.js";
import { closeAfterEach, jsonBody, promptTokens, type RecordedRequest, recordingFetch } from "./helpers.js";
import { timeouts } from "./timers.js";

const closers = closeAfterEach();
const MODEL = "tinker-ts/byte-lm-tiny";
const API_KEY = "tml-futures";
const prompt = ModelInput.fromInts(promptTokens("Hey"));

/** The SDK on a real local backend; requests recorded, answers of retrieve_futures kept, concurrency measured. */
function setup(local: LocalTinkerOptions = {}, client: Partial<ClientOptions> = {}) {
  const backend = createLocalTinker({ longPollMs: 2_000, ...local });
  const answers: Record<string, unknown>[] = [];
  const inFlight: Record<string, number> = {};
  const maxInFlight: Record<string, number> = {};
  const measured = async (request: Request): Promise<Response> => {
    const endpoint = new URL(request.url).pathname.split("/api/v1/")[1]!;
    inFlight[endpoint] = (inFlight[endpoint] ?? 0) + 1;
    maxInFlight[endpoint] = Math.max(maxInFlight[endpoint] ?? 0, inFlight[endpoint]!);
    try {
      const response = await backend.fetch(request);
      if (endpoint === "retrieve_futures" && response.ok) answers.push(await response.clone().json());
      return response;
    } finally {
      inFlight[endpoint]!--;
    }
  };
  const recorder = recordingFetch(measured);
  const options = { apiKey: API_KEY, baseURL: "http://local.tinker", fetch: recorder.fetch, ...client };
  const service = new ServiceClient(options);
  closers.add(async () => {
    await service.close();
    await backend.close();
  });
  return { backend, service, options, requests: recorder.requests, answers, maxInFlight };
}

const count = (requests: RecordedRequest[], endpoint: string) =>
  requests.filter((r) => r.path.endsWith(`/api/v1/${endpoint}`)).length;
const bodiesOf = (requests: RecordedRequest[], endpoint: string) =>
  requests.filter((r) => r.path.endsWith(`/api/v1/${endpoint}`));
const text = (request: RecordedRequest) => new TextDecoder().decode(request.body);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function raw(backend: { fetch(request: Request): Promise<Response> }, endpoint: string, body: unknown) {
  const response = await backend.fetch(
    new Request(`http://local.tinker/api/v1/${endpoint}`, {
      method: "POST",
      headers: { "X-API-Key": API_KEY, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
  const content = await response.text();
  return { status: response.status, text: content, json: content ? JSON.parse(content) : undefined };
}

describe("retrieve_futures in the SDK (F1)", () => {
  it("waits for samples through one long poll per client, then fetches each result once", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const results = await Promise.all(
      [1, 2, 3, 4].map((seed) => sampler.sample(prompt, 1, { max_tokens: 3, seed })),
    );
    expect(results.every((r) => r.sequences[0]!.tokens.length === 3)).toBe(true);
    expect(t.maxInFlight.retrieve_futures).toBe(1);
    expect(count(t.requests, "retrieve_future")).toBe(4);

    const polls = bodiesOf(t.requests, "retrieve_futures");
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect(text(polls[0]!)).toBe(
      JSON.stringify({
        target: {
          type: "sampling_session",
          sampling_session_id: sampler.samplingSessionId,
          cloned_sampler_id: 0,
        },
        prev_cursor: 0,
        timeout: 30,
      }),
    );
    // Each poll acknowledges what the previous one returned.
    polls.slice(1).forEach((poll, i) => {
      expect((jsonBody(poll) as { prev_cursor: number }).prev_cursor).toBe(t.answers[i]!.cursor);
    });
    const reported = t.answers.flatMap((a) =>
      (a.completions as { request_id: string }[]).map((c) => c.request_id),
    );
    const fetched = bodiesOf(t.requests, "retrieve_future").map(
      (r) => (jsonBody(r) as { request_id: string }).request_id,
    );
    expect(new Set(reported)).toEqual(new Set(fetched));

    // Nobody waits any more: the loop has stopped and polls no further.
    const settled = count(t.requests, "retrieve_futures");
    await pause(100);
    expect(count(t.requests, "retrieve_futures")).toBe(settled);
    await sampler.sample(prompt, 1, { max_tokens: 1 });
    expect(
      (jsonBody(bodiesOf(t.requests, "retrieve_futures").at(-1)!) as { prev_cursor: number }).prev_cursor,
    ).toBe(t.answers[settled - 1]!.cursor);
  });

  it("keeps waiting correctly across a backend restart (a cursor from the old log)", async () => {
    const store = new MemoryStore();
    let backend = createLocalTinker({ longPollMs: 2_000, store });
    let pollDelayMs = 0;
    const recorder = recordingFetch(async (request) => {
      if (request.url.endsWith("/retrieve_futures")) await pause(pollDelayMs);
      return backend.fetch(request);
    });
    const service = new ServiceClient({
      apiKey: API_KEY,
      baseURL: "http://local.tinker",
      fetch: recorder.fetch,
    });
    closers.add(async () => {
      await service.close();
      await backend.close();
    });
    const sampler = await service.createSamplingClient({ baseModel: MODEL });
    // One completion before: the client's cursor is the old log's first position.
    await sampler.sample(prompt, 1, { max_tokens: 1 });
    await backend.close();
    backend = createLocalTinker({ longPollMs: 2_000, store });
    // The new log's first completion exists before the poll with the old cursor arrives.
    pollDelayMs = 100;
    const after = await sampler.sample(prompt, 1, { max_tokens: 1 }, { timeout: 5_000 });
    expect(after.sequences).toHaveLength(1);
    expect(count(recorder.requests, "retrieve_futures")).toBeGreaterThanOrEqual(2);
  });

  it("polls each request instead when the server does not offer it", async () => {
    const t = setup({ clientConfig: { sample_use_retrieve_futures: false } });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await Promise.all([1, 2].map((seed) => sampler.sample(prompt, 1, { max_tokens: 2, seed })));
    expect(count(t.requests, "retrieve_futures")).toBe(0);
    expect(count(t.requests, "retrieve_future")).toBeGreaterThanOrEqual(2);
  });

  it("polls a clone's own completions (its cloned_sampler_id)", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const clone = await SamplingClient.fromSamplerHandle(sampler.getSamplerHandle(), t.service);
    await clone.sample(prompt, 1, { max_tokens: 1 });
    const target = (jsonBody(bodiesOf(t.requests, "retrieve_futures")[0]!) as { target: unknown }).target;
    expect(target).toEqual({
      type: "sampling_session",
      sampling_session_id: sampler.samplingSessionId,
      cloned_sampler_id: 1,
    });
  });

  it("retries a failed poll after a second, warning once", async () => {
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
    const t = setup(
      { chaos: [{ endpoint: "retrieve_futures", status: 503, times: 2 }] },
      { logger, maxRetries: 0 },
    );
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const startedAt = Date.now();
    await sampler.sample(prompt, 1, { max_tokens: 1 });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_900);
    expect(count(t.requests, "retrieve_futures")).toBe(3);
    expect(warnings.filter((w) => w.includes("retrieve_futures"))).toHaveLength(1);
  });

  it("falls back to polling each sample when the server refuses the route", async () => {
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
    const t = setup({ chaos: [{ endpoint: "retrieve_futures", status: 404, times: 10 }] }, { logger });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await sampler.sample(prompt, 1, { max_tokens: 1 });
    await sampler.sample(prompt, 1, { max_tokens: 1 });
    expect(count(t.requests, "retrieve_futures")).toBe(1);
    expect(count(t.requests, "retrieve_future")).toBeGreaterThanOrEqual(2);
    expect(warnings.some((w) => /retrieve_futures .* was refused/.test(w))).toBe(true);
  });
});

describe("retrieve_futures on the backend (F1)", () => {
  async function sampler(t: ReturnType<typeof setup>) {
    return (await t.service.createSamplingClient({ baseModel: MODEL })).samplingSessionId;
  }
  const target = (id: string, clone = 0) => ({
    type: "sampling_session",
    sampling_session_id: id,
    cloned_sampler_id: clone,
  });

  it("reports finished and failed samples of each clone in order, with a cursor", async () => {
    const t = setup();
    const id = await sampler(t);
    const ok = await raw(t.backend, "asample", { prompt, sampling_session_id: id, seq_id: 0 });
    const bad = await raw(t.backend, "asample", {
      prompt: { chunks: [{ type: "image_asset_pointer", format: "png", location: "x" }] },
      sampling_session_id: id,
      seq_id: 1,
    });
    const clone = await raw(t.backend, "asample", { prompt, sampling_session_id: id, seq_id: 2_000_000_005 });
    const first = await raw(t.backend, "retrieve_futures", {
      target: target(id),
      prev_cursor: 0,
      timeout: 5,
    });
    expect(first.status).toBe(200);
    // Both may not be done at the first answer; collect until they are.
    const completions = [...first.json.completions];
    const cursors = [first.json.cursor];
    let cursor = first.json.cursor;
    while (completions.length < 2) {
      const next = await raw(t.backend, "retrieve_futures", {
        target: target(id),
        prev_cursor: cursor,
        timeout: 5,
      });
      completions.push(...next.json.completions);
      cursor = next.json.cursor;
      cursors.push(cursor);
    }
    // The cursor is the position of the last entry returned: two entries, two steps past the start.
    expect(cursors.every((c, i) => i === 0 || c > cursors[i - 1])).toBe(true);
    expect(cursor - (first.json.cursor - first.json.completions.length)).toBe(2);
    const result = await t.backend.fetch(
      new Request("http://local.tinker/api/v1/retrieve_future", {
        method: "POST",
        headers: {
          "X-API-Key": API_KEY,
          accept: "application/x-protobuf",
          "content-type": "application/json",
        },
        body: JSON.stringify({ request_id: ok.json.request_id }),
      }),
    );
    const size = (await result.arrayBuffer()).byteLength;
    expect(completions).toEqual([
      { state: "finished", request_id: ok.json.request_id, response_payload_uncompressed_size: size },
      { state: "failed", request_id: bad.json.request_id },
    ]);
    expect(Object.keys(first.json)).toEqual(["completions", "cursor"]);
    // Clone 2 (seq_id 2e9 + 5) has a log of its own.
    const cloneLog = await raw(t.backend, "retrieve_futures", { target: target(id, 2), timeout: 5 });
    expect(cloneLog.json.completions.map((c: { request_id: string }) => c.request_id)).toEqual([
      clone.json.request_id,
    ]);
    // Nothing newer: held for the timeout, then the same cursor back.
    const startedAt = Date.now();
    const idle = await raw(t.backend, "retrieve_futures", {
      target: target(id),
      prev_cursor: cursor,
      timeout: 0.1,
    });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(90);
    expect(idle.json).toEqual({ completions: [], cursor });
  });

  it("answers a held poll as soon as a sample finishes, and at close()", async () => {
    const t = setup();
    const id = await sampler(t);
    const held = raw(t.backend, "retrieve_futures", { target: target(id), timeout: 30 });
    await pause(50);
    const submitted = await raw(t.backend, "asample", { prompt, sampling_session_id: id });
    const answer = await held;
    expect(answer.json.completions[0].request_id).toBe(submitted.json.request_id);

    const startedAt = Date.now();
    const released = raw(t.backend, "retrieve_futures", {
      target: target(id),
      prev_cursor: answer.json.cursor,
      timeout: 30,
    });
    await pause(50);
    await t.backend.close();
    expect((await released).json).toEqual({ completions: [], cursor: answer.json.cursor });
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it("refuses unknown sessions (404) and other targets (400)", async () => {
    const t = setup();
    const id = await sampler(t);
    const unknown = await raw(t.backend, "retrieve_futures", { target: target("session-x:sample:9") });
    expect(unknown.status).toBe(404);
    const model = await raw(t.backend, "retrieve_futures", { target: { ...target(id), type: "model" } });
    expect(model.status).toBe(400);
  });
});

describe("cancel_future (F2)", () => {
  it("cancels a pending sample on the backend: it fails as cancelled, also in the completion log", async () => {
    const backend = new LocalBackend();
    closers.add(() => backend.close());
    const session = backend.createSession();
    const samplerId = backend.createSamplingSession(session, 0, MODEL);
    const request = {
      sampling_session_id: samplerId,
      num_samples: 1,
      prompt,
      sampling_params: {},
      prompt_logprobs: false,
      topk_prompt_logprobs: 0,
    };
    const { requestId } = backend.sample(request);
    backend.cancelFuture(requestId);
    expect(await backend.futures.wait(requestId, 0)).toEqual({
      kind: "failed",
      error: `request ${requestId} was cancelled`,
      category: "user",
    });
    const page = await backend.retrieveFutures(samplerId, 0, 0, 0);
    expect(page.completions).toEqual([{ state: "failed", request_id: requestId }]);
    // The work was skipped: nothing else is ever logged.
    await pause(20);
    expect((await backend.retrieveFutures(samplerId, 0, page.cursor, 0)).completions).toEqual([]);
  });

  it("answers 204, 404 for unknown ids, 400 for other futures, and leaves a finished sample alone", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const done = await sampler.sample(prompt, 1, { max_tokens: 2, seed: 1 });
    const requestId = await sampler.sample(prompt, 1, { max_tokens: 2, seed: 1 }).requestId;
    await pause(20);
    const finished = await raw(t.backend, "cancel_future", { request_id: requestId });
    expect(finished).toMatchObject({ status: 204, text: "" });
    const after = await raw(t.backend, "retrieve_future", { request_id: requestId });
    expect(after.json.sequences[0].tokens).toEqual(done.sequences[0]!.tokens);

    expect((await raw(t.backend, "cancel_future", { request_id: "req-unknown-1" })).status).toBe(404);
    await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const createModel = bodiesOf(t.requests, "retrieve_future").at(-1)!;
    const modelRequest = (jsonBody(createModel) as { request_id: string }).request_id;
    const notSample = await raw(t.backend, "cancel_future", { request_id: modelRequest });
    expect(notSample.status).toBe(400);
    expect(notSample.json.detail).toMatch(/only sample futures can be cancelled/);
  });

  const slowCompletions = { chaos: [{ endpoint: "retrieve_futures", delayMs: 400, times: 20 }] };

  it("sends cancel_future for a sample abandoned after submission (abort and timeout)", async () => {
    const t = setup(slowCompletions);
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const controller = new AbortController();
    const aborted = sampler.sample(prompt, 1, { max_tokens: 1 }, { signal: controller.signal });
    const abortedId = await aborted.requestId;
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(APIUserAbortError);

    const timedOut = sampler.sample(prompt, 1, { max_tokens: 1 }, { timeout: 150 });
    const timedOutId = await timedOut.requestId;
    await expect(timedOut).rejects.toBeInstanceOf(APITimeoutError);
    await pause(20);

    const cancels = bodiesOf(t.requests, "cancel_future").map(text);
    expect(cancels).toEqual([
      JSON.stringify({ request_id: abortedId }),
      JSON.stringify({ request_id: timedOutId }),
    ]);
    // A finished sample ends as it finished; a sample that completes normally sends no cancel.
    await sampler.sample(prompt, 1, { max_tokens: 1 });
    expect(count(t.requests, "cancel_future")).toBe(2);
  });

  it("sends nothing when the server does not take cancels (dynamicConfig override)", async () => {
    const t = setup({ ...slowCompletions, dynamicConfig: { sample_cancel_enabled: false } });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const aborted = sampler.sample(prompt, 1, { max_tokens: 1 }, { timeout: 100 });
    await aborted.requestId;
    await expect(aborted).rejects.toBeInstanceOf(APITimeoutError);
    await pause(20);
    expect(count(t.requests, "cancel_future")).toBe(0);
  });

  it("sends at most sample_cancel_max_batch_size cancels at a time", async () => {
    const t = setup({
      ...slowCompletions,
      dynamicConfig: { sample_cancel_max_batch_size: 2 },
      chaos: [...slowCompletions.chaos, { endpoint: "cancel_future", delayMs: 50, times: 5 }],
    });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const controller = new AbortController();
    const samples = [1, 2, 3, 4, 5].map(() =>
      sampler.sample(prompt, 1, { max_tokens: 1 }, { signal: controller.signal }),
    );
    await Promise.all(samples.map((s) => s.requestId));
    controller.abort();
    await Promise.allSettled(samples);
    while (count(t.requests, "cancel_future") < 5) await pause(20);
    await pause(100);
    expect(count(t.requests, "cancel_future")).toBe(5);
    expect(t.maxInFlight.cancel_future).toBe(2);
  });
});

describe("every new flag off", () => {
  it("samples, clones and abandons samples with the 0.25 routes only", async () => {
    const t = setup({
      clientConfig: { sample_use_retrieve_futures: false, sample_join_sampling_session: false },
      dynamicConfig: { sample_cancel_enabled: false },
      chaos: [{ endpoint: "retrieve_future", delayMs: 100, times: 100 }],
    });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const clone = await SamplingClient.fromSamplerHandle(sampler.getSamplerHandle(), t.service);
    const [a, b] = await Promise.all([
      sampler.sample(prompt, 2, { max_tokens: 2 }),
      clone.sample(prompt, 1, { max_tokens: 2 }),
    ]);
    expect(a.sequences).toHaveLength(2);
    expect(b.sequences).toHaveLength(1);
    const abandoned = sampler.sample(prompt, 1, { max_tokens: 1 }, { timeout: 50 });
    await abandoned.requestId;
    await expect(abandoned).rejects.toBeInstanceOf(APITimeoutError);
    await pause(20);
    for (const route of ["retrieve_futures", "join_sampling_session", "cancel_future"]) {
      expect(count(t.requests, route), route).toBe(0);
    }
  });
});

describe("timers", () => {
  it("leaves none behind after close(), even with a sample abandoned mid-wait", async () => {
    const before = timeouts();
    // Completions arrive late, so the abort lands while the sample waits in the poll loop.
    const t = setup({ chaos: [{ endpoint: "retrieve_futures", delayMs: 1_000, after: 1, times: 5 }] });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await sampler.sample(prompt, 1, { max_tokens: 2 });
    const controller = new AbortController();
    const waiting = sampler.sample(prompt, 1, { max_tokens: 2 }, { signal: controller.signal });
    await waiting.requestId;
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(APIUserAbortError);
    await closers.closeAll();
    await pause(20);
    expect(timeouts()).toBeLessThanOrEqual(before);
  });
});
