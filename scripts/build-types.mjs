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
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
// src/lazy-exports.ts exports some classes and values as constants, for the browser bundle's sake
// (its header says why); their types need not pay for it. Its declarations re-export the originals
// instead, so users get the classes themselves: their docs, `extends` with overrides, interface
// augmentation. Each `import { Name as alias } from "x"` of the source becomes
// `export { Name } from "x"` (the source exports each under its own name).
const lazySource = readFileSync(join(root, "src", "lazy-exports.ts"), "utf8");
const reexports = [...lazySource.matchAll(/import\s*\{([^}]*)\}\s*from\s*("[^"]+");/g)].map(
  ([, names, from]) => {
    const originals = names
      .split(",")
      .map((name) => name.trim().split(/\s+as\s+/)[0])
      .filter(Boolean);
    return `export { ${originals.join(", ")} } from ${from};`;
  },
);
writeFileSync(
  join(dist, "types", "lazy-exports.d.ts"),
  `// The declarations of src/lazy-exports.ts's constants: the originals (scripts/build-types.mjs).\n${reexports.join("\n")}\n`,
);
// Same depth as dist/types, so the maps' relative `sources` (../../src/…) still point at src/.
cpSync(join(dist, "types"), join(dist, "types-cjs"), { recursive: true });
writeFileSync(join(dist, "types-cjs", "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
