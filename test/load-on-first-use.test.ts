/**
 * loadOnFirstUse: a part of the SDK that fails to load (in a browser, a code chunk whose download
 * failed) is an APIConnectionError naming the part, and the next call loads it again.
 */
import { describe, expect, it } from "vitest";
import { loadOnFirstUse } from "../src/clients/load-on-first-use.js";
import { APIConnectionError } from "../src/core/errors.js";

describe("loadOnFirstUse", () => {
  it("reports a failed load as an APIConnectionError and tries again on the next call", async () => {
    let attempts = 0;
    const load = loadOnFirstUse("training client", async () => {
      attempts++;
      if (attempts === 1) throw new TypeError("Failed to fetch dynamically imported module");
      return { ready: true };
    });
    const failure = await load().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(APIConnectionError);
    expect((failure as Error).message).toMatch(
      /training client.*Failed to fetch dynamically imported module/,
    );
    expect((failure as APIConnectionError).cause).toBeInstanceOf(TypeError);
    expect(await load()).toEqual({ ready: true });
    expect(await load()).toEqual({ ready: true });
    expect(attempts).toBe(2);
  });
});
