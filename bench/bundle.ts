/**
 * Bench case (e): browser bundle size of the SDK, min + gzip. Runs the very measurement of the CI size
 * check (`npm run size`, scripts/bundle-size.mjs) and reports its figures next to the issue's target
 * (whole SDK ≤ 25 KB gzip) and the CI budget in .size-budget.json (1 KB = 1024 bytes).
 *
 *   npx tsx bench/bundle.ts [--quick]
 *
 * `--quick` is accepted for the smoke test; the measurement takes a second or two either way.
 * Prints `RESULT {...}` lines for bench/run.ts (see its header for the format).
 */

import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { openaiPeer } from "./lib/openai-peer.js";
import { report } from "./lib/result.js";

interface Measurement {
  figures: Record<string, number>;
  budget: Record<string, number>;
  target?: Record<string, number>;
  lazy: { name: string; min: number; gzip: number; packages: string[] }[];
  apps: Record<string, string[]>;
}

const script = fileURLToPath(new URL("../scripts/bundle-size.mjs", import.meta.url));

async function measure(): Promise<Measurement> {
  // openai-node, the yardstick of issue #15, measured in the same run (installed outside the repo).
  const peer = openaiPeer();
  const env = peer ? { ...process.env, OPENAI_NODE_DIR: peer } : process.env;
  // --no-check: the bench reports figures; failing on the budget is the CI check's job.
  const { stdout } = await promisify(execFile)(process.execPath, [script, "--json", "--no-check"], { env });
  const line = stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`scripts/bundle-size.mjs printed no JSON:\n${stdout}`);
  return JSON.parse(line) as Measurement;
}

const { figures, budget, target, lazy, apps } = await measure();
const kb = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;
const budgetOf = (key: string) => (budget[key] === undefined ? "" : `CI budget ${budget[key]} KB`);
const goal = target?.["whole.gzip"];

console.log("Browser bundle of src/index.ts: esbuild, minified, ESM, platform browser, splitting; gzip -9");
for (const chunk of lazy) {
  const what = chunk.packages.length ? chunk.packages.join(", ") : "SDK code";
  console.log(`  lazy chunk (${what}): ${kb(chunk.min)} KB min, ${kb(chunk.gzip)} KB gzip`);
}

report({
  id: "e1",
  measure: "browser bundle, eager entry (min+gzip)",
  value: figures["eager.gzip"]!,
  unit: "KB",
  detail: `what import from "tinker-ts" loads before any lazy import(); ${budgetOf("eager.gzip")}`,
});
report({
  id: "e2",
  measure: "browser bundle, whole SDK incl. lazy chunks (min+gzip)",
  value: figures["whole.gzip"]!,
  unit: "KB",
  ...(goal === undefined ? {} : { target: `≤ ${goal}` }),
  detail: `eager + ${lazy.length} lazy chunk(s): ${lazy.map((c) => `${c.packages.join(", ") || "SDK"} ${kb(c.gzip)} KB`).join("; ")}; ${budgetOf("whole.gzip")}`,
});
report({
  id: "e3",
  measure: "browser bundle, eager entry (min)",
  value: figures["eager.min"]!,
  unit: "KB",
  detail: budgetOf("eager.min"),
});
report({
  id: "e4",
  measure: "browser bundle, whole SDK (min)",
  value: figures["whole.min"]!,
  unit: "KB",
  detail: budgetOf("whole.min"),
});
let id = 5;
for (const [name, imports] of Object.entries(apps)) {
  report({
    id: `e${id++}`,
    measure: `browser bundle, app "${name}" tree-shaken (min+gzip)`,
    value: figures[`app.${name}.gzip`]!,
    unit: "KB",
    detail: `imports ${imports.join(", ")}; ${budgetOf(`app.${name}.gzip`)}`,
  });
}
report({
  id: `e${id++}`,
  measure: "tinker-ts/toolkit on top of the whole SDK's eager entry (min+gzip)",
  value: figures["toolkit.extra.gzip"]!,
  unit: "KB",
  detail: `a separate entry, not counted in e1–e4; ${figures["toolkit.extra.min"]} KB min; ${budgetOf("toolkit.extra.gzip")}`,
});
const openai = figures["peer.openai-chat.gzip"];
if (openai === undefined) {
  console.log("openai-node could not be installed: the comparison with its minimal chat app is skipped");
} else {
  const firstCall = figures["app.sample-only.first-call.gzip"]!;
  report({
    id: `e${id++}`,
    measure: "browser bundle, sample-only app with ky (its first call) / openai-node minimal chat app",
    value: Number((firstCall / openai).toFixed(3)),
    unit: "× openai",
    target: "≤ 0.6",
    detail: `${firstCall} KB vs ${openai} KB gzip (eager only: ${figures["app.sample-only.gzip"]} KB); same esbuild settings, same run`,
  });
  report({
    id: `e${id++}`,
    measure: "browser bundle, whole SDK / openai-node minimal chat app",
    value: Number((figures["whole.gzip"]! / openai).toFixed(3)),
    unit: "× openai",
    target: "≤ 1.0",
    detail: `${figures["whole.gzip"]} KB vs ${openai} KB gzip`,
  });
}
