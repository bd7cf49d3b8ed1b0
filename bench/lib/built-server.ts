/**
 * `tinker-ts serve` from the built package (dist/cli.js), as the side-by-side cases run it: the
 * server's own cost should be the same for every client measured against it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Starts the built server on a free loopback port; resolves once it listens. */
export async function startBuiltServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["dist/cli.js", "serve", "--port", "0", "--host", "127.0.0.1"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  for await (const line of createInterface({ input: child.stdout! })) {
    const match = /listening on (\S+)/.exec(line);
    if (match) return { url: match[1]!, child };
  }
  throw new Error("tinker-ts serve exited before listening");
}
