/**
 * Checkpoint search (PROTOCOL.md §W5): RestClient.searchCheckpoints against the real local backend —
 * the exact request (route, body keys in order, null filters left out), every filter, newest-first
 * order, cursor paging awaited page by page and walked with `for await`, the client's checks before
 * sending and the backend's 400s — plus the backend's search view on a state holding checkpoint
 * metadata (user_metadata matching, ties, cursors between equal times).
 */
import { describe, expect, it } from "vitest";
import {
  type Checkpoint,
  type CheckpointSearchCursor,
  ServiceClient,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { BaseModels } from "../src/local/base-models.js";
import { Persistence } from "../src/local/persistence.js";
import { RestViews } from "../src/local/rest-views.js";
import { createBackendState, registerRun, type Checkpoint as StoredCheckpoint } from "../src/local/state.js";
import { closeAfterEach, localService, type RecordedRequest } from "./helpers.js";

const BASE_MODEL = "tinker-ts/byte-lm-tiny";
const OTHER_MODEL = "Qwen/Qwen3-8B";
const closers = closeAfterEach();

/**
 * Two sessions: one in project p1 on the built-in model (training checkpoint s1, then sampler
 * checkpoint w1), one without a project on another model (training checkpoint s2, saved last).
 */
async function world() {
  const t = localService({ client: { projectId: "p1" } });
  closers.add(t.close);
  const other = new ServiceClient({
    apiKey: "tml-test-key",
    baseURL: "http://local.tinker",
    fetch: t.local.fetch,
  });
  closers.add(() => other.close());
  const a = await t.service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
  const s1 = (await a.saveState("s1")).path;
  const w1 = (await a.saveWeightsForSampler("w1")).path;
  const b: TrainingClient = await other.createLoraTrainingClient(OTHER_MODEL, { rank: 2 });
  const s2 = (await b.saveState("s2")).path;
  return { ...t, rest: t.service.createRestClient(), a, b, s1, w1, s2 };
}

const searches = (requests: RecordedRequest[]) =>
  requests.filter((r) => r.path === "/api/v1/checkpoints/search");
const text = (request: RecordedRequest) => new TextDecoder().decode(request.body);
const paths = (checkpoints: Checkpoint[]) => checkpoints.map((c) => c.tinker_path);

/** The backend's answer to a search body sent without the SDK. */
async function rawSearch(fetch: (request: Request) => Promise<Response>, body: unknown) {
  const response = await fetch(
    new Request("http://local.tinker/api/v1/checkpoints/search", {
      method: "POST",
      headers: { "X-API-Key": "tml-test-key", "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("RestClient.searchCheckpoints", () => {
  it("sends POST checkpoints/search with the request model's non-null fields, in order", async () => {
    const w = await world();
    const page = await w.rest.searchCheckpoints();
    expect(paths(page.checkpoints)).toEqual([w.s2, w.w1, w.s1]);
    expect(page.next_cursor).toBeNull();
    expect(page.checkpoints[0]).toMatchObject({ checkpoint_id: "weights/s2", checkpoint_type: "training" });
    expect(page.checkpoints[0]!.time).toBeInstanceOf(Date);

    const [request] = searches(w.requests);
    expect(request!.method).toBe("POST");
    expect(text(request!)).toBe('{"user_metadata":{},"owner":"me","limit":100}');

    await w.rest.searchCheckpoints({
      projectIds: ["p1"],
      userMetadata: { team: "search" },
      checkpointType: "sampler",
      owner: "any",
      baseModels: [BASE_MODEL],
      limit: 5,
    });
    expect(text(searches(w.requests)[1]!)).toBe(
      `{"project_ids":["p1"],"user_metadata":{"team":"search"},"checkpoint_type":"sampler","owner":"any","base_models":["${BASE_MODEL}"],"limit":5}`,
    );
    // Explicit nulls mean "no filter" and are left out like absent ones.
    await w.rest.searchCheckpoints({
      projectIds: null,
      checkpointType: null,
      baseModels: null,
      cursor: null,
    });
    expect(text(searches(w.requests)[2]!)).toBe('{"user_metadata":{},"owner":"me","limit":100}');
  });

  it("filters by project, kind, base model and metadata; owner any finds the same locally", async () => {
    const w = await world();
    const found = async (options: Parameters<typeof w.rest.searchCheckpoints>[0]) =>
      paths((await w.rest.searchCheckpoints(options)).checkpoints);

    expect(await found({ projectIds: ["p1"] })).toEqual([w.w1, w.s1]);
    expect(await found({ projectIds: ["p1", "elsewhere"] })).toEqual([w.w1, w.s1]);
    expect(await found({ projectIds: ["elsewhere"] })).toEqual([]);
    expect(await found({ projectIds: [] })).toEqual([]);
    expect(await found({ checkpointType: "training" })).toEqual([w.s2, w.s1]);
    expect(await found({ checkpointType: "sampler" })).toEqual([w.w1]);
    expect(await found({ checkpointType: "external" })).toEqual([]);
    expect(await found({ baseModels: [OTHER_MODEL] })).toEqual([w.s2]);
    expect(await found({ baseModels: [] })).toEqual([]);
    expect(await found({ projectIds: ["p1"], checkpointType: "training" })).toEqual([w.s1]);
    // No checkpoint here was saved with this pair.
    expect(await found({ userMetadata: { team: "search" } })).toEqual([]);
    expect(await found({ owner: "any" })).toEqual(await found({ owner: "me" }));
  });

  it("pages with the cursor as received, and walks every match with for await", async () => {
    const w = await world();
    const first = await w.rest.searchCheckpoints({ limit: 2 });
    expect(paths(first.checkpoints)).toEqual([w.s2, w.w1]);
    const cursor = first.next_cursor as CheckpointSearchCursor;
    expect(cursor).toEqual({
      last_created_at: (first.checkpoints[1]!.time as Date).toISOString(),
      last_checkpoint_uuid: w.w1,
    });
    const second = await w.rest.searchCheckpoints({ limit: 2, cursor });
    expect(paths(second.checkpoints)).toEqual([w.s1]);
    expect(second.next_cursor).toBeNull();
    expect(text(searches(w.requests)[1]!)).toBe(
      `{"user_metadata":{},"owner":"me","limit":2,"cursor":${JSON.stringify(cursor)}}`,
    );

    // A cursor stays valid when the checkpoint it names is deleted.
    await w.rest.deleteCheckpointFromTinkerPath(w.w1);
    expect(paths((await w.rest.searchCheckpoints({ limit: 2, cursor })).checkpoints)).toEqual([w.s1]);

    const before = searches(w.requests).length;
    const walked: string[] = [];
    for await (const checkpoint of w.rest.searchCheckpoints({ limit: 1 }))
      walked.push(checkpoint.tinker_path);
    expect(walked).toEqual([w.s2, w.s1]);
    const pages = searches(w.requests).slice(before);
    expect(pages).toHaveLength(2);
    expect(text(pages[0]!)).not.toContain("cursor");
    expect(JSON.parse(text(pages[1]!)).cursor).toMatchObject({ last_checkpoint_uuid: w.s2 });

    // Starting from a cursor, the walk continues after it.
    const rest: string[] = [];
    for await (const checkpoint of w.rest.searchCheckpoints({ limit: 1, cursor }))
      rest.push(checkpoint.tinker_path);
    expect(rest).toEqual([w.s1]);
  });

  it("refuses bad options before sending anything", async () => {
    const w = await world();
    const sent = w.requests.length;
    const issues = (options: object) => {
      try {
        w.rest.searchCheckpoints(options as never);
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).issues.map((issue) => issue.path);
      }
      throw new Error("no ValidationError");
    };
    expect(issues({ limit: 0 })).toEqual(["limit"]);
    expect(issues({ limit: 201 })).toEqual(["limit"]);
    expect(issues({ limit: 2.5 })).toEqual(["limit"]);
    expect(issues({ owner: "everyone" })).toEqual(["owner"]);
    expect(issues({ checkpointType: "weights" })).toEqual(["checkpointType"]);
    expect(issues({ userMetadata: { team: 7 } })).toEqual(["userMetadata.team"]);
    expect(issues({ projectIds: "p1" })).toEqual(["projectIds"]);
    expect(w.requests).toHaveLength(sent);
    // The bounds themselves are fine.
    await w.rest.searchCheckpoints({ limit: 1 });
    await w.rest.searchCheckpoints({ limit: 200 });
  });
});

describe("the local backend's search route", () => {
  it("takes explicit nulls, and answers 400 to bad limits, owners, kinds and cursors", async () => {
    const w = await world();
    const fetch = w.local.fetch;
    const all = await rawSearch(fetch, {
      project_ids: null,
      checkpoint_type: null,
      base_models: null,
      cursor: null,
    });
    expect(all.status).toBe(200);
    expect((all.body.checkpoints as unknown[]).length).toBe(3);
    // Without a limit the default page size applies (100 > 3), and nothing more is pending.
    expect(all.body.next_cursor).toBeNull();

    for (const body of [
      { limit: 0 },
      { limit: 201 },
      { owner: "everyone" },
      { checkpoint_type: "weights" },
      { user_metadata: { a: 1 } },
      { cursor: { last_created_at: "yesterday", last_checkpoint_uuid: "x" } },
      { cursor: { last_checkpoint_uuid: "x" } },
    ]) {
      const answer = await rawSearch(fetch, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(typeof answer.body.detail).toBe("string");
    }
    expect((await rawSearch(fetch, { limit: 200 })).status).toBe(200);
  });
});

describe("the search view", () => {
  /** A backend state with hand-made checkpoints: some saved at the same instant, some with metadata. */
  function views() {
    const state = createBackendState();
    const models = new BaseModels(undefined, true);
    const rest = new RestViews(state, new Persistence(state, models, () => {}));
    const lora = { rank: 1, trainAttn: true, trainMlp: true, trainUnembed: true };
    registerRun(state, {
      modelId: "s:train:0",
      sessionId: "s",
      baseModel: BASE_MODEL,
      lora,
      userMetadata: undefined,
      model: undefined as never,
    });
    const add = (name: string, time: number, userMetadata?: Record<string, string>) => {
      const checkpoint: StoredCheckpoint = {
        tinkerPath: `tinker://s:train:0/weights/${name}`,
        runId: "s:train:0",
        kind: "weights",
        name,
        baseModel: BASE_MODEL,
        state: new Uint8Array(10),
        lora,
        time: new Date(time),
        expiresAt: null,
        public: false,
        userMetadata,
      };
      state.checkpoints.set(checkpoint.tinkerPath, checkpoint);
    };
    const search = (filters: {
      userMetadata?: Record<string, string>;
      limit?: number;
      after?: { time: Date; id: string };
    }) =>
      rest.searchCheckpoints({
        projectIds: null,
        checkpointType: null,
        baseModels: null,
        userMetadata: filters.userMetadata ?? {},
        limit: filters.limit ?? 100,
        after: filters.after ?? null,
      }) as { checkpoints: { checkpoint_id: string }[]; next_cursor: CheckpointSearchCursor | null };
    return { add, search };
  }
  const names = (page: { checkpoints: { checkpoint_id: string }[] }) =>
    page.checkpoints.map((c) => c.checkpoint_id.replace("weights/", ""));

  it("matches every metadata pair exactly, and {} matches everything", () => {
    const v = views();
    v.add("plain", 1_000);
    v.add("search", 2_000, { team: "search", stage: "sft" });
    v.add("rl", 3_000, { team: "search", stage: "rl" });
    v.add("ads", 4_000, { team: "ads" });
    expect(names(v.search({}))).toEqual(["ads", "rl", "search", "plain"]);
    expect(names(v.search({ userMetadata: { team: "search" } }))).toEqual(["rl", "search"]);
    expect(names(v.search({ userMetadata: { team: "search", stage: "sft" } }))).toEqual(["search"]);
    expect(names(v.search({ userMetadata: { team: "search", stage: "eval" } }))).toEqual([]);
    expect(names(v.search({ userMetadata: { team: "Search" } }))).toEqual([]);
    expect(names(v.search({ userMetadata: { owner: "x" } }))).toEqual([]);
    // Keys of Object.prototype are not metadata.
    expect(names(v.search({ userMetadata: { constructor: "x" } }))).toEqual([]);
  });

  it("orders equal times by id and continues exactly after the cursor between them", () => {
    const v = views();
    v.add("a", 5_000);
    v.add("c", 5_000);
    v.add("b", 5_000);
    v.add("old", 1_000);
    expect(names(v.search({}))).toEqual(["c", "b", "a", "old"]);
    const first = v.search({ limit: 2 });
    expect(names(first)).toEqual(["c", "b"]);
    expect(first.next_cursor).toEqual({
      last_created_at: new Date(5_000).toISOString(),
      last_checkpoint_uuid: "tinker://s:train:0/weights/b",
    });
    const after = {
      time: new Date(first.next_cursor!.last_created_at),
      id: first.next_cursor!.last_checkpoint_uuid,
    };
    const second = v.search({ limit: 2, after });
    expect(names(second)).toEqual(["a", "old"]);
    expect(second.next_cursor).toBeNull();
    // A page that ends exactly at the last match has no next cursor.
    expect(v.search({ limit: 4 }).next_cursor).toBeNull();
  });
});
