/**
 * Kill harness (issue 14): `tinker-ts serve --data-dir` as a child process is killed with SIGKILL
 * at random moments of a training loop driven by the SDK, and restarted on the same port and data
 * directory; the client keeps going through the restart (its transport retries cover the refused
 * connections, its poller the dropped polls). Every loop must either end with every loss, every
 * optim_step's gradient norm and the final weights (forward logprobs of a probe batch) bit-equal to
 * an uninterrupted reference loop, or fail with a typed error that says what was lost.
 *
 *   npx tsx bench/kill-harness.ts [--kills 20] [--steps 30] [--seed 1] [--kills-per-loop 1]
 *
 * Each loop: a fresh data directory, one ServiceClient, a LoRA run with a fixed seed, `steps` ×
 * (forward_backward + optim_step, submitted together as the SDK pipelines them), deterministic
 * data. Each kill moment is uniform over the reference loop's duration (seeded), counted from the
 * loop's start or the previous restart; loops run until `kills` kills have happened (a loop that
 * ends before its kill is still checked). The server's warnings are scanned for skipped (damaged)
 * records: a torn record would show there.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServeChild, spawnServe } from "../scripts/lib/serve-child.js";
import { type Datum, datum, ModelInput, ServiceClient, TinkerError } from "../src/index.js";
import { mulberry32 } from "../src/internal/random.js";

const MODEL = "tinker-ts/byte-lm-tiny";

/** A running `tinker-ts serve` child. */
export type ServerProcess = ServeChild;

/** Starts `tinker-ts serve` on `port` (0: a free one) with `dataDir`; resolves once it listens. */
export function startServer(port: number, dataDir: string): Promise<ServerProcess> {
  return spawnServe(["--port", String(port), "--data-dir", dataDir]);
}

/** SIGKILL, and wait until the process is gone. */
export async function killServer(server: ServerProcess): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
  server.child.kill("SIGKILL");
  await exited;
}

/** The deterministic batch of step `step`: two short byte sequences that depend on the step. */
export function batchOf(step: number): Datum[] {
  return [0, 1].map((k) => {
    const text = `step ${step} item ${k}: ${"abcdefgh".slice(0, 3 + ((step + k) % 5))}`;
    const tokens = [1, ...[...new TextEncoder().encode(text)].map((b) => b + 2)];
    return datum(ModelInput.fromInts(tokens.slice(0, -1)), {
      target_tokens: tokens.slice(1),
      weights: tokens.slice(1).map(() => 1),
    });
  });
}

const PROBE = batchOf(1_000);

/** What a loop produced; equal (deeply, numbers bit for bit) to the reference when nothing was lost. */
export interface LoopResult {
  losses: number[];
  gradNorms: number[];
  /** Forward logprobs of a probe batch after the last step: the final weights, observed. */
  probe: number[][];
}

export interface LoopHooks {
  /**
   * Called with each HTTP exchange the client makes, after the server answered and before the
   * client sees the answer (e.g. to kill the server right after a submission was acknowledged).
   */
  afterResponse?: (path: string, status: number, step: number) => Promise<void> | void;
  /** Called after step `step`'s forward_backward result arrived, before its optim_step is sent. */
  betweenCalls?: (step: number) => Promise<void> | void;
}

/**
 * The training loop: `steps` × forward_backward + optim_step with deterministic data. With
 * `betweenCalls`, each step awaits the forward_backward result before sending optim_step;
 * otherwise both are submitted together (pipelined, as the SDK allows).
 */
export async function trainingLoop(url: string, steps: number, hooks: LoopHooks = {}): Promise<LoopResult> {
  let step = -1;
  const baseFetch = globalThis.fetch;
  const observed = hooks.afterResponse;
  const service = new ServiceClient({
    apiKey: "tml-local",
    baseURL: url,
    heartbeatIntervalMs: 60_000,
    ...(observed
      ? {
          fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
            const response = await baseFetch(input, init);
            await observed(
              new URL(input instanceof Request ? input.url : String(input)).pathname,
              response.status,
              step,
            );
            return response;
          },
        }
      : {}),
  });
  try {
    const training = await service.createLoraTrainingClient(MODEL, { rank: 4, seed: 7 });
    const losses: number[] = [];
    const gradNorms: number[] = [];
    for (step = 0; step < steps; step++) {
      let fb: PromiseLike<{ metrics: Record<string, number> }>;
      let opt: PromiseLike<{ metrics?: Record<string, number> | null }>;
      if (hooks.betweenCalls) {
        const result = await training.forwardBackward(batchOf(step), "cross_entropy");
        await hooks.betweenCalls(step);
        fb = Promise.resolve(result);
        opt = training.optimStep({ learning_rate: 1e-2 });
      } else {
        fb = training.forwardBackward(batchOf(step), "cross_entropy");
        opt = training.optimStep({ learning_rate: 1e-2 });
      }
      const [out, stepped] = await Promise.all([fb, opt]);
      losses.push(out.metrics["loss:sum"]!);
      gradNorms.push(stepped.metrics?.["grad_norm:mean"] ?? Number.NaN);
    }
    const forward = await training.forward(PROBE, "cross_entropy");
    const probe = forward.loss_fn_outputs.map((o) => Array.from(o.logprobs!.data as ArrayLike<number>));
    return { losses, gradNorms, probe };
  } finally {
    await service.close();
  }
}

/** Exact (bit) equality of two loop results; the first difference, or undefined. */
export function firstDifference(a: LoopResult, b: LoopResult): string | undefined {
  const same = (x: number, y: number) => Object.is(x, y);
  for (let i = 0; i < Math.max(a.losses.length, b.losses.length); i++) {
    if (!same(a.losses[i]!, b.losses[i]!)) return `loss of step ${i}: ${a.losses[i]} ≠ ${b.losses[i]}`;
  }
  for (let i = 0; i < Math.max(a.gradNorms.length, b.gradNorms.length); i++) {
    if (!same(a.gradNorms[i]!, b.gradNorms[i]!)) {
      return `grad norm of optim_step ${i}: ${a.gradNorms[i]} ≠ ${b.gradNorms[i]}`;
    }
  }
  for (let i = 0; i < a.probe.length; i++) {
    for (let j = 0; j < a.probe[i]!.length; j++) {
      if (!same(a.probe[i]![j]!, b.probe[i]![j]!)) return `final weights differ (probe ${i}, token ${j})`;
    }
  }
  return undefined;
}

/** How one interrupted loop ended, against the reference. */
export type LoopVerdict =
  | { kind: "equal" }
  /** Finished "successfully" with different numbers: the silent failure that must never happen. */
  | { kind: "silently-wrong"; difference: string; lostGradients: number; appliedTwice: number }
  /** Failed with an error: acceptable only when typed and saying what was lost. */
  | { kind: "failed"; error: string; typed: boolean };

export function verdictOf(reference: LoopResult, outcome: LoopResult | Error): LoopVerdict {
  if (outcome instanceof Error) {
    return {
      kind: "failed",
      error: `${outcome.constructor.name}: ${outcome.message}`,
      typed: outcome instanceof TinkerError,
    };
  }
  const difference = firstDifference(outcome, reference);
  if (difference === undefined) return { kind: "equal" };
  // An optim_step that found no gradient (norm 0) applied momentum only; one that found the
  // gradient of a forward_backward twice reports (about) twice the norm.
  let lostGradients = 0;
  let appliedTwice = 0;
  outcome.gradNorms.forEach((norm, i) => {
    const expected = reference.gradNorms[i]!;
    if (norm === 0 && expected !== 0) lostGradients++;
    else if (Math.abs(norm / expected - 2) < 0.5) appliedTwice++;
  });
  return { kind: "silently-wrong", difference, lostGradients, appliedTwice };
}

/** Records the server printed as skipped (damaged, torn): must be none. */
export function skippedRecords(output: string): string[] {
  return output.split("\n").filter((line) => /skipping/.test(line));
}

export interface HarnessOptions {
  /** Kills in all. */
  kills: number;
  steps: number;
  seed: number;
  killsPerLoop: number;
  log: (line: string) => void;
}

export interface HarnessSummary {
  loops: number;
  kills: number;
  equal: number;
  silentlyWrong: number;
  failedTyped: number;
  failedUntyped: number;
  lostGradients: number;
  appliedTwice: number;
  tornRecords: number;
}

/**
 * Loops until `kills` kills have happened, each loop killed up to `killsPerLoop` times at seeded
 * random moments (uniform over the reference loop's duration, from the loop's start or the
 * previous restart).
 */
export async function runHarness(options: HarnessOptions): Promise<HarnessSummary> {
  const random = mulberry32(options.seed);
  const { log } = options;
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "tinker-ts-kill-"));
    dirs.push(dir);
    return dir;
  };
  const summary: HarnessSummary = {
    loops: 0,
    kills: 0,
    equal: 0,
    silentlyWrong: 0,
    failedTyped: 0,
    failedUntyped: 0,
    lostGradients: 0,
    appliedTwice: 0,
    tornRecords: 0,
  };
  try {
    const referenceServer = await startServer(0, await tempDir());
    const started = performance.now();
    const reference = await trainingLoop(referenceServer.url, options.steps);
    const duration = performance.now() - started;
    await killServer(referenceServer);
    log(`reference loop: ${options.steps} steps in ${duration.toFixed(0)} ms`);

    for (let loop = 0; summary.kills < options.kills; loop++) {
      const dataDir = await tempDir();
      let server = await startServer(0, dataDir);
      const port = Number(new URL(server.url).port);
      let output = "";
      const killTimes: number[] = [];
      let stopped = false;
      const killer = (async () => {
        for (let k = 0; k < options.killsPerLoop && summary.kills < options.kills && !stopped; k++) {
          const delay = random() * duration;
          await new Promise((resolve) => setTimeout(resolve, delay));
          if (stopped) return;
          await killServer(server);
          killTimes.push(Math.round(delay));
          summary.kills++;
          output += server.output();
          server = await startServer(port, dataDir);
        }
      })();
      let outcome: LoopResult | Error;
      try {
        outcome = await trainingLoop(server.url, options.steps);
      } catch (error) {
        outcome = error instanceof Error ? error : new Error(String(error));
      }
      stopped = true;
      await killer;
      await killServer(server);
      output += server.output();
      const torn = skippedRecords(output);
      summary.tornRecords += torn.length;
      const verdict = verdictOf(reference, outcome);
      summary.loops++;
      if (verdict.kind === "equal") summary.equal++;
      else if (verdict.kind === "silently-wrong") {
        summary.silentlyWrong++;
        summary.lostGradients += verdict.lostGradients;
        summary.appliedTwice += verdict.appliedTwice;
      } else if (verdict.typed) summary.failedTyped++;
      else summary.failedUntyped++;
      const detail =
        verdict.kind === "equal"
          ? "bit-equal to the reference"
          : verdict.kind === "silently-wrong"
            ? `FINISHED WITH WRONG NUMBERS (${verdict.difference})`
            : `failed: ${verdict.error}`;
      log(
        `loop ${loop + 1}: killed after ${killTimes.map((t) => `${t} ms`).join(", ") || "(loop ended first)"}; ${detail}${torn.length ? `; skipped records: ${torn.join(" | ")}` : ""}`,
      );
    }
  } finally {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
  return summary;
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number`);
  return value;
}

if (process.argv[1]?.endsWith("kill-harness.ts")) {
  const summary = await runHarness({
    kills: argument("kills", 20),
    steps: argument("steps", 30),
    seed: argument("seed", 1),
    killsPerLoop: argument("kills-per-loop", 1),
    log: (line) => console.log(line),
  });
  console.log(
    `loops ${summary.loops} · kills ${summary.kills} · bit-equal ${summary.equal} · silently wrong ${summary.silentlyWrong} (updates without their gradients ${summary.lostGradients}, applied twice ${summary.appliedTwice}) · failed with a typed error ${summary.failedTyped} · failed untyped ${summary.failedUntyped} · torn/skipped records ${summary.tornRecords}`,
  );
  process.exitCode = summary.equal === summary.loops && summary.tornRecords === 0 ? 0 : 1;
}
