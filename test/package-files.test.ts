/**
 * What the package ships besides its code: per-module declarations with declaration maps for both
 * module systems (no hashed chunk holding every type), and the `tinker-ts` command's shim, which
 * runs dist/cli.js, or the sources through tsx in a clone that has not been built yet. The
 * declaration checks need `npm run build` first (`npm test` does both).
 */
import { execFile } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { VERSION } from "../src/version.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

describe("package files", () => {
  it("points every entry's types at a per-module declaration with its map, ESM and CommonJS", () => {
    for (const [entry, conditions] of Object.entries(pkg.exports as Record<string, unknown>)) {
      if (typeof conditions === "string") continue;
      const { import: esm, require: cjs } = conditions as Record<string, { types: string }>;
      for (const types of [esm.types, cjs.types]) {
        expect(existsSync(join(root, types)), `${entry}: ${types}`).toBe(true);
        expect(existsSync(join(root, `${types}.map`)), `${entry}: ${types}.map`).toBe(true);
        const map = JSON.parse(readFileSync(join(root, `${types}.map`), "utf8"));
        // The map leads back to the TypeScript source, which the package ships.
        expect(existsSync(join(root, types, "..", map.sources[0])), map.sources[0]).toBe(true);
      }
      expect(cjs.types.startsWith("./dist/types-cjs/")).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(root, "dist/types-cjs/package.json"), "utf8"))).toEqual({
      type: "commonjs",
    });
    // No bundled declaration chunk (tsup's `model-input-<hash>.d.ts` held every shared type).
    expect(readdirSync(join(root, "dist")).filter((f) => /\.d\.c?ts$/.test(f))).toEqual([]);
    expect(pkg.files).toEqual(expect.arrayContaining(["bin", "dist", "src"]));
  });

  it("runs the command from the sources through tsx where dist/ is missing (a fresh clone)", async () => {
    // A copy of the shim beside the sources and no dist/: what `npm ci` leaves in a clone.
    const clone = mkdtempSync(join(root, "test", ".shim-"));
    try {
      mkdirSync(join(clone, "bin"));
      cpSync(join(root, pkg.bin["tinker-ts"]), join(clone, "bin", "tinker-ts.js"));
      symlinkSync(join(root, "src"), join(clone, "src"), "dir");
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [join(clone, "bin", "tinker-ts.js"), "-V"],
        {
          cwd: root,
          timeout: 60_000,
        },
      );
      expect(stdout).toBe(`tinker-ts ${VERSION} (Tinker protocol 0.39.0)\n`);
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  });
});
