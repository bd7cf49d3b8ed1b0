/**
 * The local backend under hostile input (issue 14): every case is a 4xx, never a 5xx or a crash, and
 * no answer repeats a credential. Small sizes where size does not matter; the long run with the big
 * sizes (1 GiB bodies, 10,000 polls) is scripts/hardening.ts. docs/RELIABILITY.md ("Hostile input")
 * lists each case with its test.
 */
import { request as httpRequest } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { spawnServe } from "../scripts/lib/serve-child.js";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { ServiceClient, ValidationError } from "../src/index.js";
import { createLocalTinker, type LocalTinker, type LocalTinkerOptions } from "../src/local/index.js";
import { ENDPOINTS, pathOf } from "../src/wire/endpoints/index.js";

const KEY = "tml-hardening-test-key-0123456789";
const MODEL = "tinker-ts/byte-lm-tiny";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

function backend(options: LocalTinkerOptions = {}): LocalTinker {
  const local = createLocalTinker({ apiKeys: [KEY], longPollMs: 50, ...options });
  open.push(local);
  return local;
}

async function startServer(options: Partial<Parameters<typeof serve>[0]> = {}): Promise<RunningServer> {
  const server = await serve({ port: 0, host: "127.0.0.1", apiKeys: [KEY], longPollMs: 50, ...options });
  open.push(server);
  return server;
}

/** A JSON request to the backend's fetch handler; `key: null` sends none. */
async function call(
  local: LocalTinker,
  method: string,
  path: string,
  body?: unknown,
  { key = KEY as string | null, raw }: { key?: string | null; raw?: BodyInit } = {},
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers["x-api-key"] = key;
  const response = await local.fetch(
    new Request(`http://local.tinker/api/v1/${path}`, {
      method,
      headers,
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      duplex: "half",
    } as RequestInit),
  );
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: response.status, json, text };
}

async function session(local: LocalTinker): Promise<string> {
  const created = await call(local, "POST", "create_session", { tags: [], sdk_version: "0.39.0" });
  return created.json.session_id as string;
}

async function trainingRun(local: LocalTinker): Promise<{ sessionId: string; modelId: string }> {
  const sessionId = await session(local);
  const created = await call(local, "POST", "create_model", {
    session_id: sessionId,
    model_seq_id: 0,
    base_model: MODEL,
    lora_config: { rank: 2 },
  });
  const result = await call(local, "POST", "retrieve_future", { request_id: created.json.request_id });
  return { sessionId, modelId: result.json.model_id as string };
}

/** A body stream of `total` bytes in 64 KiB chunks that counts how much of it was pulled. */
function countedStream(total: number): { stream: ReadableStream<Uint8Array>; pulled(): number } {
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(chunk.length, total - sent);
      sent += size;
      controller.enqueue(chunk.subarray(0, size));
    },
  });
  return { stream, pulled: () => sent };
}

/** A raw HTTP/1.1 exchange (fetch cannot send TRACE or a bad Host). */
function rawHttp(url: string, method: string, headers: Record<string, string>, body?: Uint8Array) {
  const { hostname, port } = new URL(url);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      { hostname, port, method, path: "/api/v1/healthz", headers, setHost: false },
      (res) => {
        let text = "";
        res.on("data", (c) => {
          text += String(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("bodies", () => {
  it("a declared Content-Length over the limit is 413 before the credential is checked", async () => {
    const local = backend({ maxBodyBytes: 1024 });
    const response = await local.fetch(
      new Request("http://local.tinker/api/v1/create_session", {
        method: "POST",
        headers: { "content-length": "1000000" },
        body: "{}",
      }),
    );
    expect(response.status).toBe(413);
  });

  it("a streamed body is cut at the limit (413), never read whole", async () => {
    const local = backend({ maxBodyBytes: 256 * 1024 });
    const body = countedStream(64 * 1024 * 1024);
    const answer = await call(local, "POST", "create_session", undefined, { raw: body.stream });
    expect(answer.status).toBe(413);
    expect(answer.json.detail).toMatch(/larger than .* 262144 bytes/);
    expect(body.pulled()).toBeLessThan(2 * 1024 * 1024);
  });

  it("an unauthenticated body is refused (401) without being read", async () => {
    const local = backend();
    for (const key of [null, "tml-wrong-key"]) {
      const body = countedStream(16 * 1024 * 1024);
      const answer = await call(local, "POST", "forward_backward", undefined, { key, raw: body.stream });
      expect(answer.status).toBe(401);
      // At most the few chunks the streams pull ahead into their queues, not the body.
      expect(body.pulled()).toBeLessThanOrEqual(256 * 1024);
    }
  });

  it("over HTTP: a chunked body past the limit → 413, an unauthenticated one → 401, the server stays up", async () => {
    const server = await startServer({ maxBodyBytes: 128 * 1024 });
    const big = countedStream(8 * 1024 * 1024);
    const tooLarge = await fetch(`${server.url}/api/v1/create_session`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: big.stream,
      duplex: "half",
    } as RequestInit).catch((error: Error) => error);
    // The server answers 413 and closes; a client still sending may see the close first.
    if (tooLarge instanceof Response) expect(tooLarge.status).toBe(413);
    const anonymous = await fetch(`${server.url}/api/v1/create_session`, {
      method: "POST",
      body: countedStream(1024 * 1024).stream,
      duplex: "half",
    } as RequestInit).catch((error: Error) => error);
    if (anonymous instanceof Response) expect(anonymous.status).toBe(401);
    const health = await fetch(`${server.url}/api/v1/healthz`, { headers: { "x-api-key": KEY } });
    expect(health.status).toBe(200);
  });

  it("JSON nested 100,000 deep is a 400, on the fingerprinted training path too", async () => {
    const local = backend();
    const { modelId } = await trainingRun(local);
    const deep = `{"model_id":${JSON.stringify(modelId)},"seq_id":1,"adam_params":{},"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const answer = await call(local, "POST", "optim_step", undefined, { raw: deep });
    expect(answer.status).toBe(400);
    expect(answer.json.detail).toMatch(/nests deeper than 64/);
  });

  it("malformed protobuf and JSON are 400", async () => {
    const local = backend();
    const headers = { "x-api-key": KEY, "content-type": "application/x-protobuf" };
    for (const bytes of [[0xff, 0xff, 0xff], [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], [0x08]]) {
      const response = await local.fetch(
        new Request("http://local.tinker/api/v1/forward_backward", {
          method: "POST",
          headers,
          body: new Uint8Array(bytes),
        }),
      );
      expect(response.status).toBe(400);
    }
    for (const raw of ["{", "[]", "null", '"x"', "1e999"]) {
      expect((await call(local, "POST", "create_session", undefined, { raw })).status).toBe(400);
    }
  });
});

describe("methods and hosts over HTTP", () => {
  it("TRACE and CONNECT-like methods → 405, a bad Host → 400, never 500", async () => {
    const server = await startServer();
    const host = new URL(server.url).host;
    expect((await rawHttp(server.url, "TRACE", { host, "x-api-key": KEY })).status).toBe(405);
    expect((await rawHttp(server.url, "PATCH", { host, "x-api-key": KEY })).status).toBe(405);
    for (const bad of ["a b c", "[::1", "a/b", "u@h"]) {
      expect((await rawHttp(server.url, "GET", { host: bad, "x-api-key": KEY })).status, bad).toBe(400);
    }
    const wrongMethod = await fetch(`${server.url}/api/v1/create_session`, {
      method: "DELETE",
      headers: { "x-api-key": KEY },
    });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });
});

describe("bounds, each a 400 naming the field", () => {
  it("num_samples, max_tokens, prompt length and target_prompt_logprobs shape on asample", async () => {
    const local = backend();
    const sessionId = await session(local);
    const base = {
      session_id: sessionId,
      base_model: MODEL,
      prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] },
      sampling_params: { max_tokens: 2, seed: 1 },
    };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ num_samples: 2_000 }, /num_samples: 2000 is more than .* 256/],
      [{ num_samples: 1e308 }, /num_samples/],
      [{ sampling_params: { max_tokens: 2 ** 31 } }, /sampling_params\.max_tokens: must be at most/],
      [{ sampling_params: [] }, /sampling_params: must be an object/],
      [
        { prompt: { chunks: [{ type: "encoded_text", tokens: Array(5_000).fill(1) }] } },
        /prompt: 5000 tokens/,
      ],
      [{ prompt: { chunks: [null] } }, /prompt\.chunks\[0\] must be an object/],
      [
        {
          target_prompt_logprobs: {
            data: [1],
            dtype: "int64",
            shape: [2, 1e12],
            sparse_crow_indices: [0, 1, 1],
            sparse_col_indices: [0],
          },
        },
        /target_prompt_logprobs\.shape: 2000000000000 cells/,
      ],
    ];
    for (const [change, message] of cases) {
      const answer = await call(local, "POST", "asample", { ...base, ...change });
      expect(answer.status, JSON.stringify(change).slice(0, 80)).toBe(400);
      expect(answer.json.detail).toMatch(message);
    }
  });

  it("LoRA rank, tensor ranks and shapes in forward_backward", async () => {
    const local = backend();
    const { sessionId, modelId } = await trainingRun(local);
    const rank = await call(local, "POST", "create_model", {
      session_id: sessionId,
      model_seq_id: 1,
      base_model: MODEL,
      lora_config: { rank: 1_000_000 },
    });
    expect(rank.status).toBe(400);
    expect(rank.json.detail).toMatch(/lora_config\.rank: 1000000 is more than/);
    const datum = (weights: Record<string, unknown>) => ({
      model_input: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
      loss_fn_inputs: { target_tokens: { data: [2, 3], dtype: "int64" }, weights },
    });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ data: [1, 1], dtype: "float32", shape: Array(9).fill(1) }, /weights\.shape: 9 dimensions/],
      [{ data: [1, 1], dtype: "float32", shape: [1e9, 1e9] }, /weights\.shape: 1000000000000000000 cells/],
      [{ data: [1, 1], dtype: "float32", shape: [-1] }, /weights\.shape\[0\]/],
    ];
    for (const [weights, message] of cases) {
      const answer = await call(local, "POST", "forward_backward", {
        model_id: modelId,
        seq_id: 1,
        forward_backward_input: { data: [datum(weights)], loss_fn: "cross_entropy" },
      });
      expect(answer.status).toBe(400);
      expect(answer.json.detail).toMatch(message);
    }
  });

  it("optimizer params: null, strings, 1e308, arrays and non-objects are refused by the backend", async () => {
    const local = backend();
    const { modelId } = await trainingRun(local);
    const cases: [unknown, RegExp][] = [
      [{ learning_rate: null }, /adam_params\.learning_rate/],
      [{ learning_rate: "0.5" }, /adam_params\.learning_rate/],
      [{ learning_rate: 1e308 }, /adam_params\.learning_rate: must be in \[0, 10\]/],
      [{ weight_decay: 1e308 }, /adam_params\.weight_decay/],
      [{ eps: 1e308 }, /adam_params\.eps/],
      [[], /adam_params: must be an object/],
      ["x", /adam_params: must be an object/],
    ];
    for (const [params, message] of cases) {
      const answer = await call(local, "POST", "optim_step", {
        model_id: modelId,
        seq_id: 1,
        adam_params: params,
      });
      expect(answer.status, JSON.stringify(params)).toBe(400);
      expect(answer.json.detail).toMatch(message);
    }
    const dimuon = await call(local, "POST", "optim_step", {
      model_id: modelId,
      seq_id: 1,
      optimizer_params: { type: "dimuon", learning_rate: 1e-3, rank_lr_correction_exponent: 1e308 },
    });
    expect(dimuon.status).toBe(400);
    expect(dimuon.json.detail).toMatch(/rank_lr_correction_exponent/);
  });

  it("the SDK refuses the same optimizer params before sending (same declarations)", async () => {
    const local = backend();
    const service = new ServiceClient({ apiKey: KEY, baseURL: "http://local.tinker", fetch: local.fetch });
    open.push({ close: () => service.close() });
    const training = await service.createLoraTrainingClient(MODEL, { rank: 2 });
    for (const params of [
      { learning_rate: 1e308 },
      { eps: 5 },
      [] as never,
      { learning_rate: "0.5" as never },
    ]) {
      expect(() => training.optimStep(params), JSON.stringify(params)).toThrow(ValidationError);
    }
  });
});

describe("auth", () => {
  it("every declared endpoint without a key or with a wrong one is 401, never 5xx, and never echoes the key", async () => {
    const local = backend();
    const params = {
      session_id: "s",
      model_id: "m",
      run_id: "r",
      sampler_id: "x",
      checkpoint_id: "weights/c",
    };
    for (const e of ENDPOINTS) {
      const path = pathOf(e, params).slice("api/v1/".length);
      for (const key of [null, "tml-wrong-key-9876543210"]) {
        const answer = await call(local, e.method, path, e.method === "GET" ? undefined : {}, { key });
        expect(answer.status, `${e.name} ${key}`).toBe(401);
        if (key) expect(answer.text).not.toContain(key);
      }
    }
  });

  it("path traversal in checkpoint, archive and signed-file paths is a 4xx", async () => {
    const local = backend();
    const { modelId } = await trainingRun(local);
    const paths = [
      ["GET", `training_runs/${modelId}/checkpoints/weights%2F..%2F..%2Fetc/archive`],
      ["DELETE", `training_runs/..%2F..%2F/checkpoints/weights/..%2F..`],
      ["GET", `training_runs/${modelId}/checkpoints/../../../etc/passwd`],
      ["POST", "weights_info"],
    ];
    for (const [method, path] of paths) {
      const answer = await call(
        local,
        method!,
        path!,
        method === "POST" ? { tinker_path: "tinker://../../etc/passwd" } : undefined,
      );
      expect(answer.status, path).toBeGreaterThanOrEqual(400);
      expect(answer.status, path).toBeLessThan(500);
    }
    for (const url of [
      "archives/..%2F..%2Fetc%2Fpasswd",
      "external-weights/../../x/y",
      "external-weights-uploads/bad/..%2Fx",
    ]) {
      const response = await local.fetch(
        new Request(`http://local.tinker/${url}`, {
          method: url.includes("uploads") ? "PUT" : "GET",
          body: url.includes("uploads") ? "x" : undefined,
        }),
      );
      expect(response.status, url).toBeGreaterThanOrEqual(400);
      expect(response.status, url).toBeLessThan(500);
    }
  });

  it("forged, expired and alg:none JWTs are 401 in JWT mode", async () => {
    const secret = "hardening-secret";
    const local = backend({ jwt: { secret } });
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: "u", iss: "tinker-ts-local", iat: now - 100, exp: now + 100 };
    const sign = async (input: string, key: string) => {
      const k = await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(key),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      return Buffer.from(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(input))).toString(
        "base64url",
      );
    };
    const header = b64({ alg: "HS256", typ: "JWT" });
    const forgedInput = `${header}.${b64(claims)}`;
    const expiredInput = `${header}.${b64({ ...claims, exp: now - 1 })}`;
    const tokens = [
      `${forgedInput}.${await sign(forgedInput, "another-secret")}`,
      `${expiredInput}.${await sign(expiredInput, secret)}`,
      `${b64({ alg: "none" })}.${b64(claims)}.`,
      "eyJ.not.base64!!",
      "eyJ",
    ];
    for (const token of tokens) {
      const answer = await call(local, "POST", "create_session", { tags: [] }, { key: token });
      expect(answer.status, token).toBe(401);
      expect(answer.text).not.toContain(token.split(".")[2] || "\u0000");
    }
  });
});

describe("load", () => {
  it("heartbeats and health checks are answered while a large sample request runs; results stay deterministic", async () => {
    const local = backend();
    const sessionId = await session(local);
    const body = {
      session_id: sessionId,
      base_model: MODEL,
      num_samples: 64,
      prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] },
      sampling_params: { max_tokens: 32, seed: 7, temperature: 1 },
    };
    const first = await call(local, "POST", "asample", body);
    expect(first.status).toBe(200);
    let finished = false;
    const result = call(local, "POST", "retrieve_future", { request_id: first.json.request_id }).then((r) => {
      finished = true;
      return r;
    });
    // Let the sample start (a synchronous one would hold the loop until done, ~1 s for this size),
    // then the heartbeat and health check are answered while it is still computing.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const heartbeat = await call(local, "POST", "session_heartbeat", { session_id: sessionId });
    const health = await call(local, "GET", "healthz");
    expect([heartbeat.status, health.status, finished]).toEqual([200, 200, false]);
    let outcome = await result;
    while (outcome.json.type === "try_again") {
      outcome = await call(local, "POST", "retrieve_future", { request_id: first.json.request_id });
    }
    const again = await call(local, "POST", "asample", body);
    let repeat = await call(local, "POST", "retrieve_future", { request_id: again.json.request_id });
    while (repeat.json.type === "try_again") {
      repeat = await call(local, "POST", "retrieve_future", { request_id: again.json.request_id });
    }
    expect((outcome.json.sequences as unknown[]).length).toBe(64);
    expect(repeat.json.sequences).toEqual(outcome.json.sequences);
  });

  it("a session outlives an event-loop stall longer than its TTL (monotonic liveness clock)", async () => {
    const local = backend({ sessionTtlMs: 600 });
    const sessionId = await session(local);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stallUntil = performance.now() + 1_500;
    while (performance.now() < stallUntil) {
      // A long synchronous computation: nothing else runs, no heartbeat can arrive.
    }
    const heartbeat = await call(local, "POST", "session_heartbeat", { session_id: sessionId });
    expect(heartbeat.status).toBe(200);
    // Without heartbeats it still expires, on the same clock.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const late = await call(local, "POST", "session_heartbeat", { session_id: sessionId });
    expect(late.status).toBe(404);
  });

  it("2,000 concurrent polls of a pending future and 1,000 finished futures answer, none 5xx", async () => {
    const local = backend({ longPollMs: 200 });
    const sessionId = await session(local);
    const sample = await call(local, "POST", "asample", {
      session_id: sessionId,
      base_model: MODEL,
      num_samples: 64,
      prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
      sampling_params: { max_tokens: 64, seed: 1 },
    });
    const polls = await Promise.all(
      Array.from({ length: 2_000 }, () =>
        call(local, "POST", "retrieve_future", { request_id: sample.json.request_id }),
      ),
    );
    expect(polls.every((p) => p.status === 200)).toBe(true);
    const ids = [];
    for (let i = 0; i < 1_000; i++) {
      const created = await call(local, "POST", "create_sampling_session", {
        session_id: sessionId,
        sampling_session_seq_id: i,
        base_model: MODEL,
      });
      expect(created.status).toBe(200);
      const s = await call(local, "POST", "asample", {
        sampling_session_id: created.json.sampling_session_id,
        prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
        sampling_params: { max_tokens: 1, seed: i },
      });
      ids.push(s.json.request_id);
    }
    const answers = await Promise.all(
      ids.map((id) => call(local, "POST", "retrieve_future", { request_id: id })),
    );
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
  });
});

describe("serve's output", () => {
  it("masks the API key in the banner, logs one line per request without headers, query or key, and --quiet silences it", async () => {
    const run = async (extra: string[]) => {
      const { url, child, output } = await spawnServe(["--port", "0", "--api-key", KEY, ...extra]);
      await fetch(`${url}/api/v1/healthz?token=${KEY}`, { headers: { "x-api-key": KEY } });
      await fetch(`${url}/api/v1/healthz`, { headers: { "x-api-key": "tml-wrong" } });
      await fetch(`${url}/archives/${KEY}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      return output();
    };
    const logged = await run([]);
    expect(logged).not.toContain(KEY);
    expect(logged).toContain("TINKER_API_KEY=<your --api-key>");
    expect(logged).toContain("tml-…6789");
    expect(logged).toMatch(/^GET \/api\/v1\/healthz 200 \d+ms$/m);
    expect(logged).toMatch(/^GET \/api\/v1\/healthz 401 \d+ms$/m);
    expect(logged).toMatch(/^GET \/archives\/<token> 403 \d+ms$/m);
    const quiet = await run(["--quiet"]);
    expect(quiet).not.toContain(KEY);
    expect(quiet).not.toMatch(/^GET /m);
  }, 30_000);
});
