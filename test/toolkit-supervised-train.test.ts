/**
 * trainSupervised against the real local backend: options checked before any request; per-step
 * metrics (the schedule's rate, the batch's tokens and position); evaluations at the start, every
 * `evalEvery` steps and at the end, on exactly that many steps; checkpoints at the cadence and at
 * the end; abort and crash; resume to the same weights. (The full kill-and-resume story, with
 * held-out NLL falling, is test/examples-toolkit-sft-driver.test.ts.)
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Datum, ServiceClient, type TrainingClient, ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "../src/local/index.js";
import {
  datasetFromPromptCompletions,
  evaluateForward,
  lrSchedule,
  memoryCheckpointStore,
  resumeFromLatest,
  type SupervisedStepMetrics,
  type TrainSupervisedOptions,
  trainSupervised,
} from "../src/toolkit/index.js";

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function setup() {
  const local = createLocalTinker({ longPollMs: 2_000 });
  const paths: string[] = [];
  const service = new ServiceClient({
    apiKey: "tml-test",
    baseURL: "http://local.tinker",
    fetch: (request: Request) => {
      paths.push(new URL(request.url).pathname);
      return local.fetch(request);
    },
  });
  closers.push(async () => {
    await service.close();
    await local.close();
  });
  return { service, rest: service.createRestClient(), paths };
}

const tokenizer = new ByteLevelTokenizer();
const PAIRS = [
  ["2+2=", "4"],
  ["Capital of France:", " Paris"],
  ["Colour of the sky:", " blue"],
  ["Opposite of hot:", " cold"],
  ["First letter:", " A"],
  ["Legs of a spider:", " eight"],
  ["Opposite of up:", " down"],
].map(([prompt, completion]) => ({ prompt: prompt!, completion: completion! }));
/** 6 training pairs in batches of 2 (3 steps per epoch), 1 held out. */
const DATA = datasetFromPromptCompletions(tokenizer, PAIRS, { batchSize: 2, heldOut: 1, seed: 4 });

function newRun(service: ServiceClient): Promise<TrainingClient> {
  return service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 11 });
}

function weightSum(batch: readonly Datum[]): number {
  return batch.reduce((n, d) => n + d.loss_fn_inputs.weights!.data.reduce((a, b) => a + b, 0), 0);
}

async function probe(training: TrainingClient): Promise<number[][]> {
  const { logprobs } = await evaluateForward(training, [...DATA.heldOut, ...DATA.train.examples]);
  return logprobs.map((lp) => Array.from(lp));
}

describe("trainSupervised", () => {
  it("rejects bad options with a ValidationError naming each, before any request", async () => {
    const { service, rest, paths } = setup();
    const training = await newRun(service);
    const sent = paths.length;
    const attempt = async (options: Partial<TrainSupervisedOptions>) => {
      try {
        await trainSupervised({
          trainingClient: training,
          dataset: DATA.train,
          learningRate: 1e-2,
          ...options,
        });
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).issues.map((issue) => issue.path);
      }
      throw new Error("expected a ValidationError");
    };
    expect(
      await attempt({
        epochs: 0,
        evalEvery: 2,
        checkpointEvery: -1,
        inFlight: 0,
        learningRate: Number.NaN,
      }),
    ).toEqual(["epochs", "evalEvery", "checkpointEvery", "inFlight", "learningRate"]);
    expect(await attempt({ schedule: { kind: "linear", warmupSteps: 10 } })).toEqual([
      "schedule.warmupSteps",
    ]);
    expect(await attempt({ schedule: "step" as "linear" })).toEqual(["schedule"]);
    expect(await attempt({ schedule: () => 0.1 })).toEqual(["learningRate"]);
    expect(await attempt({ resume: { training, step: 1 } })).toEqual(["resume"]);
    expect(await attempt({ trainingClient: undefined, resume: { training, step: 7 } })).toEqual([
      "resume.step",
    ]);
    expect(await attempt({ dataset: {} as never, evalDataset: [] })).toEqual(["dataset", "evalDataset"]);
    expect(await attempt({ checkpointEvery: 2 })).toEqual(["checkpointEvery"]);
    expect(await attempt({ adam: { beta1: 2 } })).toEqual(["adam_params.beta1"]);
    expect(await attempt({ checkpoints: { rest, keepLast: 0 } })).toEqual(["keepLast"]);
    expect(paths.length).toBe(sent);
  });

  it("reports each step's rate, batch and tokens; evaluates and checkpoints on exact step counts", async () => {
    const { service, rest } = setup();
    const training = await newRun(service);
    const steps: SupervisedStepMetrics[] = [];
    const evalSteps: number[] = [];
    const schedule = { kind: "cosine", warmupSteps: 2, minLR: 1e-3 } as const;
    const result = await trainSupervised({
      trainingClient: training,
      dataset: DATA.train,
      evalDataset: DATA.heldOut,
      epochs: 3,
      learningRate: 2e-2,
      schedule,
      evalEvery: 4,
      checkpointEvery: 3,
      checkpoints: { rest },
      inFlight: 3,
      onMetrics: (m) => {
        steps.push(m);
      },
      onEval: (e) => {
        evalSteps.push(e.step);
      },
    });

    expect(result).toMatchObject({ startStep: 0, step: 9, totalSteps: 9, aborted: false });
    const expectedLR = lrSchedule({ ...schedule, baseLR: 2e-2, totalSteps: 9 });
    steps.forEach((m, i) => {
      expect(m.step).toBe(i + 1);
      expect([m.epoch, m.batch]).toEqual([Math.floor(i / 3), i % 3]);
      expect(m.learningRate).toBe(expectedLR.lrAt(i));
      expect(m.lossTokens).toBe(weightSum(DATA.train.batch(m.epoch, m.batch)));
      expect(m.examples).toBe(2);
      expect(m.trainMeanNll).toBeCloseTo(m.server["loss:sum"]! / m.lossTokens, 10);
      expect(m.stepSeconds).toBeGreaterThan(0);
    });
    // The warmup rises, the decay falls.
    expect(steps[0]!.learningRate).toBeLessThan(steps[1]!.learningRate);
    expect(steps[8]!.learningRate).toBeLessThan(steps[2]!.learningRate);

    // Start, every 4 steps, end; held-out NLL went down.
    expect(evalSteps).toEqual([0, 4, 8, 9]);
    expect(result.evaluations.map((e) => e.step)).toEqual([0, 4, 8, 9]);
    expect(steps.filter((m) => m.evalNll !== undefined).map((m) => m.step)).toEqual([4, 8, 9]);
    expect(result.evaluations.at(-1)!.nll).toBeLessThan(result.evaluations[0]!.nll);
    // The last evaluation is of the final weights (drained: no later step was on the server).
    expect((await evaluateForward(training, DATA.heldOut)).nll).toBe(result.evaluations.at(-1)!.nll);
    // Each evaluation saw exactly its number of steps, though 3 steps were kept in flight: the same
    // figures as a sequential run's.
    const sequential = await trainSupervised({
      trainingClient: await newRun(service),
      dataset: DATA.train,
      evalDataset: DATA.heldOut,
      epochs: 3,
      learningRate: 2e-2,
      schedule,
      evalEvery: 4,
      inFlight: 1,
    });
    expect(sequential.evaluations.map((e) => e.nll)).toEqual(result.evaluations.map((e) => e.nll));

    // Checkpoints every 3 steps, the last one being the end of the run.
    expect(result.checkpoints.map((p) => p.slice(p.lastIndexOf("/") + 1))).toEqual([
      "step-000003",
      "step-000006",
      "step-000009",
    ]);
    expect(steps.filter((m) => m.checkpoint).map((m) => m.step)).toEqual([3, 6, 9]);
    const listed = (await rest.listCheckpoints(training.modelId)).checkpoints.map((c) => c.checkpoint_id);
    expect(listed.sort()).toEqual(["weights/step-000003", "weights/step-000006", "weights/step-000009"]);
  });

  it("abort saves the stop point; the resume from it ends with the uninterrupted run's weights", async () => {
    const { service, rest } = setup();
    const common = { dataset: DATA.train, epochs: 2, learningRate: 2e-2, schedule: "linear" } as const;

    const straight = await newRun(service);
    await trainSupervised({ ...common, trainingClient: straight, inFlight: 1 });

    const interrupted = await newRun(service);
    const controller = new AbortController();
    const store = memoryCheckpointStore();
    const stopped = await trainSupervised({
      ...common,
      trainingClient: interrupted,
      checkpointEvery: 2,
      checkpoints: { rest, store },
      signal: controller.signal,
      onMetrics: (m) => {
        if (m.step === 3) controller.abort();
      },
    });
    // Step 4 was already on the server when step 3 was read: applied, reported, saved.
    expect(stopped).toMatchObject({ aborted: true, step: 4, totalSteps: 6 });
    expect(stopped.last?.step).toBe(4);
    expect(stopped.checkpoints.map((p) => p.slice(p.lastIndexOf("/") + 1))).toEqual([
      "step-000002",
      "step-000004",
    ]);

    const resumed = await resumeFromLatest(service, rest, interrupted.modelId);
    expect(resumed?.step).toBe(4);
    const seen: number[] = [];
    const finished = await trainSupervised({
      ...common,
      resume: resumed!,
      checkpointEvery: 2,
      checkpoints: { rest, store },
      onMetrics: (m) => {
        seen.push(m.step);
      },
    });
    expect(seen).toEqual([5, 6]);
    expect(finished).toMatchObject({ startStep: 4, step: 6, aborted: false });
    expect(await probe(resumed!.training)).toEqual(await probe(straight));
    // Not equal by accident: training moved the weights.
    expect(await probe(resumed!.training)).not.toEqual(await probe(await newRun(service)));

    // Resuming a finished run trains nothing.
    const done = await resumeFromLatest(service, rest, resumed!.training.modelId);
    expect(done?.step).toBe(6);
    const again = await trainSupervised({
      ...common,
      resume: done!,
      onMetrics: () => expect.fail("no step"),
    });
    expect(again).toMatchObject({ startStep: 6, step: 6, aborted: false, checkpoints: [] });
  });

  it("a crash in onMetrics stops the run after the steps in flight, and saves nothing at the crash", async () => {
    const { service, rest } = setup();
    const training = await newRun(service);
    const boom = new Error("boom");
    const reported: number[] = [];
    await expect(
      trainSupervised({
        trainingClient: training,
        dataset: DATA.train,
        epochs: 2,
        learningRate: 1e-2,
        checkpointEvery: 2,
        checkpoints: { rest },
        saveOnAbort: true,
        onMetrics: (m) => {
          reported.push(m.step);
          if (m.step === 3) throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(reported).toEqual([1, 2, 3]);
    const listed = (await rest.listCheckpoints(training.modelId)).checkpoints.map((c) => c.checkpoint_id);
    expect(listed).toEqual(["weights/step-000002"]);
  });

  it("saveOnAbort: false leaves the last periodic checkpoint as the latest", async () => {
    const { service, rest, paths } = setup();
    const training = await newRun(service);
    const controller = new AbortController();
    const result = await trainSupervised({
      trainingClient: training,
      dataset: DATA.train,
      epochs: 2,
      learningRate: 1e-2,
      checkpointEvery: 2,
      checkpoints: { rest },
      saveOnAbort: false,
      inFlight: 1,
      signal: controller.signal,
      onMetrics: (m) => {
        if (m.step === 3) controller.abort();
      },
    });
    expect(result).toMatchObject({ aborted: true, step: 3 });
    expect((await resumeFromLatest(service, rest, training.modelId))?.step).toBe(2);

    // Aborted before the start: nothing is sent.
    const sent = paths.length;
    const early = await trainSupervised({
      trainingClient: training,
      dataset: DATA.train,
      evalDataset: DATA.heldOut,
      learningRate: 1e-2,
      checkpoints: { rest },
      signal: AbortSignal.abort(),
    });
    expect(early).toMatchObject({ aborted: true, step: 0, evaluations: [], checkpoints: [] });
    expect(paths.length).toBe(sent);
  });
});
