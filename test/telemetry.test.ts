/**
 * Telemetry (PROTOCOL.md §11) against the real local backend: the batch shape compared with what the
 * official client 0.25.0 sent (requests-ext-0.25.0.jsonl), flushing, retries, opting out, and that
 * close() leaves nothing running and no secret ends up in an event.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Connection } from "../src/clients/connection.js";
import { resolveConfig } from "../src/core/config.js";
import { formatTimedelta, type TelemetryBatch } from "../src/core/telemetry.js";
import {
  AuthenticationError,
  type ClientOptions,
  PROTOCOL_SDK_VERSION,
  RequestFailedError,
  type TelemetryEvent,
} from "../src/index.js";
import { createLocalTinker, type LocalTinkerOptions } from "../src/local/index.js";
import { localService, type RecordedRequest, readConformance, recordingFetch } from "./helpers.js";
import { timeouts, trackTimers } from "./timers.js";

const API_KEY = "tml-test-key";

let cleanups: (() => Promise<void> | void)[] = [];
let savedTelemetryEnv: string | undefined;
beforeEach(() => {
  savedTelemetryEnv = process.env.TINKER_TELEMETRY;
  delete process.env.TINKER_TELEMETRY;
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
  if (savedTelemetryEnv === undefined) delete process.env.TINKER_TELEMETRY;
  else process.env.TINKER_TELEMETRY = savedTelemetryEnv;
});

/** A Connection (what every client shares) on the local backend; `answered` lists telemetry replies. */
function setup(local: LocalTinkerOptions = {}, client: ClientOptions = {}) {
  const backend = createLocalTinker({ longPollMs: 2_000, ...local });
  const answered: number[] = [];
  const recorder = recordingFetch(async (request) => {
    const response = await backend.fetch(request);
    if (request.url.endsWith("/telemetry")) answered.push(response.status);
    return response;
  });
  const connection = new Connection(
    resolveConfig({ apiKey: API_KEY, baseURL: "http://local.tinker", fetch: recorder.fetch, ...client }),
  );
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await connection.close();
    backend.close();
  };
  cleanups.push(close);
  return { connection, telemetry: connection.telemetry, requests: recorder.requests, answered, close };
}

const telemetryRequests = (requests: RecordedRequest[]) =>
  requests.filter((r) => r.path.endsWith("/telemetry"));
const batchOf = (r: RecordedRequest) => JSON.parse(new TextDecoder().decode(r.body)) as TelemetryBatch;
const allEvents = (requests: RecordedRequest[]) =>
  telemetryRequests(requests).flatMap((r) => batchOf(r).events);

function officialBatch(): Record<string, unknown> & { events: Record<string, unknown>[] } {
  const line = readConformance<{ path: string; body: Record<string, unknown> }>(
    "requests-ext-0.25.0.jsonl",
  ).find((l) => l.path === "/api/v1/telemetry")!;
  return line.body as Record<string, unknown> & { events: Record<string, unknown>[] };
}

/** The JSON type of every field, recursively for plain objects: the "shape" of a value. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, shape(v)]));
  }
  return typeof value;
}

describe("telemetry batches", () => {
  it("match the official client's batch field by field", async () => {
    const t = setup();
    const sessionId = await t.connection.session();
    t.telemetry.logUserError(new RequestFailedError("Request failed: simulated user error", "4", "user"));
    await t.close();

    const official = officialBatch();
    const sent = telemetryRequests(t.requests);
    expect(sent).toHaveLength(1);
    const batch = batchOf(sent[0]!);
    // Top level: same fields, same order, same types.
    expect(Object.keys(batch)).toEqual(Object.keys(official));
    expect(shape({ ...batch, events: [] })).toEqual(shape({ ...official, events: [] }));
    // The protocol level this package implements (the 0.25.0 recording reported its own).
    expect(batch.sdk_version).toBe(PROTOCOL_SDK_VERSION);
    expect(batch.session_id).toBe(sessionId);
    expect(batch.platform).toBe(process.platform === "darwin" ? "Darwin" : "Linux");
    expect(batch.process_uuid).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );

    // Events: SESSION_START, the user_error GENERIC_EVENT, SESSION_END, as the official sequence ends.
    const officialByKind = (kind: string, name?: string) =>
      official.events.find((e) => e.event === kind && (name === undefined || e.event_name === name))!;
    expect(batch.events.map((e) => e.event)).toEqual(["SESSION_START", "GENERIC_EVENT", "SESSION_END"]);
    const [start, userError, end] = batch.events as [TelemetryEvent, TelemetryEvent, TelemetryEvent];
    for (const [ours, theirs] of [
      [start, officialByKind("SESSION_START")],
      [userError, officialByKind("GENERIC_EVENT", "user_error")],
      [end, officialByKind("SESSION_END")],
    ] as const) {
      expect(Object.keys(ours)).toEqual(Object.keys(theirs));
      expect(shape(ours)).toEqual(shape(theirs));
      expect(ours.severity).toBe(theirs.severity);
      expect(ours.event_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(ours.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    expect(batch.events.map((e) => e.event_session_index)).toEqual([0, 1, 2]);
    expect((userError as { event_data: unknown }).event_data).toEqual({
      error_type: "RequestFailedError",
      message: "Request failed: simulated user error",
    });
    expect((end as { duration: string }).duration).toMatch(/^0:00:\d\d(\.\d{6})?$/);

    // Headers as for any call of the client: JSON, the key, no transport retries.
    const headers = sent[0]!.headers;
    expect(headers.get("content-type")).toBe("application/json");
    expect(headers.get("x-api-key")).toBe(API_KEY);
    expect(headers.get("x-stainless-retry-count")).toBe("0");
  });

  it("records custom events and exceptions", async () => {
    const t = setup();
    expect(t.telemetry.enabled).toBe(true);
    expect(t.telemetry.log("my_event", { step: 3, tags: ["a"] })).toBe(true);
    expect(t.telemetry.log("warned", undefined, "WARNING")).toBe(true);
    // Data that cannot be sent as JSON is refused up front instead of failing the batch later.
    expect(t.telemetry.log("bad", { n: 1n })).toBe(false);
    expect(t.telemetry.logException(new TypeError("boom"))).toBe(true);
    await t.telemetry.flush();
    const events = allEvents(t.requests);
    expect(events.map((e) => e.event)).toEqual(["GENERIC_EVENT", "GENERIC_EVENT", "UNHANDLED_EXCEPTION"]);
    expect(events[0]).toMatchObject({
      event_name: "my_event",
      event_data: { step: 3, tags: ["a"] },
      severity: "INFO",
    });
    expect(events[1]).toMatchObject({ event_name: "warned", event_data: {}, severity: "WARNING" });
    const exception = events[2] as unknown as Record<string, unknown>;
    expect(Object.keys(exception)).toEqual([
      "error_message",
      "error_type",
      "event",
      "event_id",
      "event_session_index",
      "severity",
      "timestamp",
      "traceback",
    ]);
    expect(exception).toMatchObject({ error_message: "boom", error_type: "TypeError", severity: "ERROR" });
    // Without a session the batch is session-less, as the official REST-only holder's.
    expect(batchOf(telemetryRequests(t.requests)[0]!).session_id).toMatch(/^sessionless-[0-9a-f-]{36}$/);
  });

  it("sends batches of at most 100 events", async () => {
    const t = setup();
    for (let i = 0; i < 250; i++) t.telemetry.log("e", { i });
    await t.telemetry.flush();
    expect(telemetryRequests(t.requests).map((r) => batchOf(r).events.length)).toEqual([100, 100, 50]);
    expect(allEvents(t.requests).map((e) => e.event_session_index)).toEqual([...Array(250).keys()]);
  });

  it("formats durations as Python's timedelta", () => {
    expect(formatTimedelta(411.833)).toBe("0:00:00.411833");
    expect(formatTimedelta(62_345.678)).toBe("0:01:02.345678");
    expect(formatTimedelta(3_600_000)).toBe("1:00:00");
    expect(formatTimedelta(90_000_000)).toBe("1 day, 1:00:00");
    expect(formatTimedelta(2 * 86_400_000)).toBe("2 days, 0:00:00");
  });
});

describe("flushing", () => {
  it("flush() resolves once the server has answered the POST", async () => {
    const t = setup({ chaos: [{ endpoint: "telemetry", delayMs: 150 }] });
    t.telemetry.log("one");
    const started = Date.now();
    await t.telemetry.flush();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(t.answered).toEqual([200]);
    // Nothing queued: a flush sends nothing.
    await t.telemetry.flush();
    expect(telemetryRequests(t.requests)).toHaveLength(1);
  });

  it("retries every second until the answer is exactly {status: accepted}", async () => {
    const t = setup({ chaos: [{ endpoint: "telemetry", status: 200, body: { status: "ok" } }] });
    t.telemetry.log("one");
    const started = Date.now();
    await t.telemetry.flush();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    const sent = telemetryRequests(t.requests);
    expect(sent).toHaveLength(2);
    expect(batchOf(sent[1]!).events).toEqual(batchOf(sent[0]!).events);
  });

  it("sends nothing when TINKER_TELEMETRY is off, or with telemetry: false", async () => {
    process.env.TINKER_TELEMETRY = "0";
    const offByEnv = setup();
    await offByEnv.connection.session();
    expect(offByEnv.telemetry.enabled).toBe(false);
    expect(offByEnv.telemetry.log("x")).toBe(false);
    await offByEnv.telemetry.flush();
    await offByEnv.close();
    expect(telemetryRequests(offByEnv.requests)).toHaveLength(0);

    process.env.TINKER_TELEMETRY = "TRUE";
    expect(setup().telemetry.enabled).toBe(true);
    const offByOption = setup({}, { telemetry: false });
    await offByOption.connection.session();
    await offByOption.close();
    expect(telemetryRequests(offByOption.requests)).toHaveLength(0);
  });

  it("sends SESSION_START and SESSION_END when a ServiceClient closes", async () => {
    const t = localService();
    cleanups.push(t.close);
    await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    await t.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(allEvents(t.requests).map((e) => e.event)).toEqual(["SESSION_START", "SESSION_END"]);
  });
});

describe("close()", () => {
  it("gives a failing batch one last attempt, then stops retrying", async () => {
    const t = setup({ chaos: [{ endpoint: "telemetry", status: 503, times: 1_000 }] }, { maxRetries: 0 });
    await t.connection.session();
    t.telemetry.log("doomed");
    void t.telemetry.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await t.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    // The batch in flight was tried again once; SESSION_END, queued by close(), got its one attempt.
    const attempts = telemetryRequests(t.requests).length;
    expect(attempts).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(telemetryRequests(t.requests)).toHaveLength(attempts);
    expect(t.telemetry.log("late")).toBe(false);
  });

  it("leaves no timers: heartbeat, token refresh and telemetry all stop", async () => {
    const before = timeouts();
    const timers = trackTimers();
    try {
      const t = setup({ jwt: { ttlSeconds: 600 } }, { heartbeatIntervalMs: 20 });
      await t.connection.session();
      t.telemetry.log("something");
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Heartbeat, token refresh and telemetry flush, all unref'd.
      expect(timers.pending()).toBeGreaterThanOrEqual(3);
      await t.close();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(timers.pending()).toBe(0);
      expect(timeouts()).toBeLessThanOrEqual(before);
      const events = allEvents(t.requests).map((e) => e.event);
      expect(events).toEqual(["SESSION_START", "GENERIC_EVENT", "SESSION_END"]);
    } finally {
      timers.restore();
    }
  });

  it("does not start a handshake at close just to send telemetry", async () => {
    const t = setup();
    t.telemetry.log("never sent");
    await t.close();
    expect(t.requests).toHaveLength(0);
  });
});

describe("secrets", () => {
  it("never puts keys, tokens or headers into events", async () => {
    const t = setup(
      { jwt: {}, chaos: [{ endpoint: "create_model", status: 401, body: { detail: "denied" } }] },
      { maxRetries: 0 },
    );
    await t.connection.session();
    const failure = await t.connection.http
      .request({ method: "POST", path: "api/v1/create_model", json: {} })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AuthenticationError);
    t.telemetry.logUserError(failure);
    t.telemetry.logException(failure);
    await t.close();
    const jwt = t.requests.at(-1)!.headers.get("x-api-key")!;
    expect(jwt).toMatch(/^eyJ/);
    const sent = telemetryRequests(t.requests)
      .map((r) => new TextDecoder().decode(r.body))
      .join("\n");
    expect(sent).toContain("user_error");
    expect(sent).toContain('"status_code":401');
    expect(sent).not.toContain(API_KEY);
    expect(sent).not.toContain(jwt);
    expect(sent.toLowerCase()).not.toContain("x-api-key");
    expect(sent.toLowerCase()).not.toContain("content-type");
  });
});
