/**
 * Acceptance (#8, item 2): examples/toolkit/sft-chat.ts against `tinker-ts serve --data-dir`, killed
 * with SIGKILL after a checkpoint and two more steps (one more already submitted), the server killed
 * and restarted too, then resumed with --resume: the final weights equal an uninterrupted run's.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Cleanups, restartServer, runScript, startScript, startServer } from "./processes.helpers.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function fingerprintOf(output: string): string {
  const match = /^fingerprint ([0-9a-f]{64})$/m.exec(output);
  if (!match) throw new Error(`no fingerprint in:\n${output}`);
  return match[1]!;
}

describe("examples/toolkit/sft-chat.ts", () => {
  it("killed mid-run and resumed, ends with the weights of an uninterrupted run", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tinker-ts-sft-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const dataDir = join(dir, "data");
    let { server, url } = await startServer(dataDir, cleanups);
    const common = ["--base-url", url, "--steps", "12", "--every", "4", "--seed", "3"];

    const uninterrupted = await runScript(
      ["examples/toolkit/sft-chat.ts", ...common, "--state", join(dir, "a.json")],
      cleanups,
    );
    const fingerprintA = fingerprintOf(uninterrupted);
    expect(uninterrupted).toMatch(/^run \S+ from step 0$/m);

    // Second run: stalls after step 6 (step 7 is already submitted by then), then is killed.
    const stateB = join(dir, "b.json");
    const crashed = startScript(
      ["examples/toolkit/sft-chat.ts", ...common, "--state", stateB, "--stall-at-step", "6"],
      cleanups,
    );
    await crashed.waitFor(/^stalled after step 6$/m);
    expect(crashed.output()).toMatch(/^checkpoint step 4 \S+$/m);
    expect(crashed.output()).not.toMatch(/^checkpoint step 8/m);
    crashed.child.kill("SIGKILL");
    expect((await crashed.exited).signal).toBe("SIGKILL");
    const crashedRun = /^run (\S+) from step 0$/m.exec(crashed.output())![1];

    // The server goes down too, and comes back on the same port with the same data directory.
    ({ server, url } = await restartServer(server, url, dataDir, cleanups));

    const resumed = await runScript(
      ["examples/toolkit/sft-chat.ts", ...common, "--state", stateB, "--resume"],
      cleanups,
    );
    expect(resumed).toMatch(/^run \S+ from step 4$/m);
    expect(resumed).not.toMatch(/^step [1-4] /m);
    expect(resumed).toMatch(/^step 5 /m);
    expect(fingerprintOf(resumed)).toBe(fingerprintA);

    // The resumed run is a new run, and the job's latest in the state file.
    const state = JSON.parse(await readFile(stateB, "utf8"));
    expect(state.runId).not.toBe(crashedRun);
    expect(state.ledger.runs.at(-1)).toBe(state.runId);
  }, 60_000);
});
