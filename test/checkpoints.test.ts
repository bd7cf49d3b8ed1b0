/**
 * Checkpoints against the real local backend: exact resume with optimizer state, weights-only
 * restore, both server flows of createTrainingClientFromState, sampler checkpoints, unload, and
 * re-attaching to a saved request id.
 */
import { describe, expect, it } from "vitest";
import {
  FutureRetrieveError,
  RequestFailedError,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { jsonBody, localService, localServicesClosedAfterEach, QA, qaDatum } from "./helpers.js";

const { setup } = localServicesClosedAfterEach();

const batch = QA.map((qa) => qaDatum(qa.question, qa.answer));

/** Runs `steps` training steps and returns each step's loss. */
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

describe.each([
  ["weights_info + create_model + load_weights", {}],
  ["create_model_via_load_weights", { create_model_via_load_weights: true }],
])("resume from a checkpoint (%s)", (_flow, clientConfig) => {
  it("reproduces the losses exactly with optimizer state, and not without", async () => {
    const t = setup({ local: { clientConfig } });
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 8, seed: 3 });
    await train(training, 3);
    const { path } = await training.saveState("after-3");
    expect(path).toBe(`tinker://${training.modelId}/weights/after-3`);
    const original = await train(training, 3);

    const resumed = await t.service.createTrainingClientFromStateWithOptimizer(path);
    expect(resumed.modelId).not.toBe(training.modelId);
    expect(await train(resumed, 3)).toEqual(original);

    const weightsOnly = await t.service.createTrainingClientFromState(path);
    const restarted = await train(weightsOnly, 3);
    // Same weights, so the first loss matches; a fresh optimizer takes different steps after it.
    expect(restarted[0]).toBe(original[0]);
    expect(restarted.slice(1)).not.toEqual(original.slice(1));

    const loads = t.requests
      .filter((r) => r.path.endsWith("/load_weights"))
      .map((r) => jsonBody(r) as Record<string, unknown>);
    if ("create_model_via_load_weights" in clientConfig) {
      expect(loads[0]).toMatchObject({ model_seq_id: 1, path, optimizer: true, type: "load_weights" });
      expect(loads[0]).not.toHaveProperty("model_id");
      expect(t.requests.some((r) => r.path.endsWith("/weights_info"))).toBe(false);
    } else {
      expect(loads[0]).toEqual({
        model_id: resumed.modelId,
        seq_id: 1,
        path,
        optimizer: true,
        type: "load_weights",
      });
      expect(loads[1]).toMatchObject({ seq_id: 1, optimizer: false });
      const info = t.requests.find((r) => r.path.endsWith("/weights_info"))!;
      expect(jsonBody(info)).toEqual({ tinker_path: path });
    }
  });
});

describe("checkpoints", () => {
  it("loads state into a running client in order, and refuses to overwrite by accident", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const first = (await train(training, 1))[0]!;
    const { path } = await training.saveState("start", { ttlSeconds: 3600 });
    const save = jsonBody(t.requests.find((r) => r.path.endsWith("/save_weights"))!);
    expect(save).toEqual({
      model_id: training.modelId,
      path: "start",
      seq_id: 3,
      ttl_seconds: 3600,
      overwrite: false,
      type: "save_weights",
    });
    await train(training, 2);
    // Queued right behind the training calls: the load runs after them, then the forward sees it.
    const loaded = training.loadState(path);
    const out = training.forward(batch, "cross_entropy");
    expect((await loaded).path).toBe(path);
    const afterLoad = (await out).metrics["loss:sum"]!;
    expect(afterLoad).not.toBe(first);
    await expect(training.saveState("start")).rejects.toBeInstanceOf(RequestFailedError);
    await expect(training.saveState("start", { overwrite: true })).resolves.toMatchObject({ path });
    expect(() => training.saveState("bad/name")).toThrow(ValidationError);
    expect(() => training.loadState("weights/start")).toThrow(ValidationError);
  });

  it("serves samplers from named sampler checkpoints and reports their base model", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 4 });
    await train(training, 2);
    const { path } = await training.saveWeightsForSampler("s1");
    const sampler = await training.createSamplingClient(path);
    expect(await sampler.getBaseModel()).toBe("Qwen/Qwen3-8B");
    const ephemeral = await training.saveWeightsAndGetSamplingClient();
    const prompt = batch[0]!.model_input;
    expect(await sampler.computeLogprobs(prompt)).toEqual(await ephemeral.computeLogprobs(prompt));
    const info = await training.getInfo();
    expect(info).toMatchObject({ model_id: training.modelId, is_lora: true, lora_rank: 4 });
    expect(info.model_data.tokenizer_id).toBe("tinker-ts/byte-level");
  });

  it("unloads a model; later operations on it fail", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    await expect(training.unloadModel()).resolves.toMatchObject({ model_id: training.modelId });
    await expect(training.forward(batch, "cross_entropy")).rejects.toMatchObject({ status: 410 });
  });

  it("re-attaches to a request id with futures.retrieve", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const future = training.forward(batch, "cross_entropy");
    const requestId = await future.requestId;
    const again = t.service.futures.retrieve(requestId, "Forward");
    expect(await again).toEqual(await future);
    await expect(t.service.futures.retrieve("req-unknown", "Forward")).rejects.toBeInstanceOf(
      FutureRetrieveError,
    );
  });
});

describe("chunked forward_backward", () => {
  it("splits by the server's limit, submits chunk 1 last, runs in order and merges", async () => {
    const t = setup({ local: { clientConfig: { fwdbwd_max_chunk_len: 2 } } });
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4, seed: 1 });
    const chunked = await training.forward(batch, "cross_entropy");

    const whole = localService();
    const reference = await whole.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", {
      rank: 4,
      seed: 1,
    });
    const single = await reference.forward(batch, "cross_entropy");
    await whole.close();

    expect(chunked.loss_fn_outputs).toEqual(single.loss_fn_outputs);
    expect(chunked.metrics["loss:sum"]).toBeCloseTo(single.metrics["loss:sum"]!, 9);
    const seqIds = t.requests.filter((r) => r.path.endsWith("/forward_backward")).map((r) => r.body);
    expect(seqIds).toHaveLength(2);
    // The second chunk (seq_id 2) is sent before the first (seq_id 1), as the official client does.
    const { forwardBackwardRequestToProtoJson } = await import("../src/wire/protobuf/proto-json.js");
    const order = seqIds.map(
      (body) => (forwardBackwardRequestToProtoJson(body) as { seq_id: number }).seq_id,
    );
    expect(order).toEqual([2, 1]);
    // The next operation continues after both chunks.
    await training.optimStep();
    const optim = jsonBody(t.requests.find((r) => r.path.endsWith("/optim_step"))!) as { seq_id: number };
    expect(optim.seq_id).toBe(3);
  });
});
