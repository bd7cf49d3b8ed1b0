/**
 * Bench cases (c) and (d): what the SDK itself costs, against the local backend served over loopback
 * HTTP from a *separate process*, so this process's `process.cpuUsage()` is client work only (the
 * SDK, ky, the runtime's fetch and JSON/protobuf decoding), never the engine's.
 *
 *   (c) client CPU per future (submit + poll + decode) for forward, forward_backward, optim_step
 *       and sample, on tiny requests (4 tokens, max_tokens 1) so the engine is effectively instant;
 *       one at a time and 64 in flight. An in-process run through the backend's fetch handler is
 *       printed for reference (its CPU includes the backend and the engine).
 *   (d) 250 … 2,000 concurrent `sample` calls from one SamplingClient: throughput, client heap per
 *       in-flight call (the slope that should be flat: payload plus a small fixed cost), peak heap
 *       and RSS, event-loop lag.
 *
 *   node --expose-gc --import tsx bench/client.ts [--quick]
 *   npx tsx bench/client.ts [--quick]          (works too; without --expose-gc the heap figures are noisier)
 *
 * `--backend` is the child mode: serve the local backend on 127.0.0.1 and print its URL.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  type APIFuture,
  type Datum,
  datum,
  ModelInput,
  type SamplingClient,
  ServiceClient,
  type TrainingClient,
} from "../src/node/index.js";
import { median, report, spread } from "./lib/result.js";

const MODEL = "tinker-ts/byte-lm-tiny";
const quick = process.argv.includes("--quick");

/** Collects garbage twice (finalizers of the first pass free more in the second) when exposed. */
function collect(): void {
  globalThis.gc?.();
  globalThis.gc?.();
}

// --- the backend process -----------------------------------------------------------------------

async function runBackend(): Promise<void> {
  const { serve } = await import("../src/cli/serve.js");
  const server = await serve({ port: 0, host: "127.0.0.1" });
  console.log(`LISTENING ${server.url}`);
  // The parent closes our stdin when it is done (or dies): shut down then.
  process.stdin.resume();
  process.stdin.on("end", () => void server.close().then(() => process.exit(0)));
}

async function startBackend(): Promise<{ url: string; child: ChildProcess }> {
  const script = fileURLToPath(import.meta.url);
  // `--import tsx` resolves from the working directory: the repository root.
  const child = spawn(process.execPath, ["--import", "tsx", script, "--backend"], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    if (line.startsWith("LISTENING ")) return { url: line.slice("LISTENING ".length), child };
  }
  throw new Error("the backend process exited before listening");
}

async function stopBackend(child: ChildProcess): Promise<void> {
  const exited = once(child, "exit");
  child.stdin!.end();
  await exited;
}

// --- (c) CPU per future -------------------------------------------------------------------------

/** Four tokens: a forward costs the engine next to nothing. */
const TINY_DATUM: Datum = datum(ModelInput.fromInts([256, 72, 105, 33]), {
  target_tokens: [72, 105, 33, 10],
  weights: [1, 1, 1, 1],
});
const TINY_PROMPT = ModelInput.fromInts([256, 72, 105, 33]);

type Operation = (i: number) => APIFuture<unknown>;

function operations(training: TrainingClient, sampler: SamplingClient): Record<string, Operation> {
  return {
    forward: () => training.forward([TINY_DATUM], "cross_entropy"),
    forward_backward: () => training.forwardBackward([TINY_DATUM], "cross_entropy"),
    optim_step: () => training.optimStep({ learning_rate: 1e-4 }),
    sample: (i) => sampler.sample(TINY_PROMPT, 1, { max_tokens: 1, seed: i }),
  };
}

/** Runs `count` operations with at most `inFlight` unsettled; returns µs of CPU and wall per future. */
async function timeOperations(
  operation: Operation,
  count: number,
  inFlight: number,
): Promise<{ cpuMicros: number; wallMicros: number }> {
  collect();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) await operation(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  return {
    cpuMicros: (cpu.user + cpu.system) / count,
    wallMicros: ((performance.now() - started) * 1000) / count,
  };
}

async function withClients<T>(
  options: ConstructorParameters<typeof ServiceClient>[0],
  body: (training: TrainingClient, sampler: SamplingClient) => Promise<T>,
): Promise<T> {
  const service = new ServiceClient({ apiKey: "tml-bench", telemetry: false, ...options });
  try {
    const training = await service.createLoraTrainingClient(MODEL, { rank: 1, seed: 0 });
    const sampler = await service.createSamplingClient({ baseModel: MODEL });
    return await body(training, sampler);
  } finally {
    await service.close();
  }
}

interface CpuFigures {
  median: number;
  samples: number[];
  wall: number;
}

async function cpuPerFuture(
  ops: Record<string, Operation>,
  inFlight: number,
  rounds: number,
  count: number,
): Promise<Map<string, CpuFigures>> {
  const figures = new Map<string, CpuFigures>();
  for (const [name, operation] of Object.entries(ops)) {
    await timeOperations(operation, Math.max(8, count >> 2), inFlight); // warm-up (JIT, sockets)
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const timing = await timeOperations(operation, count, inFlight);
      cpu.push(timing.cpuMicros);
      wall.push(timing.wallMicros);
    }
    figures.set(name, { median: median(cpu), samples: cpu, wall: median(wall) });
    console.log(
      `  ${name.padEnd(16)} ${String(inFlight).padStart(2)} in flight: ${median(cpu).toFixed(0).padStart(5)} µs CPU/future ` +
        `(spread ${spread(cpu)}), ${median(wall).toFixed(0)} µs wall/future`,
    );
  }
  return figures;
}

/**
 * The floor under every figure of (c): CPU of one bare `fetch()` round trip to the same server, with
 * the body read as JSON. A future is at least two (submit, then one long poll).
 */
async function bareFetchMicros(url: string, rounds: number, count: number): Promise<number[]> {
  const roundTrip = async () => {
    const response = await fetch(`${url}/api/v1/healthz`, { headers: { "X-API-Key": "tml-bench" } });
    await response.json();
  };
  const samples: number[] = [];
  for (let round = -1; round < rounds; round++) {
    collect();
    const before = process.cpuUsage();
    for (let i = 0; i < count; i++) await roundTrip();
    const cpu = process.cpuUsage(before);
    if (round >= 0) samples.push((cpu.user + cpu.system) / count); // round -1 warms up
  }
  return samples;
}

async function caseC(url: string): Promise<void> {
  const rounds = quick ? 2 : 5;
  const count = quick ? 10 : 100;
  console.log(`(c) client CPU per future over loopback HTTP: ${rounds} rounds of ${count} futures each`);
  const floorSamples = await bareFetchMicros(url, rounds, count);
  const floor = median(floorSamples);
  console.log(`  bare fetch() round trip: ${floor.toFixed(0)} µs CPU (spread ${spread(floorSamples)})`);
  report({
    id: "c0",
    measure: "floor: CPU of one bare fetch() round trip over loopback (runtime HTTP stack, no SDK)",
    value: Math.round(floor),
    unit: "µs CPU",
    detail: `median of ${rounds}×${count}, spread ${spread(floorSamples)}; a future makes ≥ 2 round trips`,
  });
  const loopback = await withClients({ baseURL: url }, async (training, sampler) => {
    const ops = operations(training, sampler);
    return {
      sequential: await cpuPerFuture(ops, 1, rounds, count),
      parallel: await cpuPerFuture(ops, 64, rounds, count),
    };
  });

  console.log(
    "(c) reference, in-process through the backend's fetch handler (CPU = client + backend + engine)",
  );
  const { createLocalTinker } = await import("../src/local/index.js");
  const local = createLocalTinker();
  const inProcess = await withClients(
    { baseURL: "http://local.tinker", fetch: local.fetch },
    (training, sampler) => cpuPerFuture(operations(training, sampler), 1, rounds, count),
  );
  await local.close();

  let id = 1;
  for (const [mode, figures] of [
    ["one at a time", loopback.sequential],
    ["64 in flight", loopback.parallel],
  ] as const) {
    for (const [name, figure] of figures) {
      const reference = mode === "one at a time" ? inProcess.get(name) : undefined;
      report({
        id: `c${id++}`,
        measure: `client CPU per ${name} future (submit + poll + decode), loopback HTTP, ${mode}`,
        value: Math.round(figure.median),
        unit: "µs CPU",
        target: "< 1000",
        detail:
          `median of ${rounds}×${count}, spread ${spread(figure.samples)}; wall ${figure.wall.toFixed(0)} µs/future; ` +
          `above 2 bare fetches ${(figure.median - 2 * floor).toFixed(0)} µs` +
          (reference ? `; in-process client+backend ${reference.median.toFixed(0)} µs` : ""),
      });
    }
  }
}

// --- (d) thousands of concurrent sample calls ---------------------------------------------------

interface ConcurrencyRun {
  calls: number;
  seconds: number;
  cpuMicrosPerCall: number;
  /** Client heap above the idle baseline right after launching every call (after a full GC). */
  retainedBytes: number;
  peakHeapBytes: number;
  peakRssBytes: number;
  lag: { p50: number; p99: number; max: number };
}

/** A 64-token prompt, so each call carries a payload of some size. */
const CONCURRENT_PROMPT_TOKENS = 64;
const CONCURRENT_PROMPT = ModelInput.fromInts([
  256,
  ...Array.from({ length: CONCURRENT_PROMPT_TOKENS - 1 }, (_, i) => 97 + (i % 26)),
]);

async function concurrentSamples(sampler: SamplingClient, calls: number): Promise<ConcurrencyRun> {
  collect();
  const baseHeap = process.memoryUsage().heapUsed;
  let peakHeap = baseHeap;
  let peakRss = process.memoryUsage.rss();
  const probe = setInterval(() => {
    const usage = process.memoryUsage();
    if (usage.heapUsed > peakHeap) peakHeap = usage.heapUsed;
    if (usage.rss > peakRss) peakRss = usage.rss;
  }, 5);
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const futures = Array.from({ length: calls }, (_, i) =>
    sampler.sample(CONCURRENT_PROMPT, 1, { max_tokens: 1, seed: i }),
  );
  // Every call is now in flight: the first 400 submitting, the rest queued by the client-wide
  // submission throttle. A full GC here leaves only what the calls themselves keep alive. Its pause
  // is the bench's, not the SDK's: it is left out of the wall time, the CPU and the loop lag.
  const gcStarted = performance.now();
  const gcCpuBefore = process.cpuUsage();
  collect();
  const retained = process.memoryUsage().heapUsed - baseHeap;
  const gcCpu = process.cpuUsage(gcCpuBefore);
  const gcMs = performance.now() - gcStarted;
  lag.reset();
  await Promise.all(futures);
  const seconds = (performance.now() - started - gcMs) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  lag.disable();
  clearInterval(probe);
  const ms = (ns: number) => ns / 1e6;
  return {
    calls,
    seconds,
    cpuMicrosPerCall: (cpu.user + cpu.system - gcCpu.user - gcCpu.system) / calls,
    retainedBytes: retained,
    peakHeapBytes: peakHeap - baseHeap,
    peakRssBytes: peakRss,
    lag: { p50: ms(lag.percentile(50)), p99: ms(lag.percentile(99)), max: ms(lag.max) },
  };
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length;
  const my = points.reduce((s, p) => s + p.y, 0) / points.length;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return num / den;
}

async function caseD(url: string): Promise<void> {
  const sizes = quick ? [20, 40, 80] : [250, 500, 1000, 2000];
  const largest = sizes[sizes.length - 1]!;
  // What one call carries: its request body as sent (the SDK's JSON), for comparison with the slope.
  const payloadBytes = JSON.stringify({
    num_samples: 1,
    prompt: CONCURRENT_PROMPT,
    sampling_params: { max_tokens: 1, seed: 1999, temperature: 1, top_k: -1, top_p: 1 },
    sampling_session_id: "00000000-0000-0000-0000-000000000000:sample:0",
    seq_id: 1999,
    prompt_logprobs: false,
    topk_prompt_logprobs: 0,
    type: "sample",
  }).length;
  console.log(
    `(d) concurrent sample calls from one SamplingClient (${CONCURRENT_PROMPT_TOKENS}-token prompt, max_tokens 1, ` +
      `request body ${payloadBytes} B): ${sizes.join(", ")}`,
  );
  const runs = await withClients({ baseURL: url }, async (_training, sampler) => {
    await concurrentSamples(sampler, Math.min(100, sizes[0]!)); // warm-up
    const results: ConcurrencyRun[] = [];
    for (const calls of sizes) {
      const run = await concurrentSamples(sampler, calls);
      results.push(run);
      console.log(
        `  ${String(calls).padStart(5)} calls: ${(calls / run.seconds).toFixed(0)} calls/s, ${run.cpuMicrosPerCall.toFixed(0)} µs client CPU/call, ` +
          `retained ${(run.retainedBytes / calls).toFixed(0)} B/call, peak heap +${(run.peakHeapBytes / 1e6).toFixed(1)} MB, ` +
          `peak RSS ${(run.peakRssBytes / 1e6).toFixed(0)} MB, loop lag p50 ${run.lag.p50.toFixed(1)} / p99 ${run.lag.p99.toFixed(1)} / max ${run.lag.max.toFixed(1)} ms`,
      );
    }
    return results;
  });
  const top = runs[runs.length - 1]!;
  const perCall = runs.map((r) => r.retainedBytes / r.calls);
  const perCallSlope = slope(runs.map((r) => ({ x: r.calls, y: r.retainedBytes })));
  const gcNote = globalThis.gc ? "" : " (no --expose-gc: includes garbage)";
  report({
    id: "d1",
    measure: `throughput, ${largest} concurrent sample calls (one SamplingClient, loopback HTTP)`,
    value: Math.round(largest / top.seconds),
    unit: "calls/s",
    detail: `${top.seconds.toFixed(2)} s wall, client CPU ${top.cpuMicrosPerCall.toFixed(0)} µs/call (busy ${((top.cpuMicrosPerCall * largest) / 1e4 / top.seconds).toFixed(0)}% of one core); ${runs.map((r) => `${r.calls}: ${(r.calls / r.seconds).toFixed(0)}`).join(", ")}`,
  });
  report({
    id: "d2",
    measure: `client heap per in-flight sample call (slope over ${sizes.join("/")} calls)${gcNote}`,
    value: Math.round(perCallSlope),
    unit: "B/call",
    detail: `request body ${payloadBytes} B; per call at each size ${perCall.map((b) => b.toFixed(0)).join("/")}`,
  });
  report({
    id: "d3",
    measure: `flatness: heap per call at ${largest} ÷ at ${sizes[0]} calls`,
    value: Math.round((100 * perCall[perCall.length - 1]!) / perCall[0]!) / 100,
    unit: "ratio",
    target: "≤ 1.2",
    detail: "≈ 1 or below means memory grows only with the calls themselves",
  });
  report({
    id: "d4",
    measure: `peak client heap above idle, ${largest} concurrent sample calls (incl. garbage)`,
    value: Math.round(top.peakHeapBytes / 1e5) / 10,
    unit: "MB",
    detail: `peak RSS ${(top.peakRssBytes / 1e6).toFixed(0)} MB; per call ${runs.map((r) => (r.peakHeapBytes / r.calls / 1e3).toFixed(1)).join("/")} kB`,
  });
  report({
    id: "d5",
    measure: `event-loop lag p99, ${largest} concurrent sample calls`,
    value: Math.round(top.lag.p99 * 10) / 10,
    unit: "ms",
    detail: `p50 ${top.lag.p50.toFixed(1)}, max ${top.lag.max.toFixed(1)} ms`,
  });
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv.includes("--backend")) return runBackend();
  if (!globalThis.gc) console.log("note: run with node --expose-gc for heap figures without garbage");
  const { url, child } = await startBackend();
  console.log(`backend: ${url} (separate process ${child.pid})`);
  try {
    await caseC(url);
    await caseD(url);
  } finally {
    await stopBackend(child);
  }
}

await main();
