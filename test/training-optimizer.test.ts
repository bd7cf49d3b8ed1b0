/**
 * The optimizer family of a training run (PROTOCOL.md §O1–§O4) against the real local backend:
 * a Dimuon run steps with Dimuon (the engine's own trajectory, not AdamW's), its learning rate is
 * used, a step of the other family is refused by the SDK (ValidationError, nothing sent) and by the
 * backend (400, before the seq_id is used), weights_info names the family, and a resume with the
 * optimizer state continues bit for bit through both from-state flows and across a restart.
 */
import { describe, expect, it } from "vitest";
import {
  type DimuonParams,
  RequestFailedError,
  ServiceClient,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { BaseModels, BUILTIN_BASE_MODEL } from "../src/local/base-models.js";
import { TrainableModel } from "../src/local/engine/index.js";
import { createLocalTinker, MemoryStore } from "../src/local/index.js";
import { jsonBody, localServicesClosedAfterEach, QA, qaDatum, type RecordedRequest } from "./helpers.js";

const { setup, closers } = localServicesClosedAfterEach();

const MODEL = BUILTIN_BASE_MODEL;
const LORA = { rank: 8, seed: 3 };
const DIMUON = { type: "dimuon", version: 1 } as const;
const DIMUON_STEP: DimuonParams = { type: "dimuon", learning_rate: 0.05 };
const batch = QA.map((qa) => qaDatum(qa.question, qa.answer));

/** `steps` rounds of forward_backward + optim_step; the loss of each round. */
async function train(
  training: TrainingClient,
  steps: number,
  params: Parameters<TrainingClient["optimStep"]>[0] = DIMUON_STEP,
): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const [out] = await Promise.all([
      training.forwardBackward(batch, "cross_entropy"),
      training.optimStep(params),
    ]);
    losses.push(out.metrics["loss:sum"]!);
  }
  return losses;
}

/** The same rounds on the engine itself, with the given family and step settings. */
function engineLosses(
  family: "adamw" | "dimuon",
  steps: number,
  settings: Parameters<TrainableModel["optimStep"]>[0],
): number[] {
  const base = new BaseModels(undefined, true).get(MODEL);
  const model = new TrainableModel(
    base,
    { rank: LORA.rank, seed: LORA.seed, trainAttn: true, trainMlp: true, trainUnembed: true },
    { optimizer: family },
  );
  const engineBatch = batch.map((d) => ({
    tokens: d.model_input.chunks.flatMap((c) => (c.type === "encoded_text" ? c.tokens : [])),
    lossFnInputs: {
      target_tokens: d.loss_fn_inputs["target_tokens"]!.data,
      weights: d.loss_fn_inputs["weights"]!.data,
    },
  }));
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    losses.push(model.forwardBackward(engineBatch, "cross_entropy", undefined, false).metrics["loss:sum"]!);
    model.optimStep(settings);
  }
  return losses;
}

function bodyText(request: RecordedRequest): string {
  return new TextDecoder().decode(request.body);
}

function sentTo(requests: RecordedRequest[], route: string): RecordedRequest[] {
  return requests.filter((r) => r.path.endsWith(`/api/v1/${route}`));
}

/** A JSON request straight to the backend, as a client without the SDK's checks would send it. */
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

/** Polls a request id until the backend has its outcome (a result, or `{error, category}`). */
async function outcome(fetch: (request: Request) => Promise<Response>, requestId: string) {
  for (;;) {
    const answer = await post(fetch, "retrieve_future", { request_id: requestId });
    if (answer.body.type !== "try_again") return answer.body;
  }
}

describe("a Dimuon training run", () => {
  it("is created with optimizer_config and steps with Dimuon at its own learning rate", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    expect(training.optimizer).toEqual(DIMUON);
    const [create] = sentTo(t.requests, "create_model");
    const sessionId = training.modelId.split(":train:")[0]!;
    expect(bodyText(create!)).toBe(
      JSON.stringify({
        session_id: sessionId,
        model_seq_id: 0,
        base_model: MODEL,
        lora_config: { rank: 8, seed: 3, train_unembed: true, train_mlp: true, train_attn: true },
        optimizer_config: { type: "dimuon", version: 1 },
        type: "create_model",
      }),
    );

    const losses = await train(training, 6);
    // The loss falls, and along Dimuon's own trajectory at this learning rate, not AdamW's.
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.7);
    const settings = {
      type: "dimuon" as const,
      learningRate: 0.05,
      gradClipNorm: 0,
      beta1: 0.9,
      damping: 0.1,
      rankLrCorrectionExponent: 0,
    };
    const dimuon = engineLosses("dimuon", 6, settings);
    const adam = engineLosses("adamw", 6, {
      learningRate: 0.05,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weightDecay: 0,
      gradClipNorm: 0,
    });
    losses.forEach((loss, i) => {
      expect(loss).toBeCloseTo(dimuon[i]!, 4);
    });
    expect(Math.abs(losses.at(-1)! - adam.at(-1)!)).toBeGreaterThan(1e-3);

    // The step body: optimizer_params with the 0.30.4 fields (defaults filled), then the rest.
    const steps = sentTo(t.requests, "optim_step");
    expect(bodyText(steps[0]!)).toBe(
      JSON.stringify({
        optimizer_params: { type: "dimuon", learning_rate: 0.05, grad_clip_norm: 0, beta1: 0.9 },
        model_id: training.modelId,
        seq_id: 2,
        type: "optim_step",
      }),
    );

    // The learning rate is what moves the weights: at 0 a step changes nothing.
    const frozen = await train(training, 2, { type: "dimuon", learning_rate: 0 });
    expect(frozen[1]).toBe(frozen[0]);
  });

  it("sends damping and rank_lr_correction_exponent only when set, and the backend uses them", async () => {
    const t = setup();
    const a = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const b = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const withDefaults = await train(a, 3, { type: "dimuon", learning_rate: 0.05, damping: 0.1 });
    const plain = await train(b, 3);
    // 0.1 is the engine's default damping: stating it changes nothing.
    expect(withDefaults).toEqual(plain);
    const other = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const damped = await train(other, 3, {
      type: "dimuon",
      learning_rate: 0.05,
      damping: 100,
      rank_lr_correction_exponent: 1,
    });
    expect(damped[2]).not.toBe(plain[2]);
    const body = jsonBody(sentTo(t.requests, "optim_step").at(-1)!) as { optimizer_params: unknown };
    expect(JSON.stringify(body.optimizer_params)).toBe(
      JSON.stringify({
        type: "dimuon",
        learning_rate: 0.05,
        grad_clip_norm: 0,
        beta1: 0.9,
        damping: 100,
        rank_lr_correction_exponent: 1,
      }),
    );
  });

  it("AdamW runs send the 0.25 optim_step body unchanged", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    expect(training.optimizer).toEqual({ type: "adamw" });
    await train(training, 1, { learning_rate: 0.01 });
    expect(bodyText(sentTo(t.requests, "optim_step")[0]!)).toBe(
      JSON.stringify({
        adam_params: {
          learning_rate: 0.01,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-12,
          weight_decay: 0,
          grad_clip_norm: 0,
        },
        model_id: training.modelId,
        seq_id: 2,
        type: "optim_step",
      }),
    );
  });
});

describe("optimizer family mismatches", () => {
  it("are refused by the SDK before anything is sent", async () => {
    const t = setup();
    const dimuon = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const adam = await t.service.createLoraTrainingClient(MODEL, LORA);
    const before = t.requests.length;
    expect(() => dimuon.optimStep({ learning_rate: 1e-3 })).toThrow(ValidationError);
    expect(() => adam.optimStep({ type: "dimuon", learning_rate: 0.05 })).toThrow(
      /created with the adamw optimizer/,
    );
    // Bad Dimuon settings too (§O3).
    for (const bad of [
      { type: "dimuon", learning_rate: -1 },
      { type: "dimuon", learning_rate: 0.1, beta1: 1 },
      { type: "dimuon", learning_rate: 0.1, damping: 0 },
      { type: "dimuon", learning_rate: Number.NaN },
      { type: "dimuon", learning_rate: 0.1, rank_lr_correction_exponent: Number.POSITIVE_INFINITY },
      { type: "dimuon", learning_rate: 0.1, beta2: 0.9 },
    ]) {
      expect(() => dimuon.optimStep(bad as DimuonParams)).toThrow(ValidationError);
    }
    // An unknown family or Dimuon version when the run is created.
    await expect(
      t.service.createLoraTrainingClient(MODEL, { optimizer: { type: "sgd" } as never }),
    ).rejects.toThrow(ValidationError);
    await expect(
      t.service.createLoraTrainingClient(MODEL, { optimizer: { type: "dimuon", version: 2 } as never }),
    ).rejects.toThrow(ValidationError);
    expect(sentTo(t.requests.slice(before), "optim_step")).toEqual([]);
    expect(sentTo(t.requests.slice(before), "create_model")).toEqual([]);
    // Both runs still work: nothing was taken from their sequences.
    expect(await train(dimuon, 1)).toHaveLength(1);
    expect(await train(adam, 1, {})).toHaveLength(1);
  });

  it("fail in the backend as the step's future, naming both families; the seq_id is used, so later steps run", async () => {
    const t = setup();
    const dimuon = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const adam = await t.service.createLoraTrainingClient(MODEL, LORA);
    // Never silently an AdamW step: AdamW params on a Dimuon run (seq_id 1 is the next one) …
    const adamOnDimuon = await post(t.local.fetch, "optim_step", {
      adam_params: { learning_rate: 1e-3 },
      model_id: dimuon.modelId,
      seq_id: 1,
      type: "optim_step",
    });
    expect(adamOnDimuon.status).toBe(200);
    expect(await outcome(t.local.fetch, adamOnDimuon.body.request_id as string)).toEqual({
      error: expect.stringMatching(/dimuon.*adamw|adamw.*dimuon/),
      category: "user",
    });
    // … and Dimuon params on an AdamW run, in either key.
    for (const [seqId, key] of [
      [1, "optimizer_params"],
      [2, "optim_params"],
    ] as const) {
      const answer = await post(t.local.fetch, "optim_step", {
        [key]: { type: "dimuon", learning_rate: 0.05 },
        model_id: adam.modelId,
        seq_id: seqId,
      });
      expect(answer.status).toBe(200);
      expect(await outcome(t.local.fetch, answer.body.request_id as string)).toMatchObject({
        category: "user",
      });
    }
    // Malformed bodies are refused at submission (no official client sends them).
    for (const body of [
      { adam_params: {}, optimizer_params: { type: "dimuon", learning_rate: 0.1 } },
      {},
      { optimizer_params: { type: "adamw", learning_rate: 0.1 } },
      { optimizer_params: { type: "dimuon", learning_rate: 0.1, damping: -1 } },
      { optimizer_params: { type: "dimuon" } },
    ]) {
      const answer = await post(t.local.fetch, "optim_step", {
        ...body,
        model_id: dimuon.modelId,
        seq_id: 2,
      });
      expect(answer.status, JSON.stringify(body)).toBe(400);
    }
    // The refused step took seq_id 1: the run's next operation, seq_id 2, is not left waiting.
    const next = await post(t.local.fetch, "optim_step", {
      optimizer_params: { type: "dimuon", learning_rate: 0.05 },
      model_id: dimuon.modelId,
      seq_id: 2,
    });
    expect(await outcome(t.local.fetch, next.body.request_id as string)).toMatchObject({
      type: "optim_step",
    });
  });

  it("refuses an unknown family or Dimuon version at creation with a 400", async () => {
    const t = setup();
    const sessionId = (await t.service.createLoraTrainingClient(MODEL, LORA)).modelId.split(":train:")[0]!;
    for (const optimizer_config of [{ type: "sgd" }, { type: "dimuon", version: 2 }]) {
      const answer = await post(t.local.fetch, "create_model", {
        session_id: sessionId,
        model_seq_id: 7,
        base_model: MODEL,
        optimizer_config,
      });
      expect(answer.status).toBe(400);
    }
  });

  it("refuses loading optimizer state of another family (the load fails; the run goes on)", async () => {
    const t = setup();
    const dimuon = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    await train(dimuon, 1);
    const { path } = await dimuon.saveState("dimuon-1");
    const adam = await t.service.createLoraTrainingClient(MODEL, LORA);
    const failed = await adam.loadStateWithOptimizer(path).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(RequestFailedError);
    expect((failed as RequestFailedError).category).toBe("user");
    expect((failed as Error).message).toMatch(/dimuon/);
    // The failed load used its seq_id: the run's next operations run as usual.
    expect(await train(adam, 1, {})).toHaveLength(1);
    // The weights alone load into a run of any family.
    const other = await t.service.createLoraTrainingClient(MODEL, LORA);
    await other.loadState(path);
    expect(await train(other, 1, {})).toHaveLength(1);
  });
});

describe("weights_info and resuming", () => {
  it("weights_info names the family of training and sampler checkpoints", async () => {
    const t = setup();
    const dimuon = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const adam = await t.service.createLoraTrainingClient(MODEL, LORA);
    const dimuonState = (await dimuon.saveState("s")).path;
    const dimuonSampler = (await dimuon.saveWeightsForSampler("w")).path;
    const adamState = (await adam.saveState("s")).path;
    expect((await t.service.getWeightsInfo(dimuonState)).optimizer_config).toEqual(DIMUON);
    expect((await t.service.getWeightsInfo(dimuonSampler)).optimizer_config).toEqual(DIMUON);
    expect((await t.service.getWeightsInfo(adamState)).optimizer_config).toEqual({ type: "adamw" });
  });

  describe.each([
    ["weights_info + create_model + load_weights", {}],
    ["create_model_via_load_weights", { create_model_via_load_weights: true }],
  ])("through %s", (flow, clientConfig) => {
    it("resumes a Dimuon run bit for bit with its optimizer state, and trains with another family from its weights", async () => {
      const t = setup({ local: { clientConfig } });
      const training = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
      await train(training, 3);
      const { path } = await training.saveState("after-3");
      const original = await train(training, 3);

      const resumed = await t.service.createTrainingClientFromStateWithOptimizer(path);
      expect(await train(resumed, 3)).toEqual(original);

      // Weights only, into an AdamW run (the default) or a Dimuon one (asked for).
      const asAdam = await t.service.createTrainingClientFromState(path);
      const adamLosses = await train(asAdam, 2, { learning_rate: 0.01 });
      expect(adamLosses[0]).toBe(original[0]);
      const asDimuon = await t.service.createTrainingClientFromState(path, { optimizer: DIMUON });
      const restarted = await train(asDimuon, 2);
      expect(restarted[0]).toBe(original[0]);
      // Fresh Dimuon momentum: the second step differs from the resumed one.
      expect(restarted[1]).not.toBe(original[1]);

      const sessionId = training.modelId.split(":train:")[0]!;
      if (flow === "create_model_via_load_weights") {
        const loads = sentTo(t.requests, "load_weights").map(bodyText);
        expect(loads).toEqual([
          JSON.stringify({
            session_id: sessionId,
            model_seq_id: 1,
            path,
            optimizer: true,
            optimizer_config: null,
            type: "load_weights",
          }),
          JSON.stringify({
            session_id: sessionId,
            model_seq_id: 2,
            path,
            optimizer: false,
            optimizer_config: { type: "adamw" },
            type: "load_weights",
          }),
          JSON.stringify({
            session_id: sessionId,
            model_seq_id: 3,
            path,
            optimizer: false,
            optimizer_config: DIMUON,
            type: "load_weights",
          }),
        ]);
      } else {
        // The resumed run is created with the checkpoint's family, read from weights_info.
        const creates = sentTo(t.requests, "create_model").map(
          (r) => (jsonBody(r) as { optimizer_config: unknown }).optimizer_config,
        );
        expect(creates).toEqual([DIMUON, DIMUON, { type: "adamw" }, DIMUON]);
      }
    });
  });

  it("refuses a create-via-load whose optimizer_config contradicts the optimizer state it loads", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const { path } = await training.saveState("s");
    const sessionId = training.modelId.split(":train:")[0]!;
    const refused = await post(t.local.fetch, "load_weights", {
      session_id: sessionId,
      model_seq_id: 5,
      path,
      optimizer: true,
      optimizer_config: { type: "adamw" },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toMatch(/holds dimuon optimizer state/);
  });
});

describe("persistence", () => {
  it("a Dimuon run continues exactly across a backend restart", async () => {
    const store = new MemoryStore();
    let local = createLocalTinker({ store });
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: (request) => local.fetch(request),
    });
    closers.add(async () => {
      await service.close();
      await local.close();
    });
    const training = await service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    const before = await train(training, 2);
    await local.close();
    local = createLocalTinker({ store });
    const after = await train(training, 2);

    const reference = await service.createLoraTrainingClient(MODEL, { ...LORA, optimizer: DIMUON });
    expect(await train(reference, 4)).toEqual([...before, ...after]);
    // Still a Dimuon run after the restart: AdamW params are refused (its future fails). Four
    // steps of two operations took seq_ids 1–8.
    const refused = await post(local.fetch, "optim_step", {
      adam_params: {},
      model_id: training.modelId,
      seq_id: 9,
    });
    expect(await outcome(local.fetch, refused.body.request_id as string)).toMatchObject({ category: "user" });
  });
});
