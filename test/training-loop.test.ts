/**
 * The SDK against the real local backend, in-process: a train-and-sample loop, ordering, futures,
 * client-side validation, and shutdown without leftover timers.
 */
import { describe, expect, it } from "vitest";
import { APIFuture, ModelInput, ValidationError } from "../src/index.js";
import { decodeTokens } from "../src/local/index.js";
import {
  jsonBody,
  localService,
  localServicesClosedAfterEach,
  promptTokens,
  QA,
  qaDatum,
  sampleContent,
} from "./helpers.js";

const { setup } = localServicesClosedAfterEach();

describe("train and sample on the local backend", () => {
  it("lowers the loss and reproduces the trained answers greedily", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", {
      rank: 16,
      seed: 1,
    });
    const batch = QA.map((qa) => qaDatum(qa.question, qa.answer));
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const fb = training.forwardBackward(batch, "cross_entropy");
      const optim = training.optimStep({ learning_rate: 1e-2 });
      const [out, stats] = await Promise.all([fb, optim]);
      losses.push(out.metrics["loss:sum"]!);
      expect(out.loss_fn_outputs).toHaveLength(batch.length);
      expect(out.loss_fn_outputs[0]!.logprobs!.data).toHaveLength(
        batch[0]!.model_input.chunks[0]!.type === "encoded_text"
          ? (batch[0]!.model_input.chunks[0] as { tokens: number[] }).tokens.length
          : 0,
      );
      expect(stats.metrics).toBeTypeOf("object");
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.2);

    const sampler = await training.saveWeightsAndGetSamplingClient();
    for (const { question, answer } of QA) {
      const result = await sampler.sample(ModelInput.fromInts(promptTokens(question)), 1, {
        max_tokens: 20,
        temperature: 0,
        stop: ["\n"],
      });
      expect(decodeTokens(result.sequences[0]!.tokens)).toBe(` ${answer}\n`);
      expect(result.sequences[0]!.stop_reason).toBe("stop");
    }

    const prompt = ModelInput.fromInts(promptTokens(QA[0]!.question));
    const logprobs = await sampler.computeLogprobs(prompt);
    expect(logprobs).toHaveLength(promptTokens(QA[0]!.question).length);
    expect(logprobs[0]).toBeNull();
    for (const lp of logprobs.slice(1)) expect(lp).toBeLessThanOrEqual(0);
  });

  it("is deterministic per sampling seed", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
    const prompt = ModelInput.fromInts(promptTokens("Say something"));
    const params = { max_tokens: 12, temperature: 1, seed: 1234 };
    const a = await sampler.sample(prompt, 3, params);
    const b = await sampler.sample(prompt, 3, params);
    const c = await sampler.sample(prompt, 3, { ...params, seed: 99 });
    expect(sampleContent(a).sequences).toEqual(sampleContent(b).sequences);
    expect(sampleContent(a).sequences).not.toEqual(sampleContent(c).sequences);
    expect(a.sequences).toHaveLength(3);
    for (const s of a.sequences) {
      expect(s.stop_reason).toBe("length");
      expect(s.tokens).toHaveLength(12);
      expect(s.logprobs).toHaveLength(12);
    }
  });

  it("takes seq_ids at call time, in call order, and submits each after the previous is accepted", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const batch = [qaDatum("Q", "A")];
    const futures = [
      training.forwardBackward(batch, "cross_entropy"),
      training.optimStep({ learning_rate: 1e-3 }),
      training.forward(batch, "cross_entropy"),
      training.optimStep({ learning_rate: 1e-3 }),
    ];
    expect(futures[0]).toBeInstanceOf(APIFuture);
    const ids = await Promise.all(futures.map((f) => f.requestId));
    expect(new Set(ids).size).toBe(4);
    await Promise.all(futures);
    const submissions = t.requests.filter((r) => /\/(forward_backward|optim_step)$/.test(r.path));
    const seqIds = submissions.map((r) =>
      r.path.endsWith("optim_step") ? (jsonBody(r) as { seq_id: number }).seq_id : undefined,
    );
    expect(seqIds[1]).toBe(2);
    expect(seqIds[3]).toBe(4);
    expect(submissions.map((r) => r.path.split("/").at(-1))).toEqual([
      "forward_backward",
      "optim_step",
      "forward_backward",
      "optim_step",
    ]);
  });

  it("rejects bad input with a ValidationError before sending anything", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const sent = t.requests.length;
    const good = qaDatum("Q", "A");
    const short = {
      ...good,
      loss_fn_inputs: { ...good.loss_fn_inputs, weights: { data: [1, 1], dtype: "float32" as const } },
    };
    expect(() => training.forwardBackward([good, short], "cross_entropy")).toThrow(ValidationError);
    try {
      training.forwardBackward([good, short], "cross_entropy");
    } catch (error) {
      expect((error as ValidationError).issues[0]!.path).toBe("data[1].loss_fn_inputs.weights");
    }
    expect(() => training.forwardBackward([], "cross_entropy")).toThrow(/No data provided/);
    expect(() => training.forwardBackward([good], "ppo")).toThrow(
      /data\[0\]\.loss_fn_inputs\.logprobs: is required/,
    );
    expect(() => training.optimStep({ learning_rate: -1 })).toThrow(/adam_params.learning_rate/);
    const sampler = await t.service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
    const afterSampler = t.requests.length;
    expect(() => sampler.sample(ModelInput.fromInts([1, 2]), 0, {})).toThrow(/num_samples/);
    expect(() => sampler.sample(ModelInput.fromInts([1.5]), 1, {})).toThrow(/invalid token id/);
    expect(t.requests.length).toBe(afterSampler);
    expect(t.requests.slice(sent).every((r) => !/forward_backward|optim_step/.test(r.path))).toBe(true);
    // Nothing was lost: the next real call still gets seq_id 1.
    await training.forwardBackward([good], "cross_entropy");
    const fb = t.requests.find((r) => r.path.endsWith("/forward_backward"))!;
    expect(fb).toBeDefined();
  });

  it("reports queue states through events() and exposes the request id", async () => {
    const t = setup({
      local: {
        chaos: [
          {
            endpoint: "retrieve_future",
            after: 1,
            status: 408,
            body: { queue_state: "paused_capacity", queue_state_reason: "busy" },
          },
        ],
      },
    });
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const future = training.forwardBackward([qaDatum("Q", "A")], "cross_entropy");
    const events = [];
    for await (const event of future.events()) events.push(event);
    const id = await future.requestId;
    expect(id).toMatch(/^req-/);
    expect((await future).metrics["loss:sum"]).toBeGreaterThan(0);
    // A 408 is a try_again in disguise; its queue state reaches events().
    expect(events).toContainEqual({
      type: "queue_state",
      queueState: "paused_capacity",
      reason: "busy",
      iteration: 0,
    });
  });

  it("leaves no timers behind after close()", async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const t = localService({ client: { heartbeatIntervalMs: 20 } });
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    await training.forwardBackward([qaDatum("Q", "A")], "cross_entropy");
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(t.requests.some((r) => r.path.endsWith("/session_heartbeat"))).toBe(true);
    await t.close();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const after = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    expect(after).toBeLessThanOrEqual(before);
  });
});

describe("raw responses", () => {
  it("shows every response's status and headers to onResponse, retries included", async () => {
    const seen: {
      method: string;
      path: string;
      status: number;
      contentType: string | null;
      retry: number;
    }[] = [];
    const t = setup({
      local: { chaos: [{ endpoint: "get_info", status: 503, headers: { "retry-after-ms": "5" } }] },
      client: {
        onResponse: (info) =>
          seen.push({
            method: info.method,
            path: new URL(info.url).pathname,
            status: info.status,
            contentType: info.headers.get("content-type"),
            retry: info.retryCount,
          }),
      },
    });
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    await training.getInfo();
    const getInfo = seen.filter((s) => s.path.endsWith("/get_info"));
    expect(getInfo).toEqual([
      { method: "POST", path: "/api/v1/get_info", status: 503, contentType: "application/json", retry: 0 },
      { method: "POST", path: "/api/v1/get_info", status: 200, contentType: "application/json", retry: 1 },
    ]);
    expect(seen.some((s) => s.path.endsWith("/retrieve_future"))).toBe(true);
  });
});
