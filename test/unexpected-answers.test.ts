/**
 * Issue 14, SDK side: answers that cannot be the server's are transient transport faults, every byte
 * of an answer is read under the per-attempt timeout, and no credential ends up in an error. Against
 * the real local backend, with a small fetch wrapper that answers the way broken paths do.
 */
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { HttpClient, type RetryInfo } from "../src/core/http.js";
import {
  APITimeoutError,
  APIUserAbortError,
  type FutureEvent,
  InternalServerError,
  ServiceClient,
  UnexpectedResponseError,
} from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { closeAfterEach, qaDatum } from "./helpers.js";

const closers = closeAfterEach();
const MODEL = "tinker-ts/byte-lm-tiny";
const API_KEY = "tml-unexpected-secret-7d3e91c0aa";
const CF_SECRET = "cf-secret-0b9e8d7c6a5f4e3d";
const example = () => qaDatum("What is 2 + 2?", "Four");

/** What a wrapper may do with one request: answer it itself, or let the backend answer. */
type Rewrite = (
  request: Request,
  seen: number,
  backend: (r: Request) => Promise<Response>,
) => Promise<Response> | undefined;

/**
 * A ServiceClient on the local backend whose requests to `endpoint` go through `rewrite` (with the
 * number of earlier requests to it); the backend's audit of applied seq_ids is kept.
 */
function setup(rewrites: Record<string, Rewrite>, client: Record<string, unknown> = {}) {
  const applied: number[] = [];
  const local = createLocalTinker({ longPollMs: 1_000, onApplied: (_m, seqId) => applied.push(seqId) });
  const counts = new Map<string, number>();
  const sent: { endpoint: string; body: string; retryCount: string | null }[] = [];
  const fetch = async (request: Request): Promise<Response> => {
    const endpoint = new URL(request.url).pathname.replace(/^\/api\/v1\//, "");
    sent.push({
      endpoint,
      body: await request.clone().text(),
      retryCount: request.headers.get("x-stainless-retry-count"),
    });
    const seen = counts.get(endpoint) ?? 0;
    counts.set(endpoint, seen + 1);
    const rewritten = rewrites[endpoint]?.(request, seen, local.fetch);
    return rewritten ?? local.fetch(request);
  };
  const service = new ServiceClient({
    apiKey: API_KEY,
    baseURL: "http://local.tinker",
    fetch,
    telemetry: false,
    ...client,
  });
  closers.add(async () => {
    await service.close();
    local.close();
  });
  return { service, applied, sent };
}

const html = (status: number, extra = "") =>
  new Response(`<!DOCTYPE html><html><body><h1>Welcome to the hotel Wi-Fi</h1>${extra}</body></html>`, {
    status,
    headers: { "content-type": "text/html" },
  });

/** The real answer's headers, then a body that never comes. */
async function stalled(answer: Promise<Response>): Promise<Response> {
  const real = await answer;
  await real.body?.cancel();
  return new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), {
    status: real.status,
    headers: real.headers,
  });
}

const seqIdsOf = (sent: { endpoint: string; body: string }[], endpoint: string) =>
  sent.filter((s) => s.endpoint === endpoint).map((s) => (JSON.parse(s.body) as { seq_id: number }).seq_id);

describe("answers that cannot be the server's are retried, not fatal", () => {
  it("an HTML page with status 200 on a training submission: sent again with the same seq_id, the run goes on", async () => {
    const t = setup({ optim_step: (_r, seen) => (seen === 0 ? Promise.resolve(html(200)) : undefined) });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await training.forwardBackward([example()], "cross_entropy");
    await expect(training.optimStep({ learning_rate: 1e-3 })).resolves.toBeDefined();
    // Not broken: later operations are sent and applied, each seq_id once.
    await training.forwardBackward([example()], "cross_entropy");
    expect(seqIdsOf(t.sent, "optim_step")).toEqual([2, 2]);
    expect(t.applied).toEqual([1, 2, 3]);
  });

  it("a replayed submission answer (a request id the client holds) is not taken as the step's acknowledgement", async () => {
    let previous: Response | undefined;
    const t = setup({
      forward_backward: (request, seen, backend) => {
        if (seen === 1 && previous) return Promise.resolve(previous.clone());
        return backend(request).then((answer) => {
          previous = answer.clone();
          return answer;
        });
      },
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const firstFuture = training.forwardBackward([example()], "cross_entropy");
    const firstRequestId = firstFuture.requestId;
    const first = await firstFuture;
    await training.optimStep({ learning_rate: 0.1 });
    const second = training.forwardBackward([example()], "cross_entropy");
    const events: FutureEvent[] = [];
    const [result] = await Promise.all([
      second,
      (async () => {
        for await (const event of second.events()) events.push(event);
      })(),
    ]);
    // The step's own loss (after the optimizer step), not the previous step's.
    expect(result.metrics).not.toEqual(first.metrics);
    expect(await second.requestId).not.toBe(await firstRequestId);
    // Three submissions (protobuf bodies): seq_id 1, then 3 twice (the replay, then the real answer).
    expect(t.sent.filter((s) => s.endpoint === "forward_backward")).toHaveLength(3);
    expect(t.applied).toEqual([1, 2, 3]);
    expect(events.some((e) => e.type === "retry")).toBe(false);
  });

  it("a try_again about another request, or a result of another request type, on a poll: polled again", async () => {
    const t = setup({
      retrieve_future: (_request, seen) => {
        if (seen === 1) {
          return Promise.resolve(
            Response.json({ type: "try_again", request_id: "someone-else", queue_state: "active" }),
          );
        }
        if (seen === 2) return Promise.resolve(Response.json({ metrics: {} }));
        return undefined;
      },
    });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const future = training.forwardBackward([example()], "cross_entropy");
    const events: FutureEvent[] = [];
    for await (const event of future.events()) events.push(event);
    await expect(future).resolves.toHaveProperty("loss_fn_outputs");
    const reasons = events.filter((e) => e.type === "retry").map((e) => (e as { reason: string }).reason);
    expect(reasons).toEqual(["unexpected_response", "unexpected_response"]);
  });

  it("a persistent HTML page ends the call with a typed UnexpectedResponseError after a bounded number of tries", async () => {
    const t = setup({ get_info: () => Promise.resolve(html(200)) }, { maxRetries: 2 });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const error = await training.getInfo().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect(error).toMatchObject({ kind: "html", status: 200 });
    expect(t.sent.filter((s) => s.endpoint === "get_info").map((s) => s.retryCount)).toEqual(["0", "1", "2"]);
  });

  it("onRetry is told every retry wait with its reason: status, unexpected answer, timeout", async () => {
    const infos: RetryInfo[] = [];
    let n = 0;
    const http = new HttpClient({
      baseURL: "http://x.test",
      defaultHeaders: {},
      credential: () => API_KEY,
      maxRetries: 5,
      timeoutMs: 100,
      onRetry: (info) => infos.push(info),
      fetch: async () => {
        n++;
        if (n === 1) return new Response("busy", { status: 503, headers: { "retry-after-ms": "1" } });
        if (n === 2) return html(200);
        if (n === 3) return stalled(Promise.resolve(Response.json({ ok: true })));
        return Response.json({ ok: true });
      },
    });
    const read = (r: { status: number }) => {
      if (n === 2) throw new UnexpectedResponseError("html", { kind: "html", status: r.status });
      return "done";
    };
    await expect(http.request({ method: "GET", path: "x" }, read)).resolves.toBe("done");
    expect(infos.map((i) => [i.attempt, i.reason, i.status])).toEqual([
      [1, "status", 503],
      [2, "unexpected_response", 200],
      [3, "timeout", undefined],
    ]);
    expect(infos.every((i) => i.url === "http://x.test/x" && i.method === "GET")).toBe(true);
  });
});

describe("every byte under the per-attempt timeout and the caller's signal", () => {
  it("a body that stalls after the headers is abandoned at the per-attempt timeout and the request sent again", async () => {
    const t = setup(
      { get_info: (request, seen, backend) => (seen === 0 ? stalled(backend(request)) : undefined) },
      { timeout: 300 },
    );
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    await expect(training.getInfo()).resolves.toHaveProperty("model_id", training.modelId);
    expect(t.sent.filter((s) => s.endpoint === "get_info").map((s) => s.retryCount)).toEqual(["0", "1"]);
  });

  it("a stalled body with no retry left is an APITimeoutError", async () => {
    const http = new HttpClient({
      baseURL: "http://x.test",
      defaultHeaders: {},
      credential: () => API_KEY,
      maxRetries: 0,
      timeoutMs: 100,
      fetch: () => stalled(Promise.resolve(Response.json({ ok: true }))),
    });
    await expect(http.request({ method: "GET", path: "x" })).rejects.toBeInstanceOf(APITimeoutError);
  });

  it("the caller's signal ends a body read and a retry wait", async () => {
    const http = new HttpClient({
      baseURL: "http://x.test",
      defaultHeaders: {},
      credential: () => API_KEY,
      maxRetries: 10,
      timeoutMs: 60_000,
      fetch: () => stalled(Promise.resolve(Response.json({ ok: true }))),
    });
    const controller = new AbortController();
    const pending = http.request({ method: "GET", path: "x", signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toBeInstanceOf(APIUserAbortError);
    const waiting = new HttpClient({
      baseURL: "http://x.test",
      defaultHeaders: {},
      credential: () => API_KEY,
      maxRetries: 10,
      timeoutMs: 60_000,
      fetch: async () => new Response("", { status: 503, headers: { "retry-after": "50" } }),
    });
    await expect(
      waiting.request({ method: "GET", path: "x", signal: AbortSignal.timeout(50) }),
    ).rejects.toBeInstanceOf(APITimeoutError);
  });
});

describe("a fault that never reached the server does not break the TrainingClient", () => {
  it("an operation aborted while waiting for its turn gives its seq_id to the next one", async () => {
    const t = setup({});
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const first = training.forwardBackward([example()], "cross_entropy");
    const controller = new AbortController();
    controller.abort();
    const aborted = training.optimStep({ learning_rate: 1e-3 }, { signal: controller.signal });
    await expect(aborted).rejects.toBeInstanceOf(APIUserAbortError);
    await first;
    await expect(training.optimStep({ learning_rate: 1e-3 })).resolves.toBeDefined();
    expect(seqIdsOf(t.sent, "optim_step")).toEqual([2]);
    expect(t.applied).toEqual([1, 2]);
  });
});

describe("secrets in errors", () => {
  const echoPage = (request: Request, status = 502) => {
    const headers = [...request.headers].map(([name, value]) => `${name}: ${value}`).join("<br>");
    return html(status, `<pre>${headers}</pre>${"<p>filler</p>".repeat(200)}`);
  };

  it("a 5xx page that echoes the request headers: no credential in message, stack, body, headers, JSON or inspect", async () => {
    const http = new HttpClient({
      baseURL: "http://x.test",
      defaultHeaders: { "CF-Access-Client-Secret": CF_SECRET },
      credential: () => API_KEY,
      maxRetries: 1,
      timeoutMs: 1_000,
      fetch: async (request) => {
        const page = echoPage(request);
        // Some proxies echo the key into a response header as well.
        page.headers.set("x-echo-api-key", request.headers.get("x-api-key") ?? "");
        page.headers.set("retry-after-ms", "1");
        return page;
      },
    });
    const error = (await http
      .request({ method: "GET", path: "x" })
      .catch((e: unknown) => e)) as InternalServerError;
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.message).toContain("[redacted]");
    // A bounded excerpt: the page is several kilobytes.
    expect(error.message.length).toBeLessThan(700);
    const texts = [
      error.message,
      error.stack ?? "",
      String(error.body),
      inspect(error, { depth: 10, showHidden: true }),
      JSON.stringify(error, (_k, v) => (v instanceof Headers ? Object.fromEntries(v) : v)),
    ].join("\n");
    expect(texts).not.toContain(API_KEY);
    expect(texts).not.toContain(CF_SECRET);
  });

  it("a persistent HTML 200 page that echoes the key: the UnexpectedResponseError is masked too", async () => {
    const t = setup({ get_info: (request) => Promise.resolve(echoPage(request, 200)) }, { maxRetries: 1 });
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const error = await training.getInfo().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect(String(error)).toContain("[redacted]");
    const text = [
      String(error),
      (error as Error).stack,
      inspect(error, { depth: 10, showHidden: true }),
    ].join("\n");
    expect(text).not.toContain(API_KEY);
  });

  it("a cause carrying the key is masked as well", async () => {
    const http = new HttpClient({
      baseURL: "http://x.test",
      defaultHeaders: {},
      credential: () => API_KEY,
      maxRetries: 0,
      timeoutMs: 1_000,
      fetch: async (request) => {
        throw new Error(`proxy refused ${request.headers.get("x-api-key")}`);
      },
    });
    const error = await http.request({ method: "GET", path: "x" }).catch((e: unknown) => e);
    const text = inspect(error, { depth: 10, showHidden: true });
    expect(text).toContain("[redacted]");
    expect(text).not.toContain(API_KEY);
  });
});
