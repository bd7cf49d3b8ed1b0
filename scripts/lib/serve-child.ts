/**
 * `tinker-ts serve` as a child process, run from the checkout's sources (tsx), for the harnesses in
 * bench/ and scripts/ and the tests that need a real process to kill or to read the output of.
 */
import { type ChildProcess, spawn } from "node:child_process";

/** A running `tinker-ts serve` child. */
export interface ServeChild {
  url: string;
  child: ChildProcess;
  /** Everything it printed (stdout and stderr) so far. */
  output(): string;
}

/** Starts `tinker-ts serve ...args`; resolves once it prints the environment to paste (it listens). */
export async function spawnServe(args: string[]): Promise<ServeChild> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr!.on("data", (chunk) => {
    output += String(chunk);
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      output += String(chunk);
      const match = /export TINKER_BASE_URL=(\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}:\n${output}`)));
  });
  return { url, child, output: () => output };
}
