/**
 * Checkpoints written by training, against the real local backend: user_metadata on saves and in
 * listings, with the base model (PROTOCOL.md §W1, §W3, §W6), TTL bounds on both sides (§W1), and
 * copy_weights into an untrainable run (§S3). Saves that use no new field read as in 0.25.
 */
import { describe, expect, it } from "vitest";
import { ModelInput, NotFoundError, type TrainingClient, ValidationError } from "../src/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/base-models.js";
import {
  localServicesClosedAfterEach,
  promptTokens,
  QA,
  qaDatum,
  type RecordedRequest,
  sampleContent,
} from "./helpers.js";

const { setup } = localServicesClosedAfterEach();

const MODEL = BUILTIN_BASE_MODEL;
const LORA = { rank: 4, seed: 9 };
const HOUR = 3_600;
const TEN_YEARS = 315_360_000;
const batch = QA.slice(0, 3).map((qa) => qaDatum(qa.question, qa.answer));

async function train(training: TrainingClient, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const [out] = await Promise.all([
      training.forwardBackward(batch, "cross_entropy"),
      training.optimStep({ learning_rate: 1e-2 }),
    ]);
    losses.push(out.metrics["loss:sum"]!);
  }
  return losses;
}

const bodies = (requests: RecordedRequest[], route: string) =>
  requests.filter((r) => r.path.endsWith(`/api/v1/${route}`)).map((r) => new TextDecoder().decode(r.body));

async function post(fetch: (request: Request) => Promise<Response>, route: string, body: unknown) {
  const response = await fetch(
    new Request(`http://local.tinker/api/v1/${route}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "tml-test-key" },
      body: JSON.stringify(body),
    }),
  );
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("user_metadata on saves (§W1, §W3, §W6)", () => {
  it("is sent only when given, stored with the checkpoint and listed with its base model", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const plain = await training.saveState("plain");
    const tagged = await training.saveState("tagged", { userMetadata: { stage: "sft", epoch: "1" } });
    const sampler = await training.saveWeightsForSampler("w", { userMetadata: { use: "eval" } });
    const plainSampler = await training.saveWeightsForSampler("w0");

    const id = training.modelId;
    expect(bodies(t.requests, "save_weights")).toEqual([
      JSON.stringify({ model_id: id, path: "plain", seq_id: 1, overwrite: false, type: "save_weights" }),
      JSON.stringify({
        model_id: id,
        path: "tagged",
        seq_id: 2,
        overwrite: false,
        user_metadata: { stage: "sft", epoch: "1" },
        type: "save_weights",
      }),
    ]);
    expect(bodies(t.requests, "save_weights_for_sampler")).toEqual([
      JSON.stringify({
        model_id: id,
        path: "w",
        seq_id: 3,
        user_metadata: { use: "eval" },
        type: "save_weights_for_sampler",
      }),
      JSON.stringify({ model_id: id, path: "w0", seq_id: 4, type: "save_weights_for_sampler" }),
    ]);

    const listed = Object.fromEntries(
      (await rest.listCheckpoints(id)).checkpoints.map((c) => [c.tinker_path, c]),
    );
    expect(listed[plain.path]).toMatchObject({
      user_metadata: null,
      base_model: MODEL,
      checkpoint_type: "training",
    });
    expect(listed[tagged.path]).toMatchObject({
      user_metadata: { stage: "sft", epoch: "1" },
      base_model: MODEL,
      checkpoint_type: "training",
    });
    expect(listed[sampler.path]).toMatchObject({
      user_metadata: { use: "eval" },
      checkpoint_type: "sampler",
    });
    expect(listed[plainSampler.path]).toMatchObject({ user_metadata: null });
    const user = await rest.listUserCheckpoints();
    expect(user.checkpoints.find((c) => c.tinker_path === tagged.path)?.user_metadata).toEqual({
      stage: "sft",
      epoch: "1",
    });
  });

  it("an overwrite replaces the whole metadata, and without metadata removes it", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const { path } = await training.saveState("c", { userMetadata: { a: "1", b: "2" } });
    const metadata = async () =>
      (await rest.listCheckpoints(training.modelId)).checkpoints.find((c) => c.tinker_path === path)
        ?.user_metadata;
    await training.saveState("c", { overwrite: true, userMetadata: { c: "3" } });
    expect(await metadata()).toEqual({ c: "3" });
    await training.saveState("c", { overwrite: true });
    expect(await metadata()).toBeNull();
  });

  it("values must be strings: a ValidationError here, a 400 from the backend", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const before = t.requests.length;
    expect(() => training.saveState("x", { userMetadata: { n: 1 as never } })).toThrow(ValidationError);
    expect(t.requests.length).toBe(before);
    const answer = await post(t.local.fetch, "save_weights", {
      model_id: training.modelId,
      path: "x",
      seq_id: 1,
      user_metadata: { n: 1 },
    });
    expect(answer.status).toBe(400);
  });
});

describe("TTL bounds (§W1)", () => {
  it("are checked by the SDK before anything is sent", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const before = t.requests.length;
    for (const ttlSeconds of [HOUR - 1, TEN_YEARS + 1, HOUR + 0.5, 0]) {
      expect(() => training.saveState("x", { ttlSeconds })).toThrow(ValidationError);
      expect(() => training.saveWeightsForSampler("x", { ttlSeconds })).toThrow(ValidationError);
      expect(() => training.saveWeightsExternal("x", { ttlSeconds })).toThrow(ValidationError);
      await expect(
        t.service.copyWeights(`tinker://${training.modelId}/weights/x`, { ttlSeconds }),
      ).rejects.toThrow(ValidationError);
    }
    expect(t.requests.length).toBe(before);
  });

  it("are enforced by the backend with a 400 on every save route and copy_weights", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const { path } = await training.saveState("src");
    const sessionId = training.modelId.split(":train:")[0]!;
    for (const ttl_seconds of [HOUR - 1, TEN_YEARS + 1]) {
      for (const route of ["save_weights", "save_weights_for_sampler", "save_weights_external"]) {
        const answer = await post(t.local.fetch, route, {
          model_id: training.modelId,
          path: "x",
          seq_id: 2,
          ttl_seconds,
        });
        expect(answer.status, `${route} ${ttl_seconds}`).toBe(400);
        expect(answer.body.detail).toMatch(/ttl_seconds/);
      }
      const copy = await post(t.local.fetch, "copy_weights", {
        session_id: sessionId,
        model_seq_id: 9,
        source_path: path,
        ttl_seconds,
      });
      expect(copy.status).toBe(400);
    }
    // The bounds themselves are accepted, and set the expiry.
    const start = Date.now();
    const hour = await training.saveState("hour", { ttlSeconds: HOUR });
    const decade = await training.saveWeightsForSampler("decade", { ttlSeconds: TEN_YEARS });
    const listed = (await t.service.createRestClient().listCheckpoints(training.modelId)).checkpoints;
    const expiry = (p: string) => listed.find((c) => c.tinker_path === p)!.expires_at!.getTime();
    expect(expiry(hour.path) - start).toBeGreaterThanOrEqual(HOUR * 1000 - 1000);
    expect(expiry(hour.path) - start).toBeLessThan(HOUR * 1000 + 60_000);
    expect(expiry(decade.path) - start).toBeGreaterThanOrEqual(TEN_YEARS * 1000 - 1000);
    expect(bodies(t.requests, "save_weights").at(-1)).toBe(
      JSON.stringify({
        model_id: training.modelId,
        path: "hour",
        seq_id: 2,
        ttl_seconds: HOUR,
        overwrite: false,
        type: "save_weights",
      }),
    );
  });
});

describe("copy_weights (§S3)", () => {
  it("copies either kind into a new run under the session's next model counter", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    await train(training, 2);
    const state = await training.saveState("state", { userMetadata: { k: "v" } });
    const sampler = await training.saveWeightsForSampler("sampler");
    const sessionId = training.modelId.split(":train:")[0]!;

    const stateCopy = await t.service.copyWeights(state.path, { ttlSeconds: HOUR });
    const samplerCopy = await t.service.copyWeights(sampler.path, { weightsAccessToken: "token-1" });
    expect(stateCopy).toBe(`tinker://${sessionId}:train:1/weights/state`);
    expect(samplerCopy).toBe(`tinker://${sessionId}:train:2/sampler_weights/sampler`);
    expect(bodies(t.requests, "copy_weights")).toEqual([
      JSON.stringify({ session_id: sessionId, model_seq_id: 1, source_path: state.path, ttl_seconds: HOUR }),
      JSON.stringify({
        session_id: sessionId,
        model_seq_id: 2,
        source_path: sampler.path,
        weights_access_token: "token-1",
      }),
    ]);
    // The same counter as create_model.
    const next = await t.service.createLoraTrainingClient(MODEL, LORA);
    expect(next.modelId).toBe(`${sessionId}:train:3`);

    // Listed, with the source's kind, size, base model and metadata; the TTL is the copy's own.
    const original = (await rest.listCheckpoints(training.modelId)).checkpoints;
    const [copied] = (await rest.listCheckpoints(`${sessionId}:train:1`)).checkpoints;
    const source = original.find((c) => c.tinker_path === state.path)!;
    expect(copied).toMatchObject({
      checkpoint_id: "weights/state",
      checkpoint_type: "training",
      size_bytes: source.size_bytes,
      base_model: MODEL,
      user_metadata: { k: "v" },
    });
    expect(copied!.expires_at).not.toBeNull();
    expect(source.expires_at).toBeNull();
    expect((await rest.listCheckpoints(`${sessionId}:train:2`)).checkpoints[0]).toMatchObject({
      tinker_path: samplerCopy,
      checkpoint_type: "sampler",
    });
    expect((await rest.listUserCheckpoints()).checkpoints.map((c) => c.tinker_path)).toEqual(
      expect.arrayContaining([stateCopy, samplerCopy]),
    );

    // The copies hold the same weights: resuming from either path continues identically, and the
    // sampler copy samples like the original.
    const fromOriginal = await t.service.createTrainingClientFromStateWithOptimizer(state.path);
    const fromCopy = await t.service.createTrainingClientFromStateWithOptimizer(stateCopy);
    expect(await train(fromCopy, 2)).toEqual(await train(fromOriginal, 2));
    const prompt = ModelInput.fromInts(promptTokens(QA[0]!.question));
    const a = await (await t.service.createSamplingClient({ modelPath: sampler.path })).sample(prompt, 1, {
      max_tokens: 4,
      seed: 1,
    });
    const b = await (await t.service.createSamplingClient({ modelPath: samplerCopy })).sample(prompt, 1, {
      max_tokens: 4,
      seed: 1,
    });
    // Same tokens and logprobs; each submission has its own sequence ids.
    expect(sampleContent(b)).toEqual(sampleContent(a));
  });

  it("the copy's run refuses training operations with a 400, and a repeated copy answers the same path", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const { path } = await training.saveState("s");
    const sessionId = training.modelId.split(":train:")[0]!;
    const copy = await t.service.copyWeights(path);
    const runId = `${sessionId}:train:1`;
    expect(copy.startsWith(`tinker://${runId}/`)).toBe(true);
    for (const [route, body] of [
      ["optim_step", { adam_params: {}, model_id: runId, seq_id: 1 }],
      ["save_weights", { model_id: runId, path: "again", seq_id: 1 }],
      ["save_weights_for_sampler", { model_id: runId, path: "again", seq_id: 1 }],
      ["save_weights_external", { model_id: runId, path: "again", seq_id: 1 }],
      ["load_weights", { model_id: runId, seq_id: 1, path, optimizer: false }],
    ] as const) {
      const answer = await post(t.local.fetch, route, body);
      expect(answer.status, route).toBe(400);
      expect(answer.body.detail).toMatch(/cannot be trained/);
    }
    // A retried call (same model_seq_id) is the same copy; another source under it is refused.
    const again = await post(t.local.fetch, "copy_weights", {
      session_id: sessionId,
      model_seq_id: 1,
      source_path: path,
    });
    expect(again).toEqual({ status: 200, body: { tinker_path: copy } });
    const { path: other } = await training.saveWeightsForSampler("other");
    const clash = await post(t.local.fetch, "copy_weights", {
      session_id: sessionId,
      model_seq_id: 1,
      source_path: other,
    });
    expect(clash.status).toBe(400);
    // Unknown source: 404.
    await expect(t.service.copyWeights(`tinker://${training.modelId}/weights/missing`)).rejects.toThrow(
      NotFoundError,
    );
  });
});
