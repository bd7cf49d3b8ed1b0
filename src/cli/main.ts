/**
 * Entry point of the `tinker-ts` command (bundled as dist/cli.js). Everything but the process
 * plumbing lives in app.ts, so tests can run the CLI in-process.
 *
 *   tinker-ts serve [--port 8000] [--host 127.0.0.1] [--api-key K]... [--jwt] [--jwt-ttl S]
 *   tinker-ts run list | checkpoint download tinker://… | sample --base-model … --prompt … | --help
 */
import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";
import { registerRuntimeTransport } from "../core/transport.js";
import { nodeTransport } from "../node/transport.js";
import { main } from "./app.js";
import { CliError } from "./errors.js";

// What the package's `node` export condition gives an application: the keep-alive transport. Bun
// and Deno, which also run this command, keep their own fetch (faster there than node:http).
if (!("Bun" in globalThis) && !("Deno" in globalThis)) registerRuntimeTransport(nodeTransport);

/** More than any key; a larger stdin is not a key. */
const MAX_SECRET_BYTES = 64 * 1024;

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  stdinIsTTY: process.stdin.isTTY === true,
  async confirm(question) {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await rl.question(question)).trim());
    } finally {
      rl.close();
    }
  },
  readSecret: (prompt) => (process.stdin.isTTY ? askWithoutEcho(prompt) : readStdin()),
}).then(
  // Exit at once: idle keep-alive connections must not hold the process open. (stdout and stderr
  // are synchronous for files and pipes on POSIX, so nothing written is lost.)
  (code) => process.exit(code),
  (error) => {
    // main reports its own errors; this is a last resort, still without a stack trace.
    process.stderr.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);

/** A line typed on the terminal, echoed to nowhere. */
async function askWithoutEcho(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const nowhere = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: nowhere, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      // In raw mode Ctrl-C arrives here instead of as a signal.
      rl.once("SIGINT", () => reject(new CliError("cancelled")));
      rl.question("").then(resolve, reject);
    });
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_SECRET_BYTES) throw new CliError("stdin is too large to be an API key");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
