/**
 * Bench case (i): cold import of `tinker-ts` in a fresh Node process, beside openai-node's, interleaved,
 * median of 9 (3 with --quick). Each sample is one new `node` process that times its own
 * `await import(…)` of the package by name, resolved as an application resolves it (the `node`
 * condition: dist/node.js). Needs `npm run build`; openai-node comes from bench/lib/openai-peer.ts.
 *
 *   node --import tsx bench/import.ts [--quick]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { OPENAI_VERSION, openaiPeer } from "./lib/openai-peer.js";
import { median, report, spread } from "./lib/result.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const RUNS = process.argv.includes("--quick") ? 3 : 9;

if (!existsSync(join(root, "dist", "node.js"))) throw new Error("run `npm run build` first");
// Its own folder outside the repository: tinker-ts is linked in beside openai there.
const peer = openaiPeer({ repository: false });
if (!peer) {
  console.log(`skipped: openai@${OPENAI_VERSION} could not be installed (npm registry unreachable?)`);
  process.exit(0);
}
// tinker-ts beside openai in the same node_modules, as an application would have both.
const link = join(peer, "node_modules", "tinker-ts");
if (!existsSync(link)) symlinkSync(root, link, "dir");
mkdirSync(join(peer, "probe"), { recursive: true });
const probe = join(peer, "probe", "import.mjs");
writeFileSync(
  probe,
  "const t0 = performance.now();\nawait import(process.argv[2]);\nconsole.log(performance.now() - t0);\n",
);

const time = (spec: string) =>
  Number(execFileSync(process.execPath, [probe, spec], { encoding: "utf8" }).trim());
const ours: number[] = [];
const theirs: number[] = [];
for (let i = 0; i < RUNS; i++) {
  // Interleaved, the order alternating, so a slow moment of a shared machine hits both.
  if (i % 2) theirs.push(time("openai"));
  ours.push(time("tinker-ts"));
  if (!(i % 2)) theirs.push(time("openai"));
}
console.log(`  tinker-ts: ${ours.map((x) => x.toFixed(1)).join(" ")} ms`);
console.log(`  openai:    ${theirs.map((x) => x.toFixed(1)).join(" ")} ms`);
report({
  id: "i1",
  measure: `cold import of tinker-ts in a fresh Node process / openai@${OPENAI_VERSION}'s`,
  value: Number((median(ours) / median(theirs)).toFixed(3)),
  unit: "× openai",
  target: "≤ 0.5",
  detail: `tinker-ts ${median(ours).toFixed(1)} ms (${spread(ours, 1)}), openai ${median(theirs).toFixed(1)} ms (${spread(theirs, 1)}); medians of ${RUNS}, interleaved`,
});
