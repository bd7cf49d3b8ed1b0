/**
 * Fault injection for the local backend (DESIGN.md §5): answer matching requests with an error status,
 * a delay or a dropped connection, a given number of times, before letting the real backend answer.
 * This is how the SDK's retry and polling logic is tested against real behaviour.
 */

import { mulberry32 } from "../internal/random.js";

export interface ChaosRule {
  /** Endpoint after `/api/v1/`, e.g. `retrieve_future` or `asample`. */
  endpoint: string;
  /** How many matching requests to disturb (default 1). */
  times?: number;
  /** Let this many matching requests through first (default 0). */
  after?: number;
  /** Answer with this status instead of the real answer. */
  status?: number;
  /** JSON body for the injected status (default `{ detail: "chaos" }`). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering (with the injected status, or the real answer). */
  delayMs?: number;
  /** Fail the request as a network error (the fetch rejects) before the backend sees it. */
  drop?: boolean;
  /**
   * Let the backend handle the request, then fail as a network error: the work was done but the
   * answer was lost (a connection reset after the server committed). Retries must not apply it twice.
   */
  reset?: boolean;
  /** Answer with the real response whose body stream fails after half its bytes (reset mid-body). */
  resetBody?: boolean;
  /** Answer with the real response cut to half its bytes (a proxy that truncated it). */
  truncate?: boolean;
  /** Answer 200 with a body that is not valid JSON. */
  malformed?: boolean;
  /** Answer with the real JSON answer passed through this function (e.g. a field removed). */
  transform?: (json: unknown) => unknown;
}

export function withChaos(
  fetch: (request: Request) => Promise<Response>,
  rules: readonly ChaosRule[],
): (request: Request) => Promise<Response> {
  const state = rules.map((rule) => ({ rule, seen: 0, fired: 0 }));
  return async (request) => {
    const endpoint = endpointOf(request);
    const entry = state.find(
      (s) => s.rule.endpoint === endpoint && s.fired < (s.rule.times ?? 1) && s.seen++ >= (s.rule.after ?? 0),
    );
    if (!entry) return fetch(request);
    entry.fired++;
    return applyRule(entry.rule, fetch, request);
  };
}

async function applyRule(
  rule: ChaosRule,
  fetch: (request: Request) => Promise<Response>,
  request: Request,
): Promise<Response> {
  if (rule.delayMs) await delay(rule.delayMs, request.signal);
  if (rule.drop) throw new TypeError("chaos: connection dropped");
  if (rule.malformed) {
    return new Response('{"request_id": "req-', {
      status: rule.status ?? 200,
      headers: { "content-type": "application/json", ...rule.headers },
    });
  }
  if (rule.status !== undefined) {
    return new Response(JSON.stringify(rule.body ?? { detail: "chaos" }), {
      status: rule.status,
      headers: { "content-type": "application/json", ...rule.headers },
    });
  }
  const real = await fetch(request);
  if (rule.reset) {
    await real.body?.cancel();
    throw new TypeError("chaos: connection reset after the server answered");
  }
  if (rule.truncate || rule.resetBody || rule.transform) {
    const bytes = new Uint8Array(await real.arrayBuffer());
    const headers = new Headers(real.headers);
    headers.delete("content-length");
    if (rule.transform) {
      const json = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      return new Response(JSON.stringify(rule.transform(json)), { status: real.status, headers });
    }
    const half = bytes.slice(0, Math.floor(bytes.length / 2));
    if (rule.truncate) return new Response(half, { status: real.status, headers });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(half);
        controller.error(new TypeError("chaos: connection reset while reading the body"));
      },
    });
    return new Response(body, { status: real.status, headers });
  }
  return real;
}

/** Kinds of fault a seeded plan may inject. */
export type FaultKind =
  | "http500"
  | "http503"
  | "http429"
  | "drop"
  | "reset"
  | "poll408"
  | "poll410"
  | "delay";

export interface FaultPlan {
  /** Seed of the plan's pseudo-random choices: the same seed injects the same faults. */
  seed: number;
  /** Share of requests to disturb, 0…1. */
  rate: number;
  /** Kinds to choose from, with relative weights (default: each 1). */
  kinds: Partial<Record<FaultKind, number>>;
  /** Endpoints that may be disturbed (default: every endpoint under `/api/v1/` but telemetry). */
  endpoints?: readonly string[];
  /**
   * Poll request types (`X-Tinker-Request-Type`) a 410 may hit. Default `["Sample"]`: a 410 on a
   * training poll surfaces to the user by protocol (§4.3), so a plan that must not fail a run
   * leaves it out.
   */
  expireRequestTypes?: readonly string[];
  /** Server retry delay put on 5xx and 429 answers, in ms (`retry-after-ms`). Default 1. */
  retryAfterMs?: number;
}

/** One injected fault, as logged by `withFaultPlan`. */
export interface InjectedFault {
  index: number;
  endpoint: string;
  kind: FaultKind;
  requestType?: string;
}

/**
 * A seeded random fault plan in front of the backend: about `rate` of the matching requests get a
 * fault drawn from `kinds`. `log` lists every fault it injected, in order.
 */
export function withFaultPlan(
  fetch: (request: Request) => Promise<Response>,
  plan: FaultPlan,
): { fetch: (request: Request) => Promise<Response>; log: InjectedFault[] } {
  const random = mulberry32(plan.seed);
  const log: InjectedFault[] = [];
  const retryAfter = { "retry-after-ms": String(plan.retryAfterMs ?? 1) };
  const expirable = new Set(plan.expireRequestTypes ?? ["Sample"]);
  let index = 0;
  const faulted = async (request: Request): Promise<Response> => {
    const endpoint = endpointOf(request);
    const n = index++;
    if (endpoint === "" || endpoint === "telemetry") return fetch(request);
    if (plan.endpoints && !plan.endpoints.includes(endpoint)) return fetch(request);
    if (random() >= plan.rate) return fetch(request);
    const isPoll = endpoint === "retrieve_future";
    const requestType = isPoll ? (request.headers.get("x-tinker-request-type") ?? "") : undefined;
    const choices = (Object.entries(plan.kinds) as [FaultKind, number][]).filter(([kind, weight]) => {
      if (!(weight > 0)) return false;
      if (kind === "poll408") return isPoll;
      if (kind === "poll410") return isPoll && expirable.has(requestType!);
      return true;
    });
    const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
    if (total === 0) return fetch(request);
    let pick = random() * total;
    let kind = choices.at(-1)![0];
    for (const [candidate, weight] of choices) {
      pick -= weight;
      if (pick < 0) {
        kind = candidate;
        break;
      }
    }
    log.push({ index: n, endpoint, kind, ...(requestType !== undefined ? { requestType } : {}) });
    const rule: ChaosRule = (() => {
      switch (kind) {
        case "http500":
          return { endpoint, status: 500, headers: retryAfter };
        case "http503":
          return { endpoint, status: 503, headers: retryAfter };
        case "http429":
          return { endpoint, status: 429, headers: retryAfter };
        case "drop":
          return { endpoint, drop: true };
        case "reset":
          return { endpoint, reset: true };
        case "poll408":
          return {
            endpoint,
            status: 408,
            body: { queue_state: "paused_rate_limit", queue_state_reason: "chaos plan" },
          };
        case "poll410":
          return { endpoint, status: 410 };
        case "delay":
          return { endpoint, delayMs: 1 + Math.floor(random() * 5) };
      }
    })();
    return applyRule(rule, fetch, request);
  };
  return { fetch: faulted, log };
}

function endpointOf(request: Request): string {
  const pathname = new URL(request.url).pathname;
  const marker = pathname.indexOf("/api/v1/");
  return marker < 0 ? "" : pathname.slice(marker + "/api/v1/".length);
}

/** Waits like a slow server, but gives up when the client aborts, as a real connection would. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason ?? new DOMException("The operation was aborted.", "AbortError"));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}
