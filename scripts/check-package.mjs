#!/usr/bin/env node
/**
 * Checks of the package as published (`npm run check:package`), one line each:
 *
 * - publint --strict (warnings fail too)
 * - attw --pack (arethetypeswrong: node10, node16 CJS/ESM and bundler resolution of every entry)
 * - a CommonJS TypeScript consumer (runtime-tests/consumer-cjs-ts, module node16, TS 5.9,
 *   skipLibCheck off) of all three entries (tinker-ts, tinker-ts/local, tinker-ts/toolkit) compiled
 *   against the packed tarball, its emitted require() code run, and the
 *   same source type-checked once more with @types/node instead of the DOM lib. attw does not look
 *   through dependencies (TOOLCHAIN.md §1.5), which this catches.
 *
 * Builds in a scratch copy first (see lib/package-stage.mjs); --no-build checks the checkout's dist/.
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, installTarball, line, pack, root, run, stagePackage } from "./lib/package-stage.mjs";

const args = process.argv.slice(2);
const started = performance.now();
const scratch = mkdtempSync(join(tmpdir(), "tinker-ts-package-"));
const noColor = { NO_COLOR: "1", FORCE_COLOR: "0" };
let failed = 0;

async function step(name, fn) {
  const t0 = performance.now();
  try {
    const detail = await fn();
    console.log(line(true, name, (performance.now() - t0) / 1000, detail));
    return true;
  } catch (error) {
    failed++;
    const message = String(error.message ?? error).trim();
    console.log(line(false, name, (performance.now() - t0) / 1000, message.split("\n")[0]));
    console.log(message.replace(/^/gm, "     "));
    return false;
  }
}

let pkg = root;
const built = await step("build", async () => {
  pkg = await stagePackage(scratch, { build: !args.includes("--no-build") });
  return pkg === root ? "checking the checkout's dist/" : "built in a scratch copy";
});

if (built) {
  await step("publint", async () => {
    const { stdout } = await run(bin("publint"), ["--strict", pkg], { env: noColor });
    const lines = stdout.trim().split("\n");
    if (!/All good/.test(stdout)) throw new Error(`publint reported:\n${stdout}`);
    return lines.at(-1);
  });

  await step("attw", async () => {
    // Exits non-zero on any problem; the table names the entry and resolution mode.
    const { stdout } = await run(bin("attw"), ["--pack", pkg, "--format", "table-flipped"], { env: noColor });
    if (/💀|❌|🐛|⚠️|🥴|🎭|❗️/u.test(stdout)) throw new Error(`attw reported:\n${stdout}`);
    return "no problems (node10, node16-CJS, node16-ESM, bundler; every entry)";
  });

  await step("consumer-cjs", async () => {
    const tarball = await pack(pkg, scratch);
    const dir = join(scratch, "consumer-cjs-ts");
    cpSync(join(root, "runtime-tests", "consumer-cjs-ts"), dir, { recursive: true });
    await installTarball(tarball, dir);
    // @types/node (and its undici-types) for the second configuration, from the repo.
    symlinkSync(join(root, "node_modules", "@types"), join(dir, "node_modules", "@types"), "dir");
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const { stdout: version } = await run(process.execPath, [tsc, "--version"]);
    await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: dir });
    await run(process.execPath, [tsc, "-p", "tsconfig.node-types.json"], { cwd: dir });
    const { stdout } = await run(process.execPath, [join("out", "index.js")], { cwd: dir });
    const result = JSON.parse(stdout.trim());
    const toolkit = result.toolkit ?? {};
    const toolkitOk =
      toolkit.steps === 2 && toolkit.checkpoint === "step-000002" && toolkit.nll && toolkit.crossEntryError;
    if (
      !(
        result.loss &&
        result.runs >= 1 &&
        result.notFound &&
        result.validationError === "function" &&
        toolkitOk
      )
    ) {
      throw new Error(`the compiled consumer printed ${stdout}`);
    }
    return `${version.trim()}, module node16, DOM lib and @types/node; compiled require() code ran (tinker-ts, /local, /toolkit: ${toolkit.steps} steps, ${toolkit.checkpoint})`;
  });
}

console.log(
  `${failed ? `${failed} failed` : "all passed"} in ${((performance.now() - started) / 1000).toFixed(1)}s`,
);
rmSync(scratch, { recursive: true, force: true });
process.exitCode = failed ? 1 : 0;
