/**
 * The REST additions of 0.31–0.32 against the real local backend: current checkpoint storage usage
 * (PROTOCOL.md §R1), the widened audit log with `event_details` (§R2), cost fields of billing usage
 * (§R3), `trainable`/`sampleable` in the (deprecated, still working) capabilities (§R4, §S6) — each
 * with its exact request.
 */
import { describe, expect, it } from "vitest";
import { type AuditEventType, ServiceClient, ValidationError } from "../src/index.js";
import { closeAfterEach, localService, type RecordedRequest } from "./helpers.js";

const BASE_MODEL = "tinker-ts/byte-lm-tiny";
const closers = closeAfterEach();

function setup() {
  const t = localService();
  closers.add(t.close);
  /** A client of the same backend whose session belongs to `projectId` (none when undefined). */
  const client = (projectId?: string) => {
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: t.local.fetch,
      projectId,
    });
    closers.add(() => service.close());
    return service;
  };
  return { ...t, rest: t.service.createRestClient(), client };
}

const lastTo = (requests: RecordedRequest[], path: string) =>
  requests.filter((r) => r.path === `/api/v1/${path}`).at(-1)!;

describe("getCurrentCheckpointStorageUsage", () => {
  it("sums the live checkpoints per project, in bytes and gigabytes, without prices", async () => {
    const t = setup();
    const inP1 = await t.client("p1").createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await inP1.saveState("a");
    await inP1.saveWeightsForSampler("b");
    const noProject = await t.client().createLoraTrainingClient(BASE_MODEL, { rank: 4 });
    const { path: doomed } = await noProject.saveState("c");
    await noProject.saveState("d");
    // A project with a session but no checkpoints has no row.
    await t.client("p2").createLoraTrainingClient(BASE_MODEL, { rank: 2 });

    const sizes = async (runId: string) =>
      (await t.rest.listCheckpoints(runId)).checkpoints.map((c) => c.size_bytes as number);
    const p1Bytes = (await sizes(inP1.modelId)).reduce((a, b) => a + b, 0);
    const noProjectBytes = (await sizes(noProject.modelId)).reduce((a, b) => a + b, 0);
    expect(p1Bytes).toBeGreaterThan(0);

    const usage = await t.rest.getCurrentCheckpointStorageUsage();
    const request = lastTo(t.requests, "billing/usage/checkpoints/current");
    expect(request.method).toBe("GET");
    expect(usage).toEqual({
      effective_rate_usd_per_gigabyte_month: null,
      data: [
        {
          project_id: null,
          user_name: "local-user",
          checkpoint_count: 2,
          size_bytes: noProjectBytes,
          size_gigabytes: noProjectBytes / 1e9,
          estimated_monthly_cost_usd: null,
        },
        {
          project_id: "p1",
          user_name: "local-user",
          checkpoint_count: 2,
          size_bytes: p1Bytes,
          size_gigabytes: p1Bytes / 1e9,
          estimated_monthly_cost_usd: null,
        },
      ],
    });

    const onlyP1 = await t.rest.getCurrentCheckpointStorageUsage({ projectId: "p1" });
    expect(onlyP1.data.map((row) => row.project_id)).toEqual(["p1"]);
    expect((await t.rest.getCurrentCheckpointStorageUsage({ projectId: "p2" })).data).toEqual([]);

    // Deleted checkpoints no longer count.
    await t.rest.deleteCheckpointFromTinkerPath(doomed);
    const after = await t.rest.getCurrentCheckpointStorageUsage();
    expect(after.data[0]).toMatchObject({ project_id: null, checkpoint_count: 1 });
  });

  it("sends project_id only when given, and refuses an empty one before sending", async () => {
    const t = setup();
    await t.rest.getCurrentCheckpointStorageUsage();
    expect(t.requests.at(-1)!.path).toBe("/api/v1/billing/usage/checkpoints/current");
    const urls: string[] = [];
    const recording = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: (request: Request) => {
        urls.push(request.url);
        return t.local.fetch(request);
      },
    });
    closers.add(() => recording.close());
    const rest = recording.createRestClient();
    await rest.getCurrentCheckpointStorageUsage();
    await rest.getCurrentCheckpointStorageUsage({ projectId: "p 1" });
    expect(urls.slice(-2)).toEqual([
      "http://local.tinker/api/v1/billing/usage/checkpoints/current",
      "http://local.tinker/api/v1/billing/usage/checkpoints/current?project_id=p+1",
    ]);
    const sent = urls.length;
    await expect(rest.getCurrentCheckpointStorageUsage({ projectId: "" })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(urls).toHaveLength(sent);
  });
});

describe("getAuditLog", () => {
  it("takes every event type of 0.31, and entries say who did what", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    const { path } = await training.saveState("s1");
    await t.rest.publishCheckpointFromTinkerPath(path);

    const all = await t.rest.getAuditLog();
    expect(all.entries.map((e) => [e.event, e.event_details])).toEqual([
      ["training_run_created", { who: "local-user", what: training.modelId }],
      ["checkpoint_saved", { who: "local-user", what: path }],
      ["checkpoint_published", { who: "local-user", what: path }],
    ]);
    // The deprecated fields stay on checkpoint events only.
    expect(all.entries[0]!.model_id).toBeUndefined();
    expect(all.entries[1]).toMatchObject({ model_id: training.modelId, tinker_path: path });

    const types: AuditEventType[] = ["all", "checkpoints", "projects", "teams", "organizations"];
    const counts: Record<string, number> = {};
    for (const eventType of types) {
      counts[eventType] = (await t.rest.getAuditLog({ eventType })).entries.length;
    }
    expect(counts).toEqual({ all: 3, checkpoints: 2, projects: 0, teams: 0, organizations: 0 });

    const sent = t.requests.length;
    await expect(t.rest.getAuditLog({ eventType: "users" as AuditEventType })).rejects.toThrow(
      /eventType: must be one of "all", "checkpoints", "projects", "teams", "organizations"/,
    );
    await expect(t.rest.getAuditLog({ eventType: "users" as AuditEventType })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(t.requests).toHaveLength(sent);
  });

  it("sends event_type in the query", async () => {
    const t = setup();
    const urls: string[] = [];
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: (request: Request) => {
        urls.push(request.url);
        return t.local.fetch(request);
      },
    });
    closers.add(() => service.close());
    await service.createRestClient().getAuditLog({ eventType: "organizations", day: "2026-07-13" });
    expect(urls.at(-1)).toBe("http://local.tinker/api/v1/audit?event_type=organizations&day=2026-07-13");
  });
});

describe("billing usage costs and capabilities", () => {
  it("passes estimated_cost_usd and cost_data_through through (null locally)", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await training.saveState("s1");
    const hour = 3_600_000;
    const start = new Date(Math.floor(Date.now() / hour) * hour);
    const usage = await t.rest.getBillingUsage({
      startingOn: start,
      endingBefore: new Date(start.getTime() + hour),
    });
    expect(usage.cost_data_through).toBeNull();
    expect(usage.data).toHaveLength(1);
    expect(usage.data[0]).toMatchObject({
      event_info: { type: "checkpoint", count: 1 },
      estimated_cost_usd: null,
    });
  });

  it("lists the local models as trainable and sampleable through the deprecated getServerCapabilities", async () => {
    const t = setup();
    const capabilities = await t.service.getServerCapabilities();
    expect(capabilities.supported_models).toEqual([
      { model_name: BASE_MODEL, max_context_length: expect.any(Number), trainable: true, sampleable: true },
    ]);
    expect(lastTo(t.requests, "get_server_capabilities").method).toBe("GET");
  });
});
