#!/usr/bin/env node
/**
 * The `tinker-ts` command. The package runs the bundled dist/cli.js. A clone of the repository has
 * no dist/ until its first `npm run build` (or `npm test`): there this runs the TypeScript sources
 * through tsx, a dev dependency, so that `npx tinker-ts serve` works right after `npm ci`.
 */
import { existsSync } from "node:fs";

const dist = new URL("../dist/cli.js", import.meta.url);
if (existsSync(dist)) {
  await import(dist.href);
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write(
      "Error: tinker-ts is not built (no dist/cli.js) and tsx is not installed to run its sources.\n" +
        "In a clone of the repository, run `npm ci` (installs tsx) or `npm run build`.\n",
    );
    process.exit(1);
  }
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
