/**
 * `futureEndpoint` (src/wire/endpoints/future-endpoint.ts) searches only the training and sampling
 * declarations, so that re-attaching to a future loads no REST code: every future any area declares
 * must be found there.
 */
import { describe, expect, it } from "vitest";
import { ENDPOINTS, futureEndpoint } from "../src/wire/endpoints/index.js";

describe("futureEndpoint", () => {
  it("finds the declaration of every future request type, whatever area declares it", () => {
    const futures = ENDPOINTS.filter((e) => e.future !== undefined);
    expect(futures.length).toBeGreaterThanOrEqual(10);
    for (const e of futures) expect(futureEndpoint(e.future!)).toBe(e);
  });

  it("refuses a request type that no endpoint declares", () => {
    expect(() => futureEndpoint("NoSuchType" as never)).toThrow(/no endpoint declares future type/);
  });
});
