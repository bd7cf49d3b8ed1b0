/**
 * RestClient against the real local backend: every operation with its wire request (path, query,
 * body) and typed result, paging with `for await`, checkpoint visibility and TTL, the archive call's
 * redirect / JSON / 503 answers, sessions, trace export, whoami, audit log and billing usage.
 */
import { afterEach, describe, expect, it } from "vitest";
import { serve } from "../src/cli/serve.js";
import {
  APIStatusError,
  NotFoundError,
  type RestClient,
  ServiceClient,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { localService } from "./helpers.js";

const BASE_MODEL = "tinker-ts/byte-lm-tiny";

interface Call {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
  redirect: RequestRedirect;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** localService, recording full request URLs (query strings included) and the redirect mode. */
function setup(options: Parameters<typeof localService>[0] = {}) {
  const calls: Call[] = [];
  let backend: (request: Request) => Promise<Response> = () => Promise.reject(new Error("not wired"));
  const fetch = async (request: Request): Promise<Response> => {
    calls.push({
      method: request.method,
      url: new URL(request.url),
      headers: new Headers(request.headers),
      body: await request.clone().text(),
      redirect: request.redirect,
    });
    return backend(request);
  };
  const t = localService({ ...options, client: { ...options.client, fetch } });
  backend = t.local.fetch;
  cleanups.push(t.close);
  /** Another client of the same backend (another session), closed after the test. */
  const anotherService = () => {
    const service = new ServiceClient({ apiKey: "tml-test-key", baseURL: "http://local.tinker", fetch });
    cleanups.push(() => service.close());
    return service;
  };
  return { ...t, calls, rest: t.service.createRestClient(), anotherService };
}

/** The calls whose path (after `/api/v1/`) matches exactly. */
function callsTo(calls: Call[], method: string, path: string): Call[] {
  return calls.filter((c) => c.method === method && c.url.pathname === `/api/v1/${path}`);
}

function query(call: Call): Record<string, string> {
  return Object.fromEntries(call.url.searchParams);
}

function sessionOf(training: TrainingClient): string {
  return training.modelId.split(":train:")[0]!;
}

/** The backend's answer to a request made without the SDK (to see statuses the SDK would retry). */
async function raw(t: ReturnType<typeof setup>, method: string, path: string, body?: unknown) {
  const response = await t.local.fetch(
    new Request(`http://local.tinker/api/v1/${path}`, {
      method,
      headers: { "X-API-Key": "tml-test-key", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, body: await response.json() };
}

describe("training runs", () => {
  it("reads one run with its last checkpoints, also from a tinker path", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, {
      rank: 4,
      userMetadata: { team: "search" },
    });
    const { path: statePath } = await training.saveState("s1");
    const { path: samplerPath } = await training.saveWeightsForSampler("w1");

    const run = await t.rest.getTrainingRun(training.modelId);
    expect(run).toMatchObject({
      training_run_id: training.modelId,
      base_model: BASE_MODEL,
      model_owner: "local-user",
      is_lora: true,
      corrupted: false,
      lora_rank: 4,
      user_metadata: { team: "search" },
    });
    expect(run.last_request_time).toBeInstanceOf(Date);
    expect(run.last_checkpoint).toMatchObject({
      checkpoint_id: "weights/s1",
      checkpoint_type: "training",
      tinker_path: statePath,
      public: false,
      expires_at: null,
    });
    expect(run.last_checkpoint!.time).toBeInstanceOf(Date);
    expect(run.last_sampler_checkpoint).toMatchObject({ checkpoint_id: "sampler_weights/w1" });

    const [call] = callsTo(t.calls, "GET", `training_runs/${training.modelId}`);
    // The run id goes into the path as is (its colons unencoded), the scope is always sent.
    expect(call!.url.pathname).toContain(":train:0");
    expect(query(call!)).toEqual({ access_scope: "owned" });

    const byPath = await t.rest.getTrainingRunByTinkerPath(samplerPath, { accessScope: "accessible" });
    expect(byPath.training_run_id).toBe(training.modelId);
    expect(query(t.calls.at(-1)!)).toEqual({ access_scope: "accessible" });
    await expect(t.rest.getTrainingRun("session-x:train:9")).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.rest.getTrainingRunByTinkerPath("tinker://run/weights")).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it("pages through more than two pages of runs, visiting each run exactly once", async () => {
    const t = setup();
    const runs: string[] = [];
    for (let i = 0; i < 5; i++)
      runs.push((await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 })).modelId);

    const first = await t.rest.listTrainingRuns({ limit: 2 });
    expect(first.training_runs.map((r) => r.training_run_id)).toEqual(runs.slice(0, 2));
    expect(first.cursor).toEqual({ offset: 0, limit: 2, total_count: 5 });
    expect(first.training_runs[0]!.corrupted).toBe(false);

    const before = t.calls.length;
    const seen: string[] = [];
    for await (const run of t.rest.listTrainingRuns({ limit: 2 })) {
      expect(run.last_request_time).toBeInstanceOf(Date);
      seen.push(run.training_run_id);
    }
    expect(seen).toEqual(runs);
    const pages = t.calls.slice(before).filter((c) => c.url.pathname === "/api/v1/training_runs");
    expect(pages.map(query)).toEqual([
      { limit: "2", offset: "0", access_scope: "owned" },
      { limit: "2", offset: "2", access_scope: "owned" },
      { limit: "2", offset: "4", access_scope: "owned" },
    ]);

    // Starting later; and the defaults (limit 20, offset 0, owned) are always sent.
    const tail: string[] = [];
    for await (const run of t.rest.listTrainingRuns({ limit: 2, offset: 3 })) tail.push(run.training_run_id);
    expect(tail).toEqual(runs.slice(3));
    await t.rest.listTrainingRuns();
    expect(query(t.calls.at(-1)!)).toEqual({ limit: "20", offset: "0", access_scope: "owned" });
    expect(() => t.rest.listTrainingRuns({ limit: 0 })).toThrow(ValidationError);
  });

  it("filters runs by the project of their session", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const other = await t.anotherService().createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await t.rest.assignSessionProject(sessionOf(training), "proj-1");
    const [put] = callsTo(t.calls, "PUT", `sessions/${sessionOf(training)}/project`);
    expect(JSON.parse(put!.body)).toEqual({ project_id: "proj-1" });

    const inProject = await t.rest.listTrainingRuns({ projectId: "proj-1" });
    expect(inProject.training_runs.map((r) => r.training_run_id)).toEqual([training.modelId]);
    expect(query(t.calls.at(-1)!)).toEqual({
      limit: "20",
      offset: "0",
      access_scope: "owned",
      project_id: "proj-1",
    });
    const all = await t.rest.listTrainingRuns();
    expect(all.training_runs.map((r) => r.training_run_id)).toEqual([training.modelId, other.modelId]);
    expect((await t.rest.listTrainingRuns({ projectId: "nope" })).cursor.total_count).toBe(0);
    await expect(t.rest.assignSessionProject("session-unknown", "p")).rejects.toBeInstanceOf(NotFoundError);
    expect((await raw(t, "PUT", `sessions/${sessionOf(training)}/project`, {})).status).toBe(400);
  });
});

describe("checkpoints", () => {
  it("lists a run's checkpoints and pages through all user checkpoints, newest first", async () => {
    const t = setup();
    const a = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const b = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const paths: string[] = [];
    paths.push((await a.saveState("a1")).path);
    paths.push((await b.saveState("b1")).path);
    paths.push((await a.saveWeightsForSampler("a2")).path);
    paths.push((await b.saveWeightsForSampler("b2")).path);
    paths.push((await a.saveState("a3")).path);

    const ofA = await t.rest.listCheckpoints(a.modelId);
    expect(ofA.checkpoints.map((c) => c.checkpoint_id)).toEqual([
      "weights/a1",
      "sampler_weights/a2",
      "weights/a3",
    ]);
    expect(ofA.checkpoints.map((c) => c.checkpoint_type)).toEqual(["training", "sampler", "training"]);
    expect(ofA.checkpoints[0]!.size_bytes).toBeGreaterThan(0);
    const [listCall] = callsTo(t.calls, "GET", `training_runs/${a.modelId}/checkpoints`);
    expect(listCall!.url.search).toBe("");

    const first = await t.rest.listUserCheckpoints({ limit: 2 });
    expect(first.cursor).toEqual({ offset: 0, limit: 2, total_count: 5 });
    const before = t.calls.length;
    const seen: string[] = [];
    for await (const checkpoint of t.rest.listUserCheckpoints({ limit: 2 })) {
      expect(checkpoint.time).toBeInstanceOf(Date);
      seen.push(checkpoint.tinker_path);
    }
    expect(seen).toEqual([...paths].reverse());
    const pages = t.calls.slice(before).filter((c) => c.url.pathname === "/api/v1/checkpoints");
    expect(pages.map(query)).toEqual([
      { limit: "2", offset: "0" },
      { limit: "2", offset: "2" },
      { limit: "2", offset: "4" },
    ]);
    await t.rest.listUserCheckpoints();
    expect(query(t.calls.at(-1)!)).toEqual({ limit: "100", offset: "0" });
  });

  it("publishes, unpublishes, sets and removes the TTL, and deletes", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const { path } = await training.saveState("s1");
    const checkpointPath = `training_runs/${training.modelId}/checkpoints/weights/s1`;
    const only = async () => (await t.rest.listCheckpoints(training.modelId)).checkpoints[0]!;

    await t.rest.publishCheckpointFromTinkerPath(path);
    const [publish] = callsTo(t.calls, "POST", `${checkpointPath}/publish`);
    expect(publish!.body).toBe("");
    expect(publish!.headers.get("content-type")).toBe("application/json");
    expect((await only()).public).toBe(true);
    // Already public: 409, which the SDK (like the official client) would retry for minutes.
    expect(await raw(t, "POST", `${checkpointPath}/publish`)).toMatchObject({ status: 409 });

    await t.rest.unpublishCheckpointFromTinkerPath(path);
    expect(callsTo(t.calls, "DELETE", `${checkpointPath}/publish`)).toHaveLength(1);
    expect((await only()).public).toBe(false);
    expect(await raw(t, "DELETE", `${checkpointPath}/publish`)).toMatchObject({ status: 409 });

    const before = Date.now();
    await t.rest.setCheckpointTtlFromTinkerPath(path, 3600);
    const expiresAt = (await only()).expires_at!;
    expect(expiresAt).toBeInstanceOf(Date);
    expect(expiresAt.getTime()).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(expiresAt.getTime()).toBeLessThan(Date.now() + 3_600_000 + 1000);
    await t.rest.setCheckpointTtlFromTinkerPath(path, null);
    expect((await only()).expires_at).toBeNull();
    const ttlBodies = callsTo(t.calls, "PUT", `${checkpointPath}/ttl`).map((c) => c.body);
    expect(ttlBodies).toEqual(['{"ttl_seconds":3600}', '{"ttl_seconds":null}']);
    await expect(t.rest.setCheckpointTtlFromTinkerPath(path, 0)).rejects.toBeInstanceOf(ValidationError);
    expect(await raw(t, "PUT", `${checkpointPath}/ttl`, { ttl_seconds: 0 })).toMatchObject({ status: 400 });

    await t.rest.deleteCheckpointFromTinkerPath(path);
    expect(callsTo(t.calls, "DELETE", checkpointPath)).toHaveLength(1);
    expect((await t.rest.listCheckpoints(training.modelId)).checkpoints).toEqual([]);
    await expect(t.rest.deleteCheckpoint(training.modelId, "weights/s1")).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(await raw(t, "DELETE", `training_runs/${training.modelId}/checkpoints/bogus/s1`)).toMatchObject({
      status: 400,
    });
  });

  it("reads the weights info of a checkpoint path", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 4, trainAttn: false });
    const { path } = await training.saveState("s1");
    const info = await t.rest.getWeightsInfoByTinkerPath(path);
    expect(info).toMatchObject({ base_model: BASE_MODEL, is_lora: true, lora_rank: 4, train_attn: false });
    const [call] = callsTo(t.calls, "POST", "weights_info");
    expect(JSON.parse(call!.body)).toEqual({ tinker_path: path });
  });
});

describe("checkpoint archive URL", () => {
  const runId = "session-x:train:0";
  const endpoint = `training_runs/${runId}/checkpoints/sampler_weights/final/archive`;
  const tinkerPath = `tinker://${runId}/sampler_weights/final`;

  it("reads the backend's 200 JSON answer, asking without following redirects", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const { path } = await training.saveWeightsForSampler("final");
    const before = Date.now();
    const archive = await t.rest.getCheckpointArchiveUrlFromTinkerPath(path);
    // A signed URL outside /api/v1/ (the archive itself is tested in cli-archive.test.ts).
    expect(archive.url).toMatch(/^http:\/\/local\.tinker\/archives\/[\w-]+\.[\w-]+$/);
    expect(archive.expires).toBeInstanceOf(Date);
    expect(archive.expires.getTime()).toBeGreaterThanOrEqual(before + 15 * 60_000 - 1000);
    const call = t.calls.at(-1)!;
    expect(call.url.pathname).toBe(
      `/api/v1/training_runs/${training.modelId}/checkpoints/sampler_weights/final/archive`,
    );
    expect(call.redirect).toBe("manual");
    expect(call.headers.get("accept")).toBe("application/json");
    await expect(
      t.rest.getCheckpointArchiveUrl(training.modelId, "sampler_weights/none"),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it("takes a 302's Location and Expires as the result", async () => {
    const t = setup({
      local: {
        chaos: [
          {
            endpoint,
            status: 302,
            headers: {
              location: "https://storage.example/a.tar?sig=1",
              expires: "Wed, 21 Oct 2037 07:28:00 GMT",
            },
          },
          { endpoint, status: 302, headers: { location: "https://storage.example/b.tar" } },
          { endpoint, status: 302 },
        ],
      },
    });
    expect(await t.rest.getCheckpointArchiveUrlFromTinkerPath(tinkerPath)).toEqual({
      url: "https://storage.example/a.tar?sig=1",
      expires: new Date("2037-10-21T07:28:00Z"),
    });
    // Without Expires the URL is taken to be valid for 15 minutes.
    const before = Date.now();
    const archive = await t.rest.getCheckpointArchiveUrl(runId, "sampler_weights/final");
    expect(archive.url).toBe("https://storage.example/b.tar");
    expect(archive.expires.getTime() - before).toBeGreaterThanOrEqual(15 * 60_000 - 1000);
    expect(archive.expires.getTime() - before).toBeLessThanOrEqual(15 * 60_000 + 1000);
    // A redirect without Location is an error, and not retried.
    const error = await t.rest.getCheckpointArchiveUrl(runId, "sampler_weights/final").catch((e) => e);
    expect(error).toBeInstanceOf(APIStatusError);
    expect(error.status).toBe(302);
    expect(callsTo(t.calls, "GET", endpoint)).toHaveLength(3);
  });

  it("waits while the archive is being built (503), then reads the answer", async () => {
    const t = setup({
      client: { maxRetries: 0 },
      local: {
        chaos: [
          { endpoint, status: 503, times: 2 },
          {
            endpoint,
            status: 200,
            body: { url: "https://storage.example/c.tar", expires: "2037-01-01T00:00:00Z" },
          },
        ],
      },
    });
    const archive = await t.rest.getCheckpointArchiveUrlFromTinkerPath(tinkerPath, {
      buildingRetryDelayMs: 10,
    });
    expect(archive).toEqual({
      url: "https://storage.example/c.tar",
      expires: new Date("2037-01-01T00:00:00Z"),
    });
    expect(callsTo(t.calls, "GET", endpoint)).toHaveLength(3);
  });
});

describe("checkpoint archive URL over loopback HTTP", () => {
  it("does not follow the redirect with the runtime's own fetch", async () => {
    const endpoint = "training_runs/run-1:train:0/checkpoints/weights/final/archive";
    // Following this Location would fail: nothing listens on port 9 (discard).
    const location = "http://127.0.0.1:9/never-fetched.tar";
    const server = await serve({
      port: 0,
      host: "127.0.0.1",
      chaos: [{ endpoint, status: 302, headers: { location } }],
    });
    const service = new ServiceClient({ apiKey: "tml-http-test", baseURL: server.url, maxRetries: 0 });
    try {
      const archive = await service
        .createRestClient()
        .getCheckpointArchiveUrl("run-1:train:0", "weights/final");
      expect(archive.url).toBe(location);
    } finally {
      await service.close();
      await server.close();
    }
  });
});

describe("sessions", () => {
  it("reads a session's runs, samplers and metadata, and lists sessions page by page", async () => {
    const t = setup({ client: { userMetadata: { purpose: "rest-test" } } });
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const sampler = await t.service.createSamplingClient({ baseModel: BASE_MODEL });
    const sessionId = sessionOf(training);

    const session = await t.rest.getSession(sessionId);
    expect(session).toEqual({
      training_run_ids: [training.modelId],
      sampler_ids: [sampler.samplingSessionId],
      // §R4; `finished` (§S1) stays null while the session runs.
      user_metadata: { purpose: "rest-test" },
      finished: null,
    });
    expect(query(callsTo(t.calls, "GET", `sessions/${sessionId}`)[0]!)).toEqual({ access_scope: "owned" });
    await expect(t.rest.getSession("session-unknown")).rejects.toBeInstanceOf(NotFoundError);

    const sessions = [sessionId];
    for (let i = 0; i < 3; i++) {
      sessions.push(sessionOf(await t.anotherService().createLoraTrainingClient(BASE_MODEL, { rank: 2 })));
    }
    expect((await t.rest.listSessions({ limit: 3 })).sessions).toEqual(sessions.slice(0, 3));

    // No cursor: a short page ends the walk; a full last page costs one more (empty) request.
    for (const [limit, offsets] of [
      [3, ["0", "3"]],
      [2, ["0", "2", "4"]],
    ] as const) {
      const before = t.calls.length;
      const seen: string[] = [];
      for await (const id of t.rest.listSessions({ limit, accessScope: "accessible" })) seen.push(id);
      expect(seen).toEqual(sessions);
      const pages = t.calls.slice(before).filter((c) => c.url.pathname === "/api/v1/sessions");
      expect(pages.map((c) => query(c).offset)).toEqual(offsets);
      expect(query(pages[0]!)).toMatchObject({ limit: String(limit), access_scope: "accessible" });
    }
  });

  it("exports a session trace, polling until it is ready", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await training.saveState("s1");
    const sessionId = sessionOf(training);
    const url = await t.rest.exportSessionTrace(sessionId, { pollIntervalMs: 10 });
    expect(url.startsWith(`http://local.tinker/api/v1/sessions/${sessionId}/trace?token=`)).toBe(true);
    expect(callsTo(t.calls, "GET", `sessions/${sessionId}/trace_export`)).toHaveLength(2);

    const trace = (await raw(t, "GET", `sessions/${sessionId}/trace`)).body as {
      traceEvents: { name: string; args: { model_id: string } }[];
    };
    expect(trace.traceEvents.map((e) => e.name)).toEqual(["training_run_created", "checkpoint_saved"]);
    expect(trace.traceEvents[0]!.args.model_id).toBe(training.modelId);
    await expect(t.rest.exportSessionTrace("session-unknown", { pollIntervalMs: 10 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it("creates no session when only REST calls are made", async () => {
    const t = setup();
    await t.rest.listTrainingRuns();
    await t.rest.listSessions();
    expect(t.calls.map((c) => `${c.method} ${c.url.pathname}`)).toEqual([
      "POST /api/v1/client/config",
      "POST /api/v1/client/dynamic_config",
      "GET /api/v1/training_runs",
      "GET /api/v1/sessions",
    ]);
  });
});

describe("samplers, audit log and billing usage", () => {
  it("reads a sampler", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const { path } = await training.saveWeightsForSampler("w1");
    const sampler = await t.service.createSamplingClient({ modelPath: path });
    expect(await t.rest.getSampler(sampler.samplingSessionId)).toEqual({
      sampler_id: sampler.samplingSessionId,
      base_model: BASE_MODEL,
      model_path: path,
    });
    expect(t.calls.at(-1)!.url.pathname).toBe(`/api/v1/samplers/${sampler.samplingSessionId}`);
  });

  it("lists the day's audit events", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const { path } = await training.saveState("s1");
    await t.rest.deleteCheckpointFromTinkerPath(path);

    const log = await t.rest.getAuditLog();
    expect(query(t.calls.at(-1)!)).toEqual({ event_type: "all" });
    expect(log.entries.map((e) => e.event)).toEqual(["training_run_created", "checkpoint_deleted"]);
    expect(log.entries[0]!.timestamp).toBeInstanceOf(Date);
    expect(log.entries[1]).toMatchObject({ model_id: training.modelId, tinker_path: path });

    const today = new Date();
    const checkpoints = await t.rest.getAuditLog({ eventType: "checkpoints", day: today });
    expect(query(t.calls.at(-1)!)).toEqual({
      event_type: "checkpoints",
      day: today.toISOString().slice(0, 10),
    });
    expect(checkpoints.entries.map((e) => e.event)).toEqual(["checkpoint_deleted"]);
    expect((await t.rest.getAuditLog({ day: "2001-01-01" })).entries).toEqual([]);
  });

  it("reports hourly checkpoint usage, checking the window before sending", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await training.saveState("s1");
    await training.saveWeightsForSampler("w1");
    const saved = (await t.rest.listCheckpoints(training.modelId)).checkpoints[0]!.time;
    const hour = 3_600_000;
    const start = new Date(Math.floor(saved.getTime() / hour) * hour);
    const end = new Date(start.getTime() + hour);

    const usage = await t.rest.getBillingUsage({ startingOn: start, endingBefore: end });
    const call = t.calls.at(-1)!;
    expect(call.url.pathname).toBe("/api/v1/billing/usage/events");
    const iso = (d: Date) => d.toISOString().replace(".000Z", "Z");
    expect(query(call)).toEqual({ starting_on: iso(start), ending_before: iso(end) });
    expect(call.url.search).toContain("%3A00%3A00Z");
    expect(usage.data).toHaveLength(1);
    expect(usage.data[0]).toMatchObject({
      bucket_start: start,
      bucket_end: end,
      base_model: BASE_MODEL,
      session_id: sessionOf(training),
      event_info: { type: "checkpoint", count: 2 },
    });
    expect(usage.sessions).toEqual({ [sessionOf(training)]: { user_metadata: {} } });

    const sent = t.calls.length;
    await expect(
      t.rest.getBillingUsage({ startingOn: new Date(start.getTime() + 1000), endingBefore: end }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      t.rest.getBillingUsage({ startingOn: start, endingBefore: new Date(start.getTime() + 15 * 24 * hour) }),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(t.calls.length).toBe(sent);
  });
});

describe("whoami", () => {
  /** An unsigned JWT with these claims: enough for whoami, which never verifies signatures. */
  function unsignedJwt(claims: Record<string, unknown>): string {
    const part = (value: unknown) =>
      btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
  }

  it("reads sub and email of an identity token given as the API key", async () => {
    const key = unsignedJwt({ sub: "user:alice", email: "alice@example.com", iss: "passport-test" });
    expect(key.startsWith("eyJ")).toBe(true);
    const t = setup({ client: { apiKey: key } });
    expect(await t.rest.whoami()).toEqual({ user_urn: "user:alice", email: "alice@example.com" });
  });

  it("reads the token of the JWT exchange when the server uses JWT auth", async () => {
    const t = setup({ local: { jwt: {} } });
    const identity = await t.rest.whoami();
    expect(identity.user_urn).toMatch(/^tinker-ts-local:user:/);
    expect(identity.email).toMatch(/@tinker-ts\.local$/);
  });

  it("fails locally with a plain API key", async () => {
    const t = setup();
    const error = await t.rest.whoami().catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/whoami is not available/);
    expect(error.message).not.toContain("tml-test-key");
  });
});

describe("RestClient", () => {
  it("is created by the service client and exported", async () => {
    const t = setup();
    const rest: RestClient = t.service.createRestClient();
    expect(typeof rest.listTrainingRuns).toBe("function");
  });
});
