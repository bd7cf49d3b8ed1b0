#!/usr/bin/env node
/**
 * The runtime matrix over the packed package (`npm run test:runtimes`).
 *
 * 1. Builds the package with the repo's own tsup config in a scratch copy of the sources, `npm
 *    pack`s it, and installs the tarball into a scratch app outside the repo with
 *    `npm install --prefer-offline` (its dependencies come from npm's cache).
 * 2. Bundles runtime-tests/ against the installed package with esbuild: one ES module (workerd,
 *    Chromium) and one IIFE (edge-runtime). Chromium also loads the unbundled dist through an
 *    import map.
 * 3. Runs runtime-tests/scenario.mjs (SDK + local backend, then the toolkit part in
 *    scenario-toolkit.mjs with its cookbook-parity checks in scenario-toolkit-cookbook.mjs) in every
 *    runtime, each in its own process, and prints one line per runtime. Exits 1 if any runtime
 *    fails (a toolkit check that failed or is missing fails it too).
 *
 * Node, Deno and Bun also run runtime-tests/scenario-http.mjs: the SDK over real loopback HTTP,
 * through the transport the export conditions select (Node: its keep-alive HTTP/1.1 client; Deno, Bun: their
 * fetch), with a redirect and the response size limit.
 *
 * Node runs once per supported major version (22, 24, 26: package.json's engines and the current
 * releases), each binary from the registry's `node-<platform>-<arch>@<major>` package, installed
 * once into a cache outside the repo (scripts/lib/node-binaries.mjs).
 *
 * Options: --no-build (pack the checkout's current dist/ as is, e.g. right after `npm test`),
 *          --only=node22-esm,deno,... (a subset), --all (also the opt-in runtimes marked optional),
 *          --keep (leave the scratch folder and print its path), --json (the raw JSON lines too).
 */
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeBinary } from "./lib/node-binaries.mjs";
import { bin, installTarball, line, pack, root, run, stagePackage } from "./lib/package-stage.mjs";

const tests = join(root, "runtime-tests");
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const only = args
  .find((a) => a.startsWith("--only="))
  ?.slice(7)
  .split(",");

const started = performance.now();
const scratch = mkdtempSync(join(tmpdir(), "tinker-ts-runtimes-"));
const app = join(scratch, "app");
const bundles = join(scratch, "bundles");

async function prepare() {
  const pkg = await stagePackage(scratch, { build: !flag("no-build") });
  const tarball = await pack(pkg, scratch);
  // A package.json + node_modules: Node and Bun resolve from it, and so does Deno (BYONM).
  await installTarball(tarball, app);
  for (const f of readdirSync(tests)) {
    if (/^(scenario|entry-|worker|global)/.test(f)) cpSync(join(tests, f), join(app, f));
  }
  // Bundles for the runtimes without node_modules resolution, made from the installed package.
  const esbuild = await import("esbuild");
  const common = {
    absWorkingDir: app,
    bundle: true,
    platform: "browser",
    target: "es2022",
    logLevel: "error",
    legalComments: "none",
  };
  await Promise.all([
    esbuild.build({
      ...common,
      entryPoints: ["worker.mjs"],
      format: "esm",
      outfile: join(bundles, "worker.js"),
    }),
    esbuild.build({
      ...common,
      entryPoints: ["worker-module-scope.mjs"],
      format: "esm",
      outfile: join(bundles, "worker-module-scope.js"),
    }),
    esbuild.build({
      ...common,
      entryPoints: ["global.mjs"],
      format: "esm",
      outfile: join(bundles, "browser.js"),
    }),
    esbuild.build({
      ...common,
      entryPoints: ["global.mjs"],
      format: "iife",
      outfile: join(bundles, "edge.js"),
    }),
  ]);
  return tarball;
}

const denoEnv = { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" };
/** The Node.js major versions the package supports (package.json `engines`: >=22). */
const NODE_MAJORS = [22, 24, 26];
const runtimes = [
  ...NODE_MAJORS.flatMap((major) => [
    { name: `node${major}-esm`, node: major, argv: ["entry-esm.mjs", `node${major}-esm`] },
    { name: `node${major}-cjs`, node: major, argv: ["entry-cjs.cjs", `node${major}-cjs`] },
    // Over real HTTP: the transport the `node` export condition selects (its keep-alive HTTP/1.1 client).
    { name: `node${major}-http`, node: major, argv: ["entry-http.mjs", `node${major}-http`] },
    { name: `node${major}-http-cjs`, node: major, argv: ["entry-http-cjs.cjs", `node${major}-http-cjs`] },
  ]),
  // BYONM: bare specifiers resolve from the app's node_modules because it has a package.json.
  // Only env access is granted (no net, no files): the scenario's fetch is in process.
  {
    name: "deno",
    cmd: bin("deno"),
    argv: ["run", "--no-lock", "--allow-env", "entry-esm.mjs", "deno"],
    env: denoEnv,
  },
  // Deno with no permission at all: Deno 2's `process.env` throws NotCapable without --allow-env,
  // so the SDK must guard every read of it (src/core/env.ts).
  {
    name: "deno-no-env",
    cmd: bin("deno"),
    argv: ["run", "--no-lock", "entry-esm.mjs", "deno-no-env"],
    env: denoEnv,
  },
  // Over real HTTP with Deno's own fetch (the package's `deno` condition comes before `node`).
  {
    name: "deno-http",
    cmd: bin("deno"),
    argv: ["run", "--no-lock", "--allow-env", "--allow-net=127.0.0.1", "entry-http.mjs", "deno-http"],
    env: denoEnv,
  },
  { name: "bun-esm", cmd: bin("bun"), argv: ["entry-esm.mjs", "bun-esm"] },
  { name: "bun-http", cmd: bin("bun"), argv: ["entry-http.mjs", "bun-http"] },
  { name: "bun-cjs", cmd: bin("bun"), argv: ["entry-cjs.cjs", "bun-cjs"] },
  {
    name: "workerd",
    cmd: process.execPath,
    argv: [join(tests, "run-workerd.mjs"), join(bundles, "worker.js")],
  },
  // A Worker whose ServiceClient is built at module scope: workerd refuses to start one that draws
  // random numbers or does I/O there, so construction must do neither.
  {
    name: "workerd-module-scope",
    cmd: process.execPath,
    argv: [join(tests, "run-workerd.mjs"), join(bundles, "worker-module-scope.js")],
  },
  {
    name: "edge-runtime",
    cmd: process.execPath,
    argv: [join(tests, "run-edge.mjs"), join(bundles, "edge.js")],
  },
  {
    name: "chromium",
    cmd: process.execPath,
    argv: [join(tests, "run-chromium.mjs"), "chromium", "bundle", join(bundles, "browser.js")],
  },
  // The published dist/*.js themselves, unbundled, through an import map.
  {
    name: "chromium-esm",
    cmd: process.execPath,
    argv: [join(tests, "run-chromium.mjs"), "chromium-esm", "esm", app],
  },
];

const unknown = only?.filter((name) => !runtimes.some((r) => r.name === name)) ?? [];
if (unknown.length) {
  console.log(`unknown runtime ${unknown.join(", ")}; known: ${runtimes.map((r) => r.name).join(", ")}`);
  rmSync(scratch, { recursive: true, force: true });
  process.exit(2);
}

const fmt = (x) => (typeof x === "number" ? x.toFixed(2) : String(x));
/** Problems on one line: each one's first two lines (message and top frame), 400 characters at most. */
const oneLine = (problems) => {
  const text = problems.map((p) => String(p).trim().split("\n").slice(0, 2).join(" ").replace(/\s+/g, " "));
  const joined = text.join("; ");
  return joined.length > 400 ? `${joined.slice(0, 400)}…` : joined;
};

/** The cookbook-parity checks of the toolkit part (runtime-tests/scenario-toolkit-cookbook.mjs). */
const TOOLKIT_CHECKS = {
  // The same call from every renderer prints once.
  renderers: (r) =>
    `${r.calls.map((c) => c.renderer).join("+")} ${[...new Set(r.calls.map((c) => c.call))].join(" / ")}, ` +
    `unknown model ${r.unknownModel}`,
  supervised: (s) =>
    `jsonl lines ${s.jsonlLines.join(",")} bad ${s.badLine}, sft ${s.steps} steps ` +
    `lr ${s.learningRates.map((lr) => lr.toPrecision(2)).join("→")}, held-out nll ${s.evalNll.map(fmt).join("→")}`,
  rl: (r) => `${r.steps} steps reward ${r.rewards.map(fmt).join(",")}`,
};

/**
 * The toolkit part's summary and whether it passed: `toolkit ok: 3 steps, ckpt step-000002, nll
 * 1.13, reply "." (stop), jinja absent; renderers qwen3_5+kimi_k25 get_weather({"city":"Paris"}),
 * …; supervised jsonl …, sft 4 steps lr …; rl 2 steps reward …; 300ms`. A check that is missing or
 * failed is printed as such and fails the runtime, whatever the scenario's own `ok` says.
 */
const toolkitSummary = (t) => {
  if (!t) return { ok: false, text: "toolkit MISSING" };
  if (t.steps === undefined) return { ok: false, text: "toolkit FAILED" };
  let ok = t.ok === true;
  const checks = Object.entries(TOOLKIT_CHECKS).map(([name, describe]) => {
    const part = t[name];
    if (!part) {
      ok = false;
      return `${name} MISSING`;
    }
    if (!part.ok) {
      ok = false;
      return `${name} FAILED`;
    }
    return `${name} ${describe(part)}`;
  });
  const text =
    `toolkit ${ok ? "ok" : "FAILED"}: ${t.steps} steps, ckpt ${t.checkpoint}, nll ${fmt(t.nll)}, ` +
    `reply ${JSON.stringify(t.reply)} (${t.termination}), jinja ${t.jinja}; ${checks.join("; ")}; ${t.ms}ms`;
  return { ok, text };
};

let failed = 0;
try {
  const t0 = performance.now();
  const tarball = await prepare();
  const how = flag("no-build") ? "packed from dist/" : "built, packed";
  console.log(
    line(
      true,
      "pack",
      (performance.now() - t0) / 1000,
      `${tarball.split("/").at(-1)} ${how}, installed, bundled`,
    ),
  );
} catch (error) {
  console.log(line(false, "pack", (performance.now() - started) / 1000, oneLine([error.message ?? error])));
  console.log(String(error.message ?? error));
  failed++;
}

if (!failed) {
  for (const runtime of runtimes) {
    if (only ? !only.includes(runtime.name) : runtime.optional && !flag("all")) continue;
    const t0 = performance.now();
    let result;
    let raw = "";
    try {
      const cmd = runtime.node ? await nodeBinary(runtime.node) : runtime.cmd;
      const { stdout } = await run(cmd, runtime.argv, {
        cwd: app,
        env: runtime.env,
        timeout: 90_000,
      });
      raw = stdout.trim().split("\n").at(-1);
      result = JSON.parse(raw);
    } catch (error) {
      raw = error.stdout ?? "";
      result = {
        ok: false,
        problems: [
          String(error.message ?? error)
            .trim()
            .split("\n")
            .slice(0, 8)
            .join(" | "),
        ],
      };
    }
    const seconds = (performance.now() - t0) / 1000;
    // The full scenario (the one with losses) has the toolkit part, whose checks must all pass.
    const toolkit = result.losses ? toolkitSummary(result.toolkit) : undefined;
    const ok = result.ok === true && result.runtime === runtime.name && (toolkit?.ok ?? true);
    if (!ok) failed++;
    const detail = result.losses
      ? `loss ${result.losses.map(fmt).join("→")}  sample [${result.tokens}]  runs ${result.runs}` +
        `  errors ${result.errors.join(",")}  randomUUID ${result.randomUUID ? "yes" : "no"}  (${result.engine})` +
        `  ${toolkit.text}` +
        (result.problems?.length ? `  PROBLEMS ${oneLine(result.problems)}` : "")
      : result.summary && ok
        ? result.summary
        : `PROBLEMS ${oneLine(result.problems ?? [raw])}`;
    console.log(line(ok, runtime.name, seconds, detail));
    if (flag("json") && raw) console.log(`     ${raw}`);
  }
}

const total = ((performance.now() - started) / 1000).toFixed(1);
console.log(`${failed ? `${failed} failed` : "all passed"} in ${total}s`);
if (flag("keep")) console.log(`scratch kept at ${scratch}`);
else rmSync(scratch, { recursive: true, force: true });
process.exitCode = failed ? 1 : 0;
