/**
 * Issue 14, acceptance 1 and 4, quick variant of scripts/fault-run.ts: 30 training steps through
 * the fault proxy (a real node:http server in front of `tinker-ts serve`), every fault kind at
 * least once, against the same steps on a fresh fault-free server.
 */
import { describe, expect, it } from "vitest";
import { FAULT_KINDS, type FaultKind } from "../scripts/fault-proxy.js";
import { faultRun } from "../scripts/fault-run.js";

describe("a training run through the fault proxy", () => {
  it("30 steps with every fault kind: applied exactly once, bit-equal, no error, no key anywhere", async () => {
    // Every ninth API request is disturbed, the kinds in turn (~15 faults, each kind at least once).
    const choose = ({ route, index }: { route: string; index: number }): FaultKind | undefined => {
      if (route.endsWith("/telemetry") || index % 9 !== 8) return undefined;
      return FAULT_KINDS[Math.floor(index / 9) % FAULT_KINDS.length];
    };
    const result = await faultRun({ steps: 30, choose, timeoutMs: 1_000, lateMs: 200 });

    expect(result.faulted.errors.map(String)).toEqual([]);
    expect(result.faultFree.errors.map(String)).toEqual([]);
    for (const kind of FAULT_KINDS) expect(result.faultsByKind[kind], kind).toBeGreaterThanOrEqual(1);
    expect(result.echoedPages).toBeGreaterThanOrEqual(1);
    // The backend's audit: seq_ids 1…61 (30 × forward_backward + optim_step, the final forward), once each.
    expect(result.faulted.applied).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
    expect(result.exactlyOnce).toBe(true);
    expect(result.faulted.steps).toEqual(result.faultFree.steps);
    expect(result.lossesEqual).toBe(true);
    expect(result.weightsEqual).toBe(true);
    expect(result.scanned.length).toBeGreaterThan(0);
    expect(result.keyLeaked).toBe(false);
  }, 60_000);
});
