/**
 * Fault injection for the local backend (DESIGN.md §5): answer matching requests with an error status,
 * a delay or a dropped connection, a given number of times, before letting the real backend answer.
 * This is how the SDK's retry and polling logic is tested against real behaviour.
 */

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
  /** Fail the request as a network error (the fetch rejects). */
  drop?: boolean;
}

export function withChaos(
  fetch: (request: Request) => Promise<Response>,
  rules: readonly ChaosRule[],
): (request: Request) => Promise<Response> {
  const state = rules.map((rule) => ({ rule, seen: 0, fired: 0 }));
  return async (request) => {
    const marker = new URL(request.url).pathname.indexOf("/api/v1/");
    const endpoint = marker < 0 ? "" : new URL(request.url).pathname.slice(marker + "/api/v1/".length);
    const entry = state.find(
      (s) => s.rule.endpoint === endpoint && s.fired < (s.rule.times ?? 1) && s.seen++ >= (s.rule.after ?? 0),
    );
    if (!entry) return fetch(request);
    entry.fired++;
    const { rule } = entry;
    if (rule.delayMs) await delay(rule.delayMs, request.signal);
    if (rule.drop) throw new TypeError("chaos: connection dropped");
    if (rule.status === undefined) return fetch(request);
    return new Response(JSON.stringify(rule.body ?? { detail: "chaos" }), {
      status: rule.status,
      headers: { "content-type": "application/json", ...rule.headers },
    });
  };
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
