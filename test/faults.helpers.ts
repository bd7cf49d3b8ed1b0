/**
 * Helpers of the reliability tests (faults, soak, recovery, security): the SDK against the real
 * local backend with a fault layer in front, every request recorded (with its time), and the
 * backend's audit of applied (model_id, seq_id) pairs.
 */
import type { ClientOptions } from "../src/index.js";
import { ServiceClient } from "../src/index.js";
import { LocalBackend } from "../src/local/backend.js";
import {
  type ChaosRule,
  type FaultPlan,
  type InjectedFault,
  withChaos,
  withFaultPlan,
} from "../src/local/chaos.js";
import { createHandler } from "../src/local/handler.js";
import type { LocalTinkerOptions } from "../src/local/index.js";

export const API_KEY = "tml-faults-secret-0123456789abcdef";
export const MODEL = "tinker-ts/byte-lm-tiny";

export interface TimedRequest {
  method: string;
  path: string;
  url: string;
  headers: Headers;
  body: Uint8Array;
  at: number;
}

export interface FaultyOptions {
  chaos?: ChaosRule[];
  plan?: FaultPlan;
  local?: Omit<LocalTinkerOptions, "chaos">;
  client?: ClientOptions;
}

export function faultyService(options: FaultyOptions = {}) {
  const applied: { modelId: string; seqId: number }[] = [];
  const backend = new LocalBackend({
    ...options.local,
    onApplied: (modelId, seqId) => applied.push({ modelId, seqId }),
  });
  const handler = createHandler(backend, { longPollMs: 2_000, ...options.local });
  let inner: (request: Request) => Promise<Response> = handler.fetch;
  if (options.chaos?.length) inner = withChaos(inner, options.chaos);
  let log: InjectedFault[] = [];
  if (options.plan) {
    const planned = withFaultPlan(inner, options.plan);
    inner = planned.fetch;
    log = planned.log;
  }
  const requests: TimedRequest[] = [];
  const fetch = async (request: Request): Promise<Response> => {
    requests.push({
      method: request.method,
      path: new URL(request.url).pathname,
      url: request.url,
      headers: new Headers(request.headers),
      body: new Uint8Array(await request.clone().arrayBuffer()),
      at: performance.now(),
    });
    return inner(request);
  };
  const service = new ServiceClient({
    apiKey: API_KEY,
    baseURL: "http://local.tinker",
    fetch,
    telemetry: false,
    ...options.client,
  });
  return {
    service,
    backend,
    requests,
    applied,
    log,
    async close() {
      await service.close();
      handler.close();
    },
  };
}

export type Faulty = ReturnType<typeof faultyService>;

/** Active timers of this process (Node), to check that nothing was left behind. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

/** Waits until `check` holds (polling every 10 ms), at most `ms`. */
export async function eventually(check: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Each (model_id, seq_id) applied exactly once, and seq_ids 1…n contiguous per model. */
export function auditSeqIds(applied: { modelId: string; seqId: number }[]) {
  const byModel = new Map<string, number[]>();
  for (const { modelId, seqId } of applied) byModel.set(modelId, [...(byModel.get(modelId) ?? []), seqId]);
  let duplicated = 0;
  let lost = 0;
  for (const seqIds of byModel.values()) {
    const seen = new Set<number>();
    for (const s of seqIds) {
      if (seen.has(s)) duplicated++;
      seen.add(s);
    }
    const max = Math.max(...seqIds);
    for (let s = 1; s <= max; s++) if (!seen.has(s)) lost++;
  }
  return { applied: applied.length, duplicated, lost };
}
