/**
 * Bench case (l): no growth. 5,000 futures after 5,000 of warm-up (forward and sample alternating, 16 in flight; 1,000 with
 * --quick) through each transport against `tinker-ts serve` in its own process: Node's keep-alive
 * transport, the runtime's fetch, and a caller's fetch that ignores the request's signal. The heap
 * after a full GC is taken at every tenth of the run; the figure is the least-squares slope in
 * bytes per future (a leak of the kind issue #15 found, abort listeners left on chained signals,
 * was 7.1 KB per future). Needs `npm run build`.
 *
 *   node --import tsx bench/leak.ts [--quick]
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startBuiltServer } from "./lib/built-server.js";
import { report } from "./lib/result.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const FUTURES = process.argv.includes("--quick") ? 1_000 : 5_000;

/** Least-squares slope of heap bytes over futures. */
function slope(points: { futures: number; heap: number }[]): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.futures, 0) / n;
  const my = points.reduce((s, p) => s + p.heap, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.futures - mx) * (p.heap - my);
    den += (p.futures - mx) ** 2;
  }
  return num / den;
}

if (!existsSync(`${root}/dist/node.js`)) throw new Error("run `npm run build` first");
const { url, child } = await startBuiltServer();
try {
  let id = 1;
  for (const mode of ["node", "fetch", "fetch-ignoring-signal"]) {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--expose-gc", "bench/leak-worker.mjs", mode, url, String(FUTURES)],
      { cwd: root, maxBuffer: 1 << 24 },
    );
    const line = stdout.split("\n").find((l) => l.startsWith("FIGURE "));
    if (!line) throw new Error(`leak worker (${mode}) printed no FIGURE line:\n${stdout}`);
    const { checkpoints } = JSON.parse(line.slice(7)) as { checkpoints: { futures: number; heap: number }[] };
    const perFuture = slope(checkpoints);
    const mb = (b: number) => (b / 2 ** 20).toFixed(2);
    console.log(`  ${mode}: heap ${checkpoints.map((c) => mb(c.heap)).join(" → ")} MB`);
    report({
      id: `l${id++}`,
      measure: `heap growth per future after ${FUTURES} futures, transport ${mode}`,
      value: Math.round(perFuture),
      unit: "B/future",
      target: "< 100",
      detail: `heap after full GC ${mb(checkpoints[0]!.heap)} → ${mb(checkpoints.at(-1)!.heap)} MB; least-squares slope over ${checkpoints.length} checkpoints`,
    });
  }
} finally {
  child.kill();
}
