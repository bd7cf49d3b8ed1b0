/**
 * Acceptance (#18, item 3) with a real kill: examples/toolkit/sft-driver.ts (`trainSupervised`)
 * against `tinker-ts serve --data-dir`, uninterrupted; then again, SIGKILLed after a step past a
 * checkpoint, the server SIGKILLed and restarted on the same port with the same data directory, and
 * the run resumed with --resume: it starts at the checkpoint, follows the uninterrupted run step for
 * step (batches, learning rates, losses, held-out NLL) and ends with the same weights fingerprint.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lrSchedule } from "../src/toolkit/index.js";
import { type Cleanups, restartServer, runScript, startScript, startServer } from "./processes.helpers.js";
import { stepLines } from "./sft-driver.helpers.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const EXAMPLE = "examples/toolkit/sft-driver.ts";
const EPOCHS = 2;
const LR = 0.01;
/** 9 batches per epoch; checkpoints every 6 steps, evaluations every 4 (the example's settings). */
const TOTAL = 9 * EPOCHS;
/** Past the checkpoint at step 6, before the one at 12; step 9 is already submitted by then. */
const STALL_AT = 8;

function fingerprintOf(output: string): string {
  const match = /^fingerprint ([0-9a-f]{64})$/m.exec(output);
  if (!match) throw new Error(`no fingerprint in:\n${output}`);
  return match[1]!;
}

/** The run line: its id, the step it starts from, and the checkpoint it resumed from (if any). */
function runLine(output: string): { runId: string; from: number; resumedFrom?: string } {
  const match = /^run (\S+) from step (\d+): epoch \d+, batch \d+(?: \(resumed from (\S+)\))?$/m.exec(output);
  if (!match) throw new Error(`no run line in:\n${output}`);
  return { runId: match[1]!, from: Number(match[2]), ...(match[3] ? { resumedFrom: match[3] } : {}) };
}

function startNll(output: string, step: number): number {
  const match = new RegExp(`^start at step ${step} held_out_nll (\\S+)$`, "m").exec(output);
  if (!match) throw new Error(`no starting evaluation at step ${step} in:\n${output}`);
  return Number(match[1]);
}

describe("examples/toolkit/sft-driver.ts, killed for real", () => {
  it("SIGKILLed with its server and resumed: same steps from the checkpoint on, same final weights", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tinker-ts-sft-driver-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const dataDir = join(dir, "data");
    let { server, url } = await startServer(dataDir, cleanups);
    const common = [
      EXAMPLE,
      "--base-url",
      url,
      "--epochs",
      String(EPOCHS),
      "--lr",
      String(LR),
      "--seed",
      "1",
    ];

    // A: uninterrupted.
    const outA = await runScript([...common, "--state", join(dir, "a.json")], cleanups);
    expect(runLine(outA)).toMatchObject({ from: 0 });
    const a = stepLines(outA);
    expect(a.map((s) => s.step)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    // The learning rates printed are the cosine schedule's: rising over the warmup, then decaying.
    const schedule = lrSchedule({
      kind: "cosine",
      baseLR: LR,
      totalSteps: TOTAL,
      warmupSteps: 3,
      minLR: LR / 10,
    });
    expect(a.map((s) => s.lr)).toEqual(a.map((s) => schedule.lrAt(s.step - 1).toFixed(5)));
    const lrs = a.map((s) => Number(s.lr));
    expect(lrs[0]).toBeLessThan(lrs[1]!);
    expect(lrs[1]).toBeLessThan(lrs[2]!);
    for (let i = 3; i < TOTAL; i++) expect(lrs[i], `lr at step ${i + 1}`).toBeLessThanOrEqual(lrs[i - 1]!);
    expect(lrs.at(-1)).toBeLessThan(lrs[2]! / 5);
    // Held-out NLL at the start, every 4 steps and at the end: the last is well below the first.
    const evalsA = a.filter((s) => s.heldOutNll !== undefined);
    expect(evalsA.map((s) => s.step)).toEqual([4, 8, 12, 16, 18]);
    const startA = startNll(outA, 0);
    expect(evalsA.at(-1)!.heldOutNll).toBeLessThan(startA - 2);
    expect(a.filter((s) => s.checkpoint).map((s) => s.checkpoint)).toEqual([
      "step-000006",
      "step-000012",
      "step-000018",
    ]);
    const fingerprintA = fingerprintOf(outA);

    // B: the same run, stalled after step 8 and SIGKILLed there.
    const stateB = join(dir, "b.json");
    const crashed = startScript(
      [...common, "--state", stateB, "--stall-at-step", String(STALL_AT)],
      cleanups,
    );
    await crashed.waitFor(/^stalled after step 8$/m);
    crashed.child.kill("SIGKILL");
    expect((await crashed.exited).signal).toBe("SIGKILL");
    const crashedRun = runLine(crashed.output()).runId;
    const b = stepLines(crashed.output());
    expect(b.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(b.map((s) => s.trainNll)).toEqual(a.slice(0, STALL_AT).map((s) => s.trainNll));
    expect(b.filter((s) => s.checkpoint).map((s) => s.checkpoint)).toEqual(["step-000006"]);
    expect(crashed.output()).not.toMatch(/^fingerprint /m);
    // What the kill left in the state file: the run, and the ledger with its one checkpoint.
    const killedState = JSON.parse(await readFile(stateB, "utf8"));
    expect(killedState.runId).toBe(crashedRun);
    expect(killedState.ledger.runs).toEqual([crashedRun]);
    expect(Object.keys(killedState.ledger.metrics)).toEqual([`tinker://${crashedRun}/weights/step-000006`]);

    // The server goes down too, and comes back on the same port with the same data directory.
    ({ server, url } = await restartServer(server, url, dataDir, cleanups));

    // B resumed: from the checkpoint at step 6 (not from 0, not from 8), in a new run.
    const outB = await runScript([...common, "--state", stateB, "--resume"], cleanups);
    const resumed = runLine(outB);
    expect(resumed.from).toBe(6);
    expect(resumed.resumedFrom).toBe(`tinker://${crashedRun}/weights/step-000006`);
    expect(resumed.runId).not.toBe(crashedRun);
    expect(outB).toMatch(/^run \S+ from step 6: epoch 0, batch 6 /m);
    const c = stepLines(outB);
    expect(c.map((s) => s.step)).toEqual(a.slice(6).map((s) => s.step));
    // Step for step what A did from there on: batches, rates, losses, evaluations, checkpoints.
    expect(c).toEqual(a.slice(6));
    const startC = startNll(outB, 6);
    expect(c.at(-1)!.heldOutNll).toBeLessThan(startC);
    expect(c.at(-1)!.heldOutNll).toBeLessThan(startA - 2);
    expect(fingerprintOf(outB)).toBe(fingerprintA);

    // The state file records the resumed run. Its ledger carried the killed run across the restart,
    // so retention (keep the last 2) saw that run's step 6 and deleted it once 12 and 18 were saved.
    const state = JSON.parse(await readFile(stateB, "utf8"));
    expect(state.runId).toBe(resumed.runId);
    expect(state.ledger.runs).toEqual([resumed.runId]);
    expect(Object.keys(state.ledger.metrics).sort()).toEqual([
      `tinker://${resumed.runId}/weights/step-000012`,
      `tinker://${resumed.runId}/weights/step-000018`,
    ]);
  }, 60_000);
});
