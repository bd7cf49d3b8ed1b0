/**
 * Supervised fine-tuning with `trainSupervised` on the embedded backend: 40 short chats read from a
 * JSONL file (examples/toolkit/data/chats.jsonl) through a web ReadableStream, rendered with
 * `role_colon` and trained on the assistant turns, 6 of them held out; batches of 4 reshuffled
 * every epoch; a cosine learning-rate schedule with warmup; held-out NLL every few steps; a
 * checkpoint every few steps.
 *
 * Then the same training is interrupted and resumed, to show that it ends where the uninterrupted
 * run ended — bit for bit:
 *
 *   A. the whole run, uninterrupted;
 *   B. the same run (same LoRA seed, same data), stopped after step --stop-after:
 *      --interrupt abort  an AbortSignal: the steps in flight finish and the stop point is saved;
 *      --interrupt crash  an exception, as a kill would: nothing is saved at the stop, and the resume
 *                         starts from the last periodic checkpoint and redoes the steps after it;
 *   C. `resumeFromLatest` on B's run (weights + Adam state) and `trainSupervised({ resume })` to the end.
 *
 * A and C are compared by the trainer's logprobs on fixed inputs (held-out and training datums):
 * equal to the last bit means equal weights.
 *
 *   npx tsx examples/toolkit/sft-driver.ts [--epochs 3] [--lr 0.01] [--stop-after 10] [--interrupt abort|crash]
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type Datum, ServiceClient, type TrainingClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
import {
  type BuiltDataset,
  type CheckpointStore,
  datasetFromJsonl,
  getRenderer,
  memoryCheckpointStore,
  resumeFromLatest,
  type SupervisedEvaluation,
  type SupervisedStepMetrics,
  type TrainSupervisedOptions,
  trainSupervised,
} from "tinker-ts/toolkit";

const DATA_FILE = fileURLToPath(new URL("./data/chats.jsonl", import.meta.url));

export interface SftDriverOptions {
  epochs?: number;
  learningRate?: number;
  warmupSteps?: number;
  batchSize?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  /** Run B stops after this step. */
  stopAfter?: number;
  interrupt?: "abort" | "crash";
  seed?: number;
  log?: (line: string) => void;
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

export async function runSftDriver(options: SftDriverOptions = {}): Promise<SftDriverResult> {
  const {
    epochs = 3,
    learningRate = 1e-2,
    warmupSteps = 3,
    batchSize = 4,
    evalEvery = 4,
    checkpointEvery = 6,
    stopAfter = 10,
    interrupt = "abort",
    seed = 0,
  } = options;
  const log = options.log ?? console.log;
  const local = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  try {
    const rest = service.createRestClient();
    const newRun = () => service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed });

    const trainingA = await newRun();
    const renderer = getRenderer("role_colon", await trainingA.getTokenizer());
    // The file as a web ReadableStream<Uint8Array>: the toolkit itself never touches node:fs.
    const stream = Readable.toWeb(createReadStream(DATA_FILE)) as ReadableStream<Uint8Array>;
    const data: BuiltDataset = await datasetFromJsonl(stream, {
      format: "conversations",
      renderer,
      batchSize,
      heldOut: 6,
      seed,
    });
    const probe = [...data.heldOut, ...data.train.examples.slice(0, 4)];
    log(
      `data ${data.train.examples.length} train / ${data.heldOut.length} held out, ${data.train.batchesPerEpoch} batches per epoch × ${epochs} epochs`,
    );

    // Evaluations after a step are printed on that step's line; onEval prints the starting one.
    const common = (store: CheckpointStore, startStep: number) =>
      ({
        dataset: data.train,
        evalDataset: data.heldOut,
        epochs,
        learningRate,
        schedule: { kind: "cosine", warmupSteps, minLR: learningRate / 10 },
        evalEvery,
        checkpointEvery,
        checkpoints: { rest, store, keepLast: 2 },
        onEval: (e) => {
          if (e.step === startStep) log(`start at step ${e.step} held_out_nll ${e.nll.toFixed(4)}`);
        },
      }) satisfies Partial<TrainSupervisedOptions>;

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
    await service.close();
    await local.close();
  }
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
      epochs: { type: "string", default: "3" },
      lr: { type: "string", default: "0.01" },
      "stop-after": { type: "string", default: "10" },
      interrupt: { type: "string", default: "abort" },
      seed: { type: "string", default: "0" },
    },
  });
  if (values.interrupt !== "abort" && values.interrupt !== "crash") {
    throw new Error("--interrupt must be abort or crash");
  }
  const result = await runSftDriver({
    epochs: Number(values.epochs),
    learningRate: Number(values.lr),
    stopAfter: Number(values["stop-after"]),
    interrupt: values.interrupt,
    seed: Number(values.seed),
  });
  if (!result.identical) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
