/**
 * The fault matrix of docs/RELIABILITY.md: one fault per test, the SDK against the real local backend
 * with the fault injected in front of it (src/local/chaos.ts). Rows already proven elsewhere are
 * referenced there (test/retries.test.ts, test/sampling.test.ts) instead of repeated here.
 */
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { serve } from "../src/cli/serve.js";
import {
  APITimeoutError,
  APIUserAbortError,
  type FutureEvent,
  FutureRetrieveError,
  NotFoundError,
  ResponseValidationError,
  ServiceClient,
  UnexpectedResponseError,
} from "../src/index.js";
import {
  API_KEY,
  activeTimers,
  auditSeqIds,
  eventually,
  type FaultyOptions,
  faultyService,
  MODEL,
} from "./faults.helpers.js";
import { closeAfterEach, jsonBody, qaDatum } from "./helpers.js";

const closers = closeAfterEach();

/** Everything the SDK emitted in this suite (errors, telemetry bodies), scanned for secrets at the end. */
const emitted: unknown[] = [];
const outgoing: { url: string; body: Uint8Array; headers: Headers }[] = [];
function keep(error: unknown): unknown {
  emitted.push(error);
  return error;
}

function setup(options: FaultyOptions = {}) {
  const t = faultyService({ ...options, client: { telemetry: true, ...options.client } });
  outgoing.push(t.requests as never);
  closers.add(t.close);
  return t;
}

const fast = { "retry-after-ms": "5" };
const example = () => qaDatum("What is 2 + 2?", "Four");

function paths(t: ReturnType<typeof setup>, endpoint: string) {
  return t.requests.filter((r) => r.path.endsWith(`/${endpoint}`));
}

async function oneStep(t: ReturnType<typeof setup>) {
  const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2 });
  const fb = training.forwardBackward([example()], "cross_entropy");
  const step = training.optimStep({ learning_rate: 1e-3 });
  const [out] = await Promise.all([fb, step]);
  return { training, out };
}

describe("5xx and 429 answers", () => {
  it("a burst of 5xx on a training submission and on its polls: retried, applied once", async () => {
    const t = setup({
      chaos: [
        { endpoint: "forward_backward", status: 503, headers: fast, times: 3 },
        { endpoint: "retrieve_future", status: 502, times: 3, after: 1 },
      ],
    });
    const { out } = await oneStep(t);
    expect(out.metrics["loss:sum"]).toBeGreaterThan(0);
    const submissions = paths(t, "forward_backward");
    expect(submissions).toHaveLength(4);
    expect(new Set(submissions.map((r) => r.headers.get("x-idempotency-key"))).size).toBe(1);
    expect(auditSeqIds(t.applied)).toEqual({ applied: 2, duplicated: 0, lost: 0 });
  });

  it("429 with retry-after (seconds) and retry-after-ms: waits exactly what the server says", async () => {
    // Both above the default first back-off (0.375–0.5 s), so the wait proves the header was used.
    const t = setup({
      chaos: [
        { endpoint: "create_session", status: 429, headers: { "retry-after": "0.8" } },
        { endpoint: "get_server_capabilities", status: 429, headers: { "retry-after-ms": "650" } },
      ],
    });
    await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await t.service.getServerCapabilities();
    for (const [endpoint, wait] of [
      ["create_session", 800],
      ["get_server_capabilities", 650],
    ] as const) {
      const [first, second] = paths(t, endpoint);
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(wait - 10);
      expect(second!.at - first!.at).toBeLessThan(wait + 2_000);
    }
  });

  it("x-should-retry: true forces a retry of a status that is otherwise final (false: see retries.test.ts)", async () => {
    const t = setup({
      chaos: [{ endpoint: "create_session", status: 400, headers: { ...fast, "x-should-retry": "true" } }],
    });
    await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    expect(paths(t, "create_session")).toHaveLength(2);
  });
});

describe("polls answered 408 and 410", () => {
  it("408 with a queue state: polls again and reports the state in events()", async () => {
    const t = setup({
      chaos: [
        {
          endpoint: "retrieve_future",
          status: 408,
          after: 1,
          times: 2,
          body: { queue_state: "paused_capacity", queue_state_reason: "short on capacity" },
        },
      ],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const future = training.forwardBackward([example()], "cross_entropy");
    await future;
    const events: FutureEvent[] = [];
    for await (const event of future.events()) events.push(event);
    expect(events.filter((e) => e.type === "queue_state")).toMatchObject([
      { queueState: "paused_capacity", reason: "short on capacity" },
      { queueState: "paused_capacity", reason: "short on capacity" },
    ]);
  });
  // 410 on a training poll → FutureRetrieveError(status 410): test/retries.test.ts "surfaces 410".
  // 410 on a sampling poll → re-submitted with a new seq_id: test/sampling.test.ts "re-runs a sample".
});

describe("dropped and reset connections", () => {
  it("dropped before the server saw it, or reset after it applied it: retried under the same seq_id, applied once", async () => {
    const t = setup({
      chaos: [
        { endpoint: "forward_backward", drop: true },
        { endpoint: "optim_step", reset: true },
      ],
    });
    await oneStep(t);
    const seqIds = (endpoint: string) =>
      paths(t, endpoint).map((r) => (jsonBody(r as never) as { seq_id?: number }).seq_id);
    expect(paths(t, "forward_backward")).toHaveLength(2);
    expect(seqIds("optim_step")).toEqual([2, 2]);
    expect(auditSeqIds(t.applied)).toEqual({ applied: 2, duplicated: 0, lost: 0 });
  });

  it("reset while a poll's body was being read: polls again after the back-off", async () => {
    const t = setup({ chaos: [{ endpoint: "retrieve_future", resetBody: true, after: 1 }] });
    const { out } = await oneStep(t);
    expect(out.loss_fn_outputs).toHaveLength(1);
    expect(auditSeqIds(t.applied).duplicated).toBe(0);
  });
});

describe("slow servers and timeouts", () => {
  it("a per-call timeout ends a call whose answer is slower: APITimeoutError, no timer left", async () => {
    const baseline = activeTimers();
    const t = setup({ chaos: [{ endpoint: "retrieve_future", after: 1, delayMs: 10_000, times: 100 }] });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const started = Date.now();
    const error = await training
      .forwardBackward([example()], "cross_entropy", undefined, { timeout: 200 })
      .catch(keep);
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
    await closers.closeAll();
    await eventually(() => activeTimers() <= baseline);
  });

  it("the client's per-attempt timeout ends a slow HTTP call: APITimeoutError after the retries", async () => {
    const t = setup({
      chaos: [{ endpoint: "get_server_capabilities", delayMs: 5_000, times: 5 }],
      client: { timeout: 100, maxRetries: 0 },
    });
    const error = await t.service.getServerCapabilities({ timeout: 600 }).catch(keep);
    expect(error).toBeInstanceOf(APITimeoutError);
  });
});

describe("bodies that are not what they claim", () => {
  // Once, such an answer is taken for a fault on the path and the request is sent again (issue 14;
  // test/unexpected-answers.test.ts); when it persists, the call ends with a typed error. These
  // clients allow one transport retry, so the persistent case fails after one repeat.
  const persistent = { times: 1_000 };
  const oneRetry = { client: { maxRetries: 1 } };

  it("a truncated JSON answer is repeated once, a persistent one is an UnexpectedResponseError", async () => {
    const once = setup({ chaos: [{ endpoint: "get_server_capabilities", truncate: true }] });
    await expect(once.service.getServerCapabilities()).resolves.toHaveProperty("supported_models");
    const t = setup({
      ...oneRetry,
      chaos: [{ endpoint: "get_server_capabilities", truncate: true, ...persistent }],
    });
    const error = await t.service.getServerCapabilities().catch(keep);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect(error).toMatchObject({ kind: "malformed", status: 200 });
    expect(paths(t, "get_server_capabilities")).toHaveLength(2);
  });

  it("a truncated protobuf result is polled again; a persistent one fails the future with a decode error", async () => {
    const once = setup({ chaos: [{ endpoint: "retrieve_future", truncate: true, after: 1 }] });
    const onceTraining = await once.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await expect(onceTraining.forwardBackward([example()], "cross_entropy")).resolves.toHaveProperty(
      "metrics",
    );
    const t = setup({
      ...oneRetry,
      chaos: [{ endpoint: "retrieve_future", truncate: true, after: 1, ...persistent }],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const error = await training.forwardBackward([example()], "cross_entropy").catch(keep);
    // The codec's decode error becomes a ResponseValidationError, like a JSON schema mismatch.
    expect(error).toBeInstanceOf(ResponseValidationError);
    expect(String(error)).toMatch(/truncated/);
  });

  it("malformed JSON on a submission is sent again with the same seq_id; persistent, an UnexpectedResponseError", async () => {
    const once = setup({ chaos: [{ endpoint: "optim_step", malformed: true }] });
    const onceTraining = await once.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await onceTraining.forwardBackward([example()], "cross_entropy");
    await expect(onceTraining.optimStep({ learning_rate: 1e-3 })).resolves.toBeDefined();
    const seqIds = paths(once, "optim_step").map((r) => (jsonBody(r as never) as { seq_id?: number }).seq_id);
    expect(seqIds).toEqual([2, 2]);
    expect(auditSeqIds(once.applied)).toEqual({ applied: 2, duplicated: 0, lost: 0 });

    const t = setup({ ...oneRetry, chaos: [{ endpoint: "optim_step", malformed: true, ...persistent }] });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await training.forwardBackward([example()], "cross_entropy");
    const error = await training.optimStep({ learning_rate: 1e-3 }).catch(keep);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect(error).toMatchObject({ kind: "malformed" });
    expect((error as Error).message).toMatch(/optim_step/);
  });

  it("a body that breaks the schema is asked for again; persistent, the error names the field", async () => {
    const breakIt = (json: unknown) => ({ ...(json as object), model_id: 42 });
    const once = setup({ chaos: [{ endpoint: "get_info", transform: breakIt }] });
    const onceTraining = await once.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await expect(onceTraining.getInfo()).resolves.toHaveProperty("model_id", onceTraining.modelId);
    const t = setup({ ...oneRetry, chaos: [{ endpoint: "get_info", transform: breakIt, ...persistent }] });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const error = await training.getInfo().catch(keep);
    expect(error).toBeInstanceOf(ResponseValidationError);
    expect((error as ResponseValidationError).issues.map((i) => i.path)).toContain("model_id");
    expect(String(error)).toMatch(/model_id/);
  });
});

describe("sessions and billing", () => {
  it("failing heartbeats do not stop training", async () => {
    const t = setup({
      chaos: [{ endpoint: "session_heartbeat", status: 500, times: 1_000 }],
      client: { heartbeatIntervalMs: 20 },
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await eventually(() => paths(t, "session_heartbeat").length >= 3);
    for (let i = 0; i < 3; i++) {
      await training.forwardBackward([example()], "cross_entropy");
      await training.optimStep({ learning_rate: 1e-3 });
    }
    expect(auditSeqIds(t.applied)).toEqual({ applied: 6, duplicated: 0, lost: 0 });
  });

  it("a 402 on a poll pauses polling 5 s (billing pause), reported as a retry event", async () => {
    // That polling goes on once the 402 clears: test/sampling.test.ts "pauses on 402".
    const t = setup({
      chaos: [
        { endpoint: "retrieve_future", status: 402, after: 1, times: 100, body: { detail: "billing" } },
      ],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const future = training.forwardBackward([example()], "cross_entropy", undefined, { timeout: 500 });
    await expect(future).rejects.toBeInstanceOf(APITimeoutError);
    const events: FutureEvent[] = [];
    for await (const event of future.events()) events.push(event);
    expect(events).toEqual([{ type: "retry", status: 402, delayMs: 5_000, iteration: 0, reason: "status" }]);
  });

  // The training path honours the server's billing_exception_max_pause_duration_sec, as sampling
  // and REST calls do.
  it("a 402 on a training submission fails at once when the server allows no billing pause", async () => {
    const t = setup({
      chaos: [{ endpoint: "forward_backward", status: 402, body: { detail: "billing" } }],
      local: { clientConfig: { billing_exception_max_pause_duration_sec: 0 } },
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await expect(training.forwardBackward([example()], "cross_entropy")).rejects.toMatchObject({
      status: 402,
    });
  });
});

describe("cancellation", () => {
  it("an aborted future stops polling at once and leaves no timer", async () => {
    const baseline = activeTimers();
    // Polls answered 503 after 10 ms: the poller re-polls at once, so a missed abort would show.
    const t = setup({
      chaos: [{ endpoint: "retrieve_future", status: 503, delayMs: 10, after: 1, times: 10_000 }],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const controller = new AbortController();
    const future = training.forwardBackward([example()], "cross_entropy", undefined, {
      signal: controller.signal,
    });
    await eventually(() => paths(t, "retrieve_future").length >= 2);
    const polls = paths(t, "retrieve_future").length;
    const aborted = Date.now();
    controller.abort();
    const error = await future.catch(keep);
    expect(Date.now() - aborted).toBeLessThan(100);
    expect(error).toBeInstanceOf(APIUserAbortError);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(paths(t, "retrieve_future")).toHaveLength(polls);
    await closers.closeAll();
    await eventually(() => activeTimers() <= baseline);
  });

  it("a call stuck in a queue reports the queue state in events(), and times out", async () => {
    const t = setup({
      chaos: [
        {
          endpoint: "retrieve_future",
          status: 408,
          after: 1,
          times: 10_000,
          delayMs: 20,
          body: {
            queue_state: "paused_rate_limit",
            queue_state_reason: "concurrent training clients rate limit hit",
          },
        },
      ],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const future = training.forwardBackward([example()], "cross_entropy", undefined, { timeout: 300 });
    const error = await future.catch(keep);
    expect(error).toBeInstanceOf(APITimeoutError);
    const events: FutureEvent[] = [];
    for await (const event of future.events()) events.push(event);
    expect(events.length).toBeGreaterThan(2);
    expect(events.filter((e) => e.type === "queue_state").at(-1)).toMatchObject({
      type: "queue_state",
      queueState: "paused_rate_limit",
      reason: "concurrent training clients rate limit hit",
    });
  });

  it("the timeout error of a queued call carries the last queue state", async () => {
    const t = setup({
      chaos: [
        {
          endpoint: "retrieve_future",
          status: 408,
          after: 1,
          times: 10_000,
          delayMs: 20,
          body: { queue_state: "paused_rate_limit", queue_state_reason: "rate limit hit" },
        },
      ],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const error = await training
      .forwardBackward([example()], "cross_entropy", undefined, { timeout: 300 })
      .catch(keep);
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(String(error)).toMatch(/paused_rate_limit.*rate limit hit/);
    expect((error as APITimeoutError).body).toMatchObject({ queue_state: "paused_rate_limit" });
  });
});

describe("queue state in result({ timeout })", () => {
  it("names the last queue state when result({ timeout }) gives up", async () => {
    const t = setup({
      chaos: [
        {
          endpoint: "retrieve_future",
          status: 408,
          after: 1,
          times: 10_000,
          delayMs: 20,
          body: { queue_state: "paused_capacity", queue_state_reason: "short on capacity" },
        },
      ],
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const controller = new AbortController();
    const future = training.forwardBackward([example()], "cross_entropy", undefined, {
      signal: controller.signal,
    });
    const error = await future.result({ timeout: 300 }).catch(keep);
    controller.abort();
    await future.catch(() => {});
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(String(error)).toMatch(/queue_state: paused_capacity, reason: short on capacity/);
  });
});

describe("server restart mid-run (loopback)", () => {
  it("state is lost: the next operation fails with NotFoundError, old futures with 404, nothing hangs", async () => {
    let server = await serve({ port: 0, host: "127.0.0.1", longPollMs: 1_000 });
    const url = server.url;
    const port = Number(new URL(url).port);
    const service = new ServiceClient({ apiKey: "tml-restart-key", baseURL: url, telemetry: false });
    closers.add(async () => {
      await service.close();
      await server.close();
    });
    const training = await service.createLoraTrainingClient(MODEL, { rank: 1 });
    const first = training.forwardBackward([example()], "cross_entropy");
    await first;
    const oldRequestId = await first.requestId;

    await server.close();
    server = await serve({ port, host: "127.0.0.1", longPollMs: 1_000 });

    const started = Date.now();
    const error = await training.optimStep({ learning_rate: 1e-3 }).catch(keep);
    expect(error).toBeInstanceOf(NotFoundError);
    // The run is poisoned on purpose: later operations are not sent out of order.
    await expect(training.forwardBackward([example()], "cross_entropy")).rejects.toThrow(/Not sent/);
    const lost = service.futures.retrieve(oldRequestId, "ForwardBackward");
    await expect(lost).rejects.toBeInstanceOf(FutureRetrieveError);
    await expect(lost).rejects.toMatchObject({ status: 404 });
    expect(Date.now() - started).toBeLessThan(5_000);
    // The session died with the server too: this ServiceClient cannot create runs any more …
    await expect(service.createLoraTrainingClient(MODEL, { rank: 1 })).rejects.toBeInstanceOf(NotFoundError);
    // … a new ServiceClient (new session) works against the restarted server.
    const again = new ServiceClient({ apiKey: "tml-restart-key", baseURL: url, telemetry: false });
    try {
      const fresh = await again.createLoraTrainingClient(MODEL, { rank: 1 });
      await expect(fresh.forwardBackward([example()], "cross_entropy")).resolves.toBeDefined();
    } finally {
      await again.close();
    }
  });

  it("a server that is down while a poll waits: the poll backs off and reconnects", async () => {
    let server = await serve({ port: 0, host: "127.0.0.1", longPollMs: 1_000 });
    const port = Number(new URL(server.url).port);
    const service = new ServiceClient({ apiKey: "tml-restart-key", baseURL: server.url, telemetry: false });
    closers.add(async () => {
      await service.close();
      await server.close();
    });
    await service.createLoraTrainingClient(MODEL, { rank: 1 });
    await server.close();
    const pending = service.futures.retrieve("req-999", "ForwardBackward", { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    server = await serve({ port, host: "127.0.0.1", longPollMs: 1_000 });
    // The restarted server has never heard of the request: a typed 404, not a hang.
    await expect(pending).rejects.toMatchObject({ status: 404, name: "FutureRetrieveError" });
  });
});

describe("secrets", () => {
  it("no API key in any error, telemetry body or request to another origin of this suite", () => {
    // Scans what the tests above emitted (run alone, with -t, there is nothing to scan).
    if (emitted.length === 0) return;
    const requests = (outgoing as unknown as { url: string; body: Uint8Array; headers: Headers }[][]).flat();
    expect(emitted.length).toBeGreaterThanOrEqual(8);
    const telemetry = requests.filter((r) => r.url.endsWith("/telemetry"));
    expect(telemetry.length).toBeGreaterThan(0);
    const text = [
      ...emitted.flatMap((e) => [
        String(e),
        (e as Error).stack ?? "",
        inspect(e, { depth: 10, showHidden: true }),
      ]),
      ...telemetry.map((r) => new TextDecoder().decode(r.body)),
    ].join("\n");
    for (const secret of [API_KEY, "tml-restart-key"]) expect(text).not.toContain(secret);
    for (const r of requests) {
      if (new URL(r.url).origin !== "http://local.tinker") expect(r.headers.get("x-api-key")).toBeNull();
    }
  });
});
