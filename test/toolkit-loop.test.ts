/**
 * The pipelined loop against the real local backend: what goes on the wire in which order, that
 * pipelining changes nothing numerically, clean abort, drain points for exact checkpoints, errors.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Datum, ServiceClient, type TrainingClient, ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "../src/local/index.js";
import {
  datumFromPromptCompletion,
  evaluateForward,
  linearWarmupCosine,
  type TrainStepResult,
  trainLoop,
  trainStep,
} from "../src/toolkit/index.js";

const tokenizer = new ByteLevelTokenizer();
const PAIRS: [string, string][] = [
  ["2+2=", "4"],
  ["Capital of France:", " Paris"],
  ["Colour of the sky:", " blue"],
  ["Opposite of hot:", " cold"],
  ["First letter:", " A"],
  ["Legs of a spider:", " eight"],
];
const DATA = PAIRS.map(([p, c]) => datumFromPromptCompletion(tokenizer, p, c));
/** Batch i: two datums, rotating, so consecutive steps differ. */
function batches(count: number): Datum[][] {
  return Array.from({ length: count }, (_, i) => [DATA[i % DATA.length]!, DATA[(i + 1) % DATA.length]!]);
}
const HELD_OUT = [datumFromPromptCompletion(tokenizer, "Opposite of cold:", " hot")];
const ADAM = { learning_rate: 1e-2 };

/**
 * What the client sent and got, in order: each request when it is made, each retrieve_future answer
 * when it arrives (`final` once read: false for a try_again, true when it carries the result).
 */
type WireEvent =
  | { kind: "request"; path: string; requestId?: string }
  | { kind: "answer"; requestId?: string; final?: boolean };
type LogEvent = WireEvent | { kind: "read"; step: number };

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups) await cleanup();
  cleanups = [];
});

/**
 * A ServiceClient on a fresh local backend whose fetch is observed, not altered: events are logged
 * synchronously as requests go out and answers come back; ids are filled in from cloned bodies.
 */
function observedService() {
  const local = createLocalTinker({ longPollMs: 2_000 });
  const log: LogEvent[] = [];
  const bodyReads: Promise<unknown>[] = [];
  const readInto = (message: Request | Response, fill: (body: Record<string, unknown>) => void) => {
    bodyReads.push(
      message
        .clone()
        .text()
        .then((text) => {
          try {
            fill(JSON.parse(text));
          } catch {
            fill({}); // a protobuf result body: not JSON, and not a try_again
          }
        }),
    );
  };
  const fetch = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname.replace("/api/v1/", "");
    const sent: WireEvent = { kind: "request", path };
    log.push(sent);
    let polled: string | undefined;
    if (path === "retrieve_future") {
      readInto(request, (body) => {
        polled = body.request_id as string;
        sent.requestId = polled;
      });
    }
    const response = await local.fetch(request);
    if (path === "forward_backward" || path === "optim_step") {
      readInto(response, (body) => {
        sent.requestId = body.request_id as string;
      });
    }
    if (path === "retrieve_future") {
      const answer: WireEvent = { kind: "answer" };
      log.push(answer);
      readInto(response, (body) => {
        answer.requestId = polled;
        answer.final = response.ok && body.type !== "try_again";
      });
    }
    return response;
  };
  const service = new ServiceClient({ apiKey: "tml-test-key", baseURL: "http://local.tinker", fetch });
  cleanups.push(async () => {
    await service.close();
    local.close();
  });
  return { service, log, settled: () => Promise.all(bodyReads) };
}

function requestIndexes(log: LogEvent[], path: string): number[] {
  return log.flatMap((e, i) => (e.kind === "request" && e.path === path ? [i] : []));
}

/** Index of the answer that brought the result of the request submitted at `submittedAt`. */
function resultIndex(log: LogEvent[], submittedAt: number): number {
  const id = (log[submittedAt] as { requestId?: string }).requestId;
  expect(id).toBeTypeOf("string");
  return log.findIndex((e) => e.kind === "answer" && e.final === true && e.requestId === id);
}

function newRun(service: ServiceClient): Promise<TrainingClient> {
  return service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed: 7 });
}

async function heldOutLogprobs(training: TrainingClient): Promise<number[][]> {
  const evaluation = await evaluateForward(training, HELD_OUT);
  return evaluation.logprobs.map((lp) => Array.from(lp));
}

/** The reference: `count` steps one after the other, each awaited before the next is sent. */
async function sequentialRun(service: ServiceClient, count: number) {
  const training = await newRun(service);
  const losses: number[] = [];
  for (const [step, batch] of batches(count).entries()) {
    const result = await trainStep(training, batch, { adam: ADAM, step });
    losses.push(result.metrics["loss:sum"]!);
  }
  return { training, losses };
}

describe("trainStep", () => {
  it("submits forward_backward and optim_step before waiting for the forward_backward's result", async () => {
    const { service, log, settled } = observedService();
    const training = await newRun(service);
    log.length = 0;
    const result = await trainStep(training, batches(1)[0]!, { adam: ADAM, step: 5 });
    await settled();
    expect(result.step).toBe(5);
    expect(result.metrics["loss:sum"]).toBeGreaterThan(0);
    expect(result.metrics["learning_rate:mean"]).toBe(1e-2);
    expect(result.metrics.mean_nll).toBeGreaterThan(0);
    expect(result.output.loss_fn_outputs).toHaveLength(2);
    const [fb] = requestIndexes(log, "forward_backward");
    const [optim] = requestIndexes(log, "optim_step");
    // Same cycle: the optim_step is on the wire before the forward_backward's result is back. (The
    // SDK starts long-polling a future as soon as it is accepted, so a retrieve_future of the
    // forward_backward may go out first; it is answered when the result is ready.)
    expect(optim).toBeGreaterThan(fb!);
    expect(resultIndex(log, fb!)).toBeGreaterThan(optim!);
  });

  it("sends nothing for bad input or an aborted signal", async () => {
    const { service, log } = observedService();
    const training = await newRun(service);
    log.length = 0;
    await expect(trainStep(training, [], { adam: ADAM })).rejects.toBeInstanceOf(ValidationError);
    await expect(trainStep(training, batches(1)[0]!, { adam: { learning_rate: -1 } })).rejects.toThrow(
      /adam_params.learning_rate/,
    );
    await expect(trainStep(training, batches(1)[0]!, { adam: { beta1: 1 } })).rejects.toThrow(
      /adam_params.beta1/,
    );
    await expect(
      trainStep(training, batches(1)[0]!, { adam: ADAM, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: "AbortError" });
    expect(log).toEqual([]);
    // The run is still usable: nothing was half-submitted.
    await expect(trainStep(training, batches(1)[0]!, { adam: ADAM })).resolves.toMatchObject({ step: 0 });
  });
});

describe("trainLoop", () => {
  it("keeps inFlight steps ahead: step k+2 is on the wire before step k is read, k+3 after", async () => {
    const { service, log, settled } = observedService();
    const training = await newRun(service);
    log.length = 0;
    const steps = 6;
    const result = await trainLoop(training, batches(steps), {
      adam: ADAM,
      inFlight: 3,
      onStep: (r) => {
        log.push({ kind: "read", step: r.step });
      },
    });
    await settled();
    expect(result).toMatchObject({ steps, aborted: false });
    const fbPosts = requestIndexes(log, "forward_backward");
    const optimPosts = requestIndexes(log, "optim_step");
    const reads = log.flatMap((e, i) => (e.kind === "read" ? [i] : []));
    expect(fbPosts).toHaveLength(steps);
    expect(optimPosts).toHaveLength(steps);
    expect(log.flatMap((e) => (e.kind === "read" ? [e.step] : []))).toEqual([0, 1, 2, 3, 4, 5]);
    for (let k = 0; k < steps; k++) {
      // Same cycle: the step's optim_step is sent before its forward_backward's result is back.
      expect(optimPosts[k]!).toBeGreaterThan(fbPosts[k]!);
      expect(resultIndex(log, fbPosts[k]!)).toBeGreaterThan(optimPosts[k]!);
      // Pipelined: two more steps are on the wire before this one is read; a third is not.
      if (k + 2 < steps) expect(fbPosts[k + 2]!).toBeLessThan(reads[k]!);
      if (k + 3 < steps) expect(fbPosts[k + 3]!).toBeGreaterThan(reads[k]!);
    }
  });

  it("gives identical losses and weights whether 1 or 4 steps are in flight", async () => {
    const { service } = observedService();
    const runWith = async (inFlight: number) => {
      const training = await newRun(service);
      const losses: number[] = [];
      const result = await trainLoop(training, batches(8), {
        adam: linearWarmupCosine({ peak: 2e-2, warmupSteps: 2, totalSteps: 8 }),
        inFlight,
        onStep: (r) => {
          losses.push(r.metrics["loss:sum"]!);
        },
      });
      expect(result.steps).toBe(8);
      expect(result.last?.step).toBe(7);
      return { losses, logprobs: await heldOutLogprobs(training) };
    };
    const sequential = await runWith(1);
    const pipelined = await runWith(4);
    expect(pipelined.losses).toEqual(sequential.losses);
    expect(pipelined.logprobs).toEqual(sequential.logprobs);
    // The training did something, so equality is not the trivial kind.
    expect(sequential.losses.at(-1)!).toBeLessThan(sequential.losses[0]!);
  });

  it("stops cleanly on abort: every submitted step applied once and reported", async () => {
    const { service } = observedService();
    const training = await newRun(service);
    const controller = new AbortController();
    const seen: number[] = [];
    const result = await trainLoop(training, batches(20), {
      adam: ADAM,
      inFlight: 3,
      signal: controller.signal,
      onStep: (r) => {
        seen.push(r.step);
        if (r.step === 3) controller.abort();
      },
    });
    // Steps 4 and 5 were already submitted when step 3 was read: they ran and were reported.
    expect(result).toMatchObject({ steps: 6, aborted: true });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    const reference = await sequentialRun(service, 6);
    expect(await heldOutLogprobs(training)).toEqual(await heldOutLogprobs(reference.training));
    // One step more would show: the comparison can tell 6 steps from 7.
    await trainStep(reference.training, batches(7)[6]!, { adam: ADAM });
    expect(await heldOutLogprobs(training)).not.toEqual(await heldOutLogprobs(reference.training));
  });

  it("drains before a checkpoint step, so a save in onStep holds exactly the steps so far", async () => {
    const { service } = observedService();
    const saveAfterStep = 3; // 4 steps counted from 0
    const checkpointAfter = async (drain: boolean, name: string) => {
      const training = await newRun(service);
      let path: string | undefined;
      await trainLoop(training, batches(8), {
        adam: ADAM,
        inFlight: 3,
        ...(drain ? { shouldDrain: (step: number) => step === saveAfterStep } : {}),
        onStep: async (r: TrainStepResult) => {
          if (r.step === saveAfterStep) path = (await training.saveState(name)).path;
        },
      });
      const restored = await service.createTrainingClientFromState(path!);
      return heldOutLogprobs(restored);
    };
    const reference = await heldOutLogprobs((await sequentialRun(service, saveAfterStep + 1)).training);
    expect(await checkpointAfter(true, "drained")).toEqual(reference);
    // Without the drain, steps 4 and 5 were submitted before the save: it holds 6 steps, not 4.
    expect(await checkpointAfter(false, "not-drained")).not.toEqual(reference);
  });

  it("drainEvery drains after every n-th step, counted from 0", async () => {
    const { service, log } = observedService();
    const training = await newRun(service);
    log.length = 0;
    await trainLoop(training, batches(6), {
      adam: ADAM,
      inFlight: 4,
      drainEvery: 3,
      onStep: (r) => {
        log.push({ kind: "read", step: r.step });
      },
    });
    const fbPosts = requestIndexes(log, "forward_backward");
    const readOf = (step: number) => log.findIndex((e) => e.kind === "read" && e.step === step);
    // Step 2 (the third) is a drain point: step 3 is sent only after it was reported.
    expect(fbPosts[3]!).toBeGreaterThan(readOf(2));
    // Elsewhere the pipeline is full: step 1 is on the wire before step 0 is read.
    expect(fbPosts[1]!).toBeLessThan(readOf(0));
    expect(fbPosts[5]!).toBeLessThan(readOf(3));
  });

  it("reports the applied prefix, then throws the first error after draining", async () => {
    const { service } = observedService();
    const training = await newRun(service);
    const seen: number[] = [];
    function* withBadBatch() {
      yield* batches(3);
      throw new Error("dataset broke");
    }
    await expect(
      trainLoop(training, withBadBatch(), {
        adam: ADAM,
        inFlight: 3,
        onStep: (r) => {
          seen.push(r.step);
        },
      }),
    ).rejects.toThrow("dataset broke");
    expect(seen).toEqual([0, 1, 2]);
    const reference = await sequentialRun(service, 3);
    expect(await heldOutLogprobs(training)).toEqual(await heldOutLogprobs(reference.training));

    // A bad batch is refused before its step is sent, with the batch's index in the path.
    const refusing = await newRun(service);
    const reported: number[] = [];
    const refused = trainLoop(refusing, [batches(1)[0]!, []], {
      adam: ADAM,
      startStep: 5,
      onStep: (r) => {
        reported.push(r.step);
      },
    });
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toThrow(/^batches\[1\]: must be a non-empty array/);
    expect(reported).toEqual([5]);

    const failing = await newRun(service);
    await expect(
      trainLoop(failing, batches(5), {
        adam: ADAM,
        onStep: (r) => {
          if (r.step === 1) throw new Error("callback broke");
        },
      }),
    ).rejects.toThrow("callback broke");
  });

  it("resolves the adam function per step, from startStep", async () => {
    const { service } = observedService();
    const training = await newRun(service);
    const rates: number[] = [];
    const result = await trainLoop(training, batches(3), {
      adam: (step) => ({ learning_rate: step * 1e-3 }),
      startStep: 10,
      onStep: (r) => {
        rates.push(r.metrics["learning_rate:mean"]!);
      },
    });
    expect(result.last?.step).toBe(12);
    expect(rates).toEqual([10e-3, 11e-3, 12e-3]);
    await expect(trainLoop(training, batches(1), { adam: ADAM, inFlight: 0 })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});

describe("linearWarmupCosine", () => {
  it("warms up linearly, decays by cosine to the floor, and stays there", () => {
    const schedule = linearWarmupCosine({
      peak: 1,
      warmupSteps: 4,
      totalSteps: 12,
      floor: 0.1,
      adam: { beta2: 0.99 },
    });
    const lr = (step: number) => schedule(step).learning_rate!;
    expect([0, 1, 2, 3].map(lr)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(lr(4)).toBe(1);
    expect(lr(8)).toBeCloseTo(0.55, 12);
    expect(lr(12)).toBe(0.1);
    expect(lr(100)).toBe(0.1);
    expect(schedule(5).beta2).toBe(0.99);
    for (let s = 4; s < 12; s++) expect(lr(s + 1)).toBeLessThan(lr(s));
    expect(() => linearWarmupCosine({ peak: 1, totalSteps: 4, warmupSteps: 5 })).toThrow(ValidationError);
  });
});
