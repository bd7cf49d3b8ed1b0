/**
 * Supervised fine-tuning with `trainSupervised`: 40 short chats read from a JSONL file
 * (examples/toolkit/data/chats.jsonl) through a web ReadableStream, rendered with `role_colon` and
 * trained on the assistant turns, 6 of them held out; batches of 4 reshuffled every epoch; a cosine
 * learning-rate schedule with warmup; held-out NLL every few steps; a checkpoint every few steps.
 *
 * Two modes.
 *
 * The demonstration (the default): the training, then the same training interrupted in-process and
 * resumed, to show that it ends where the uninterrupted run ended — bit for bit:
 *
 *   A. the whole run, uninterrupted;
 *   B. the same run (same LoRA seed, same data), stopped after step --stop-after:
 *      --interrupt abort  an AbortSignal: the steps in flight finish and the stop point is saved;
 *      --interrupt crash  an exception, as a kill would: nothing is saved at the stop, and the resume
 *                         starts from the last periodic checkpoint and redoes the steps after it;
 *   C. `resumeFromLatest` on B's run (weights + Adam state) and `trainSupervised({ resume })` to the end.
 *
 * One run that survives a real kill (with --state FILE): the checkpoint ledger and the run id are
 * kept in FILE (lib/file-store.ts, replaced atomically), so the process — and a `tinker-ts serve
 * --data-dir` server behind it — can be SIGKILLed at any point; run it again with --resume and it
 * continues from the latest checkpoint of the job's last run, printing the same metrics lines and,
 * at the end, the same `fingerprint` as a run that was never interrupted.
 *
 * Fingerprint: SHA-256 of the trainer's logprobs on fixed inputs (the held-out datums and the first
 * training datums), from one `forward` — equal to the last bit means equal weights.
 *
 *   npx tsx examples/toolkit/sft-driver.ts [--epochs 3] [--lr 0.01] [--stop-after 10] [--interrupt abort|crash]
 *   npx tsx examples/toolkit/sft-driver.ts --base-url http://127.0.0.1:8000 --state sft.json
 *   npx tsx examples/toolkit/sft-driver.ts --base-url http://127.0.0.1:8000 --state sft.json --resume
 *
 * Flags: --base-url URL (a `tinker-ts serve`; default: the embedded backend, in process),
 * --epochs N (3), --lr X (0.01), --seed S (0: the LoRA init, the held-out draw, the shuffles);
 * demonstration: --stop-after N (10), --interrupt abort|crash (abort);
 * one run: --state FILE, --resume (continue the job in FILE; the embedded backend's checkpoints die
 * with the process, so across processes that needs --base-url), --stall-at-step N (stop making
 * progress after step N and wait to be killed: a known point for a test to kill at).
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type Datum, type RestClient, ServiceClient, type TrainingClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
import {
  type BuiltDataset,
  type CheckpointStore,
  datasetFromJsonl,
  emptyLedger,
  getRenderer,
  memoryCheckpointStore,
  type ResumedTraining,
  resumeFromLatest,
  type SupervisedEvaluation,
  type SupervisedStepMetrics,
  type TrainSupervisedOptions,
  trainSupervised,
} from "tinker-ts/toolkit";
import { fileState } from "./lib/file-store.js";

const DATA_FILE = fileURLToPath(new URL("./data/chats.jsonl", import.meta.url));

/** What both modes share: the backend, the data and the training settings. */
export interface SftDriverSettings {
  /** A running Tinker-compatible server; default: the embedded backend, in process. */
  baseURL?: string;
  epochs?: number;
  learningRate?: number;
  warmupSteps?: number;
  batchSize?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SftDriverOptions extends SftDriverSettings {
  /** Run B stops after this step. */
  stopAfter?: number;
  interrupt?: "abort" | "crash";
}

export interface SftDriverResult {
  totalSteps: number;
  /** Run A's evaluations (step 0 = before training). */
  evaluations: SupervisedEvaluation[];
  /** Run A's per-step metrics. */
  steps: SupervisedStepMetrics[];
  /** The step run C resumed from. */
  resumedFrom: number;
  /** SHA-256 of the trainer's logprobs on the fixed inputs after A, and after B + C. */
  fingerprintA: string;
  fingerprintC: string;
  /** Whether A's and C's logprobs are equal number for number (not just their hashes). */
  identical: boolean;
}

class SimulatedCrash extends Error {}

/** The demonstration: runs A, B (interrupted in-process) and C (B resumed), compared. */
export async function runSftDriver(options: SftDriverOptions = {}): Promise<SftDriverResult> {
  const { stopAfter = 10, interrupt = "abort" } = options;
  const log = options.log ?? console.log;
  const setup = await connect(options);
  try {
    const { service, rest, newRun } = setup;
    const trainingA = await newRun();
    const { data, probe } = await loadData(trainingA, setup, log);
    const common = (store: CheckpointStore, startStep: number) =>
      driverOptions(setup, data, rest, store, startStep, log);

    // A: uninterrupted.
    log("run A: uninterrupted");
    const steps: SupervisedStepMetrics[] = [];
    const runA = await trainSupervised({
      ...common(memoryCheckpointStore(), 0),
      trainingClient: trainingA,
      onMetrics: (m) => {
        steps.push(m);
        log(stepLine(m));
      },
    });
    const logprobsA = await probeLogprobs(trainingA, probe);

    // B: the same run, interrupted after step `stopAfter`.
    log(`run B: interrupted (${interrupt}) after step ${stopAfter}`);
    const store = memoryCheckpointStore();
    const trainingB = await newRun();
    const controller = new AbortController();
    try {
      const runB = await trainSupervised({
        ...common(store, 0),
        trainingClient: trainingB,
        signal: controller.signal,
        onMetrics: (m) => {
          log(stepLine(m));
          if (m.step !== stopAfter) return;
          if (interrupt === "crash") throw new SimulatedCrash(`simulated crash after step ${m.step}`);
          controller.abort();
        },
      });
      log(`stopped at step ${runB.step}; checkpoints ${runB.checkpoints.map(checkpointName).join(", ")}`);
    } catch (error) {
      if (!(error instanceof SimulatedCrash)) throw error;
      log(error.message);
    }

    // C: resume B's run from its latest checkpoint, to the end.
    const resumed = await resumeFromLatest(service, rest, trainingB.modelId);
    if (resumed === undefined) throw new Error("run B saved no checkpoint to resume from");
    const position = data.train.position(resumed.step);
    log(
      `run C: resumed from ${checkpointName(resumed.checkpoint.path)} (step ${resumed.step}: epoch ${position.epoch}, batch ${position.batch})`,
    );
    await trainSupervised({
      ...common(store, resumed.step),
      resume: resumed,
      onMetrics: (m) => log(stepLine(m)),
    });
    const logprobsC = await probeLogprobs(resumed.training, probe);

    const fingerprintA = await fingerprint(logprobsA);
    const fingerprintC = await fingerprint(logprobsC);
    const identical = JSON.stringify(logprobsA) === JSON.stringify(logprobsC);
    log(`fingerprint A ${fingerprintA}`);
    log(`fingerprint C ${fingerprintC}`);
    log(`identical weights: ${identical ? "yes" : "NO"}`);
    const first = runA.evaluations[0]!;
    const lastEval = runA.evaluations.at(-1)!;
    log(`held-out NLL ${first.nll.toFixed(4)} → ${lastEval.nll.toFixed(4)} over ${runA.totalSteps} steps`);
    return {
      totalSteps: runA.totalSteps,
      evaluations: runA.evaluations,
      steps,
      resumedFrom: resumed.step,
      fingerprintA,
      fingerprintC,
      identical,
    };
  } finally {
    await setup.close();
  }
}

export interface SftDriverRunOptions extends SftDriverSettings {
  /** JSON file with the run id and the checkpoint ledger (created or, without `resume`, reset). */
  stateFile: string;
  /** Continue from the latest checkpoint of the last run recorded in `stateFile`. */
  resume?: boolean;
  /** After this step (counted from 1), stop and wait forever: a known point for a test to kill at. */
  stallAtStep?: number;
}

export interface SftDriverRunResult {
  runId: string;
  /** Steps the run started from (0, or the resumed checkpoint's). */
  startStep: number;
  totalSteps: number;
  /** This process's evaluations (the first at `startStep`). */
  evaluations: SupervisedEvaluation[];
  /** This process's per-step metrics. */
  steps: SupervisedStepMetrics[];
  /** SHA-256 of the trainer's logprobs on the fixed inputs at the end. */
  fingerprint: string;
}

/** One run (new, or resumed from the job in `stateFile`) to the end; see the module comment. */
export async function runSftDriverOnce(options: SftDriverRunOptions): Promise<SftDriverRunResult> {
  const log = options.log ?? console.log;
  const setup = await connect(options);
  try {
    const { service, rest, newRun } = setup;
    const state = await fileState(options.stateFile);
    let resumed: ResumedTraining | undefined;
    if (options.resume) {
      // The last run of the job that saved a checkpoint (a run is added to the ledger at its first
      // save, so a resumed run that died before saving leaves the one it resumed from as the last).
      const runId = (await state.store.load())?.runs.at(-1);
      resumed = runId === undefined ? undefined : await resumeFromLatest(service, rest, runId);
      if (resumed === undefined) {
        throw new Error(`--resume: ${options.stateFile} names no run with a checkpoint to resume from`);
      }
    } else {
      await state.store.save(emptyLedger());
    }
    const training = resumed?.training ?? (await newRun());
    const startStep = resumed?.step ?? 0;
    await state.setRunId(training.modelId);
    const { data, probe } = await loadData(training, setup, log);
    const position = data.train.position(startStep);
    log(
      `run ${training.modelId} from step ${startStep}: epoch ${position.epoch}, batch ${position.batch}` +
        (resumed ? ` (resumed from ${resumed.checkpoint.path})` : ""),
    );

    const steps: SupervisedStepMetrics[] = [];
    const run = await trainSupervised({
      ...driverOptions(setup, data, rest, state.store, startStep, log),
      ...(resumed ? { resume: resumed } : { trainingClient: training }),
      onMetrics: async (m) => {
        steps.push(m);
        log(stepLine(m));
        if (m.step === options.stallAtStep) {
          log(`stalled after step ${m.step}`);
          await new Promise(() => setInterval(() => {}, 60_000));
        }
      },
    });
    const first = run.evaluations[0]!;
    const lastEval = run.evaluations.at(-1)!;
    log(`held-out NLL ${first.nll.toFixed(4)} → ${lastEval.nll.toFixed(4)} from step ${startStep}`);
    const result = await fingerprint(await probeLogprobs(training, probe));
    log(`fingerprint ${result}`);
    return {
      runId: training.modelId,
      startStep,
      totalSteps: run.totalSteps,
      evaluations: run.evaluations,
      steps,
      fingerprint: result,
    };
  } finally {
    await setup.close();
  }
}

interface Setup extends Required<Omit<SftDriverSettings, "baseURL" | "log">> {
  service: ServiceClient;
  rest: RestClient;
  /** A new LoRA run, the same for the same seed. */
  newRun: () => Promise<TrainingClient>;
  close: () => Promise<void>;
}

async function connect(settings: SftDriverSettings): Promise<Setup> {
  const local = settings.baseURL === undefined ? createLocalTinker() : undefined;
  const service =
    local === undefined
      ? new ServiceClient({ apiKey: process.env.TINKER_API_KEY || "tml-local", baseURL: settings.baseURL })
      : new ServiceClient({ apiKey: "tml-local", baseURL: "http://local.tinker", fetch: local.fetch });
  const seed = settings.seed ?? 0;
  return {
    epochs: settings.epochs ?? 3,
    learningRate: settings.learningRate ?? 1e-2,
    warmupSteps: settings.warmupSteps ?? 3,
    batchSize: settings.batchSize ?? 4,
    evalEvery: settings.evalEvery ?? 4,
    checkpointEvery: settings.checkpointEvery ?? 6,
    seed,
    service,
    rest: service.createRestClient(),
    newRun: () => service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed }),
    close: async () => {
      await service.close();
      await local?.close();
    },
  };
}

/** The chats file as train and held-out datums, and the fixed inputs the fingerprint is taken on. */
async function loadData(
  training: TrainingClient,
  setup: Setup,
  log: (line: string) => void,
): Promise<{ data: BuiltDataset; probe: Datum[] }> {
  const renderer = getRenderer("role_colon", await training.getTokenizer());
  // The file as a web ReadableStream<Uint8Array>: the toolkit itself never touches node:fs.
  const stream = Readable.toWeb(createReadStream(DATA_FILE)) as ReadableStream<Uint8Array>;
  const data = await datasetFromJsonl(stream, {
    format: "conversations",
    renderer,
    batchSize: setup.batchSize,
    heldOut: 6,
    seed: setup.seed,
  });
  log(
    `data ${data.train.examples.length} train / ${data.heldOut.length} held out, ${data.train.batchesPerEpoch} batches per epoch × ${setup.epochs} epochs`,
  );
  return { data, probe: [...data.heldOut, ...data.train.examples.slice(0, 4)] };
}

/** The driver's options but the run: the same for a new run and for its resumes. */
function driverOptions(
  setup: Setup,
  data: BuiltDataset,
  rest: RestClient,
  store: CheckpointStore,
  startStep: number,
  log: (line: string) => void,
) {
  const { epochs, learningRate, warmupSteps, evalEvery, checkpointEvery } = setup;
  return {
    dataset: data.train,
    evalDataset: data.heldOut,
    epochs,
    learningRate,
    schedule: { kind: "cosine", warmupSteps, minLR: learningRate / 10 },
    evalEvery,
    checkpointEvery,
    checkpoints: { rest, store, keepLast: 2 },
    // Evaluations after a step are printed on that step's line; this prints the starting one.
    onEval: (e) => {
      if (e.step === startStep) log(`start at step ${e.step} held_out_nll ${e.nll.toFixed(4)}`);
    },
  } satisfies Partial<TrainSupervisedOptions>;
}

function stepLine(m: SupervisedStepMetrics): string {
  const extra = [
    m.evalNll === undefined ? "" : ` held_out_nll ${m.evalNll.toFixed(4)}`,
    m.checkpoint === undefined ? "" : ` checkpoint ${checkpointName(m.checkpoint)}`,
  ].join("");
  return `step ${String(m.step).padStart(2)} epoch ${m.epoch} batch ${m.batch} lr ${m.learningRate.toFixed(5)} train_nll ${m.trainMeanNll.toFixed(4)} tokens ${m.lossTokens} time ${(m.stepSeconds * 1000).toFixed(0)}ms${extra}`;
}

/** `tinker://…/weights/step-000006` → `step-000006`. */
function checkpointName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The trainer's per-target logprobs of each datum (one forward: no gradient, no weight change). */
async function probeLogprobs(training: TrainingClient, data: Datum[]): Promise<number[][]> {
  const output = await training.forward(data, "cross_entropy");
  return output.loss_fn_outputs.map((o) => Array.from(o.logprobs!.data as ArrayLike<number>));
}

async function fingerprint(logprobs: number[][]): Promise<string> {
  const bytes = new Float64Array(logprobs.flat());
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "base-url": { type: "string" },
      epochs: { type: "string", default: "3" },
      lr: { type: "string", default: "0.01" },
      seed: { type: "string", default: "0" },
      "stop-after": { type: "string" },
      interrupt: { type: "string" },
      state: { type: "string" },
      resume: { type: "boolean", default: false },
      "stall-at-step": { type: "string" },
    },
  });
  const settings: SftDriverSettings = {
    baseURL: values["base-url"],
    epochs: Number(values.epochs),
    learningRate: Number(values.lr),
    seed: Number(values.seed),
  };
  if (values.state === undefined) {
    if (values.resume || values["stall-at-step"] !== undefined) {
      throw new Error("--resume and --stall-at-step need --state FILE");
    }
    const interrupt = values.interrupt ?? "abort";
    if (interrupt !== "abort" && interrupt !== "crash") throw new Error("--interrupt must be abort or crash");
    const result = await runSftDriver({
      ...settings,
      stopAfter: Number(values["stop-after"] ?? "10"),
      interrupt,
    });
    if (!result.identical) process.exitCode = 1;
    return;
  }
  if (values["stop-after"] !== undefined || values.interrupt !== undefined) {
    throw new Error("--stop-after and --interrupt are the demonstration's (without --state)");
  }
  const stallAtStep = values["stall-at-step"] === undefined ? undefined : Number(values["stall-at-step"]);
  if (stallAtStep !== undefined && !(Number.isSafeInteger(stallAtStep) && stallAtStep >= 1)) {
    throw new Error("--stall-at-step must be an integer ≥ 1");
  }
  await runSftDriverOnce({ ...settings, stateFile: values.state, resume: values.resume, stallAtStep });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
