/**
 * Recovery of corrupted runs (src/lib/recovery.ts) against the local backend, whose test hook
 * `markCorrupted` flags a run as the service would (TrainingRun.corrupted; its operations then fail).
 */
import { describe, expect, it } from "vitest";
import {
  monitorRun,
  RecoveryError,
  type RecoveryEvent,
  type RecoveryResult,
  RequestFailedError,
  recover,
  type TrainingClient,
} from "../src/index.js";
import { activeTimers, eventually, type FaultyOptions, faultyService, MODEL } from "./faults.helpers.js";
import { closeAfterEach, qaDatum } from "./helpers.js";

const closers = closeAfterEach();

function setup(options: FaultyOptions = {}) {
  const t = faultyService(options);
  closers.add(t.close);
  return t;
}

const example = qaDatum("What is 2 + 2?", "Four");

async function trainSteps(training: TrainingClient, n: number) {
  for (let i = 0; i < n; i++) {
    await training.forwardBackward([example], "cross_entropy");
    await training.optimStep({ learning_rate: 1e-2 });
  }
}

async function logprobs(training: TrainingClient) {
  const out = await training.forward([example], "cross_entropy");
  return out.loss_fn_outputs[0]!.logprobs!.data as number[];
}

describe("recover", () => {
  it("does nothing for a healthy run", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2, seed: 1 });
    await expect(recover(t.service, training.modelId)).resolves.toBeUndefined();
  });

  it("resumes a corrupted run from its last training checkpoint, optimizer included", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2, seed: 1 });
    await trainSteps(training, 2);
    await training.saveState("step-2");
    await trainSteps(training, 1);
    await training.saveState("step-3");
    const expected = await logprobs(training);

    t.backend.markCorrupted(training.modelId);
    await expect(training.forwardBackward([example], "cross_entropy")).rejects.toBeInstanceOf(
      RequestFailedError,
    );

    const events: RecoveryEvent[] = [];
    const result = await recover(t.service, training.modelId, { onEvent: (e) => events.push(e) });
    expect(result?.checkpointPath).toBe(`tinker://${training.modelId}/weights/step-3`);
    expect(result?.client.modelId).not.toBe(training.modelId);
    expect(events.map((e) => e.type)).toEqual(["corrupted", "checkpoint", "attempt", "recovered"]);
    // The resumed run has the checkpoint's weights exactly.
    expect(await logprobs(result!.client)).toEqual(expected);
    // And trains on.
    await expect(trainSteps(result!.client, 1)).resolves.toBeUndefined();
  });

  it("retries a failing resume with back-off, then gives up with RecoveryError", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2 });
    t.backend.markCorrupted(training.modelId);
    const events: RecoveryEvent[] = [];
    const missing = `tinker://${training.modelId}/weights/never-saved`;
    const error = await recover(t.service, training.modelId, {
      checkpoint: { path: missing },
      maxAttempts: 3,
      backoffMs: 10,
      onEvent: (e) => events.push(e),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecoveryError);
    expect(error).toMatchObject({ runId: training.modelId, attempts: 3 });
    const failures = events.filter((e) => e.type === "attempt_failed");
    expect(failures.map((e) => e.retryInMs)).toEqual([10, 20, undefined]);
    expect(events.at(-1)?.type).toBe("failed");
  });

  it("fails with RecoveryError when there is no training checkpoint", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2 });
    t.backend.markCorrupted(training.modelId);
    const events: RecoveryEvent[] = [];
    const error = await recover(t.service, training.modelId, { onEvent: (e) => events.push(e) }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RecoveryError);
    expect(events.at(-1)?.type).toBe("failed");
  });
});

describe("monitorRun", () => {
  it("notices the corruption, recovers, watches the new run, and stops without a timer left", async () => {
    const baseline = activeTimers();
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 2, seed: 1 });
    await trainSteps(training, 1);
    await training.saveState("step-1");
    const recovered: RecoveryResult[] = [];
    const monitor = monitorRun(t.service, training.modelId, {
      intervalMs: 20,
      onRecovered: (r) => recovered.push(r),
    });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(recovered).toHaveLength(0);
    t.backend.markCorrupted(training.modelId);
    await eventually(() => recovered.length === 1);
    expect(monitor.runId).toBe(recovered[0]!.client.modelId);
    await monitor.stop();
    await closers.closeAll();
    await eventually(() => activeTimers() <= baseline);
  });
});
