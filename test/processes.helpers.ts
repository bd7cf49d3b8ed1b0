/**
 * Helpers of the kill-and-resume tests: scripts run as real child processes (under tsx) that a test
 * can wait on by their output and SIGKILL, and `tinker-ts serve --data-dir` as one of them.
 */
import { type ChildProcess, spawn } from "node:child_process";

/** What a test must undo in its afterEach, in reverse order. */
export type Cleanups = (() => Promise<unknown> | unknown)[];

export interface Child {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output: () => string;
  /** Resolves with the first match of `pattern` in stdout; rejects if the process exits first. */
  waitFor: (pattern: RegExp) => Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node --import tsx ...args`; registers a SIGKILL of it (if still running) in `cleanups`. */
export function startScript(args: string[], cleanups: Cleanups): Child {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let output = "";
  const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(stdout);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  child.stdout!.on("data", (chunk) => {
    stdout += String(chunk);
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

/** Runs a script to its end and returns its output; a non-zero exit throws, with the output. */
export async function runScript(args: string[], cleanups: Cleanups): Promise<string> {
  const script = startScript(args, cleanups);
  const { code, signal } = await script.exited;
  if (code !== 0) throw new Error(`${args[0]} exited with ${code ?? signal}:\n${script.output()}`);
  return script.output();
}

/** `tinker-ts serve` on `port` (0: any) with its state in `dataDir`, and its base URL once listening. */
export async function startServer(
  dataDir: string,
  cleanups: Cleanups,
  port = "0",
): Promise<{ server: Child; url: string }> {
  const server = startScript(["src/cli/main.ts", "serve", "--port", port, "--data-dir", dataDir], cleanups);
  const [, url] = await server.waitFor(/export TINKER_BASE_URL=(\S+)/);
  return { server, url: url! };
}

/** SIGKILLs the server and starts it again on the same port with the same data directory. */
export async function restartServer(
  server: Child,
  url: string,
  dataDir: string,
  cleanups: Cleanups,
): Promise<{ server: Child; url: string }> {
  server.child.kill("SIGKILL");
  await server.exited;
  return startServer(dataDir, cleanups, new URL(url).port);
}
