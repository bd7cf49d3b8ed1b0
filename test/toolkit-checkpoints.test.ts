/**
 * The toolkit's checkpoint manager against the real local backend: every-N and every-T saving (a
 * fake clock), retention (keep last, keep best, pins, TTL instead of deletion) as the server lists
 * it, a ledger that survives a restart, failed deletions reported, bulk deletion with filters and
 * dry runs, and resuming from the latest checkpoint of a pipelined run with the same losses as an
 * uninterrupted run.
 */
import { describe, expect, it } from "vitest";
import { type RestClient, type TrainingClient, ValidationError } from "../src/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/index.js";
import { checkpointsToKeep } from "../src/toolkit/checkpoints/retention.js";
import {
  CheckpointManager,
  checkpointName,
  deleteCheckpoints,
  latestCheckpoint,
  memoryCheckpointStore,
  resumeFromLatest,
  stepFromCheckpointName,
  trainLoop,
} from "../src/toolkit/index.js";
import { closeAfterEach, localService, QA, qaDatum } from "./helpers.js";

const closers = closeAfterEach();

function setup(...args: Parameters<typeof localService>) {
  const t = localService(...args);
  closers.add(t.close);
  return { ...t, rest: t.service.createRestClient() };
}

function newRun(t: ReturnType<typeof setup>): Promise<TrainingClient> {
  return t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 5 });
}

/** The run's checkpoints on the server, as `<type>:<name>` sorted, with their expiry. */
async function serverList(rest: RestClient, runId: string) {
  const { checkpoints } = await rest.listCheckpoints(runId);
  return checkpoints
    .map((c) => ({ id: c.checkpoint_id, expiresAt: c.expires_at }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

async function serverIds(rest: RestClient, runId: string): Promise<string[]> {
  return (await serverList(rest, runId)).map((c) => c.id);
}

/** The batch of step `step`: depends on the step only. */
function batchFor(step: number) {
  const qa = QA[step % QA.length]!;
  return [qaDatum(qa.question, qa.answer)];
}

describe("checkpoint names", () => {
  it("encode the step, zero-padded, and parse back only with the right prefix", () => {
    expect(checkpointName("", 120)).toBe("step-000120");
    expect(checkpointName("sft-", 1_234_567)).toBe("sft-step-1234567");
    expect(stepFromCheckpointName("sft-step-000120", "sft-")).toBe(120);
    expect(stepFromCheckpointName("step-000120", "sft-")).toBeUndefined();
    expect(stepFromCheckpointName("sft-step-12a", "sft-")).toBeUndefined();
    expect(stepFromCheckpointName("final", "")).toBeUndefined();
  });
});

describe("checkpointsToKeep", () => {
  const at = (step: number, metrics?: Record<string, number>, pinned = false) => ({
    path: `p${step}`,
    step,
    time: new Date(step * 1000),
    pinned,
    ...(metrics === undefined ? {} : { metrics }),
  });

  it("keeps everything without a policy, and pins, the last K, the best and the just-written with one", () => {
    const all = [
      at(1, { loss: 1 }),
      at(2, { loss: 5 }, true),
      at(3, { loss: 3 }),
      at(4, { loss: 4 }),
      at(5, {}),
    ];
    expect([...checkpointsToKeep(all, {}, "p5")].sort()).toEqual(["p1", "p2", "p3", "p4", "p5"]);
    expect([...checkpointsToKeep(all, { keepLast: 1 }, "p3")].sort()).toEqual(["p2", "p3", "p5"]);
    const best = { metric: "loss", mode: "max" as const, count: 1 };
    expect([...checkpointsToKeep(all, { keepBest: best }, "p5")].sort()).toEqual(["p2", "p5"]);
  });

  it("with keepBest keeps what the ledger knows nothing about, and breaks ties for the newer", () => {
    const all = [at(1), at(2, { loss: 2 }), at(3, { loss: 2 }), at(4, { loss: 7 })];
    const best = { metric: "loss", mode: "min" as const, count: 1 };
    expect([...checkpointsToKeep(all, { keepBest: best }, "p4")].sort()).toEqual(["p1", "p3", "p4"]);
  });
});

describe("CheckpointManager: when it saves", () => {
  it("saves at every multiple of everySteps", async () => {
    const t = setup();
    const training = await newRun(t);
    const manager = new CheckpointManager({ training, rest: t.rest, everySteps: 3 });
    const saved: number[] = [];
    for (let step = 1; step <= 7; step++) {
      const result = await manager.maybeSave(step);
      if (result) saved.push(result.step);
    }
    expect(saved).toEqual([3, 6]);
    expect(await serverIds(t.rest, training.modelId)).toEqual(["weights/step-000003", "weights/step-000006"]);
    expect((await manager.list()).map((c) => c.step)).toEqual([3, 6]);
  });

  it("saves every T seconds by the injected clock, and maybeSave follows what isDue answered", async () => {
    const t = setup();
    const training = await newRun(t);
    let clock = 1_000_000;
    const manager = new CheckpointManager({
      training,
      rest: t.rest,
      everySeconds: 10,
      now: () => clock,
    });
    const saved: number[] = [];
    for (let step = 1; step <= 7; step++) {
      clock += 4_000;
      if (await manager.maybeSave(step)) saved.push(step);
    }
    // 12 s after creation at step 3, 12 s after that save at step 6.
    expect(saved).toEqual([3, 6]);

    // A pipelined loop asks before draining; if time passes before the save, the answer stands.
    expect(manager.isDue(8)).toBe(false);
    clock += 60_000;
    expect(await manager.maybeSave(8)).toBeUndefined();
    expect(manager.isDue(9)).toBe(true);
    expect((await manager.maybeSave(9))?.step).toBe(9);
    expect(await serverIds(t.rest, training.modelId)).toEqual([
      "weights/step-000003",
      "weights/step-000006",
      "weights/step-000009",
    ]);
  });

  it("rejects bad options and arguments before any request", async () => {
    const t = setup();
    const training = await newRun(t);
    const before = t.requests.length;
    const make = (options: object) => () => new CheckpointManager({ training, rest: t.rest, ...options });
    expect(make({ everySteps: 0 })).toThrow(/everySteps/);
    expect(make({ everySeconds: -1 })).toThrow(/everySeconds/);
    expect(make({ keepLast: 1.5 })).toThrow(/keepLast/);
    expect(make({ keepBest: { metric: "", mode: "avg", count: 0 } })).toThrow(
      /keepBest.metric.*keepBest.mode.*keepBest.count/,
    );
    expect(make({ prefix: "a/b" })).toThrow(ValidationError);
    const manager = new CheckpointManager({ training, rest: t.rest });
    await expect(manager.save(-1)).rejects.toThrow(/step/);
    await expect(manager.save(1, { loss: "x" as unknown as number })).rejects.toThrow(/metrics.loss/);
    await expect(manager.maybeSave(0.5)).rejects.toThrow(ValidationError);
    await expect(manager.pin("tinker://nope")).rejects.toThrow(ValidationError);
    expect(t.requests.length).toBe(before);
  });
});

describe("CheckpointManager: retention", () => {
  it("keeps the last K, deleting the sampler twins with their checkpoints", async () => {
    const t = setup();
    const training = await newRun(t);
    const manager = new CheckpointManager({ training, rest: t.rest, keepLast: 2, withSampler: true });
    let last: Awaited<ReturnType<CheckpointManager["save"]>> | undefined;
    for (let step = 1; step <= 5; step++) last = await manager.save(step);
    expect(last!.samplerPath).toBe(`tinker://${training.modelId}/sampler_weights/step-000005`);
    expect(last!.retention).toEqual({
      deleted: [
        `tinker://${training.modelId}/weights/step-000003`,
        `tinker://${training.modelId}/sampler_weights/step-000003`,
      ],
      expiring: [],
      failed: [],
    });
    expect(await serverIds(t.rest, training.modelId)).toEqual([
      "sampler_weights/step-000004",
      "sampler_weights/step-000005",
      "weights/step-000004",
      "weights/step-000005",
    ]);
  });

  it("keeps the best by a metric and the one it just wrote, and leaves other names alone", async () => {
    const t = setup();
    const training = await newRun(t);
    await training.saveState("hand-made");
    const manager = new CheckpointManager({
      training,
      rest: t.rest,
      keepBest: { metric: "loss", mode: "min", count: 2 },
    });
    const losses = [5, 1, 3, 4, 2, 9];
    for (const [i, loss] of losses.entries()) await manager.save(i + 1, { loss });
    // Best two: step 2 (1) and step 5 (2); step 6 (9) is the one just written.
    expect(await serverIds(t.rest, training.modelId)).toEqual([
      "weights/hand-made",
      "weights/step-000002",
      "weights/step-000005",
      "weights/step-000006",
    ]);
    const listed = await manager.list();
    expect(listed.map((c) => [c.step, c.metrics?.loss])).toEqual([
      [2, 1],
      [5, 2],
      [6, 9],
    ]);
  });

  it("never deletes a pinned checkpoint and clears its TTL", async () => {
    const t = setup();
    const training = await newRun(t);
    const manager = new CheckpointManager({ training, rest: t.rest, keepLast: 1 });
    const first = await manager.save(1);
    await t.rest.setCheckpointTtlFromTinkerPath(first.path, 3600);
    await manager.pin(first.path);
    for (let step = 2; step <= 4; step++) await manager.save(step);
    expect(await serverList(t.rest, training.modelId)).toEqual([
      { id: "weights/step-000001", expiresAt: null },
      { id: "weights/step-000004", expiresAt: null },
    ]);
    expect((await manager.list()).map((c) => [c.step, c.pinned])).toEqual([
      [1, true],
      [4, false],
    ]);
    await manager.unpin(first.path);
    await manager.save(5);
    expect(await serverIds(t.rest, training.modelId)).toEqual(["weights/step-000005"]);
  });

  it("with ttlSeconds gives the dropped checkpoints a TTL once instead of deleting them", async () => {
    const t = setup();
    const training = await newRun(t);
    const manager = new CheckpointManager({ training, rest: t.rest, keepLast: 1, ttlSeconds: 3600 });
    await manager.save(1);
    const second = await manager.save(2);
    expect(second.retention.expiring).toEqual([`tinker://${training.modelId}/weights/step-000001`]);
    const afterSecond = await serverList(t.rest, training.modelId);
    const third = await manager.save(3);
    // Step 1 already expires: its date is not pushed back; step 2 gets one now.
    expect(third.retention.expiring).toEqual([`tinker://${training.modelId}/weights/step-000002`]);
    const afterThird = await serverList(t.rest, training.modelId);
    expect(afterThird.map((c) => c.id)).toEqual([
      "weights/step-000001",
      "weights/step-000002",
      "weights/step-000003",
    ]);
    expect(afterThird[0]!.expiresAt).toEqual(afterSecond[0]!.expiresAt);
    const savedAt = (await t.rest.listCheckpoints(training.modelId)).checkpoints.find(
      (c) => c.checkpoint_id === "weights/step-000001",
    )!.time;
    expect(afterThird[0]!.expiresAt!.getTime() - savedAt.getTime()).toBeGreaterThanOrEqual(3_600_000);
    expect(afterThird[1]!.expiresAt).not.toBeNull();
    expect(afterThird[2]!.expiresAt).toBeNull();
  });

  it("keeps metrics and the job's runs in the store, so keep-best holds across a resume", async () => {
    const t = setup();
    const store = memoryCheckpointStore();
    const first = await newRun(t);
    const options = {
      rest: t.rest,
      store,
      keepLast: 1,
      keepBest: { metric: "loss", mode: "min" as const, count: 1 },
    };
    const before = new CheckpointManager({ training: first, ...options });
    await before.save(1, { loss: 2 });
    await before.save(2, { loss: 0.5 });
    await before.save(3, { loss: 3 });
    expect(await serverIds(t.rest, first.modelId)).toEqual(["weights/step-000002", "weights/step-000003"]);

    // "Restart": a new manager on the resumed run, with only the store in common.
    const resumed = await resumeFromLatest(t.service, t.rest, first.modelId);
    expect(resumed?.step).toBe(3);
    const after = new CheckpointManager({ training: resumed!.training, ...options });
    await after.save(4, { loss: 1 });
    await after.save(5, { loss: 4 });
    // The best (step 2, old run) and the last (step 5, new run) remain; step 3 and 4 are gone.
    expect(await serverIds(t.rest, first.modelId)).toEqual(["weights/step-000002"]);
    expect(await serverIds(t.rest, resumed!.training.modelId)).toEqual(["weights/step-000005"]);
    const ledger = await store.load();
    expect(ledger?.runs).toEqual([first.modelId, resumed!.training.modelId]);
    expect(Object.keys(ledger!.metrics).sort()).toEqual([
      `tinker://${first.modelId}/weights/step-000002`,
      `tinker://${resumed!.training.modelId}/weights/step-000005`,
    ]);
  });

  it("reports a failed deletion without throwing and carries on with the others", async () => {
    // Someone else deletes step 1 just before retention does: the backend answers that DELETE 404.
    let t: ReturnType<typeof setup>;
    let raced = false;
    t = setup({
      client: {
        fetch: async (request: Request) => {
          if (request.method === "DELETE" && request.url.endsWith("/weights/step-000001") && !raced) {
            raced = true;
            await t.local.fetch(new Request(request.url, { method: "DELETE", headers: request.headers }));
          }
          return t.local.fetch(request);
        },
      },
    });
    const training = await newRun(t);
    const store = memoryCheckpointStore();
    const keepAll = new CheckpointManager({ training, rest: t.rest, store });
    for (let step = 1; step <= 3; step++) await keepAll.save(step);
    const keepLast = new CheckpointManager({ training, rest: t.rest, store, keepLast: 1, concurrency: 1 });
    const fourth = await keepLast.save(4);
    expect(raced).toBe(true);
    expect(fourth.retention.deleted).toEqual([
      `tinker://${training.modelId}/weights/step-000002`,
      `tinker://${training.modelId}/weights/step-000003`,
    ]);
    expect(fourth.retention.failed.map((f) => [f.path, (f.error as Error).name])).toEqual([
      [`tinker://${training.modelId}/weights/step-000001`, "NotFoundError"],
    ]);
    expect(await serverIds(t.rest, training.modelId)).toEqual(["weights/step-000004"]);
  });
});

describe("deleteCheckpoints", () => {
  async function twoRuns(t: ReturnType<typeof setup>) {
    const a = await newRun(t);
    const b = await newRun(t);
    await a.saveState("keep-me");
    await a.saveState("step-000001");
    await a.saveWeightsForSampler("step-000001");
    await b.saveState("step-000002");
    await b.saveWeightsForSampler("export");
    return { a: a.modelId, b: b.modelId };
  }

  it("selects by name pattern across runs; a dry run deletes nothing", async () => {
    const t = setup();
    const { a, b } = await twoRuns(t);
    const dry = await deleteCheckpoints(t.rest, { namePattern: /^step-/g, dryRun: true });
    expect(dry.deleted.sort()).toEqual(
      [
        `tinker://${a}/weights/step-000001`,
        `tinker://${a}/sampler_weights/step-000001`,
        `tinker://${b}/weights/step-000002`,
      ].sort(),
    );
    expect(dry.kept.sort()).toEqual(
      [`tinker://${a}/weights/keep-me`, `tinker://${b}/sampler_weights/export`].sort(),
    );
    expect(await serverIds(t.rest, a)).toHaveLength(3);

    const real = await deleteCheckpoints(t.rest, { namePattern: /^step-/g });
    expect(real.deleted.sort()).toEqual(dry.deleted.sort());
    expect(real.failed).toEqual([]);
    expect(await serverIds(t.rest, a)).toEqual(["weights/keep-me"]);
    expect(await serverIds(t.rest, b)).toEqual(["sampler_weights/export"]);
  });

  it("filters by run, type, age and a keep predicate", async () => {
    const t = setup();
    const { a, b } = await twoRuns(t);
    const samplers = await deleteCheckpoints(t.rest, { runId: a, type: "sampler" });
    expect(samplers.deleted).toEqual([`tinker://${a}/sampler_weights/step-000001`]);
    expect(await serverIds(t.rest, b)).toEqual(["sampler_weights/export", "weights/step-000002"]);

    const listed = (await t.rest.listCheckpoints(b)).checkpoints;
    const newest = Math.max(...listed.map((c) => c.time.getTime()));
    const none = await deleteCheckpoints(t.rest, { runId: b, olderThan: new Date(newest - 60_000) });
    expect(none.deleted).toEqual([]);
    const spared = await deleteCheckpoints(t.rest, {
      olderThan: new Date(newest + 1),
      keep: (c) => c.checkpoint_id === "weights/keep-me" || c.checkpoint_type === "sampler",
    });
    expect(spared.deleted.sort()).toEqual(
      [`tinker://${a}/weights/step-000001`, `tinker://${b}/weights/step-000002`].sort(),
    );
    expect(await serverIds(t.rest, a)).toEqual(["weights/keep-me"]);
    expect(await serverIds(t.rest, b)).toEqual(["sampler_weights/export"]);
  });

  it("refuses a filter that would select everything by accident", async () => {
    const t = setup();
    await expect(deleteCheckpoints(t.rest, {})).rejects.toThrow(/at least one of runId/);
    await expect(deleteCheckpoints(t.rest, { type: "weights" as "training" })).rejects.toThrow(/filter.type/);
  });
});

describe("resume from the latest checkpoint", () => {
  it("is undefined for a run without step checkpoints", async () => {
    const t = setup();
    const training = await newRun(t);
    await training.saveState("not-a-step");
    expect(await latestCheckpoint(t.rest, training.modelId)).toBeUndefined();
    expect(await resumeFromLatest(t.service, t.rest, training.modelId)).toBeUndefined();
  });

  it("continues a pipelined run that saved with drains exactly like the uninterrupted run", async () => {
    const t = setup();
    const adam = { learning_rate: 1e-2 };
    const steps = 6;
    const batches = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => batchFor(from + i));
    const lossesOf = async (training: TrainingClient, from: number, to: number, extra = {}) => {
      const losses: number[] = [];
      await trainLoop(training, batches(from, to), {
        adam,
        inFlight: 2,
        startStep: from,
        onStep: (r) => {
          losses.push(r.metrics["loss:sum"]!);
        },
        ...extra,
      });
      return losses;
    };

    const uninterrupted = await lossesOf(await newRun(t), 0, steps);

    // Interrupted after 4 steps; the checkpoint at 3 completed steps was taken at a drain point.
    const crashed = await newRun(t);
    const manager = new CheckpointManager({ training: crashed, rest: t.rest, everySteps: 3 });
    const firstPart: number[] = [];
    await trainLoop(crashed, batches(0, 4), {
      adam,
      inFlight: 2,
      shouldDrain: (i) => manager.isDue(i + 1),
      onStep: async (r) => {
        firstPart.push(r.metrics["loss:sum"]!);
        await manager.maybeSave(r.step + 1);
      },
    });
    expect(firstPart).toEqual(uninterrupted.slice(0, 4));

    const latest = await latestCheckpoint(t.rest, crashed.modelId);
    expect(latest?.step).toBe(3);
    const resumed = await resumeFromLatest(t.service, t.rest, crashed.modelId);
    expect(resumed?.step).toBe(3);
    expect(resumed!.training.modelId).not.toBe(crashed.modelId);
    expect(await lossesOf(resumed!.training, resumed!.step, steps)).toEqual(uninterrupted.slice(3));
  });
});
