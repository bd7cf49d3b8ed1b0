/**
 * Issue 14, "nothing lost, nothing silent": `tinker-ts serve --data-dir` killed with SIGKILL at
 * chosen moments of a training loop and restarted on the same port and directory. The loop must
 * end bit-equal to an uninterrupted one: no acknowledged operation lost, none applied twice, no
 * optim_step without its gradients. The long random variant is bench/kill-harness.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  firstDifference,
  killServer,
  type LoopResult,
  type ServerProcess,
  skippedRecords,
  startServer,
  trainingLoop,
} from "../bench/kill-harness.js";

const STEPS = 6;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tinker-ts-durable-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A server on a fresh data directory that the test can kill; it comes back on the same port. */
async function killableServer() {
  const dataDir = await tempDir();
  let server: ServerProcess = await startServer(0, dataDir);
  const port = Number(new URL(server.url).port);
  let output = "";
  let restarting: Promise<void> = Promise.resolve();
  cleanups.push(async () => {
    await restarting;
    await killServer(server);
  });
  return {
    url: server.url,
    /** SIGKILL; the restart runs in the background while the client retries (await `restarted`). */
    async killAndRestart(): Promise<void> {
      await killServer(server);
      output += server.output();
      restarting = startServer(port, dataDir).then((next) => {
        server = next;
      });
    },
    restarted: () => restarting,
    /** Everything every incarnation printed. */
    async output(): Promise<string> {
      await restarting;
      return output + server.output();
    },
  };
}

let reference: LoopResult | undefined;
async function referenceLoop(): Promise<LoopResult> {
  if (!reference) {
    const server = await startServer(0, await tempDir());
    try {
      reference = await trainingLoop(server.url, STEPS, { betweenCalls: () => {} });
    } finally {
      await killServer(server);
    }
  }
  return reference;
}

describe("durability across SIGKILL", () => {
  it("a kill between forward_backward and optim_step loses no gradient: the loop ends bit-equal to an uninterrupted one", async () => {
    const server = await killableServer();
    const result = await trainingLoop(server.url, STEPS, {
      // The forward_backward result was delivered; its gradients wait for the optim_step.
      betweenCalls: async (step) => {
        if (step !== 1) return;
        await server.killAndRestart();
        await server.restarted();
      },
    });
    // An optim_step that found no gradient reports norm 0 (and applied Adam momentum only).
    const withoutGradients = result.gradNorms.flatMap((norm, step) =>
      norm === 0 ? [`optim_step ${step}`] : [],
    );
    expect(withoutGradients).toEqual([]);
    expect(firstDifference(result, await referenceLoop())).toBeUndefined();
    expect(skippedRecords(await server.output())).toEqual([]);
  });

  it("kills right after a submission was acknowledged: the client's polls are answered after the restart, the loop ends bit-equal", async () => {
    const server = await killableServer();
    const killed: string[] = [];
    const result = await trainingLoop(server.url, STEPS, {
      betweenCalls: () => {},
      // The submission was acknowledged (the client has its request id), the result not yet polled.
      afterResponse: async (path, status, step) => {
        if (status !== 200) return;
        const what = `step ${step}: ${path.split("/").pop()}`;
        if (what !== "step 2: optim_step" && what !== "step 4: forward_backward") return;
        if (killed.includes(what)) return;
        killed.push(what);
        await server.killAndRestart();
      },
    });
    expect(killed).toEqual(["step 2: optim_step", "step 4: forward_backward"]);
    expect(firstDifference(result, await referenceLoop())).toBeUndefined();
    expect(skippedRecords(await server.output())).toEqual([]);
  });
});
