/**
 * Issue 14, acceptance 1 and 4: a training run through the fault proxy (scripts/fault-proxy.ts) in
 * front of `tinker-ts serve`, against the same run on a fresh server without faults.
 *
 *   npx tsx scripts/fault-run.ts [--steps 200] [--seed 7] [--rate 0.15]
 *
 * Checks, and prints: every step acknowledged and applied exactly once (the backend's audit of
 * applied `(model_id, seq_id)`, seq_ids 1…n contiguous); every loss and the final forward's
 * logprobs bit-equal to the fault-free run; no SDK error; both wall times and the faults per kind;
 * and that the API key appears in no error, future event, console line or telemetry batch, though
 * some error pages echo the request headers. Exits 1 when a check fails.
 */
import { inspect } from "node:util";
import { serve } from "../src/cli/serve.js";
import { type Datum, datum, type FutureEvent, ModelInput, ServiceClient } from "../src/index.js";
import {
  type FaultKind,
  type FaultProxyOptions,
  type InjectedFault,
  startFaultProxy,
} from "./fault-proxy.js";

export const FAULT_RUN_API_KEY = "tml-fault-run-secret-4f1c9a7b2e";
const MODEL = "tinker-ts/byte-lm-tiny";

export interface FaultRunOptions {
  steps: number;
  seed?: number;
  rate?: number;
  /** Replaces the proxy's seeded draw (tests that need every kind at least once). */
  choose?: FaultProxyOptions["choose"];
  /** Per-attempt timeout of the client: bounds a stalled body (default 3 s). */
  timeoutMs?: number;
  /** Delay of the proxy's late answers (default 1 s). */
  lateMs?: number;
  log?: (line: string) => void;
}

export interface RunRecord {
  /** Per step: the forward_backward metrics and the optim_step metrics, as JSON (exact digits). */
  steps: string[];
  /** The final forward's logprobs, per datum. */
  logprobs: Float32Array[];
  /** seq_ids the backend applied, in order, per model. */
  applied: number[];
  seconds: number;
  errors: unknown[];
  events: FutureEvent[];
  requests: number;
}

export interface FaultRunResult {
  faultFree: RunRecord;
  faulted: RunRecord;
  faults: InjectedFault[];
  faultsByKind: Record<FaultKind, number>;
  lossesEqual: boolean;
  weightsEqual: boolean;
  exactlyOnce: boolean;
  /** Text scanned for the API key: errors, events, console lines, telemetry bodies. */
  scanned: string;
  keyLeaked: boolean;
  echoedPages: number;
}

/** Deterministic batches: one or two short byte sequences per step, drawn from the step number. */
export function batchFor(step: number): Datum[] {
  const size = 1 + (step % 2);
  return Array.from({ length: size }, (_, i) => {
    const text = `step ${step} item ${i}: ${"abcdefghij".slice(0, 3 + ((step + i) % 7))}`;
    const tokens = [256, ...new TextEncoder().encode(text)];
    return datum(ModelInput.fromInts(tokens.slice(0, -1)), {
      target_tokens: tokens.slice(1),
      weights: tokens.slice(1).map(() => 1),
    });
  });
}

const PROBE: Datum[] = [batchFor(0)[0]!, batchFor(1)[1]!];

async function trainThrough(
  options: FaultRunOptions,
  faulted: boolean,
  telemetry: string[],
): Promise<{ record: RunRecord; faults: InjectedFault[]; counts: Record<FaultKind, number> }> {
  const applied: number[] = [];
  const server = await serve({
    port: 0,
    host: "127.0.0.1",
    longPollMs: 1_000,
    onApplied: (_modelId, seqId) => applied.push(seqId),
  });
  const proxy = await startFaultProxy({
    target: server.url,
    rate: faulted ? (options.rate ?? 0.15) : 0,
    seed: options.seed ?? 7,
    ...(faulted && options.choose ? { choose: options.choose } : {}),
    ...(options.lateMs !== undefined ? { lateMs: options.lateMs } : {}),
    tap: (route, body) => {
      if (route.endsWith("/telemetry")) telemetry.push(body.toString("utf8"));
    },
  });
  const errors: unknown[] = [];
  const events: FutureEvent[] = [];
  const service = new ServiceClient({
    apiKey: FAULT_RUN_API_KEY,
    baseURL: proxy.url,
    timeout: options.timeoutMs ?? 3_000,
    telemetry: true,
  });
  const started = performance.now();
  const steps: string[] = [];
  let logprobs: Float32Array[] = [];
  const collect = <T>(future: { events(): AsyncIterable<FutureEvent> } & PromiseLike<T>) => {
    void (async () => {
      for await (const event of future.events()) events.push(event);
    })();
    return future;
  };
  try {
    const training = await service.createLoraTrainingClient(MODEL, { rank: 2, seed: 3 });
    for (let step = 0; step < options.steps; step++) {
      const fb = collect(training.forwardBackward(batchFor(step), "cross_entropy"));
      const opt = collect(training.optimStep({ learning_rate: 1e-3 }));
      const [out, stats] = await Promise.all([fb, opt]);
      steps.push(JSON.stringify([out.metrics, stats.metrics ?? null]));
      if (options.log && (step + 1) % 50 === 0) {
        options.log(
          `  ${faulted ? "faulted" : "fault-free"}: step ${step + 1}/${options.steps}, ${proxy.log.length} faults`,
        );
      }
    }
    const forward = await training.forward(PROBE, "cross_entropy");
    logprobs = forward.loss_fn_outputs.map((o) => Float32Array.from(o.logprobs!.data as number[]));
  } catch (error) {
    errors.push(error);
  } finally {
    await service.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const faults = [...proxy.log];
  const counts = proxy.counts();
  const requests = proxy.requests;
  await proxy.close();
  await server.close();
  return { record: { steps, logprobs, applied, seconds, errors, events, requests }, faults, counts };
}

function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  if (a.length === 0 || a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    const xa = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const ya = new Uint32Array(y.buffer, y.byteOffset, y.length);
    return xa.length === ya.length && xa.every((v, j) => v === ya[j]);
  });
}

/** seq_ids 1…n, each once: every step's two operations and the final forward. */
function appliedExactlyOnce(applied: number[], steps: number): boolean {
  const expected = Array.from({ length: 2 * steps + 1 }, (_, i) => i + 1);
  return applied.length === expected.length && applied.every((seqId, i) => seqId === expected[i]);
}

export async function faultRun(options: FaultRunOptions): Promise<FaultRunResult> {
  const consoleLines: string[] = [];
  const restore: (() => void)[] = [];
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    const original = console[method];
    console[method] = (...args: unknown[]) => {
      consoleLines.push(args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 8 }))).join(" "));
      if (method !== "debug") options.log?.(`  [console.${method}] ${consoleLines.at(-1)}`);
    };
    restore.push(() => {
      console[method] = original;
    });
  }
  const telemetry: string[] = [];
  try {
    const clean = await trainThrough(options, false, telemetry);
    const dirty = await trainThrough(options, true, telemetry);
    const faultFree = clean.record;
    const faulted = dirty.record;
    const scanned = [
      ...[...faultFree.errors, ...faulted.errors].flatMap((e) => [
        String(e),
        (e as Error)?.stack ?? "",
        inspect(e, { depth: 10, showHidden: true }),
      ]),
      ...[...faultFree.events, ...faulted.events].map((e) => JSON.stringify(e)),
      ...consoleLines,
      ...telemetry,
    ].join("\n");
    return {
      faultFree,
      faulted,
      faults: dirty.faults,
      faultsByKind: dirty.counts,
      lossesEqual:
        faulted.steps.length === options.steps && faulted.steps.every((s, i) => s === faultFree.steps[i]),
      weightsEqual: sameBits(faulted.logprobs, faultFree.logprobs),
      exactlyOnce:
        appliedExactlyOnce(faultFree.applied, options.steps) &&
        appliedExactlyOnce(faulted.applied, options.steps),
      scanned,
      keyLeaked: scanned.includes(FAULT_RUN_API_KEY),
      echoedPages: dirty.faults.filter((f) => f.detail?.includes("echoing headers")).length,
    };
  } finally {
    for (const undo of restore) undo();
  }
}

function argument(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
}

const isMain = typeof process !== "undefined" && process.argv[1]?.endsWith("fault-run.ts");
if (isMain) {
  const args = process.argv.slice(2);
  const steps = argument(args, "steps", 200);
  const seed = argument(args, "seed", 7);
  const rate = argument(args, "rate", 0.15);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  print(`fault run: ${steps} steps, seed ${seed}, fault rate ${rate}`);
  const result = await faultRun({ steps, seed, rate, log: print });
  const { faultFree, faulted } = result;
  const kinds = Object.entries(result.faultsByKind)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
  const extra = faulted.seconds - faultFree.seconds;
  print(`requests: fault-free ${faultFree.requests}, faulted ${faulted.requests}`);
  print(`faults injected: ${result.faults.length} (${kinds}); pages echoing headers: ${result.echoedPages}`);
  print(
    `wall time: fault-free ${faultFree.seconds.toFixed(1)} s, faulted ${faulted.seconds.toFixed(1)} s (+${extra.toFixed(1)} s, ${(extra / Math.max(1, result.faults.length)).toFixed(2)} s per fault)`,
  );
  print(`SDK errors: fault-free ${faultFree.errors.length}, faulted ${faulted.errors.length}`);
  for (const error of faulted.errors) print(`  ${String(error)}`);
  print(
    `applied seq_ids: fault-free ${faultFree.applied.length}, faulted ${faulted.applied.length}; exactly once, contiguous: ${result.exactlyOnce}`,
  );
  print(
    `losses bit-equal (${faulted.steps.length} steps): ${result.lossesEqual}; final forward logprobs bit-equal: ${result.weightsEqual}`,
  );
  const retries = faulted.events.filter((e) => e.type === "retry").length;
  print(
    `future retry events: ${retries}; text scanned for the API key: ${result.scanned.length} chars; key found: ${result.keyLeaked}`,
  );
  const ok =
    result.lossesEqual &&
    result.weightsEqual &&
    result.exactlyOnce &&
    faulted.errors.length === 0 &&
    faultFree.errors.length === 0 &&
    !result.keyLeaked;
  print(`fault run: ${ok ? "OK" : "FAILED"}`);
  process.exit(ok ? 0 : 1);
}
