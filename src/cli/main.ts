/**
 * Entry point of the `tinker-ts` command (bundled as dist/cli.js). Everything but the process
 * plumbing lives in app.ts, so tests can run the CLI in-process.
 *
 *   tinker-ts serve [--port 8000] [--host 127.0.0.1] [--api-key K]... [--jwt] [--jwt-ttl S]
 *   tinker-ts run list | checkpoint download tinker://… | sample --base-model … --prompt … | --help
 */
import { createInterface } from "node:readline/promises";
import { main } from "./app.js";

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
