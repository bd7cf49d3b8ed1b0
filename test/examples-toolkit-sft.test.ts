/**
 * Acceptance (#8, item 2): examples/toolkit/sft-chat.ts against `tinker-ts serve --data-dir`, killed
 * with SIGKILL after a checkpoint and two more steps (one more already submitted), the server killed
 * and restarted too, then resumed with --resume: the final weights equal an uninterrupted run's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Child {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first stdout line matching `pattern`. */
  waitFor: (pattern: RegExp) => Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Child {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(output);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  child.stdout!.on("data", (chunk) => {
    output += String(chunk);
    check();
  });
  child.stderr!.on("data", (chunk) => {
    output += String(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  return {
    child,
    output: () => output,
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        check();
        exited.then(({ code, signal }) =>
          reject(new Error(`exited (${code ?? signal}) before printing ${pattern}:\n${output}`)),
        );
      }),
  };
}

async function startServer(dataDir: string, port = "0"): Promise<{ server: Child; url: string }> {
  const server = start(["src/cli/main.ts", "serve", "--port", port, "--data-dir", dataDir]);
  const [, url] = await server.waitFor(/export TINKER_BASE_URL=(\S+)/);
  return { server, url: url! };
}

/** Runs the example to completion and returns its output. */
async function runExample(args: string[]): Promise<string> {
  const example = start(["examples/toolkit/sft-chat.ts", ...args]);
  const { code } = await example.exited;
  if (code !== 0) throw new Error(`sft-chat exited with ${code}:\n${example.output()}`);
  return example.output();
}

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
    let { server, url } = await startServer(dataDir);
    const common = ["--base-url", url, "--steps", "12", "--every", "4", "--seed", "3"];

    const uninterrupted = await runExample([...common, "--state", join(dir, "a.json")]);
    const fingerprintA = fingerprintOf(uninterrupted);
    expect(uninterrupted).toMatch(/^run \S+ from step 0$/m);

    // Second run: stalls after step 6 (step 7 is already submitted by then), then is killed.
    const stateB = join(dir, "b.json");
    const crashed = start([
      "examples/toolkit/sft-chat.ts",
      ...common,
      "--state",
      stateB,
      "--stall-at-step",
      "6",
    ]);
    await crashed.waitFor(/^stalled after step 6$/m);
    expect(crashed.output()).toMatch(/^checkpoint step 4 \S+$/m);
    expect(crashed.output()).not.toMatch(/^checkpoint step 8/m);
    crashed.child.kill("SIGKILL");
    expect((await crashed.exited).signal).toBe("SIGKILL");
    const crashedRun = /^run (\S+) from step 0$/m.exec(crashed.output())![1];

    // The server goes down too, and comes back on the same port with the same data directory.
    const port = new URL(url).port;
    server.child.kill("SIGKILL");
    await server.exited;
    ({ server, url } = await startServer(dataDir, port));

    const resumed = await runExample([...common, "--state", stateB, "--resume"]);
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
