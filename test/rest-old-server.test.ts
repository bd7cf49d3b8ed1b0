/**
 * The newer REST calls against a server from before them: the real local backend behind a fetch
 * wrapper that plays a 0.25-era service — no search, storage-usage or finish route (FastAPI's bare
 * 404), an audit route that knows only `all` and `checkpoints` (422 otherwise), and answers without
 * the fields added since. The SDK must give typed errors that say what is missing, never crash, and
 * read the older answers.
 */
import { describe, expect, it } from "vitest";
import { type Logger, NotFoundError, ServiceClient, UnprocessableEntityError } from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { closeAfterEach } from "./helpers.js";

const BASE_MODEL = "tinker-ts/byte-lm-tiny";
const closers = closeAfterEach();

const NEW_ROUTES = [
  /\/checkpoints\/search$/,
  /\/billing\/usage\/checkpoints\/current$/,
  /\/sessions\/[^/]+\/finish$/,
];
/** Fields the backend adds that a 0.25-era server would not send. */
const NEW_FIELDS = [
  "user_metadata",
  "finished",
  "trainable",
  "sampleable",
  "estimated_cost_usd",
  "cost_data_through",
  "event_details",
];

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function withoutNewFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNewFields);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !NEW_FIELDS.includes(key))
      .map(([key, entry]) => [key, withoutNewFields(entry)]),
  );
}

function oldServer() {
  const local = createLocalTinker({ longPollMs: 1_000 });
  closers.add(() => local.close());
  const fetch = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (NEW_ROUTES.some((route) => route.test(url.pathname))) return json({ detail: "Not Found" }, 404);
    const eventType = url.searchParams.get("event_type");
    if (
      url.pathname.endsWith("/audit") &&
      eventType !== null &&
      !["all", "checkpoints"].includes(eventType)
    ) {
      return json(
        { detail: [{ loc: ["query", "event_type"], msg: "Input should be 'all' or 'checkpoints'" }] },
        422,
      );
    }
    const response = await local.fetch(request);
    // Only the REST answers are rewritten; training, sampling and futures pass as they are.
    const rest = /\/(sessions|audit|billing|get_server_capabilities)/.test(url.pathname);
    if (!rest || !(response.headers.get("content-type") ?? "").includes("json")) return response;
    return json(withoutNewFields(await response.json()), response.status);
  };
  const warnings: string[] = [];
  const logger: Logger = { info() {}, warn: (m) => warnings.push(m), error() {} };
  const service = new ServiceClient({
    apiKey: "tml-test-key",
    baseURL: "http://local.tinker",
    fetch,
    logger,
  });
  closers.add(() => service.close());
  return { service, rest: service.createRestClient(), warnings };
}

describe("against a server without the newer routes", () => {
  it("search says which route is missing and since when, awaited or iterated", async () => {
    const { rest } = oldServer();
    const error = await rest.searchCheckpoints().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, body: { detail: "Not Found" } });
    expect((error as Error).message).toBe(
      'Error code: 404 - {"detail":"Not Found"} (POST /api/v1/checkpoints/search was added in tinker 0.39.0; this server may not offer it)',
    );
    const walk = async () => {
      for await (const _ of rest.searchCheckpoints({ limit: 5 })) {
        // never reached
      }
    };
    await expect(walk()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("storage usage says the same, with its own version", async () => {
    const { rest } = oldServer();
    const error = await rest.getCurrentCheckpointStorageUsage({ projectId: "p1" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain(
      "GET /api/v1/billing/usage/checkpoints/current was added in tinker 0.32.0",
    );
  });

  it("a 404 of an old route keeps its plain message", async () => {
    const { rest } = oldServer();
    const error = await rest.getSession("session-unknown").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe(
      'Error code: 404 - {"detail":"session not found: session-unknown"}',
    );
  });

  it("closing only warns, and the new audit types get the server's 422", async () => {
    const { service, rest, warnings } = oldServer();
    const training = await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await training.saveState("s1");
    await expect(rest.getAuditLog({ eventType: "teams" })).rejects.toBeInstanceOf(UnprocessableEntityError);
    const log = await rest.getAuditLog({ eventType: "checkpoints" });
    expect(log.entries.map((e) => e.event)).toEqual(["checkpoint_saved"]);
    expect(log.entries[0]!.event_details).toBeUndefined();
    await service.close("success");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not finish session .*404/);
  });

  it("reads the older answers of sessions, billing and capabilities", async () => {
    const { service, rest } = oldServer();
    const training = await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
    await training.saveState("s1");
    const session = await rest.getSession(training.modelId.split(":train:")[0]!);
    expect(session).toEqual({ training_run_ids: [training.modelId], sampler_ids: [] });
    const hour = 3_600_000;
    const start = new Date(Math.floor(Date.now() / hour) * hour);
    const usage = await rest.getBillingUsage({
      startingOn: start,
      endingBefore: new Date(start.getTime() + hour),
    });
    expect(usage.cost_data_through).toBeUndefined();
    expect(usage.data[0]!.estimated_cost_usd).toBeUndefined();
    const capabilities = await service.getServerCapabilities();
    expect(capabilities.supported_models[0]).toEqual({
      model_name: BASE_MODEL,
      max_context_length: expect.any(Number),
    });
  });
});
