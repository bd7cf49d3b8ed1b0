#!/usr/bin/env node
/**
 * Browser bundle size of the public SDK entry (`npm run size`), and the CI check that it does not grow.
 *
 * Builds `src/index.ts` (not `tinker-ts/local`, not the CLI) the way a browser app's bundler would:
 * esbuild, minified, ESM, platform browser, code splitting on, so every lazy `import()` becomes a
 * separate chunk. Reports min and gzip (zlib level 9) of
 *   - eager:  the entry file plus the chunks it imports statically: what `import … from "tinker-ts"`
 *             downloads before any code runs;
 *   - lazy:   each chunk reached only through a dynamic `import()` (e.g. the tokenizer library);
 *   - whole:  eager + every lazy chunk, i.e. the whole SDK;
 *   - a few typical apps that import only part of the API, to show tree-shaking works.
 * Then compares each figure with its budget in .size-budget.json and exits 1 when one grew past it.
 *
 * Options: --why (per-input breakdown of each bundle), --json (figures, budget and target as one
 *          JSON line, read by bench/bundle.ts),
 *          --budget=<file> (another budget file), --no-check (report only).
 * 1 KB = 1024 bytes, as esbuild prints sizes.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const entry = join(root, "src/index.ts");
export const defaultBudgetFile = join(root, ".size-budget.json");

/** Apps that use part of the SDK; their bundles must be smaller than the whole SDK's eager entry. */
export const apps = {
  "sample-only": ["ServiceClient", "SamplingClient"],
  "train-and-sample": ["ServiceClient", "TrainingClient", "SamplingClient", "datum", "ModelInput"],
  "rest-only": ["ServiceClient", "RestClient"],
};

const kb = (bytes) => Math.round((bytes / 1024) * 10) / 10;
const gzipSize = (bytes) => gzipSync(bytes, { level: 9 }).length;

/** Where a piece of the output came from: a package name, or the SDK's own source file. */
function origin(input) {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
  return pkg ? pkg[1] : input;
}

/** Bundles one entry (a file, or source code exporting part of the SDK) and sorts its outputs. */
async function bundle({ file, contents, resolveDir = root }) {
  const result = await build({
    ...(file ? { entryPoints: [file] } : { stdin: { contents, resolveDir, loader: "ts" } }),
    absWorkingDir: root,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    splitting: true,
    outdir: join(root, "bundle-size"), // never written: write:false keeps the outputs in memory
    entryNames: "entry",
    chunkNames: "chunk-[hash]",
    write: false,
    metafile: true,
    legalComments: "none",
    logLevel: "error",
  });
  const files = new Map(
    result.outputFiles.map((f) => [relative(root, f.path).replaceAll("\\", "/"), f.contents]),
  );
  const outputs = result.metafile.outputs;
  // The app's own entry: every lazy `import()` target is an entry point of the metafile too.
  const entryPoint = file ? relative(root, file).replaceAll("\\", "/") : "<stdin>";
  const entryName = Object.keys(outputs).find((name) => outputs[name].entryPoint === entryPoint);
  // Eager: the entry and whatever it imports statically, transitively.
  const eager = new Set();
  const visit = (name) => {
    if (eager.has(name)) return;
    eager.add(name);
    for (const imp of outputs[name].imports) if (imp.kind === "import-statement") visit(imp.path);
  };
  visit(entryName);
  const describe = (name) => {
    const bytes = files.get(name);
    const inputs = Object.entries(outputs[name].inputs).map(([input, { bytesInOutput }]) => ({
      input,
      bytes: bytesInOutput,
    }));
    const roots = inputs
      .filter((i) => i.input.includes("node_modules/"))
      .map((i) => origin(i.input))
      .sort();
    return { name, min: bytes.length, gzip: gzipSize(bytes), inputs, packages: [...new Set(roots)] };
  };
  const chunks = Object.keys(outputs)
    .filter((name) => !name.endsWith(".map"))
    .map(describe);
  const sum = (list, key) => list.reduce((total, c) => total + c[key], 0);
  const eagerChunks = chunks.filter((c) => eager.has(c.name));
  const lazyChunks = chunks.filter((c) => !eager.has(c.name));
  // What the first request adds: ky is imported with it (src/core/http.ts).
  const firstCall = [...eagerChunks, ...lazyChunks.filter((c) => c.packages.includes("ky"))];
  return {
    eager: { min: sum(eagerChunks, "min"), gzip: sum(eagerChunks, "gzip"), chunks: eagerChunks },
    firstCall: { gzip: sum(firstCall, "gzip") },
    lazy: lazyChunks,
    whole: { min: sum(chunks, "min"), gzip: sum(chunks, "gzip") },
  };
}

/** Every figure the budget can hold, in KB, keyed the way .size-budget.json names them. */
export async function measure() {
  const sdk = await bundle({ file: entry });
  const appBundles = {};
  for (const [name, names] of Object.entries(apps)) {
    appBundles[name] = await bundle({ contents: `export { ${names.join(", ")} } from "./src/index.ts";` });
  }
  const figures = {
    "eager.min": kb(sdk.eager.min),
    "eager.gzip": kb(sdk.eager.gzip),
    "whole.min": kb(sdk.whole.min),
    "whole.gzip": kb(sdk.whole.gzip),
  };
  for (const [name, app] of Object.entries(appBundles)) {
    figures[`app.${name}.gzip`] = kb(app.eager.gzip);
    figures[`app.${name}.first-call.gzip`] = kb(app.firstCall.gzip);
  }
  const openaiNode = await openaiChatApp();
  if (openaiNode) figures["peer.openai-chat.gzip"] = kb(openaiNode.eager.gzip);
  // The toolkit is its own entry (tinker-ts/toolkit), so it is not in the SDK's figures; this is
  // what an app that uses all of it adds on top of the whole SDK's eager entry.
  const withToolkit = await bundle({
    contents: 'export * from "./src/index.ts"; export * from "./src/toolkit/index.ts";',
  });
  figures["toolkit.extra.gzip"] = kb(withToolkit.eager.gzip - sdk.eager.gzip);
  figures["toolkit.extra.min"] = kb(withToolkit.eager.min - sdk.eager.min);
  // tinker-ts/openai is its own entry too: what an app that only streams chat from it downloads
  // (a Worker, a browser page), and what it adds on top of the whole SDK's eager entry.
  const ours = await bundle({ file: join(root, "src/openai/index.ts") });
  const withOpenai = await bundle({
    contents: 'export * from "./src/index.ts"; export * from "./src/openai/index.ts";',
  });
  figures["openai.alone.gzip"] = kb(ours.eager.gzip);
  figures["openai.extra.gzip"] = kb(withOpenai.eager.gzip - sdk.eager.gzip);
  return { figures, sdk, apps: appBundles };
}

/**
 * The yardstick of issue #15: openai-node's minimal chat app, bundled the same way. openai is a
 * devDependency (node_modules), or installed by the bench into OPENAI_NODE_DIR / the peers cache
 * (bench/lib/openai-peer.ts); without either the figure is left out.
 */
export const OPENAI_CHAT_APP = `import OpenAI from "openai";
const client = new OpenAI({ apiKey: "sk-…", dangerouslyAllowBrowser: true });
export const ask = (content) => client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content }] });`;

async function openaiChatApp() {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tinker-ts", "peers");
  const dirs = [process.env.OPENAI_NODE_DIR, root, join(cache, "openai-7.60.0")].filter(Boolean);
  const dir = dirs.find((d) => existsSync(join(d, "node_modules", "openai", "package.json")));
  return dir ? bundle({ contents: OPENAI_CHAT_APP, resolveDir: dir }) : undefined;
}

/** Figures over their budget, as readable lines; a budget key with no figure is an error too. */
export function overBudget(figures, budget) {
  const problems = [];
  for (const [key, limit] of Object.entries(budget)) {
    if (!(key in figures)) problems.push(`${key}: in the budget file but not measured (typo?)`);
    else if (figures[key] > limit) {
      const growth = (((figures[key] - limit) / limit) * 100).toFixed(1);
      problems.push(`${key} is ${figures[key]} KB, over its budget of ${limit} KB (+${growth} %)`);
    }
  }
  return problems;
}

export function readBudget(file = defaultBudgetFile) {
  const parsed = JSON.parse(readFileSync(file, "utf8"));
  if (!parsed.budget || typeof parsed.budget !== "object") throw new Error(`${file}: no "budget" object`);
  return parsed;
}

function breakdown(title, chunks) {
  const byOrigin = new Map();
  for (const c of chunks) {
    for (const { input, bytes } of c.inputs)
      byOrigin.set(origin(input), (byOrigin.get(origin(input)) ?? 0) + bytes);
  }
  const rows = [...byOrigin].filter(([, b]) => b > 0).sort((a, b) => b[1] - a[1]);
  console.log(`\n${title}, min bytes by input:`);
  for (const [name, bytes] of rows) console.log(`  ${String(bytes).padStart(7)}  ${name}`);
}

function report({ figures, sdk }, { target, budget }) {
  const line = (label, key, extra = "") => {
    const limit = budget[key] === undefined ? "" : `  (budget ${budget[key]} KB)`;
    console.log(`${label.padEnd(40)} ${String(figures[key]).padStart(6)} KB${limit}${extra}`);
  };
  console.log("Browser bundle of src/index.ts (esbuild, minified, ESM, splitting; gzip level 9)");
  line("eager entry, min", "eager.min");
  line("eager entry, gzip", "eager.gzip");
  for (const c of sdk.lazy) {
    const what = c.packages.length ? c.packages.join(", ") : "SDK code";
    console.log(`${`lazy chunk (${what}), min / gzip`.padEnd(40)} ${kb(c.min)} / ${kb(c.gzip)} KB`);
  }
  line("whole SDK (eager + lazy), min", "whole.min");
  const goal = target?.["whole.gzip"];
  line("whole SDK (eager + lazy), gzip", "whole.gzip", goal ? `  (target ≤ ${goal} KB)` : "");
  for (const name of Object.keys(apps)) {
    line(`app "${name}" eager, gzip`, `app.${name}.gzip`, `  [${apps[name].join(", ")}]`);
    line(`app "${name}" + ky (first call), gzip`, `app.${name}.first-call.gzip`);
  }
  if (figures["peer.openai-chat.gzip"] !== undefined) {
    const openai = figures["peer.openai-chat.gzip"];
    const ratio = (key) => (figures[key] / openai).toFixed(2);
    line("openai-node minimal chat app, gzip", "peer.openai-chat.gzip");
    console.log(
      `  sample-only first call ${ratio("app.sample-only.first-call.gzip")}× openai (goal ≤ 0.6), ` +
        `whole SDK ${ratio("whole.gzip")}× (goal ≤ 1.0)`,
    );
  }
  line("tinker-ts/toolkit on top, min", "toolkit.extra.min");
  line(
    "tinker-ts/toolkit on top, gzip",
    "toolkit.extra.gzip",
    "  (a separate entry: not in the SDK's figures)",
  );
  line("tinker-ts/openai alone, gzip", "openai.alone.gzip", "  (a separate entry)");
  line("tinker-ts/openai on top, gzip", "openai.extra.gzip");
}

async function main() {
  const args = process.argv.slice(2);
  const budgetFile = args.find((a) => a.startsWith("--budget="))?.slice(9) ?? defaultBudgetFile;
  const spec = readBudget(budgetFile);
  const result = await measure();
  if (args.includes("--json")) {
    const lazy = result.sdk.lazy.map(({ name, min, gzip, packages }) => ({ name, min, gzip, packages }));
    console.log(
      JSON.stringify({ figures: result.figures, budget: spec.budget, target: spec.target, lazy, apps }),
    );
  } else report(result, spec);
  if (args.includes("--why")) {
    breakdown("eager entry", result.sdk.eager.chunks);
    for (const c of result.sdk.lazy) breakdown(`lazy chunk ${c.name}`, [c]);
    for (const [name, app] of Object.entries(result.apps)) breakdown(`app "${name}"`, app.eager.chunks);
  }
  if (args.includes("--no-check")) return;
  const problems = overBudget(result.figures, spec.budget);
  if (problems.length) {
    console.error(`\nBundle size check FAILED against ${relative(root, budgetFile) || budgetFile}:`);
    for (const p of problems) console.error(`  ${p}`);
    console.error(
      "Shrink the bundle (npm run size -- --why shows what is in it), or, if the growth is worth it,\n" +
        "raise the figure in the budget file in the same commit and say why in its message.",
    );
    process.exitCode = 1;
  } else {
    console.log(`\nBundle size check passed (${relative(root, budgetFile) || budgetFile}).`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
