/**
 * The CI bundle-size check (scripts/bundle-size.mjs, `npm run size`) must fail when a figure grows
 * past its budget, and pass when every figure fits. Sizes themselves are not asserted here: the
 * budget file in the repo is what CI holds them to.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const script = fileURLToPath(new URL("../scripts/bundle-size.mjs", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "tinker-ts-size-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let budgetFiles = 0;

/** Runs the check against `budget`; resolves with its exit code and output instead of throwing. */
async function check(budget: Record<string, number>) {
  const file = join(scratch, `budget-${budgetFiles++}.json`);
  writeFileSync(file, JSON.stringify({ target: { "whole.gzip": 25 }, budget }));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, `--budget=${file}`]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

describe("bundle size check", () => {
  it("fails, naming the figure, when the bundle is over its budget", async () => {
    const result = await check({ "whole.gzip": 1, "eager.min": 10_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/whole\.gzip is [\d.]+ KB, over its budget of 1 KB/);
    expect(result.stderr).not.toMatch(/eager\.min/);
  });

  it("passes when every figure fits its budget", async () => {
    const result = await check({
      "eager.gzip": 10_000,
      "whole.gzip": 10_000,
      "app.sample-only.gzip": 10_000,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/whole SDK \(eager \+ lazy\), gzip\s+[\d.]+ KB/);
    expect(result.stdout).toMatch(/passed/);
  });

  it("fails on a budget key it does not measure, so a typo cannot switch a check off", async () => {
    const result = await check({ "whole.gzp": 10_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/whole\.gzp: in the budget file but not measured/);
  });
});
