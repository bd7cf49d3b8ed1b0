/**
 * The package's ES module tree (dist/esm, what bundlers get under the `browser`, `worker`,
 * `workerd`, `edge-light` and `default` conditions): one file per module, so that an app's bundler
 * splits it as it splits the source. An app that only samples must not carry the training client,
 * the REST implementation or the tokenizer loader, which the SDK loads on first use; a bundled
 * dist/index.js shares chunks between them and did (docs/PERFORMANCE.md (e)). Run after
 * `npm run build`.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}/package.json`, "utf8"));

/** The dist/esm files an app's eager chunks hold (esbuild, browser platform, code splitting). */
async function eagerModules(names: string[]): Promise<string[]> {
  const result = await build({
    stdin: { contents: `export { ${names.join(", ")} } from "tinker-ts";`, resolveDir: root, loader: "js" },
    // The package by self-reference through its `exports`, not tsconfig.json's path to src/.
    tsconfigRaw: {},
    absWorkingDir: root,
    bundle: true,
    format: "esm",
    platform: "browser",
    splitting: true,
    outdir: `${root}/bundle-size`,
    write: false,
    metafile: true,
    logLevel: "error",
  });
  const outputs = result.metafile.outputs;
  const eager = new Set<string>();
  const visit = (name: string) => {
    if (eager.has(name)) return;
    eager.add(name);
    for (const i of outputs[name]!.imports) if (i.kind === "import-statement") visit(i.path);
  };
  visit(Object.keys(outputs).find((name) => outputs[name]!.entryPoint)!);
  return [...eager].flatMap((name) => Object.keys(outputs[name]!.inputs)).filter((i) => i.includes("dist/"));
}

describe("the ES module tree for bundlers", () => {
  it("is what the browser and default conditions of every entry resolve to", () => {
    expect(existsSync(`${root}/dist/esm/index.js`), "run `npm run build` first").toBe(true);
    for (const entry of [".", "./local", "./toolkit", "./openai"]) {
      const target = pkg.exports[entry].import.default as string;
      expect(target).toMatch(/^\.\/dist\/esm\//);
      expect(existsSync(`${root}/${target}`)).toBe(true);
    }
  });

  it("gives every entry the same conditions in the same order, so no resolver mixes two trees", () => {
    const conditions = (entry: string) => Object.keys(pkg.exports[entry].import);
    const tree = (entry: string, condition: string) =>
      (pkg.exports[entry].import[condition] as string).startsWith("./dist/esm/") ? "esm" : "bundle";
    for (const entry of ["./local", "./toolkit", "./openai"]) {
      expect(conditions(entry)).toEqual(conditions("."));
      for (const condition of conditions(".").filter((c) => c !== "types")) {
        expect(tree(entry, condition), `${entry} under ${condition}`).toBe(tree(".", condition));
      }
    }
  });

  it("lets a sample-only app leave the training client, REST calls and tokenizer loader out", async () => {
    const modules = await eagerModules(["ServiceClient", "SamplingClient"]);
    expect(modules).toContain("dist/esm/clients/sampling.js");
    for (const lazy of [
      "dist/esm/clients/training.js",
      "dist/esm/clients/service-training.js",
      "dist/esm/clients/rest/calls.js",
      "dist/esm/clients/tokenizer-loader.js",
    ]) {
      expect(modules).not.toContain(lazy);
    }
  });

  it("keeps the training client eager for an app that imports it", async () => {
    expect(await eagerModules(["ServiceClient", "TrainingClient"])).toContain("dist/esm/clients/training.js");
  });

  it("declares lazy-exports.ts's constants as the originals they stand for, name for name", async () => {
    const runtime = Object.keys(await import("../src/lazy-exports.js")).sort();
    const declared = [
      ...readFileSync(`${root}/dist/types/lazy-exports.d.ts`, "utf8").matchAll(/\{([^}]*)\}/g),
    ]
      .flatMap(([, names]) => names!.split(",").map((name) => name.trim()))
      .sort();
    expect(declared).toEqual(runtime);
  });
});
