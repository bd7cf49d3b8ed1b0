/** Unit tests of the pure retry decisions and delays (PROTOCOL.md §5). */
import { describe, expect, it } from "vitest";
import {
  genericLoopDelayMs,
  isRetryableStatus,
  pollBackoffMs,
  serverRetryDelayMs,
  shouldRetryResponse,
  transportBackoffMs,
} from "../src/core/retry-policy.js";

describe("retry policy", () => {
  it("retries 408, 409, 429 and 5xx only", () => {
    expect([400, 401, 404, 408, 409, 410, 422, 429, 500, 503, 599].filter(isRetryableStatus)).toEqual([
      408, 409, 429, 500, 503, 599,
    ]);
  });

  it("lets x-should-retry override the status in both directions", () => {
    expect(shouldRetryResponse(400, new Headers({ "x-should-retry": "true" }))).toBe(true);
    expect(shouldRetryResponse(503, new Headers({ "x-should-retry": "false" }))).toBe(false);
    expect(shouldRetryResponse(503, new Headers())).toBe(true);
  });

  it("honours retry-after-ms, then retry-after (seconds or date), only within (0, 60] s", () => {
    expect(serverRetryDelayMs(new Headers({ "retry-after-ms": "250" }))).toBe(250);
    expect(serverRetryDelayMs(new Headers({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250);
    expect(serverRetryDelayMs(new Headers({ "retry-after": "1.5" }))).toBe(1500);
    expect(serverRetryDelayMs(new Headers({ "retry-after": "61" }))).toBeUndefined();
    expect(serverRetryDelayMs(new Headers({ "retry-after": "0" }))).toBeUndefined();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(serverRetryDelayMs(new Headers({ "retry-after": "Thu, 01 Jan 2026 00:00:10 GMT" }), now)).toBe(
      10_000,
    );
    expect(serverRetryDelayMs(new Headers({ "retry-after": "soon" }))).toBeUndefined();
  });

  it("backs off 0.5 s · 2^r up to 10 s with up to 25 % jitter", () => {
    expect([0, 1, 2, 3, 4, 5, 9].map((r) => transportBackoffMs(r, () => 0))).toEqual([
      500, 1000, 2000, 4000, 8000, 10000, 10000,
    ]);
    expect(transportBackoffMs(0, () => 0.999)).toBeCloseTo(375.1, 0);
  });

  it("waits 1, 2, 4 … 30 s in the generic loop and the poller", () => {
    expect([0, 1, 2, 3, 4, 5, 6].map(genericLoopDelayMs)).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ]);
    expect(pollBackoffMs(0)).toBe(1000);
    expect(pollBackoffMs(10)).toBe(30000);
  });
});
