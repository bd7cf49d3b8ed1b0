import { describe, expect, it } from "vitest";
import { lazyImport } from "../src/internal/lazy-import.js";

describe("lazyImport", () => {
  it("imports once and shares the module", async () => {
    let calls = 0;
    const load = lazyImport(async () => ({ n: ++calls }));
    const [a, b] = await Promise.all([load(), load()]);
    expect(a).toBe(b);
    expect(await load()).toBe(a);
    expect(calls).toBe(1);
  });

  it("does not keep a failure: the next call tries again", async () => {
    let calls = 0;
    const load = lazyImport(async () => {
      calls++;
      if (calls === 1) throw new Error("not installed");
      return { ok: true };
    });
    await expect(load()).rejects.toThrow("not installed");
    expect(await load()).toEqual({ ok: true });
    expect(calls).toBe(2);
  });
});
