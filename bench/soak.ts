/**
 * Soak test: a long training run against the in-process backend with a seeded share of its requests
 * faulted (5xx, 429, dropped and reset connections, 408 queue answers, 410 on sampling polls, small
 * delays). It must end with weights equal, bit for bit, to a fault-free run of the same steps, and
 * the backend's audit must show every training seq_id applied exactly once.
 *
 *   npx tsx bench/soak.ts [--steps 1000] [--seed 7] [--rate 0.2] [--rank 2]
 *
 * 410 on *training* polls is not injected: by protocol (PROTOCOL.md §4.3) it surfaces to the user
 * (the promise is gone and the SDK cannot know whether the step was applied), so a run that must
 * not fail cannot include it. Sampling polls do get 410s: the SDK re-submits those samples.
 */
import { type Datum, datum, ModelInput, ServiceClient } from "../src/index.js";
import { LocalBackend } from "../src/local/backend.js";
import { type FaultKind, type InjectedFault, withFaultPlan } from "../src/local/chaos.js";
import { createHandler } from "../src/local/handler.js";

export interface SoakOptions {
  steps: number;
  seed?: number;
  /** Share of requests faulted. Default 0.2. */
  rate?: number;
  rank?: number;
  /** Fault kinds and weights. Default: every kind but 410 on training polls. */
  kinds?: Partial<Record<FaultKind, number>>;
  /** Sample from the base model every this many steps (exercises 410 on Sample polls). Default 25. */
  sampleEvery?: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  steps: number;
  requests: number;
  faultFreeRequests: number;
  faultsInjected: number;
  faultsByKind: Record<string, number>;
  /** Requests beyond the fault-free run's: transport retries, generic-loop retries, re-polls, re-submits. */
  retries: number;
  applied: number;
  lost: number;
  duplicated: number;
  weightsEqual: boolean;
  samplesEqual: boolean;
  seconds: number;
}

export const DEFAULT_SOAK_KINDS: Partial<Record<FaultKind, number>> = {
  http500: 2,
  http503: 2,
  http429: 1,
  drop: 1,
  reset: 1,
  poll408: 2,
  poll410: 2,
  delay: 2,
};

const MODEL = "tinker-ts/byte-lm-tiny";

/** Tiny batches: one or two short byte sequences per step, drawn from the step number. */
function batchFor(step: number): Datum[] {
  const size = 1 + (step % 2);
  return Array.from({ length: size }, (_, i) => {
    const text = `step ${step} item ${i}: ${"abcdefghij".slice(0, 3 + ((step + i) % 7))}`;
    const bytes = [...new TextEncoder().encode(text)];
    const tokens = [256, ...bytes];
    return datum(ModelInput.fromInts(tokens.slice(0, -1)), {
      target_tokens: tokens.slice(1),
      weights: tokens.slice(1).map(() => 1),
    });
  });
}

const PROBE: Datum[] = [batchFor(0)[0]!, batchFor(1)[1]!];

interface RunOutput {
  logprobs: Float32Array[];
  samples: number[][];
  requests: number;
  applied: { modelId: string; seqId: number }[];
  log: InjectedFault[];
}

async function trainOnce(options: SoakOptions, faulted: boolean): Promise<RunOutput> {
  const applied: { modelId: string; seqId: number }[] = [];
  const backend = new LocalBackend({ onApplied: (modelId, seqId) => applied.push({ modelId, seqId }) });
  const handler = createHandler(backend, { longPollMs: 1_000 });
  const planned = withFaultPlan(handler.fetch, {
    seed: options.seed ?? 7,
    rate: faulted ? (options.rate ?? 0.2) : 0,
    kinds: options.kinds ?? DEFAULT_SOAK_KINDS,
    retryAfterMs: 1,
  });
  let requests = 0;
  const service = new ServiceClient({
    apiKey: "tml-soak-key",
    baseURL: "http://local.tinker",
    telemetry: false,
    fetch: (request: Request) => {
      requests++;
      return planned.fetch(request);
    },
  });
  try {
    const training = await service.createLoraTrainingClient(MODEL, { rank: options.rank ?? 2, seed: 3 });
    const sampler = await service.createSamplingClient({ baseModel: MODEL });
    const samples: number[][] = [];
    const sampleEvery = options.sampleEvery ?? 25;
    for (let step = 0; step < options.steps; step++) {
      const fb = training.forwardBackward(batchFor(step), "cross_entropy");
      const opt = training.optimStep({ learning_rate: 1e-3 });
      await Promise.all([fb, opt]);
      if (sampleEvery > 0 && step % sampleEvery === 0) {
        const result = await sampler.sample(ModelInput.fromInts([256, 72, 105]), 1, {
          max_tokens: 3,
          seed: step,
        });
        samples.push(result.sequences[0]!.tokens);
      }
      if (options.log && (step + 1) % 100 === 0) {
        const run = faulted ? "faulted" : "fault-free";
        options.log(`  ${run} run: step ${step + 1}/${options.steps}, ${planned.log.length} faults so far`);
      }
    }
    const forward = await training.forward(PROBE, "cross_entropy");
    const logprobs = forward.loss_fn_outputs.map((o) => Float32Array.from(o.logprobs!.data as number[]));
    return { logprobs, samples, requests, applied, log: planned.log };
  } finally {
    await service.close();
    handler.close();
  }
}

function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    const xa = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const ya = new Uint32Array(y.buffer, y.byteOffset, y.length);
    return xa.length === ya.length && xa.every((v, j) => v === ya[j]);
  });
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const started = performance.now();
  // Independent backends: the faulted run spends most of its time in retry delays, so both run at once.
  const [clean, faulty] = await Promise.all([trainOnce(options, false), trainOnce(options, true)]);
  // The audit: each (model, seq_id) applied once, none missing. Seq ids 1…n of the single run.
  const seen = new Map<string, number>();
  for (const { modelId, seqId } of faulty.applied) {
    const key = `${modelId}#${seqId}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const duplicated = [...seen.values()].reduce((sum, n) => sum + (n - 1), 0);
  const expected = clean.applied.map(({ seqId }) => seqId);
  const modelId = faulty.applied[0]?.modelId;
  const lost = expected.filter((seqId) => !seen.has(`${modelId}#${seqId}`)).length;
  const faultsByKind: Record<string, number> = {};
  for (const fault of faulty.log) faultsByKind[fault.kind] = (faultsByKind[fault.kind] ?? 0) + 1;
  return {
    steps: options.steps,
    requests: faulty.requests,
    faultFreeRequests: clean.requests,
    faultsInjected: faulty.log.length,
    faultsByKind,
    retries: faulty.requests - clean.requests,
    applied: faulty.applied.length,
    lost,
    duplicated,
    weightsEqual: sameBits(clean.logprobs, faulty.logprobs),
    samplesEqual: JSON.stringify(clean.samples) === JSON.stringify(faulty.samples),
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
}

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

const isMain =
  typeof process !== "undefined" && process.argv[1]?.replace(/\\/g, "/").endsWith("bench/soak.ts");
if (isMain) {
  const options: SoakOptions = {
    steps: flag("steps", 1000),
    seed: flag("seed", 7),
    rate: flag("rate", 0.2),
    rank: flag("rank", 2),
    log: (line) => console.log(line),
  };
  console.log(
    `soak: ${options.steps} steps, rank ${options.rank}, ${options.rate! * 100}% faulted, seed ${options.seed}`,
  );
  const result = await runSoak(options);
  console.log(JSON.stringify(result, null, 2));
  const ok = result.lost === 0 && result.duplicated === 0 && result.weightsEqual && result.samplesEqual;
  console.log(ok ? "soak: OK" : "soak: FAILED");
  process.exitCode = ok ? 0 : 1;
}
