/**
 * Transport retries, the generic loop and the future poller (PROTOCOL.md §4–§5), exercised against the
 * real local backend with faults injected in front of it.
 */
import { describe, expect, it } from "vitest";
import {
  FutureRetrieveError,
  InternalServerError,
  ModelInput,
  RequestFailedError,
  ServiceClient,
  ValidationError,
} from "../src/index.js";
import type { ChaosRule } from "../src/local/index.js";
import { closeAfterEach, jsonBody, localService, qaDatum } from "./helpers.js";

const closers = closeAfterEach();

function setup(chaos: ChaosRule[], client = {}) {
  const t = localService({ local: { chaos }, client });
  closers.add(t.close);
  return t;
}

const fast = { "retry-after-ms": "5" };

describe("transport retries (layer 1)", () => {
  it("retries a 503 with the same idempotency key and counts retries", async () => {
    const t = setup([{ endpoint: "create_session", status: 503, headers: fast, times: 2 }]);
    await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const attempts = t.requests.filter((r) => r.path.endsWith("/create_session"));
    expect(attempts).toHaveLength(3);
    expect(attempts.map((r) => r.headers.get("x-stainless-retry-count"))).toEqual(["0", "1", "2"]);
    expect(new Set(attempts.map((r) => r.headers.get("x-idempotency-key"))).size).toBe(1);
  });

  it("obeys x-should-retry: false", async () => {
    const t = setup([
      { endpoint: "create_session", status: 503, headers: { ...fast, "x-should-retry": "false" } },
    ]);
    await expect(
      t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 }),
    ).rejects.toBeInstanceOf(InternalServerError);
    expect(t.requests.filter((r) => r.path.endsWith("/create_session"))).toHaveLength(1);
  });

  it("retries a training submission under the same seq_id, so the step is applied once", async () => {
    const t = setup([{ endpoint: "optim_step", status: 500, headers: fast, times: 2 }]);
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    await training.forwardBackward([qaDatum("Q", "A")], "cross_entropy");
    await training.optimStep({ learning_rate: 1e-3 });
    const attempts = t.requests
      .filter((r) => r.path.endsWith("/optim_step"))
      .map((r) => (jsonBody(r) as { seq_id: number }).seq_id);
    expect(attempts).toEqual([2, 2, 2]);
  });
});

describe("future polling", () => {
  async function trainOnce(chaos: ChaosRule[]) {
    // `after: 1` lets the create_model poll through; the faults hit forward_backward's polls.
    const t = setup(chaos.map((rule) => ({ after: 1, ...rule })));
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const future = training.forwardBackward([qaDatum("Q", "A")], "cross_entropy");
    return { t, future };
  }

  function polls(t: ReturnType<typeof setup>) {
    return t.requests.filter(
      (r) =>
        r.path.endsWith("/retrieve_future") && r.headers.get("x-tinker-request-type") === "ForwardBackward",
    );
  }

  it("polls again at once after 5xx and counts iterations", async () => {
    const { t, future } = await trainOnce([{ endpoint: "retrieve_future", status: 502, times: 2 }]);
    expect((await future).metrics["loss:sum"]).toBeGreaterThan(0);
    expect(polls(t).map((r) => r.headers.get("x-tinker-request-iteration"))).toEqual(["0", "1", "2"]);
    expect(polls(t)[0]!.headers.has("x-tinker-create-promise-roundtrip-time")).toBe(true);
    expect(polls(t)[1]!.headers.has("x-tinker-create-promise-roundtrip-time")).toBe(false);
    expect(polls(t)[0]!.headers.get("accept")).toBe("application/x-protobuf");
  });

  it("backs off after a 429", async () => {
    const { t, future } = await trainOnce([{ endpoint: "retrieve_future", status: 429 }]);
    const started = Date.now();
    await future;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(polls(t)).toHaveLength(2);
  });

  it("tolerates three 400s in a row but not four", async () => {
    const ok = await trainOnce([{ endpoint: "retrieve_future", status: 400, times: 3 }]);
    await expect(ok.future).resolves.toBeDefined();
    await closers.closeAll();
    const bad = await trainOnce([{ endpoint: "retrieve_future", status: 400, times: 4 }]);
    await expect(bad.future).rejects.toMatchObject({ status: 400 });
    await expect(bad.future).rejects.toBeInstanceOf(FutureRetrieveError);
  });

  it("surfaces 410 (expired promise) on training as FutureRetrieveError", async () => {
    const { future } = await trainOnce([{ endpoint: "retrieve_future", status: 410 }]);
    await expect(future).rejects.toMatchObject({ status: 410, name: "FutureRetrieveError" });
  });

  it("waits and polls again after a dropped connection", async () => {
    const { t, future } = await trainOnce([{ endpoint: "retrieve_future", drop: true }]);
    await future;
    expect(polls(t).length).toBe(2);
  });

  it("follows a metadata-only answer with a full poll", async () => {
    const t = localService({ local: { metadataOnlyThresholdBytes: 0 } });
    closers.add(t.close);
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const future = training.forwardBackward([qaDatum("Q", "A")], "cross_entropy");
    const out = await future;
    expect(out.loss_fn_outputs).toHaveLength(1);
    const bodies = polls(t).map((r) => (jsonBody(r) as { allow_metadata_only: boolean }).allow_metadata_only);
    expect(bodies).toEqual([true, false]);
  });

  it("turns a failed future into RequestFailedError with its category", async () => {
    const t = localService();
    closers.add(t.close);
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    // Token 5000 is outside the byte-level vocabulary: the server runs the request and it fails.
    const bad = {
      ...qaDatum("Q", "A"),
      model_input: ModelInput.fromInts([1, 5000, 3, 4, 5, 6, 7, 8, 9, 10]),
    };
    const future = training.forwardBackward([bad], "cross_entropy");
    await expect(future).rejects.toBeInstanceOf(RequestFailedError);
    await expect(future).rejects.toMatchObject({ category: "user" });
    // The seq_id was consumed by a request the server ran; later operations go on.
    await expect(training.optimStep({ learning_rate: 1e-3 })).resolves.toBeDefined();
  });

  it("re-submits a sample whose promise expired, and resubmits the same seq_id after a 429", async () => {
    const t = setup([
      { endpoint: "asample", status: 429 },
      { endpoint: "retrieve_future", status: 410, after: 0 },
    ]);
    const sampler = await t.service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
    const result = await sampler.sample(ModelInput.fromInts([256, 72, 105]), 1, { max_tokens: 3, seed: 1 });
    expect(result.sequences[0]!.tokens).toHaveLength(3);
    const submissions = t.requests
      .filter((r) => r.path.endsWith("/asample"))
      .map((r) => (jsonBody(r) as { seq_id: number }).seq_id);
    expect(submissions).toEqual([0, 0, 1]);
    expect(
      t.requests.find((r) => r.path.endsWith("/asample"))!.headers.get("x-tinker-sampling-backpressure"),
    ).toBe("1");
  });
});

describe("configuration", () => {
  it("checks the API key locally and never echoes it", async () => {
    expect(() => new ServiceClient({ apiKey: "sk-secret-value", baseURL: "http://x" })).toThrow(
      ValidationError,
    );
    try {
      new ServiceClient({ apiKey: "sk-secret-value", baseURL: "http://x" });
    } catch (error) {
      expect(String(error)).not.toContain("secret");
    }
    // No key anywhere (the stored-credentials file is read at the first call): refused before sending.
    const saved = { key: process.env.TINKER_API_KEY, file: process.env.TINKER_CREDENTIALS_FILE };
    delete process.env.TINKER_API_KEY;
    process.env.TINKER_CREDENTIALS_FILE = "/nonexistent/tinker-ts-test/credentials.json";
    let sent = 0;
    const service = new ServiceClient({
      baseURL: "http://x",
      fetch: async () => new Response(null, { status: sent++ }),
    });
    try {
      await expect(service.getServerCapabilities()).rejects.toThrow(ValidationError);
      await expect(service.getServerCapabilities()).rejects.toThrow(/TINKER_API_KEY.*tinker-ts auth login/);
      expect(sent).toBe(0);
    } finally {
      await service.close();
      if (saved.key !== undefined) process.env.TINKER_API_KEY = saved.key;
      if (saved.file === undefined) delete process.env.TINKER_CREDENTIALS_FILE;
      else process.env.TINKER_CREDENTIALS_FILE = saved.file;
    }
  });
});
