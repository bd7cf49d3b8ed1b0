/**
 * The hardening run of issue 14: hostile input against a real `tinker-ts serve --api-key K` child,
 * at full size. Prints one line per case and a summary — crashes, 5xx answers to hostile input, the
 * server's RSS before and after, and whether the key appeared in any response or server log line.
 * Exits 1 if any of those is not clean.
 *
 *   npx tsx scripts/hardening.ts [--big-gib 1] [--polls 10000] [--finished 1000]
 *
 * The quick variant of every case is test/hardening.test.ts.
 */
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { parseArgs } from "node:util";
import { ENDPOINTS, pathOf } from "../src/wire/endpoints/index.js";
import { type ServeChild, spawnServe } from "./lib/serve-child.js";

const { values: args } = parseArgs({
  options: {
    "big-gib": { type: "string", default: "1" },
    polls: { type: "string", default: "10000" },
    finished: { type: "string", default: "1000" },
  },
});
const KEY = "tml-hardening-run-0123456789abcdef";
const MODEL = "tinker-ts/byte-lm-tiny";
const responses: string[] = [];
const fiveHundreds: string[] = [];
const problems: string[] = [];

interface Server extends ServeChild {
  rssMiB: () => number;
  crashed: () => boolean;
}

async function startServe(extra: string[]): Promise<Server> {
  const { url, child, output } = await spawnServe(["--port", "0", "--api-key", KEY, ...extra]);
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  const rssMiB = () => {
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  };
  return { url, child, output, rssMiB, crashed: () => exited };
}

async function stop(server: Server): Promise<void> {
  if (server.crashed()) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  await exited;
}

/** A request whose answer is recorded (5xx counted as a failure of the case `name`). */
async function send(
  server: Server,
  name: string,
  method: string,
  path: string,
  {
    body,
    key = KEY,
    headers = {},
  }: { body?: BodyInit | object; key?: string | null; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const h: Record<string, string> = { "content-type": "application/json", ...headers };
  if (key !== null) h["x-api-key"] = key;
  const isRaw = body instanceof ReadableStream || body instanceof Uint8Array || typeof body === "string";
  try {
    const response = await fetch(`${server.url}/${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : isRaw ? (body as BodyInit) : JSON.stringify(body),
      duplex: "half",
    } as RequestInit);
    const text = await response.text();
    responses.push(text);
    if (response.status >= 500)
      fiveHundreds.push(`${name}: ${method} ${path} → ${response.status} ${text.slice(0, 200)}`);
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: response.status, json };
  } catch (error) {
    // The server may answer a refused upload and close while the client is still sending.
    return { status: 0, json: { error: String((error as Error).cause ?? error) } };
  }
}

function report(name: string, ok: boolean, detail: string): void {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
  if (!ok) problems.push(name);
}

function zeros(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = new Uint8Array(1024 * 1024);
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(chunk.length, total - sent);
      sent += size;
      controller.enqueue(chunk.subarray(0, size));
    },
  });
}

async function until<T>(poll: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await poll();
    if (done(value)) return value;
  }
}

const server = await startServe(["--session-ttl", "3"]);
const rssBefore = server.rssMiB();
console.log(`serve at ${server.url}, RSS ${rssBefore.toFixed(0)} MiB`);

// Auth on every route.
{
  let refused = 0;
  let total = 0;
  const params = { session_id: "s", model_id: "m", run_id: "r", sampler_id: "x", checkpoint_id: "weights/c" };
  for (const e of ENDPOINTS) {
    for (const key of [null, "tml-wrong-key-000000000000"]) {
      const r = await send(server, "auth", e.method, pathOf(e, params), {
        key,
        body: e.method === "GET" ? undefined : {},
      });
      total++;
      if (r.status === 401) refused++;
    }
  }
  report(
    "auth on every route",
    refused === total,
    `${refused}/${total} requests without or with a wrong key → 401`,
  );
}

const session = (
  await send(server, "setup", "POST", "api/v1/create_session", { body: { tags: [], sdk_version: "0.39.0" } })
).json.session_id as string;
const created = await send(server, "setup", "POST", "api/v1/create_model", {
  body: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 2 } },
});
const modelId = (
  await until(
    () =>
      send(server, "setup", "POST", "api/v1/retrieve_future", {
        body: { request_id: created.json.request_id },
      }),
    (r) => r.json.type !== "try_again",
  )
).json.model_id as string;
const heartbeat = () =>
  send(server, "heartbeat", "POST", "api/v1/session_heartbeat", { body: { session_id: session } });

// Path traversal.
{
  const statuses: number[] = [];
  for (const [method, path] of [
    ["GET", `api/v1/training_runs/${modelId}/checkpoints/weights%2F..%2F..%2Fetc/archive`],
    ["GET", `api/v1/training_runs/${modelId}/checkpoints/../../../../etc/passwd`],
    ["DELETE", "api/v1/training_runs/..%2F..%2F/checkpoints/weights/..%2F.."],
    ["GET", "archives/..%2F..%2Fetc%2Fpasswd"],
    ["GET", "external-weights/..%2F../x/..%2Fpasswd"],
    ["PUT", "external-weights-uploads/bad/..%2Fx"],
  ] as const) {
    statuses.push(
      (await send(server, "traversal", method, path, { body: method === "PUT" ? "x" : undefined })).status,
    );
  }
  const info = await send(server, "traversal", "POST", "api/v1/weights_info", {
    body: { tinker_path: "tinker://../../etc/passwd" },
  });
  statuses.push(info.status);
  report(
    "path traversal",
    statuses.every((s) => s >= 400 && s < 500),
    `statuses ${statuses.join(", ")}`,
  );
}

// Big, unauthenticated and slow bodies.
{
  const bytes = Number(args["big-gib"]) * 1024 ** 3;
  const rss0 = server.rssMiB();
  const big = await send(server, "big body", "POST", "api/v1/forward_backward", {
    body: zeros(bytes),
    headers: { "content-type": "application/x-protobuf" },
  });
  const anonymous = await send(server, "big body", "POST", "api/v1/forward_backward", {
    body: zeros(bytes),
    key: null,
  });
  const declared = await send(server, "big body", "POST", "api/v1/create_session", {
    body: "{}",
    headers: { "content-length": String(bytes) },
  }).catch(() => ({ status: 0 }));
  const rss1 = server.rssMiB();
  report(
    `${args["big-gib"]} GiB bodies`,
    [413, 0].includes(big.status) && [401, 0].includes(anonymous.status) && rss1 - rss0 < 256,
    `streamed → ${big.status || "closed after 413"}, unauthenticated → ${anonymous.status || "closed after 401"}, declared length → ${declared.status || "closed"}; RSS ${rss0.toFixed(0)} → ${rss1.toFixed(0)} MiB`,
  );
}
{
  // Slowloris: 500 connections trickling headers, and 50 trickling a body; the server keeps answering.
  const host = new URL(server.url);
  const sockets = Array.from({ length: 550 }, (_, i) => {
    const socket = connect(Number(host.port), host.hostname);
    socket.on("error", () => {});
    socket.write(
      i < 500
        ? "POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\n"
        : `POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nContent-Length: 1000000\r\n\r\n{`,
    );
    return socket;
  });
  const trickle = setInterval(() => {
    for (const [i, s] of sockets.entries()) s.write(i < 500 ? "X-A: b\r\n" : " ");
  }, 500);
  const started = performance.now();
  const health = await send(server, "slowloris", "GET", "api/v1/healthz");
  const ms = performance.now() - started;
  clearInterval(trickle);
  for (const s of sockets) s.destroy();
  report(
    "slowloris",
    health.status === 200,
    `healthz ${health.status} in ${ms.toFixed(0)} ms with 550 slow connections open`,
  );
}

// Malformed protobuf and JSON.
{
  const statuses: number[] = [];
  for (const bytes of [
    [0xff, 0xff, 0xff],
    [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    [0x08],
    [0x12, 0x05, 0x01],
  ]) {
    statuses.push(
      (
        await send(server, "protobuf", "POST", "api/v1/forward_backward", {
          body: new Uint8Array(bytes),
          headers: { "content-type": "application/x-protobuf" },
        })
      ).status,
    );
  }
  for (const raw of ["{", "[]", "null", "1e999", `{"a":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}`]) {
    statuses.push((await send(server, "json", "POST", "api/v1/optim_step", { body: raw })).status);
  }
  report(
    "malformed protobuf and JSON",
    statuses.every((s) => s === 400),
    `statuses ${statuses.join(", ")}`,
  );
}

// Huge shapes and ranks, bad optimizer params, sampling bounds.
{
  const datum = (weights: object) => ({
    model_input: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
    loss_fn_inputs: { target_tokens: { data: [2, 3], dtype: "int64" }, weights },
  });
  const bodies: [string, string, object][] = [
    ["shape rank 9", "forward_backward", { data: [1, 1], dtype: "float32", shape: Array(9).fill(1) }],
    ["shape 1e9 × 1e9", "forward_backward", { data: [1, 1], dtype: "float32", shape: [1e9, 1e9] }],
  ];
  const statuses: string[] = [];
  for (const [name, , weights] of bodies) {
    const r = await send(server, "shapes", "POST", "api/v1/forward_backward", {
      body: {
        model_id: modelId,
        seq_id: 1,
        forward_backward_input: { data: [datum(weights)], loss_fn: "cross_entropy" },
      },
    });
    statuses.push(`${name} ${r.status}`);
  }
  const lora = await send(server, "shapes", "POST", "api/v1/create_model", {
    body: { session_id: session, model_seq_id: 1, base_model: MODEL, lora_config: { rank: 1e9 } },
  });
  statuses.push(`LoRA rank 1e9 ${lora.status}`);
  report(
    "huge shapes and ranks",
    statuses.every((s) => s.endsWith(" 400")),
    statuses.join(", "),
  );

  const optimizer: string[] = [];
  for (const params of [
    { learning_rate: null },
    { learning_rate: "0.5" },
    { learning_rate: 1e308 },
    [],
    "x",
    5,
    { beta1: 1e308 },
  ]) {
    const r = await send(server, "optimizer", "POST", "api/v1/optim_step", {
      body: { model_id: modelId, seq_id: 1, adam_params: params },
    });
    optimizer.push(`${JSON.stringify(params)} ${r.status}`);
  }
  report(
    "bad optimizer params",
    optimizer.every((s) => s.endsWith(" 400")),
    optimizer.join(", "),
  );
}

// num_samples amplification, with heartbeats and health checks during the biggest allowed request.
{
  const refused = await Promise.all(
    Array.from({ length: 100 }, () =>
      send(server, "num_samples", "POST", "api/v1/asample", {
        body: {
          session_id: session,
          base_model: MODEL,
          num_samples: 2_000,
          prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
        },
      }),
    ),
  );
  const started = performance.now();
  const big = await send(server, "num_samples", "POST", "api/v1/asample", {
    body: {
      session_id: session,
      base_model: MODEL,
      num_samples: 256,
      prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
      sampling_params: { max_tokens: 128, seed: 3 },
    },
  });
  let done = false;
  const result = until(
    () =>
      send(server, "num_samples", "POST", "api/v1/retrieve_future", {
        body: { request_id: big.json.request_id },
      }),
    (r) => r.json.type !== "try_again",
  ).then((r) => {
    done = true;
    return r;
  });
  let worstMs = 0;
  let beats = 0;
  let beatFailures = 0;
  // The session TTL is 3 s: heartbeats every second must keep it alive through the whole sample.
  while (!done) {
    const t = performance.now();
    const [beat, health] = await Promise.all([
      heartbeat(),
      send(server, "num_samples", "GET", "api/v1/healthz"),
    ]);
    worstMs = Math.max(worstMs, performance.now() - t);
    beats++;
    if (beat.status !== 200 || health.status !== 200) beatFailures++;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  const sequences = ((await result).json.sequences as unknown[] | undefined)?.length;
  report(
    "num_samples amplification",
    refused.every((r) => r.status === 400) && sequences === 256,
    `100 × num_samples 2000 → 400; 256 × 128 tokens answered (${sequences} sequences) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  report(
    "short session TTL under load",
    beatFailures === 0,
    `${beats} heartbeat+healthz rounds during it, ${beatFailures} failed, slowest ${worstMs.toFixed(0)} ms (TTL 3 s)`,
  );
}

// Many concurrent polls, many finished futures.
{
  const polls = Number(args.polls);
  const pending = await send(server, "polls", "POST", "api/v1/asample", {
    body: {
      session_id: session,
      base_model: MODEL,
      num_samples: 64,
      prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
      sampling_params: { max_tokens: 64, seed: 1 },
    },
  });
  const rss0 = server.rssMiB();
  const answers = await Promise.all(
    Array.from({ length: polls }, () =>
      send(server, "polls", "POST", "api/v1/retrieve_future", {
        body: { request_id: pending.json.request_id },
      }),
    ),
  );
  const rss1 = server.rssMiB();
  const ok = answers.filter((a) => a.status === 200).length;
  const failures = new Map<string, number>();
  for (const a of answers.filter((a) => a.status !== 200)) {
    const reason = `${a.status} ${String(a.json.error ?? a.json.detail ?? "").slice(0, 80)}`;
    failures.set(reason, (failures.get(reason) ?? 0) + 1);
  }
  if (failures.size) console.log("     not answered 200:", Object.fromEntries(failures));
  report(
    `${polls} concurrent polls`,
    ok === polls && !server.crashed(),
    `${ok} answered 200; RSS ${rss0.toFixed(0)} → ${rss1.toFixed(0)} MiB`,
  );

  const finished = Number(args.finished);
  const ids: string[] = [];
  for (let i = 0; i < finished; i++) {
    const r = await send(server, "finished", "POST", "api/v1/asample", {
      body: {
        session_id: session,
        base_model: MODEL,
        prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
        sampling_params: { max_tokens: 1, seed: i },
      },
    });
    ids.push(r.json.request_id as string);
    if (i % 200 === 0) await heartbeat();
  }
  const results = await Promise.all(
    ids.map((id) => send(server, "finished", "POST", "api/v1/retrieve_future", { body: { request_id: id } })),
  );
  report(
    `${finished} finished futures`,
    results.every((r) => r.status === 200),
    `${results.filter((r) => r.status === 200).length} answered 200`,
  );
}

// Forged and expired JWTs (a second server, in JWT mode with 1 s tokens).
{
  const jwtServer = await startServe(["--jwt-ttl", "1"]);
  const token = (await send(jwtServer, "jwt", "POST", "api/v1/auth/token", { body: {} })).json.jwt as string;
  const [head, claims, signature] = token.split(".") as [string, string, string];
  const forged = `${head}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claims, "base64url").toString()), sub: "admin" })).toString("base64url")}.${signature}`;
  const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${claims}.`;
  const fresh = await send(jwtServer, "jwt", "POST", "api/v1/create_session", {
    key: token,
    body: { tags: [] },
  });
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  const statuses = [];
  for (const credential of [token, forged, none, `${head}.${claims}.${"A".repeat(43)}`, "eyJ!!"]) {
    statuses.push(
      (await send(jwtServer, "jwt", "POST", "api/v1/create_session", { key: credential, body: { tags: [] } }))
        .status,
    );
  }
  report(
    "forged and expired JWTs",
    fresh.status === 200 && statuses.every((s) => s === 401),
    `fresh token → ${fresh.status}; expired, forged claims, alg none, bad signature, garbage → ${statuses.join(", ")}`,
  );
  // Its log must hold neither the key nor a token (the token is in the auth/token answer by design).
  const jwtLog = jwtServer.output();
  if (jwtLog.includes(KEY) || jwtLog.includes(signature))
    problems.push("a credential in the JWT server's log");
  await stop(jwtServer);
}

const rssAfter = server.rssMiB();
const crashed = server.crashed();
await stop(server);
const log = server.output();
const leaks = [log, ...responses].filter((text) => text.includes(KEY)).length;
const requestLines = log.split("\n").filter((line) => /^[A-Z]+ \/\S* \d{3} \d+ms$/.test(line)).length;
console.log("\nsummary");
console.log(`  crashes: ${crashed ? 1 : 0}`);
console.log(
  `  5xx answers to hostile input: ${fiveHundreds.length}${fiveHundreds.length ? `\n    ${fiveHundreds.slice(0, 10).join("\n    ")}` : ""}`,
);
console.log(`  server RSS: ${rssBefore.toFixed(0)} MiB before, ${rssAfter.toFixed(0)} MiB after`);
console.log(`  responses: ${responses.length}; server log lines: ${requestLines} request lines`);
console.log(`  the key in a response or log line: ${leaks}`);
console.log(`  failed cases: ${problems.length ? problems.join(", ") : "none"}`);
process.exit(crashed || fiveHundreds.length || leaks || problems.length ? 1 : 0);
