/**
 * Session finish (PROTOCOL.md §S1) end to end: `ServiceClient.close(status, detail)` and `await
 * using` against the real local backend — the exact request, once; heartbeats stop; the closed
 * client refuses further calls — and the backend's side: first reason wins, persisted, every
 * session-scoped call answers 410 afterwards while REST reads and earlier work go on; a server
 * without the route only earns a warning.
 */
import { describe, expect, it } from "vitest";
import {
  APIStatusError,
  type Logger,
  ModelInput,
  ServiceClient,
  TinkerError,
  type TrainingClient,
} from "../src/index.js";
import { createLocalTinker, type LocalTinker, MemoryStore } from "../src/local/index.js";
import { closeAfterEach, jsonBody, QA, qaDatum, recordingFetch } from "./helpers.js";

const BASE_MODEL = "tinker-ts/byte-lm-tiny";
const API_KEY = "tml-test-key";
const closers = closeAfterEach();

/** A backend and a client with every request recorded; both closed after the test. */
function setup(options: { heartbeatIntervalMs?: number; logger?: Logger; store?: MemoryStore } = {}) {
  const local = createLocalTinker({ longPollMs: 1_000, store: options.store });
  const recorder = recordingFetch(local.fetch);
  const service = new ServiceClient({
    apiKey: API_KEY,
    baseURL: "http://local.tinker",
    fetch: recorder.fetch,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    logger: options.logger,
  });
  closers.add(() => local.close());
  closers.add(() => service.close());
  return { local, service, requests: recorder.requests };
}

/** One request to the backend without the SDK, to see statuses and bodies as they are. */
async function raw(local: LocalTinker, method: string, path: string, body?: unknown) {
  const response = await local.fetch(
    new Request(`http://local.tinker/api/v1/${path}`, {
      method,
      headers: { "X-API-Key": API_KEY, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const sessionOf = (training: TrainingClient) => training.modelId.split(":train:")[0]!;
const finishPath = (sessionId: string) => `/api/v1/sessions/${sessionId}/finish`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `await using` takes the client as it is: its type declares `[Symbol.asyncDispose]` (service.ts). */
const disposable = (options: ConstructorParameters<typeof ServiceClient>[0]) => new ServiceClient(options);

describe("ServiceClient.close", () => {
  it("sends the finish once with the exact body, then refuses further calls", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sessionId = sessionOf(training);

    await t.service.close("errored", "boom");
    const finishes = t.requests.filter((r) => r.path === finishPath(sessionId));
    expect(finishes).toHaveLength(1);
    expect(finishes[0]!.method).toBe("POST");
    // Key order as the official client sends it.
    expect(new TextDecoder().decode(finishes[0]!.body)).toBe('{"reason":{"type":"errored"},"detail":"boom"}');

    const sent = t.requests.length;
    await t.service.close("success");
    expect(t.requests).toHaveLength(sent);

    // ValidationError, a TinkerError: the caller's mistake, caught before anything is sent.
    const closed = { name: "ValidationError", message: expect.stringContaining("ServiceClient is closed") };
    await expect(t.service.createLoraTrainingClient(BASE_MODEL)).rejects.toMatchObject(closed);
    await expect(t.service.createLoraTrainingClient(BASE_MODEL)).rejects.toBeInstanceOf(TinkerError);
    await expect(t.service.createSamplingClient({ baseModel: BASE_MODEL })).rejects.toMatchObject(closed);
    await expect(t.service.getWeightsInfo("tinker://x/weights/y")).rejects.toMatchObject(closed);
    await expect(t.service.copyWeights("tinker://x/weights/y")).rejects.toMatchObject(closed);
    expect(() => t.service.createRestClient()).toThrow("ServiceClient is closed");
    expect(t.requests).toHaveLength(sent);

    // The server remembers it, and the reason stays the first one given.
    const info = await raw(t.local, "GET", `sessions/${sessionId}`);
    expect(info.body.finished).toMatchObject({ reason: { type: "errored" }, detail: "boom" });
  });

  it("finishes with success and a null detail by default, and sends nothing without a session", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: BASE_MODEL });
    expect(sampler).toBeDefined();
    await t.service.close();
    const [finish] = t.requests.filter((r) => r.path.endsWith("/finish"));
    expect(jsonBody(finish!)).toEqual({ reason: { type: "success" }, detail: null });

    const restOnly = setup();
    await restOnly.service.createRestClient().listSessions();
    await restOnly.service.close("interrupted");
    expect(restOnly.requests.some((r) => r.path.endsWith("/finish"))).toBe(false);
    expect(restOnly.requests.some((r) => r.path.endsWith("create_session"))).toBe(false);
  });

  it("stops the heartbeat, and the backend refuses later heartbeats with 410", async () => {
    const t = setup({ heartbeatIntervalMs: 10 });
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sessionId = sessionOf(training);
    const heartbeats = () => t.requests.filter((r) => r.path === "/api/v1/session_heartbeat").length;
    await expect.poll(heartbeats, { timeout: 2_000 }).toBeGreaterThan(0);

    await t.service.close("success");
    const after = heartbeats();
    await sleep(100);
    expect(heartbeats()).toBe(after);

    const refused = await raw(t.local, "POST", "session_heartbeat", { session_id: sessionId });
    expect(refused).toEqual({
      status: 410,
      body: { detail: `session ${sessionId} is finished (success)` },
    });
  });

  it("refuses calls on clients of the closed session at once; the server would answer 410", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sampler = await t.service.createSamplingClient({ baseModel: BASE_MODEL });
    await t.service.close("interrupted");
    const sent = t.requests.length;
    expect(() => sampler.sample(ModelInput.fromInts([1, 2, 3]), 1, { max_tokens: 2 })).toThrow(
      "sample: ServiceClient is closed",
    );
    expect(() =>
      training.forwardBackward([qaDatum(QA[0]!.question, QA[0]!.answer)], "cross_entropy"),
    ).toThrow("forwardBackward: ServiceClient is closed");
    expect(t.requests).toHaveLength(sent);
    // What the call would have met: the session is finished on the server.
    const refused = await raw(t.local, "POST", "forward_backward", {
      model_id: training.modelId,
      seq_id: 1,
      forward_backward_input: { data: [], loss_fn: "cross_entropy" },
    });
    expect(refused.status).toBe(410);
    expect(JSON.stringify(refused.body)).toContain(
      `session ${sessionOf(training)} is finished (interrupted)`,
    );
  });

  it("only warns when the server has no finish route (404), and still closes", async () => {
    const warnings: string[] = [];
    const logger: Logger = { info() {}, warn: (m) => warnings.push(m), error() {} };
    const local = createLocalTinker({ longPollMs: 1_000 });
    closers.add(() => local.close());
    // A server from before 0.29: the finish route does not exist.
    const { fetch, requests } = recordingFetch(async (request) =>
      new URL(request.url).pathname.endsWith("/finish")
        ? new Response(JSON.stringify({ detail: "Not Found" }), {
            status: 404,
            headers: { "content-type": "application/json" },
          })
        : local.fetch(request),
    );
    const service = new ServiceClient({
      apiKey: API_KEY,
      baseURL: "http://local.tinker",
      fetch,
      logger,
      heartbeatIntervalMs: 10,
    });
    const training = await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await expect(service.close("success")).resolves.toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`could not finish session ${sessionOf(training)}`);
    expect(warnings[0]).toContain("404");
    // One attempt: a 404 is not retried.
    expect(requests.filter((r) => r.path.endsWith("/finish"))).toHaveLength(1);
    const after = requests.length;
    await sleep(60);
    expect(requests).toHaveLength(after);
    await expect(service.createLoraTrainingClient(BASE_MODEL)).rejects.toThrow("ServiceClient is closed");
  });
});

describe("await using", () => {
  it("finishes with success when the block ends normally", async () => {
    const t = setup();
    let sessionId = "";
    {
      await using service = disposable({
        apiKey: API_KEY,
        baseURL: "http://local.tinker",
        fetch: t.local.fetch,
      });
      sessionId = sessionOf(await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 }));
    }
    const info = await raw(t.local, "GET", `sessions/${sessionId}`);
    expect(info.body.finished).toMatchObject({ reason: { type: "success" }, detail: null });
  });

  it("finishes with errored and the failure's message after a failed operation, heartbeats notwithstanding", async () => {
    const t = setup();
    let sessionId = "";
    let failure: unknown;
    try {
      await using service = disposable({
        apiKey: API_KEY,
        baseURL: "http://local.tinker",
        fetch: t.local.fetch,
        heartbeatIntervalMs: 10,
      });
      sessionId = sessionOf(await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 }));
      await service.createSamplingClient({ modelPath: "tinker://nowhere/sampler_weights/missing" });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(APIStatusError);
    const info = await raw(t.local, "GET", `sessions/${sessionId}`);
    expect(info.body.finished).toMatchObject({
      reason: { type: "errored" },
      detail: (failure as Error).message,
    });
  });

  it("keeps errored when heartbeats succeed between the failure and the end of the block", async () => {
    const t = setup();
    let sessionId = "";
    {
      await using service = disposable({
        apiKey: API_KEY,
        baseURL: "http://local.tinker",
        fetch: t.local.fetch,
        heartbeatIntervalMs: 10,
      });
      sessionId = sessionOf(await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 }));
      await service.createSamplingClient({ modelPath: "tinker://nowhere/sampler_weights/x" }).catch(() => {});
      // Several heartbeats succeed after the failure; they are not operations of the caller.
      await sleep(80);
    }
    const info = await raw(t.local, "GET", `sessions/${sessionId}`);
    expect(info.body.finished).toMatchObject({ reason: { type: "errored" } });
  });
});

describe("the local backend's finish", () => {
  it("keeps the first reason, answers later finishes with 200, and checks its input", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sessionId = sessionOf(training);
    const finish = (body: unknown) => raw(t.local, "POST", `sessions/${sessionId}/finish`, body);

    expect(await finish({ reason: { type: "bogus" } })).toMatchObject({ status: 400 });
    expect(await finish({ detail: "no reason" })).toMatchObject({ status: 400 });
    expect(
      await raw(t.local, "POST", "sessions/session-unknown/finish", { reason: { type: "success" } }),
    ).toEqual({
      status: 404,
      body: { detail: "session not found: session-unknown" },
    });
    // A rejected finish changed nothing.
    expect((await raw(t.local, "GET", `sessions/${sessionId}`)).body.finished).toBeNull();

    // `detail` may be absent.
    expect(await finish({ reason: { type: "interrupted" } })).toEqual({ status: 200, body: {} });
    expect(await finish({ reason: { type: "success" }, detail: "later" })).toEqual({ status: 200, body: {} });
    const info = await raw(t.local, "GET", `sessions/${sessionId}`);
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({
      training_run_ids: [training.modelId],
      user_metadata: {},
      finished: { reason: { type: "interrupted" }, detail: null },
    });
    expect(Date.parse((info.body.finished as { finished_at: string }).finished_at)).not.toBeNaN();
  });

  it("answers 410 to every session-scoped call afterwards; REST reads and other sessions go on", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, {
      rank: 2,
      userMetadata: { team: "search" },
    });
    const sessionId = sessionOf(training);
    const { path: statePath } = await training.saveState("kept");
    const sampler = await t.service.createSamplingClient({ baseModel: BASE_MODEL });
    await raw(t.local, "POST", `sessions/${sessionId}/finish`, { reason: { type: "errored" }, detail: "x" });

    const gone = { status: 410, body: { detail: `session ${sessionId} is finished (errored)` } };
    const prompt = { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] };
    const calls: [string, unknown][] = [
      ["session_heartbeat", { session_id: sessionId }],
      [
        "create_model",
        { session_id: sessionId, model_seq_id: 5, base_model: BASE_MODEL, lora_config: { rank: 2 } },
      ],
      ["load_weights", { session_id: sessionId, model_seq_id: 6, path: statePath, optimizer: false }],
      [
        "create_sampling_session",
        { session_id: sessionId, sampling_session_seq_id: 7, base_model: BASE_MODEL },
      ],
      ["asample", { sampling_session_id: sampler.samplingSessionId, seq_id: 9, prompt, num_samples: 1 }],
      ["optim_step", { model_id: training.modelId, seq_id: 3, adam_params: { learning_rate: 0.001 } }],
      ["save_weights", { model_id: training.modelId, seq_id: 3, path: "after" }],
      ["get_info", { model_id: training.modelId }],
    ];
    for (const [path, body] of calls) {
      expect(await raw(t.local, "POST", path, body), path).toEqual(gone);
    }

    // REST reads still work.
    expect(await raw(t.local, "GET", `training_runs/${training.modelId}`)).toMatchObject({
      status: 200,
      body: { training_run_id: training.modelId, user_metadata: { team: "search" } },
    });
    expect(await raw(t.local, "GET", `training_runs/${training.modelId}/checkpoints`)).toMatchObject({
      status: 200,
      body: { checkpoints: [{ tinker_path: statePath }] },
    });
    expect(await raw(t.local, "GET", `samplers/${sampler.samplingSessionId}`)).toMatchObject({ status: 200 });
    expect(await raw(t.local, "POST", "weights_info", { tinker_path: statePath })).toMatchObject({
      status: 200,
    });

    // Another session can still build on the finished session's checkpoints.
    const other = new ServiceClient({
      apiKey: API_KEY,
      baseURL: "http://local.tinker",
      fetch: t.local.fetch,
    });
    closers.add(() => other.close());
    const resumed = await other.createTrainingClientFromState(statePath);
    expect(sessionOf(resumed)).not.toBe(sessionId);
    await resumed.forwardBackward([qaDatum(QA[0]!.question, QA[0]!.answer)], "cross_entropy");
  });

  it("lets work submitted before the finish complete and stay retrievable", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sessionId = sessionOf(training);
    const submitted = await raw(t.local, "POST", "optim_step", {
      model_id: training.modelId,
      seq_id: 1,
      adam_params: { learning_rate: 0.001 },
    });
    expect(submitted.status).toBe(200);
    await raw(t.local, "POST", `sessions/${sessionId}/finish`, { reason: { type: "success" } });
    const result = await raw(t.local, "POST", "retrieve_future", { request_id: submitted.body.request_id });
    expect(result).toMatchObject({ status: 200, body: { type: "optim_step" } });
  });

  it("keeps the finish across a restart of a backend with a store", async () => {
    const store = new MemoryStore();
    const first = setup({ store });
    const training = await first.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sessionId = sessionOf(training);
    await first.service.close("errored", "disk full");
    await first.local.close();

    const second = createLocalTinker({ store });
    closers.add(() => second.close());
    const info = await raw(second, "GET", `sessions/${sessionId}`);
    expect(info.body.finished).toMatchObject({ reason: { type: "errored" }, detail: "disk full" });
    expect(await raw(second, "POST", "session_heartbeat", { session_id: sessionId })).toEqual({
      status: 410,
      body: { detail: `session ${sessionId} is finished (errored)` },
    });
    expect(
      await raw(second, "POST", "optim_step", { adam_params: {}, model_id: training.modelId, seq_id: 1 }),
    ).toMatchObject({
      status: 410,
    });
  });
});
