/**
 * Bench case (p): tinker-ts side by side with the official Python SDK, against the same
 * `tinker-ts serve` (its own process), interleaved, medians of REPS repetitions (5; 1 with --quick).
 *
 *   TINKER_PY=/path/to/venv/bin/python npm run bench -- --only python
 *   TINKER_PY=… node --import tsx bench/python.ts [--quick]
 *
 * TINKER_PY names a Python whose environment has the official `tinker` package (0.25.0 is the
 * version the goals are stated against); without it the case says so and reports nothing.
 * Needs the built package (`npm run build`): the TypeScript half runs dist/ with plain `node`, as a
 * Node application would (the `node` export condition: the keep-alive node:http transport).
 *
 * Each workload runs in a fresh process of each SDK (bench/peers/python_sdk.py, ts_sdk.mjs,
 * ts_encode.ts; the order alternates each repetition):
 *   p1  client CPU per sequential forward_backward future (tiny datum, after a warm-up as long as
 *       the measured run)                                                  goal: ≤ 1/3 of Python's
 *   p2  peak RSS of a process that launches 2,000 sample calls at once       goal: ≤ 1/2 of Python's
 *   p3  building + encoding a 64 × 4,096-token forward_backward request, after ten warm-up calls
 *       in each half (ENCODE_WARM_UP=1: a fresh process's figure)       goal: ≤ 1/5 of Python's
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startBuiltServer } from "./lib/built-server.js";
import { median, report, spread } from "./lib/result.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const quick = process.argv.includes("--quick");
const REPS = quick ? 1 : 5;
const FB_COUNT = quick ? 50 : 300;
const SAMPLES = quick ? 200 : 2_000;
const ENCODE_REPEATS = quick ? 2 : 5;
const python = process.env.TINKER_PY;

type Figure = Record<string, number>;

async function figureOf(command: string, args: string[]): Promise<Figure> {
  const { stdout } = await promisify(execFile)(command, args, { cwd: root, maxBuffer: 1 << 24 });
  const line = stdout.split("\n").find((l) => l.startsWith("FIGURE "));
  if (!line) throw new Error(`${command} ${args.join(" ")} printed no FIGURE line:\n${stdout}`);
  return JSON.parse(line.slice("FIGURE ".length)) as Figure;
}

const ts = {
  "fb-cpu": (url: string) =>
    figureOf(process.execPath, ["bench/peers/ts_sdk.mjs", "fb-cpu", url, `${FB_COUNT}`]),
  samples: (url: string) =>
    figureOf(process.execPath, ["bench/peers/ts_sdk.mjs", "samples", url, `${SAMPLES}`]),
  encode: () =>
    figureOf(process.execPath, ["--import", "tsx", "bench/peers/ts_encode.ts", `${ENCODE_REPEATS}`]),
};
const py = (workload: string, url: string, n: number) =>
  figureOf(python!, ["bench/peers/python_sdk.py", workload, url, `${n}`]);
const pyRun = {
  "fb-cpu": (url: string) => py("fb-cpu", url, FB_COUNT),
  samples: (url: string) => py("samples", url, SAMPLES),
  encode: () => py("encode", "-", ENCODE_REPEATS),
};

async function main(): Promise<void> {
  if (!python) {
    console.log("skipped: set TINKER_PY to a Python with the official tinker SDK (e.g. a 0.25.0 venv)");
    return;
  }
  if (!existsSync(`${root}/dist/node.js`))
    throw new Error("run `npm run build` first (the TS half runs dist/)");
  const { stdout: version } = await promisify(execFile)(python, [
    "-c",
    "import importlib.metadata as m; print(m.version('tinker'))",
  ]);
  console.log(`Python SDK tinker ${version.trim()} (${python}); ${REPS} interleaved repetitions`);
  const { url, child } = await startBuiltServer();
  const samples: Record<string, { ts: number[]; py: number[] }> = {
    cpu: { ts: [], py: [] },
    rss: { ts: [], py: [] },
    encode: { ts: [], py: [] },
  };
  try {
    for (let rep = 0; rep < REPS; rep++) {
      const pyFirst = rep % 2 === 1;
      for (const workload of ["fb-cpu", "samples", "encode"] as const) {
        const runs = [() => ts[workload](url), () => pyRun[workload](url)];
        const [a, b] = pyFirst ? [runs[1]!, runs[0]!] : runs;
        const first = await a!();
        const second = await b!();
        const [t, p] = pyFirst ? [second, first] : [first, second];
        const key = workload === "fb-cpu" ? "cpu" : workload === "samples" ? "rss" : "encode";
        const field = workload === "fb-cpu" ? "cpu_us" : workload === "samples" ? "peak_rss_mb" : "ms";
        samples[key]!.ts.push(t[field]!);
        samples[key]!.py.push(p[field]!);
        console.log(
          `  rep ${rep + 1} ${workload.padEnd(8)} tinker-ts ${t[field]!.toFixed(1)}  python ${p[field]!.toFixed(1)}`,
        );
      }
    }
  } finally {
    child.kill();
  }
  const line = (id: string, key: string, measure: string, unit: string, goal: number, goalText: string) => {
    const { ts: t, py: p } = samples[key]!;
    const ratio = median(t) / median(p);
    report({
      id,
      measure,
      value: Number(ratio.toFixed(3)),
      unit: "× Python",
      target: `≤ ${goal}`,
      detail: `tinker-ts ${median(t).toFixed(1)} ${unit} (${spread(t, 1)}), Python ${median(p).toFixed(1)} ${unit} (${spread(p, 1)}); goal ${goalText}; medians of ${t.length}`,
    });
  };
  line(
    "p1",
    "cpu",
    "client CPU per sequential forward_backward future, tinker-ts / Python SDK",
    "µs",
    0.333,
    "≤ 1/3",
  );
  line(
    "p2",
    "rss",
    `peak RSS of a process launching ${SAMPLES} samples at once, tinker-ts / Python SDK`,
    "MB",
    0.5,
    "≤ 1/2",
  );
  line(
    "p3",
    "encode",
    "build + encode a 64 × 4,096-token forward_backward request, tinker-ts / Python SDK",
    "ms",
    0.2,
    "≤ 1/5",
  );
}

await main();
