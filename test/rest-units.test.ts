/**
 * The pure parts of the RestClient: tinker:// path parsing, datetime parsing, the billing and audit
 * time parameters, JWT claims for whoami, and the paging helper.
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { auditDay, billingWindow } from "../src/clients/rest/time-params.js";
import { whoamiFromClaims } from "../src/clients/rest/whoami.js";
import { PagePromise, parseTinkerPath, type ValidationError } from "../src/index.js";
import { nextOffsetByPageSize, nextOffsetFromCursor } from "../src/lib/pagination.js";
import { DateTimeSchema } from "../src/wire/rest-schemas.js";

describe("parseTinkerPath", () => {
  it("splits training and sampler checkpoint paths", () => {
    expect(parseTinkerPath("tinker://session-1:train:0/weights/step-10")).toEqual({
      tinkerPath: "tinker://session-1:train:0/weights/step-10",
      trainingRunId: "session-1:train:0",
      checkpointType: "training",
      checkpointId: "weights/step-10",
    });
    expect(parseTinkerPath("tinker://run/sampler_weights/final")).toMatchObject({
      trainingRunId: "run",
      checkpointType: "sampler",
      checkpointId: "sampler_weights/final",
    });
  });

  it.each([
    ["no scheme", "run/weights/a"],
    ["another scheme", "s3://run/weights/a"],
    ["two parts", "tinker://run/weights"],
    ["a name with a slash", "tinker://run/weights/a/b"],
    ["an unknown kind", "tinker://run/optimizer/a"],
    ["an empty run id", "tinker:///weights/a"],
    ["an empty name", "tinker://run/weights/"],
  ])("rejects %s", (_case, path) => {
    expect(() => parseTinkerPath(path)).toThrow(/invalid tinker path/);
    try {
      parseTinkerPath(path);
    } catch (error) {
      expect((error as ValidationError).issues[0]!.path).toBe("tinkerPath");
    }
  });
});

describe("response datetimes", () => {
  const parse = (value: unknown) => v.parse(DateTimeSchema, value);

  it("reads ISO strings (a missing zone means UTC) and Unix seconds", () => {
    expect(parse("2026-07-13T10:20:30Z").toISOString()).toBe("2026-07-13T10:20:30.000Z");
    expect(parse("2026-07-13T10:20:30.5+02:00").toISOString()).toBe("2026-07-13T08:20:30.500Z");
    expect(parse("2026-07-13T10:20:30").toISOString()).toBe("2026-07-13T10:20:30.000Z");
    expect(parse("2026-07-13 10:20:30z").toISOString()).toBe("2026-07-13T10:20:30.000Z");
    expect(parse("2026-07-13").toISOString()).toBe("2026-07-13T00:00:00.000Z");
    expect(parse(1_784_000_000).toISOString()).toBe(new Date(1_784_000_000_000).toISOString());
  });

  it("rejects what is not a datetime", () => {
    for (const bad of ["yesterday", "March 7, 2026", "2026-13-45T00:00:00Z", true, null]) {
      expect(v.safeParse(DateTimeSchema, bad).success).toBe(false);
    }
  });
});

describe("billing window", () => {
  it("sends whole UTC hours without milliseconds, from Dates or RFC 3339 strings", () => {
    expect(billingWindow(new Date("2026-07-13T00:00:00Z"), "2026-07-13T05:00:00+02:00")).toEqual({
      starting_on: "2026-07-13T00:00:00Z",
      ending_before: "2026-07-13T03:00:00Z",
    });
  });

  it.each([
    ["an unaligned start", "2026-07-13T00:30:00Z", "2026-07-13T03:00:00Z", "startingOn"],
    ["an offset that is not a whole hour", "2026-07-13T00:00:00+05:30", "2026-07-14T00:00:00Z", "startingOn"],
    ["a string without offset", "2026-07-13T00:00:00", "2026-07-14T00:00:00Z", "startingOn"],
    ["an end before the start", "2026-07-13T05:00:00Z", "2026-07-13T03:00:00Z", "endingBefore"],
    ["more than 14 days", "2026-07-01T00:00:00Z", "2026-07-15T01:00:00Z", "endingBefore"],
  ])("rejects %s", (_case, start, end, path) => {
    try {
      billingWindow(start, end);
      expect.unreachable();
    } catch (error) {
      expect((error as ValidationError).issues.map((i) => i.path)).toContain(path);
    }
  });

  it("accepts exactly 14 days", () => {
    expect(() => billingWindow("2026-07-01T00:00:00Z", "2026-07-15T00:00:00Z")).not.toThrow();
  });
});

describe("audit day", () => {
  it("takes the UTC day of a Date, or a YYYY-MM-DD string", () => {
    expect(auditDay(new Date("2026-07-13T23:30:00-02:00"))).toBe("2026-07-14");
    expect(auditDay("2026-07-13")).toBe("2026-07-13");
    expect(() => auditDay("13/07/2026")).toThrow(/YYYY-MM-DD/);
  });
});

describe("whoami claims", () => {
  it("maps sub and email, with an empty email as null", () => {
    expect(whoamiFromClaims({ sub: "user:1", email: "a@b.c" })).toEqual({
      user_urn: "user:1",
      email: "a@b.c",
    });
    expect(whoamiFromClaims({ sub: "user:1", email: "" })).toEqual({ user_urn: "user:1", email: null });
  });

  it("fails without an identity token or without sub", () => {
    expect(() => whoamiFromClaims(undefined)).toThrow(/tml- key carries no identity/);
    expect(() => whoamiFromClaims({ email: "a@b.c" })).toThrow(/no `sub` claim/);
  });
});

describe("PagePromise", () => {
  /** A list of `total` numbers served `limit` at a time, recording each requested offset. */
  function numbers(total: number, limit: number) {
    const offsets: number[] = [];
    const list = new PagePromise(
      {
        fetchPage: async (offset) => {
          offsets.push(offset);
          const items = Array.from(
            { length: Math.max(0, Math.min(limit, total - offset)) },
            (_, i) => offset + i,
          );
          return { items, cursor: { offset, limit, total_count: total } };
        },
        items: (page) => page.items,
        nextOffset: (page) => nextOffsetFromCursor(page.cursor, page.items.length),
      },
      0,
    );
    return { list, offsets };
  }

  it("sends nothing until used, and shares the first page between await and for-await", async () => {
    const { list, offsets } = numbers(5, 2);
    expect(offsets).toEqual([]);
    expect((await list).items).toEqual([0, 1]);
    const seen: number[] = [];
    for await (const n of list) seen.push(n);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(offsets).toEqual([0, 2, 4]);
  });

  it("walks pages, and stops on an exact multiple without an extra request", async () => {
    const { list, offsets } = numbers(4, 2);
    const pages = [];
    for await (const page of list.pages()) pages.push(page.items);
    expect(pages).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(offsets).toEqual([0, 2]);
  });

  it("passes rejections to await, catch and iteration", async () => {
    const failing = new PagePromise<{ items: number[] }, number>({
      fetchPage: async () => {
        throw new Error("boom");
      },
      items: (page) => page.items,
      nextOffset: () => undefined,
    });
    await expect(failing).rejects.toThrow("boom");
    expect(await failing.catch((error) => (error as Error).message)).toBe("boom");
    await expect(
      (async () => {
        for await (const _ of failing) {
          // never reached
        }
      })(),
    ).rejects.toThrow("boom");
  });

  it("computes next offsets from a cursor or from the page size", () => {
    expect(nextOffsetFromCursor({ offset: 0, limit: 2, total_count: 5 }, 2)).toBe(2);
    expect(nextOffsetFromCursor({ offset: 4, limit: 2, total_count: 5 }, 1)).toBeUndefined();
    // A server that caps the page size: continue after what was received.
    expect(nextOffsetFromCursor({ offset: 0, limit: 100, total_count: 250 }, 50)).toBe(50);
    expect(nextOffsetFromCursor({ offset: 0, limit: 2, total_count: 5 }, 0)).toBeUndefined();
    expect(nextOffsetFromCursor(null, 2)).toBeUndefined();
    expect(nextOffsetByPageSize(0, 2, 2)).toBe(2);
    expect(nextOffsetByPageSize(2, 1, 2)).toBeUndefined();
    expect(nextOffsetByPageSize(4, 0, 2)).toBeUndefined();
  });
});
