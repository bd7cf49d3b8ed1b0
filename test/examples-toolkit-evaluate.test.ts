/** examples/toolkit/evaluate.ts runs on the embedded backend and prints sane, consistent figures. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The `key value` pairs of the first line starting with `label`. */
function figures(stdout: string, label: string): Record<string, number> {
  const line = stdout.split("\n").find((l) => l.startsWith(`${label} `));
  expect(line, `a "${label}" line`).toBeDefined();
  const words = line!.slice(label.length).trim().split(/\s+/);
  const result: Record<string, number> = {};
  for (let i = 0; i + 1 < words.length; i += 2) result[words[i]!] = Number(words[i + 1]);
  return result;
}

describe("examples/toolkit/evaluate.ts", () => {
  it("trains, then reports matching forward / computeLogprobs figures and sampler ≈ trainer", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "examples/toolkit/evaluate.ts", "--steps", "8"],
      { cwd: root, timeout: 120_000 },
    );
    const trainNll = [...stdout.matchAll(/^step (\d+) train_nll (\S+)$/gm)].map((m) => Number(m[2]));
    expect(trainNll).toHaveLength(8);
    expect(trainNll.at(-1)!).toBeLessThan(trainNll[0]! / 2);

    const before = figures(stdout, "before forward");
    const forward = figures(stdout, "after forward");
    const logprobs = figures(stdout, "after computeLogprobs");
    const heldOutBytes = " Ice\n Cow\n Cold\n".length; // completions; the EOS is not text
    for (const f of [before, forward, logprobs]) {
      expect(f.nll).toBeGreaterThan(0);
      expect(Number.isFinite(f.nll)).toBe(true);
      expect(f.perplexity).toBeCloseTo(Math.exp(f.nll!), 4);
      expect(f.tokens).toBe(heldOutBytes + 3); // one token per byte, plus an EOS each
      expect(f.bytes).toBe(heldOutBytes);
      expect(f.bits_per_byte).toBeCloseTo((f.nll! * f.tokens!) / Math.LN2 / f.bytes!, 4);
    }
    // A random-init byte model starts near log(vocab); training on the same format helps held-out.
    expect(before.nll).toBeGreaterThan(3);
    expect(forward.nll).toBeLessThan(before.nll!);
    // Trainer and sampler agree on the same weights.
    expect(logprobs.nll).toBeCloseTo(forward.nll!, 3);

    const comparison = figures(stdout, "sampler_vs_trainer");
    expect(comparison.count).toBeGreaterThan(0);
    expect(comparison.max_abs_diff).toBeLessThan(1e-3);
    expect(comparison.mean_abs_diff).toBeLessThanOrEqual(comparison.max_abs_diff!);
    expect(Math.abs(comparison.kl_k1!)).toBeLessThan(1e-3);
    expect(comparison.kl_k3).toBeGreaterThanOrEqual(0);
    expect(comparison.kl_k3).toBeLessThan(1e-6);
  });
});
