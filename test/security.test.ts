/**
 * Secrets and hostile servers: credentials never leave for another origin (redirects drop them),
 * response bodies are size-limited, and the API key and JWT appear nowhere in what the SDK emits —
 * errors (messages, properties, causes, inspect output), telemetry bodies, logs, inspect output of
 * the clients — across a run full of faults.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MAX_RESPONSE_BYTES, HttpClient } from "../src/core/http.js";
import { APIError, ModelInput } from "../src/index.js";
import { API_KEY, faultyService, MODEL } from "./faults.helpers.js";
import { qaDatum } from "./helpers.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  vi.restoreAllMocks();
});

async function listen(
  handler: (
    url: string,
    headers: IncomingHttpHeaders,
  ) => { status: number; headers?: Record<string, string>; body?: string },
) {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const answer = handler(req.url ?? "/", req.headers);
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(answer.body ?? "{}");
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const CF = { "CF-Access-Client-Id": "cf-id-secret", "CF-Access-Client-Secret": "cf-secret-value" };

function http(baseURL: string, extra: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}) {
  return new HttpClient({
    baseURL,
    defaultHeaders: { ...CF },
    credential: () => API_KEY,
    maxRetries: 0,
    timeoutMs: 5_000,
    ...extra,
  });
}

describe("redirects", () => {
  it("drop X-API-Key and CF-Access-* when they lead to another origin", async () => {
    const seenByOther: IncomingHttpHeaders[] = [];
    const other = await listen((_url, headers) => {
      seenByOther.push(headers);
      return { status: 200, body: '{"ok":true}' };
    });
    for (const status of [301, 302, 303, 307, 308]) {
      const origin = await listen(() => ({ status, headers: { location: `${other}/landing` } }));
      const response = await http(origin).request({
        method: "POST",
        path: "api/v1/anything",
        json: { a: 1 },
      });
      expect(response.json()).toEqual({ ok: true });
    }
    expect(seenByOther).toHaveLength(5);
    for (const headers of seenByOther) {
      expect(headers["x-api-key"]).toBeUndefined();
      expect(headers["cf-access-client-id"]).toBeUndefined();
      expect(headers["cf-access-client-secret"]).toBeUndefined();
      expect(JSON.stringify(headers)).not.toContain(API_KEY);
    }
  });

  it("keep them on a same-origin redirect, and re-send the body on 307", async () => {
    const seen: { url: string; key: string | undefined }[] = [];
    const origin = await listen((url, headers) => {
      seen.push({ url, key: headers["x-api-key"] as string | undefined });
      return url.endsWith("/start")
        ? { status: 307, headers: { location: "/api/v1/finish" } }
        : { status: 200, body: '{"done":true}' };
    });
    const response = await http(origin).request({ method: "POST", path: "api/v1/start", json: { a: 1 } });
    expect(response.json()).toEqual({ done: true });
    expect(seen).toEqual([
      { url: "/api/v1/start", key: API_KEY },
      { url: "/api/v1/finish", key: API_KEY },
    ]);
  });

  it("stop after 20 hops", async () => {
    const origin = await listen(() => ({ status: 302, headers: { location: "/again" } }));
    await expect(http(origin).request({ method: "GET", path: "loop" })).rejects.toThrow(/Too many redirects/);
  });
});

describe("response size limit", () => {
  const big = (bytes: number, withLength: boolean) => async () => {
    const chunk = new Uint8Array(64 * 1024).fill(32);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= bytes) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (withLength) headers["content-length"] = String(bytes);
    return new Response(body, { status: 200, headers });
  };

  it("is 100 MiB by default", () => {
    expect(DEFAULT_MAX_RESPONSE_BYTES).toBe(100 * 1024 * 1024);
  });

  it("refuses a declared or streamed body above the limit with an APIError, without retrying", async () => {
    for (const withLength of [true, false]) {
      const fetch = vi.fn(big(1024 * 1024, withLength));
      const client = http("http://hostile.example", { fetch, maxResponseBytes: 256 * 1024, maxRetries: 3 });
      const error = await client.request({ method: "GET", path: "x" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(APIError);
      expect(String(error)).toMatch(/exceeds the limit of 262144 bytes/);
      expect(fetch).toHaveBeenCalledTimes(1);
    }
  });

  it("lets a body at the limit through", async () => {
    const client = http("http://ok.example", { fetch: big(256 * 1024, false), maxResponseBytes: 256 * 1024 });
    const response = await client.request({ method: "GET", path: "x" });
    expect(response.body.length).toBe(256 * 1024);
  });
});

describe("no secret in anything the SDK emits", () => {
  it("across a run with faults, in JWT mode, with telemetry on", async () => {
    const logs: string[] = [];
    for (const method of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        logs.push(args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 8 }))).join(" "));
      });
    }
    const responses: unknown[] = [];
    const t = faultyService({
      local: { jwt: {} },
      // One transport retry: the persistent bad answer below fails after one repeat.
      client: {
        telemetry: true,
        defaultHeaders: { ...CF },
        onResponse: (info) => responses.push(info),
        maxRetries: 1,
      },
      chaos: [
        { endpoint: "forward_backward", status: 503, headers: { "retry-after-ms": "1" } },
        { endpoint: "optim_step", reset: true },
        { endpoint: "get_info", transform: (json) => ({ ...(json as object), model_id: 1 }), times: 100 },
        { endpoint: "asample", status: 401, body: { detail: "denied" } },
        { endpoint: "save_weights", malformed: true },
        { endpoint: "retrieve_future", status: 410, after: 6 },
        { endpoint: "weights_info", status: 403, body: { detail: "forbidden" } },
      ],
    });
    const errors: unknown[] = [];
    const keep = async (call: () => PromiseLike<unknown>) => {
      try {
        await call();
      } catch (error) {
        errors.push(error);
      }
    };
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
    const example = qaDatum("Q", "A");
    await keep(() => training.forwardBackward([example], "cross_entropy"));
    await keep(() => training.optimStep({ learning_rate: 1e-3 }));
    await keep(() => training.getInfo());
    await keep(() => training.saveState("s1"));
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await keep(() => sampler.sample(ModelInput.fromInts([256, 1]), 1, { max_tokens: 1 }));
    await keep(() => t.service.getWeightsInfo("tinker://nope:train:0/weights/x"));
    await keep(() => t.service.createRestClient().getTrainingRun("missing-run"));
    await keep(() => training.forwardBackward([example], "no_such_loss" as never));
    const inspected = [t.service, training, sampler, t.service.createRestClient()].map((o) =>
      inspect(o, { depth: 6, showHidden: true }),
    );
    await t.close();

    const jwt = t.requests.map((r) => r.headers.get("x-api-key")).find((k) => k?.startsWith("eyJ"));
    expect(jwt).toBeDefined();
    expect(errors.length).toBeGreaterThanOrEqual(5);
    const telemetry = t.requests.filter((r) => r.path.endsWith("/telemetry"));
    expect(telemetry.length).toBeGreaterThan(0);

    const emitted = [
      ...errors.flatMap((e) => [
        String(e),
        (e as Error).stack ?? "",
        inspect(e, { depth: 10, showHidden: true }),
        JSON.stringify(e, (_k, v) => (v instanceof Headers ? Object.fromEntries(v) : v)),
      ]),
      ...telemetry.map((r) => new TextDecoder().decode(r.body)),
      ...logs,
      ...inspected,
      inspect(responses, { depth: 4 }),
    ].join("\n");
    for (const secret of [API_KEY, jwt!, jwt!.split(".")[2]!, CF["CF-Access-Client-Secret"]]) {
      expect(emitted).not.toContain(secret);
    }
    // Every request went to the configured origin.
    expect(new Set(t.requests.map((r) => new URL(r.url).origin))).toEqual(new Set(["http://local.tinker"]));
  });
});
