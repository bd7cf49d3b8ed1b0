/**
 * examples/toolkit/sft-driver.ts on the embedded backend, real training (nothing mocked): held-out
 * NLL falls, the printed learning rates are the cosine schedule's (warmup, then decay), and a run
 * interrupted — by an AbortSignal, or by a crash that saves nothing — and resumed from its latest
 * checkpoint ends with exactly the weights of the uninterrupted run.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { lrSchedule } from "../src/toolkit/index.js";
import { stepLines } from "./sft-driver.helpers.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const EPOCHS = 2;
const LR = 0.01;
const STOP_AFTER = 8;

/** The output between a `run X` line and the next one. */
function section(stdout: string, run: "A" | "B" | "C"): string {
  const start = stdout.indexOf(`run ${run}:`);
  expect(start, `a "run ${run}" section`).toBeGreaterThanOrEqual(0);
  const next = stdout.slice(start + 1).search(/^run [ABC]:/m);
  return next < 0 ? stdout.slice(start) : stdout.slice(start, start + 1 + next);
}

async function runExample(interrupt: "abort" | "crash", epochs = EPOCHS): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      "--import",
      "tsx",
      "examples/toolkit/sft-driver.ts",
      "--epochs",
      String(epochs),
      "--lr",
      String(LR),
      "--stop-after",
      String(STOP_AFTER),
      "--interrupt",
      interrupt,
    ],
    { cwd: root, timeout: 60_000 },
  );
  return stdout;
}

function expectIdenticalEnd(stdout: string): void {
  const a = /^fingerprint A ([0-9a-f]{64})$/m.exec(stdout)?.[1];
  const c = /^fingerprint C ([0-9a-f]{64})$/m.exec(stdout)?.[1];
  expect(a).toBeDefined();
  expect(c).toBe(a);
  expect(stdout).toMatch(/^identical weights: yes$/m);
}

describe("examples/toolkit/sft-driver.ts", () => {
  it("learns (held-out NLL falls) on the cosine schedule; abort + resume ends with identical weights", async () => {
    const stdout = await runExample("abort");
    const data = /^data (\d+) train \/ (\d+) held out, (\d+) batches per epoch × (\d+) epochs$/m.exec(stdout);
    expect(data?.slice(1).map(Number)).toEqual([34, 6, 9, EPOCHS]);
    const total = 9 * EPOCHS;

    const a = stepLines(section(stdout, "A"));
    expect(a.map((s) => s.step)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(a.map((s) => [s.epoch, s.batch])).toEqual(
      a.map((s) => [Math.floor((s.step - 1) / 9), (s.step - 1) % 9]),
    );

    // The schedule the example asks for, step by step as printed.
    const schedule = lrSchedule({
      kind: "cosine",
      baseLR: LR,
      totalSteps: total,
      warmupSteps: 3,
      minLR: LR / 10,
    });
    expect(a.map((s) => s.lr)).toEqual(a.map((s) => schedule.lrAt(s.step - 1).toFixed(5)));
    expect(Number(a[0]!.lr)).toBeLessThan(Number(a[2]!.lr)); // warmup
    expect(Number(a.at(-1)!.lr)).toBeLessThan(Number(a[3]!.lr) / 2); // decay

    // Held-out NLL: printed at the start and every 4 steps and at the end, and falling.
    const start = Number(/^start at step 0 held_out_nll (\S+)$/m.exec(section(stdout, "A"))?.[1]);
    const evals = a.filter((s) => s.heldOutNll !== undefined);
    expect(evals.map((s) => s.step)).toEqual([4, 8, 12, 16, 18]);
    expect(start).toBeGreaterThan(5); // an untrained byte model: about log(258)
    expect(evals[0]!.heldOutNll).toBeLessThan(start);
    expect(evals.at(-1)!.heldOutNll).toBeLessThan(start - 2.5);
    expect(a.at(-1)!.trainNll).toBeLessThan(a[0]!.trainNll / 2);
    expect(a.filter((s) => s.checkpoint).map((s) => s.checkpoint)).toEqual([
      "step-000006",
      "step-000012",
      "step-000018",
    ]);

    // B stops after step 8 (step 9, already on the server, is applied too) and saves that point.
    const b = stepLines(section(stdout, "B"));
    const stoppedAt = b.at(-1)!.step;
    expect([STOP_AFTER, STOP_AFTER + 1]).toContain(stoppedAt);
    expect(b.map((s) => s.trainNll)).toEqual(a.slice(0, stoppedAt).map((s) => s.trainNll));
    const resumed = new RegExp(
      `^run C: resumed from step-0*${stoppedAt} \\(step ${stoppedAt}: epoch \\d, batch \\d\\)$`,
      "m",
    );
    expect(stdout).toMatch(resumed);
    // C continues with the next step, and sees what A saw from there on.
    const c = stepLines(section(stdout, "C"));
    expect(c[0]!.step).toBe(stoppedAt + 1);
    expect(c.map((s) => s.trainNll)).toEqual(a.slice(stoppedAt).map((s) => s.trainNll));
    expectIdenticalEnd(stdout);
  }, 60_000);

  it("crash + resume from the last periodic checkpoint, redoing the steps after it, ends identical", async () => {
    // One epoch (9 steps) is enough here: checkpoints at 6 and 9, the crash after 8.
    const stdout = await runExample("crash", 1);
    expect(stdout).toMatch(new RegExp(`^simulated crash after step ${STOP_AFTER}$`, "m"));
    // Nothing was saved at the crash: the resume starts from step 6 and redoes 7 and 8.
    expect(stdout).toMatch(/^run C: resumed from step-000006 \(step 6: epoch 0, batch 6\)$/m);
    const a = stepLines(section(stdout, "A"));
    const c = stepLines(section(stdout, "C"));
    expect(c.map((s) => s.step)).toEqual(a.slice(6).map((s) => s.step));
    expect(c.map((s) => s.trainNll)).toEqual(a.slice(6).map((s) => s.trainNll));
    expectIdenticalEnd(stdout);
  }, 60_000);
});
