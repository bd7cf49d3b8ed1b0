/**
 * Sampler handles (PROTOCOL.md §P4) and cloned sampling clients (§P3) against the real local
 * backend: what a handle holds (and never holds), clones sampling the same sampler with their own
 * credentials, their seq_ids in a block of 1e9 per clone — joined through join_sampling_session
 * when the server offers it, drawn at random otherwise.
 */
import { describe, expect, it } from "vitest";
import { drawCloneId } from "../src/clients/sampling-clone.js";
import { ModelInput, SamplingClient, ServiceClient, ValidationError } from "../src/index.js";
import { createLocalTinker, type LocalTinkerOptions } from "../src/local/index.js";
import { CLONE_SEQ_ID_BLOCK, MAX_EXACT_CLONE_ID } from "../src/wire/endpoints/sampling.js";
import { closeAfterEach, jsonBody, promptTokens, type RecordedRequest, recordingFetch } from "./helpers.js";

const closers = closeAfterEach();
const MODEL = "tinker-ts/byte-lm-tiny";
const ORIGINAL_KEY = "tml-original-owner-secret";
const CLONE_KEY = "tml-clone-user-secret";
const prompt = ModelInput.fromInts(promptTokens("Hi"));

function setup(local: LocalTinkerOptions = {}) {
  const backend = createLocalTinker({ longPollMs: 2_000, ...local });
  const recorder = recordingFetch(backend.fetch);
  const client = (apiKey: string) => ({ apiKey, baseURL: "http://local.tinker", fetch: recorder.fetch });
  const service = new ServiceClient(client(ORIGINAL_KEY));
  closers.add(async () => {
    await service.close();
    await backend.close();
  });
  return { backend, service, client, requests: recorder.requests };
}

const sampleBodies = (requests: RecordedRequest[], key: string) =>
  requests
    .filter((r) => r.path.endsWith("/asample") && r.headers.get("x-api-key") === key)
    .map((r) => jsonBody(r) as { seq_id: number; sampling_session_id: string });

function decodeHandle(handle: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(handle, "base64url").toString("utf8"));
}

describe("sampler handles (P4)", () => {
  it("hold the sampler, session, base model and stability flag in URL-safe base64 JSON, and no credential", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL, recordStabilityInfo: true });
    const handle = sampler.getSamplerHandle();
    expect(handle).toMatch(/^[A-Za-z0-9_-]+$/);
    const fields = decodeHandle(handle);
    expect(Object.keys(fields)).toEqual([
      "v",
      "sampling_session_id",
      "session_id",
      "base_model",
      "record_stability_info",
    ]);
    expect(fields).toEqual({
      v: 1,
      sampling_session_id: sampler.samplingSessionId,
      session_id: expect.stringMatching(/^session-/),
      base_model: MODEL,
      record_stability_info: true,
    });
    expect(sampler.samplingSessionId.startsWith(fields.session_id as string)).toBe(true);
    for (const text of [handle, Buffer.from(handle, "base64url").toString("utf8")]) {
      expect(text).not.toContain(ORIGINAL_KEY);
      expect(text).not.toContain("tml-");
      expect(text).not.toContain("local.tinker");
    }
  });

  it("round-trips: a clone keeps the sampler and its settings, and its own handle names the same sampler", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL, recordStabilityInfo: true });
    const clone = await SamplingClient.fromSamplerHandle(sampler.getSamplerHandle(), t.service);
    expect(clone.samplingSessionId).toBe(sampler.samplingSessionId);
    expect(clone.baseModel).toBe(MODEL);
    expect(clone.recordStabilityInfo).toBe(true);
    expect(decodeHandle(clone.getSamplerHandle())).toEqual(decodeHandle(sampler.getSamplerHandle()));
  });

  it("refuses anything that is not a handle before sending a request", async () => {
    const t = setup();
    const before = t.requests.length;
    for (const bad of ["", "not a handle!", Buffer.from('{"v":2}').toString("base64url"), "e30"]) {
      await expect(SamplingClient.fromSamplerHandle(bad, t.service)).rejects.toBeInstanceOf(ValidationError);
    }
    expect(t.requests.length).toBe(before);
  });
});

describe("cloned samplers (P3)", () => {
  it("join the sampling session for a clone counter and sample in its block, with their own credentials", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const handle = sampler.getSamplerHandle();
    // One clone shares a ServiceClient of another user; one opens a connection of its own.
    const otherService = new ServiceClient(t.client(CLONE_KEY));
    closers.add(() => otherService.close());
    const first = await SamplingClient.fromSamplerHandle(handle, otherService);
    const second = await SamplingClient.fromSamplerHandle(handle, t.client(CLONE_KEY));
    closers.add(() => second.close());

    await sampler.sample(prompt, 1, { max_tokens: 1 });
    await first.sample(prompt, 1, { max_tokens: 1 });
    await first.sample(prompt, 2, { max_tokens: 1 });
    await second.sample(prompt, 1, { max_tokens: 1 });
    await sampler.sample(prompt, 1, { max_tokens: 1 });

    const joins = t.requests.filter((r) => r.path.endsWith("/join_sampling_session"));
    expect(joins).toHaveLength(2);
    for (const join of joins) {
      expect(new TextDecoder().decode(join.body)).toBe(
        JSON.stringify({ sampling_session_id: sampler.samplingSessionId, type: "join_sampling_session" }),
      );
      expect(join.headers.get("x-api-key")).toBe(CLONE_KEY);
    }
    const original = sampleBodies(t.requests, ORIGINAL_KEY).map((b) => b.seq_id);
    const clones = sampleBodies(t.requests, CLONE_KEY).map((b) => b.seq_id);
    expect(original).toEqual([0, 1]);
    // Counters 1 and 2 in join order (the first clone joined first), each block counting from 0.
    expect(clones).toEqual([CLONE_SEQ_ID_BLOCK, CLONE_SEQ_ID_BLOCK + 1, 2 * CLONE_SEQ_ID_BLOCK]);
    for (const body of sampleBodies(t.requests, CLONE_KEY)) {
      expect(body.sampling_session_id).toBe(sampler.samplingSessionId);
    }
    // The shadow clients made no session of their own.
    const sessions = t.requests.filter((r) => r.path.endsWith("/create_session"));
    expect(sessions.map((r) => r.headers.get("x-api-key"))).toEqual([ORIGINAL_KEY]);
  });

  it("draw a random clone id when the server has no join (clientConfig override)", async () => {
    const t = setup({ clientConfig: { sample_join_sampling_session: false } });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const a = await SamplingClient.fromSamplerHandle(sampler.getSamplerHandle(), t.service);
    const b = await SamplingClient.fromSamplerHandle(sampler.getSamplerHandle(), t.service);
    await a.sample(prompt, 1, { max_tokens: 1 });
    await a.sample(prompt, 1, { max_tokens: 1 });
    await b.sample(prompt, 1, { max_tokens: 1 });
    expect(t.requests.some((r) => r.path.endsWith("/join_sampling_session"))).toBe(false);
    const [a0, a1, b0] = sampleBodies(t.requests, ORIGINAL_KEY).map((body) => body.seq_id);
    for (const seqId of [a0!, a1!, b0!]) {
      expect(Number.isSafeInteger(seqId)).toBe(true);
      const clone = Math.floor(seqId / CLONE_SEQ_ID_BLOCK);
      expect(clone).toBeGreaterThanOrEqual(1);
      expect(clone).toBeLessThanOrEqual(MAX_EXACT_CLONE_ID);
    }
    expect(a0! % CLONE_SEQ_ID_BLOCK).toBe(0);
    expect(a1).toBe(a0! + 1);
    expect(Math.floor(b0! / CLONE_SEQ_ID_BLOCK)).not.toBe(Math.floor(a0! / CLONE_SEQ_ID_BLOCK));
  });

  it("draws clone ids across the whole exact range", () => {
    expect(drawCloneId(() => 0)).toBe(1);
    expect(drawCloneId(() => 0.999999999999)).toBe(MAX_EXACT_CLONE_ID);
    // Every seq_id of the last block is still an exact JSON number.
    expect(Number.isSafeInteger(MAX_EXACT_CLONE_ID * CLONE_SEQ_ID_BLOCK + CLONE_SEQ_ID_BLOCK - 1)).toBe(true);
    expect(Number.isSafeInteger((MAX_EXACT_CLONE_ID + 1) * CLONE_SEQ_ID_BLOCK + CLONE_SEQ_ID_BLOCK - 1)).toBe(
      false,
    );
  });

  it("join_sampling_session: counters from 1 per sampler, 404 for an unknown sampler", async () => {
    const t = setup();
    const a = await t.service.createSamplingClient({ baseModel: MODEL });
    const b = await t.service.createSamplingClient({ baseModel: MODEL });
    const join = async (samplerId: string) => {
      const response = await t.backend.fetch(
        new Request("http://local.tinker/api/v1/join_sampling_session", {
          method: "POST",
          headers: { "X-API-Key": ORIGINAL_KEY, "content-type": "application/json" },
          body: JSON.stringify({ sampling_session_id: samplerId, type: "join_sampling_session" }),
        }),
      );
      return { status: response.status, text: await response.text() };
    };
    expect((await join(a.samplingSessionId)).text).toBe(
      '{"type":"join_sampling_session","client_counter":1}',
    );
    expect((await join(a.samplingSessionId)).text).toBe(
      '{"type":"join_sampling_session","client_counter":2}',
    );
    expect((await join(b.samplingSessionId)).text).toBe(
      '{"type":"join_sampling_session","client_counter":1}',
    );
    const unknown = await join("session-nope:sample:0");
    expect(unknown.status).toBe(404);
    expect(unknown.text).toMatch(/sampler not found/);
  });
});
