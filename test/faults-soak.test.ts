/**
 * The soak of bench/soak.ts, shortened for the default suite: 50 training steps with ~20 % of the
 * requests faulted by a seeded plan end with the same weights (forward logprobs, bit for bit) and the
 * same samples as a fault-free run, every seq_id applied exactly once. The full 1,000-step run:
 * `npx tsx bench/soak.ts`.
 */
import { describe, expect, it } from "vitest";
import { runSoak } from "../bench/soak.js";
import { withFaultPlan } from "../src/local/chaos.js";

describe("soak (50 steps)", () => {
  it("ends with the fault-free weights, no step lost or applied twice", async () => {
    const result = await runSoak({
      steps: 50,
      seed: 11,
      rate: 0.2,
      rank: 1,
      // The fast faults (the slow ones, drops and 429 back-offs, run in the full soak).
      kinds: { http500: 2, http503: 2, poll408: 2, poll410: 2, delay: 2, reset: 1 },
    });
    expect(result.faultsInjected).toBeGreaterThan(20);
    expect(result.faultsByKind.reset).toBeGreaterThan(0);
    expect(result).toMatchObject({ lost: 0, duplicated: 0, weightsEqual: true, samplesEqual: true });
    expect(result.applied).toBe(2 * 50 + 1);
  });
});

describe("withFaultPlan", () => {
  const ok = async () => new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
  const poll = (type: string) =>
    new Request("http://x/api/v1/retrieve_future", {
      method: "POST",
      headers: { "x-tinker-request-type": type },
    });

  async function drive(seed: number, rate: number) {
    const plan = withFaultPlan(ok, { seed, rate, kinds: { http500: 1, poll410: 1, poll408: 1 } });
    for (let i = 0; i < 200; i++) {
      const request =
        i % 2
          ? poll(i % 4 === 1 ? "Sample" : "ForwardBackward")
          : new Request("http://x/api/v1/optim_step", { method: "POST" });
      await plan.fetch(request).catch(() => undefined);
    }
    return plan.log;
  }

  it("is deterministic per seed, hits about `rate` of the requests, and never expires training polls", async () => {
    const a = await drive(5, 0.3);
    expect(await drive(5, 0.3)).toEqual(a);
    expect(await drive(6, 0.3)).not.toEqual(a);
    expect(a.length).toBeGreaterThan(30);
    expect(a.length).toBeLessThan(90);
    expect(a.filter((f) => f.kind === "poll410").every((f) => f.requestType === "Sample")).toBe(true);
    expect(a.filter((f) => f.kind === "poll408").every((f) => f.endpoint === "retrieve_future")).toBe(true);
    expect(await drive(5, 0)).toEqual([]);
  });
});
