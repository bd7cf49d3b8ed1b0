/**
 * Keeps the bench code from rotting: every bench case that exists runs with `--quick` in its own
 * process, as `npm run bench` runs it, and must exit 0 with well-formed RESULT lines. Nothing here
 * asserts on speed (the goals are measured by the bench, not tested).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseResultLine, targetMet } from "../bench/run.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const CASES = ["wire", "client", "engine", "bundle"].filter((name) => existsSync(`${root}/bench/${name}.ts`));

function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function resultLines(stdout: string): string[] {
  return stdout.split("\n").filter((line) => line.startsWith("RESULT "));
}

describe("bench cases run with --quick", () => {
  // Concurrently: each is mostly one busy process, and together they stay well inside the budget.
  it.concurrent.each(CASES)("bench/%s.ts exits 0 and prints well-formed RESULT lines", async (name) => {
    const { code, stdout, stderr } = await runNode([`bench/${name}.ts`, "--quick"]);
    expect(code, `${name} failed:\n${stderr}\n${stdout.slice(-2000)}`).toBe(0);
    const lines = resultLines(stdout);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const result = parseResultLine(line);
      expect(result, `malformed: ${line}`).toBeDefined();
      expect(Number.isFinite(result!.value)).toBe(true);
      expect(result!.id).toMatch(/^[a-z]\d+$/);
    }
  });

  it.concurrent("bench/run.ts runs the chosen case and ends with the summary table", async () => {
    const { code, stdout, stderr } = await runNode(["bench/run.ts", "--quick", "--only", "engine"]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^machine: .+, \d+ cores, Node v\d+/m);
    const summary = stdout.slice(stdout.indexOf("=== summary"));
    expect(summary).toMatch(/^id\s+measure\s+value\s+unit\s+target\s+met\s+detail$/m);
    expect(summary).toMatch(/^f1\s+engine training/m);
    expect(stdout).not.toContain("=== client");
  });

  it("bench/run.ts refuses an unknown case name", async () => {
    const { code, stderr } = await runNode(["bench/run.ts", "--only", "nonsense"]);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown case(s): nonsense");
  });
});

describe("RESULT lines", () => {
  it("parses a well-formed line and rejects malformed ones", () => {
    const line = 'RESULT {"id":"a1","measure":"encode","value":123.4,"unit":"M tokens/s","target":"≥ 55"}';
    expect(parseResultLine(line)).toEqual({
      id: "a1",
      measure: "encode",
      value: 123.4,
      unit: "M tokens/s",
      target: "≥ 55",
    });
    expect(parseResultLine('RESULT {"id":"a1","measure":"m","value":"fast","unit":"u"}')).toBeUndefined();
    expect(parseResultLine('RESULT {"id":"a1","measure":"m","value":null,"unit":"u"}')).toBeUndefined();
    expect(parseResultLine('RESULT {"id":"A","measure":"m","value":1,"unit":"u"}')).toBeUndefined();
    expect(parseResultLine("RESULT {not json")).toBeUndefined();
    expect(parseResultLine('{"id":"a1","measure":"m","value":1,"unit":"u"}')).toBeUndefined();
  });

  it("checks comparable targets and leaves others blank", () => {
    const figure = (value: number, target?: string) => ({ id: "c1", measure: "m", value, unit: "u", target });
    expect(targetMet(figure(500, "< 1000"))).toBe("yes");
    expect(targetMet(figure(1500, "< 1000"))).toBe("NO");
    expect(targetMet(figure(55, "≥ 55"))).toBe("yes");
    expect(targetMet(figure(54.9, ">= 55"))).toBe("NO");
    expect(targetMet(figure(25, "≤ 25"))).toBe("yes");
    expect(targetMet(figure(1, "flat"))).toBe("");
    expect(targetMet(figure(1))).toBe("");
  });
});
