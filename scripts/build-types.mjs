#!/usr/bin/env node
/**
 * The package's declarations (`npm run build` runs this after tsup): one `.d.ts` per source module,
 * each with its `.d.ts.map` back to src/, so that editors show readable module names and "go to
 * definition" lands in the TypeScript source (which the package ships) instead of a bundled chunk.
 *
 * - dist/types/      tsc --emitDeclarationOnly (tsconfig.build.json): the `import` condition's types.
 * - dist/types-cjs/  the same files under a `{"type": "commonjs"}` package.json: the `require`
 *                    condition's types. A CommonJS consumer (module node16) must see CommonJS
 *                    declarations; the ESM ones would be "masquerading" (attw), and tsc only writes
 *                    `.d.cts` for `.cts` sources.
 */
import { spawnSync } from "node:child_process";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

rmSync(join(dist, "types"), { recursive: true, force: true });
rmSync(join(dist, "types-cjs"), { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
  cwd: root,
  stdio: "inherit",
});
if (result.status !== 0) process.exit(result.status ?? 1);
// Same depth as dist/types, so the maps' relative `sources` (../../src/…) still point at src/.
cpSync(join(dist, "types"), join(dist, "types-cjs"), { recursive: true });
writeFileSync(join(dist, "types-cjs", "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
