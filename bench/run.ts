/**
 * `npm run bench`: runs every bench case in its own child process, streams its output, and ends with
 * one table of every figure.
 *
 *   npm run bench [-- --quick] [-- --only wire,client]
 *
 * Each case is `bench/<case>.ts`, run as `node --expose-gc --import tsx bench/<case>.ts [--quick]`
 * (its own process, so one case's heap, JIT state and timers cannot skew another's). A case reports a
 * figure with one line of the form
 *
 *   RESULT {"id":"a1","measure":"…","value":123.4,"unit":"M tokens/s","target":"≥ 55","detail":"…"}
 *
 * where `id` is the letter of the measure (issue #7) plus a digit, `value` a number, and `target` and
 * `detail` are optional. A target of the form `< n`, `≤ n`, `> n` or `≥ n` is checked in the table.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BenchResult } from "./lib/result.js";

const CASES = ["wire", "client", "engine", "bundle", "import", "leak", "python"] as const;

interface CaseOutcome {
  name: string;
  status: "ok" | "missing" | "failed";
  exitCode?: number | null;
  results: BenchResult[];
  seconds: number;
}

/** A RESULT line's payload, or undefined when the line is not a well-formed one. */
export function parseResultLine(line: string): BenchResult | undefined {
  if (!line.startsWith("RESULT ")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line.slice("RESULT ".length));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  const optionalString = (x: unknown) => x === undefined || typeof x === "string";
  if (
    typeof r.id !== "string" ||
    !/^[a-z]\d+$/.test(r.id) ||
    typeof r.measure !== "string" ||
    typeof r.value !== "number" ||
    !Number.isFinite(r.value) ||
    typeof r.unit !== "string" ||
    !optionalString(r.target) ||
    !optionalString(r.detail)
  ) {
    return undefined;
  }
  return r as unknown as BenchResult;
}

/** "yes"/"no" for a comparable target (`< 1000`, `≥ 55`, …), "" for any other (or none). */
export function targetMet(result: BenchResult): string {
  const match = /^\s*(<=|>=|≤|≥|<|>)\s*(-?[\d.]+)/.exec(result.target ?? "");
  if (!match) return "";
  const bound = Number(match[2]);
  const v = result.value;
  const ok = {
    "<": v < bound,
    "<=": v <= bound,
    "≤": v <= bound,
    ">": v > bound,
    ">=": v >= bound,
    "≥": v >= bound,
  }[match[1] as "<"];
  return ok ? "yes" : "NO";
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  if (index >= 0) return process.argv[index + 1];
  const inline = process.argv.find((arg) => arg.startsWith(`--${name}=`));
  return inline?.slice(name.length + 3);
}

const root = fileURLToPath(new URL("..", import.meta.url));

function runCase(name: string, quick: boolean): Promise<CaseOutcome> {
  const script = `bench/${name}.ts`;
  if (!existsSync(`${root}/${script}`)) {
    console.log(`\n=== ${name}: missing (${script} does not exist yet)`);
    return Promise.resolve({ name, status: "missing", results: [], seconds: 0 });
  }
  console.log(`\n=== ${name}: node --expose-gc --import tsx ${script}${quick ? " --quick" : ""}`);
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", script, ...(quick ? ["--quick"] : [])],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
  );
  const results: BenchResult[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    console.log(line);
    const result = parseResultLine(line);
    if (result) results.push(result);
    else if (line.startsWith("RESULT ")) console.log(`  (malformed RESULT line ignored)`);
  });
  return new Promise((resolve) => {
    child.on("close", (exitCode) => {
      const seconds = (performance.now() - started) / 1000;
      resolve({ name, status: exitCode === 0 ? "ok" : "failed", exitCode, results, seconds });
    });
  });
}

/** A plain-text table: columns padded to their widest cell, long cells kept whole. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function formatValue(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumSignificantDigits: 4 });
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const only = option("only")
    ?.split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const unknown = only?.filter((name) => !(CASES as readonly string[]).includes(name)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown case(s): ${unknown.join(", ")} (cases: ${CASES.join(", ")})`);
    process.exitCode = 2;
    return;
  }
  const cpu = cpus();
  console.log(
    `machine: ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${cpu.length} cores, Node ${process.version}, ` +
      `${process.platform}/${process.arch}${quick ? " (--quick)" : ""}`,
  );

  const outcomes: CaseOutcome[] = [];
  for (const name of CASES) {
    if (only && !only.includes(name)) continue;
    outcomes.push(await runCase(name, quick));
  }

  const rows: string[][] = [];
  for (const outcome of outcomes) {
    if (outcome.status === "missing") rows.push(["—", `${outcome.name}: missing`, "", "", "", "", ""]);
    for (const r of outcome.results) {
      rows.push([
        r.id,
        r.measure,
        formatValue(r.value),
        r.unit,
        r.target ?? "",
        targetMet(r),
        r.detail ?? "",
      ]);
    }
    if (outcome.status === "ok" && outcome.results.length === 0) {
      rows.push(["—", `${outcome.name}: no RESULT lines`, "", "", "", "", ""]);
    }
    if (outcome.status === "failed") {
      rows.push(["—", `${outcome.name}: FAILED (exit code ${outcome.exitCode})`, "", "", "", "", ""]);
    }
  }
  console.log("\n=== summary");
  console.log(table(["id", "measure", "value", "unit", "target", "met", "detail"], rows));
  console.log(
    `\n${outcomes.map((o) => `${o.name} ${o.status}${o.status === "missing" ? "" : ` (${o.seconds.toFixed(1)} s)`}`).join(", ")}`,
  );
  if (outcomes.some((o) => o.status === "failed")) process.exitCode = 1;
}

const isMain = process.argv[1]?.replace(/\\/g, "/").endsWith("bench/run.ts");
if (isMain) await main();
