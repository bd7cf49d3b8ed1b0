/**
 * Futures of the local backend: eviction of settled futures (bounded memory), and the journal that
 * lets a restarted backend answer the futures of the one before it (issue 14). Restarts here are
 * in-process: a store that stops writing at a chosen instant stands for a process killed then.
 */
import { describe, expect, it } from "vitest";
import { batchOf } from "../bench/kill-harness.js";
import { ModelInput, ServiceClient } from "../src/index.js";
import { LocalBackend } from "../src/local/backend.js";
import { DEFAULT_FUTURE_RETENTION, type FutureOutcome, FutureStore } from "../src/local/future-store.js";
import { createLocalTinker, MemoryStore, type Store } from "../src/local/index.js";
import type { Datum } from "../src/wire/types.js";
import { closeAfterEach, promptTokens } from "./helpers.js";

const closers = closeAfterEach();
const MODEL = "tinker-ts/byte-lm-tiny";
const done: FutureOutcome = { kind: "json", body: { type: "optim_step" } };

describe("eviction of settled futures", () => {
  function store(retention = {}) {
    let now = 0;
    const evicted: string[] = [];
    const futures = new FutureStore({ ...retention, now: () => now, onEvict: (id) => evicted.push(id) });
    return { futures, evicted, advance: (ms: number) => (now += ms) };
  }

  it("1,000 delivered futures are gone after the TTL, not before; memory stays bounded", async () => {
    const { futures, evicted, advance } = store({ afterDeliveryMs: 1_000 });
    const ids = Array.from({ length: 1_000 }, () => futures.create());
    for (const id of ids) futures.settle(id, done);
    for (const id of ids) expect(await futures.wait(id, 0)).toEqual(done);
    advance(999);
    expect(futures.has(ids[0]!)).toBe(true);
    expect(futures.size).toBe(1_000);
    advance(1);
    expect(futures.has(ids[0]!)).toBe(false);
    expect(futures.size).toBe(0);
    expect(evicted).toEqual(ids);
    // A steady stream: what is held never exceeds what one TTL's worth of traffic settles.
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 100; i++) {
        const id = futures.create();
        futures.settle(id, done);
        await futures.wait(id, 0);
      }
      advance(500);
      expect(futures.size).toBeLessThanOrEqual(300);
    }
  });

  it("keeps undelivered futures for their own (longer) TTL and pending ones forever", async () => {
    const { futures, advance } = store();
    const pending = futures.create();
    const undelivered = futures.create();
    futures.settle(undelivered, done);
    advance(DEFAULT_FUTURE_RETENTION.afterDeliveryMs + 1);
    expect(futures.has(undelivered)).toBe(true);
    advance(DEFAULT_FUTURE_RETENTION.undeliveredMs);
    expect(futures.has(undelivered)).toBe(false);
    expect(futures.has(pending)).toBe(true);
    // Delivered late: it goes after-delivery TTL from then.
    futures.settle(pending, done);
    await futures.wait(pending, 0);
    advance(DEFAULT_FUTURE_RETENTION.afterDeliveryMs);
    expect(futures.has(pending)).toBe(false);
  });

  it("a poll for an evicted id is answered like an unknown one (404)", async () => {
    const local = createLocalTinker({ futureRetention: { afterDeliveryMs: 0 } });
    const service = new ServiceClient({
      apiKey: "tml-local",
      baseURL: "http://local.tinker",
      fetch: local.fetch,
    });
    closers.add(async () => {
      await service.close();
      await local.close();
    });
    const sampler = await service.createSamplingClient({ baseModel: MODEL });
    const future = sampler.sample(ModelInput.fromInts(promptTokens("Hi")), 1, { max_tokens: 2, seed: 1 });
    const requestId = await future.requestId;
    expect((await future).sequences).toHaveLength(1);
    const poll = await local.fetch(
      new Request("http://local.tinker/api/v1/retrieve_future", {
        method: "POST",
        headers: { "X-API-Key": "tml-local", "content-type": "application/json" },
        body: JSON.stringify({ request_id: requestId }),
      }),
    );
    expect(poll.status).toBe(404);
    expect(await poll.text()).toContain(`unknown request_id ${requestId}`);
  });
});

/** A MemoryStore that can "die": after kill(), nothing more is written (as after SIGKILL). */
class KillableStore implements Store {
  #dead = false;
  constructor(readonly inner: MemoryStore) {}
  kill(): void {
    this.#dead = true;
  }
  load: Store["load"] = (collection) => this.inner.load(collection);
  put: Store["put"] = async (collection, record) => {
    if (!this.#dead) await this.inner.put(collection, record);
  };
  delete: Store["delete"] = async (collection, key) => {
    if (!this.#dead) await this.inner.delete(collection, key);
  };
  close: Store["close"] = async () => {};
}

const wire = (step: number): Datum[] => JSON.parse(JSON.stringify(batchOf(step)));
const ADAM = {
  type: "adamw" as const,
  learningRate: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weightDecay: 0,
  gradClipNorm: 0,
};

async function backendOn(store: Store): Promise<LocalBackend> {
  const backend = new LocalBackend({ onWarning: (message) => expect.fail(message) });
  closers.add(() => backend.close());
  await backend.attachStore(store);
  return backend;
}

async function result(backend: LocalBackend, id: string): Promise<FutureOutcome | undefined> {
  return backend.futures.wait(id, 5_000);
}

/** A run after one forward_backward (seq 1) and, pending, its optim_step (seq 2). */
async function started(backend: LocalBackend) {
  const session = backend.createSession();
  const created = await result(backend, backend.createModel(session, 0, MODEL, { rank: 4, seed: 7 }));
  const modelId = (created as { body: { model_id: string } }).body.model_id;
  const forward = backend.forwardBackward(modelId, 1, wire(0), "cross_entropy", undefined, false);
  return { modelId, forward, forwardOutcome: await result(backend, forward) };
}

describe("futures across a restart (journal)", () => {
  it("an acknowledged optim_step that never ran is replayed under the same id, with its gradients", async () => {
    const reference = await backendOn(new MemoryStore());
    const ref = await started(reference);
    const refStep = await result(reference, reference.optimStep(ref.modelId, 2, ADAM));

    const memory = new MemoryStore();
    const store = new KillableStore(memory);
    const first = await backendOn(store);
    const run = await started(first);
    const step = first.optimStep(run.modelId, 2, ADAM);
    store.kill(); // dies with the submission answered, before the step ran

    const second = await backendOn(memory);
    expect(await result(second, step)).toEqual(refStep);
    expect(
      (refStep as { body: { metrics: Record<string, number> } }).body.metrics["grad_norm:mean"],
    ).toBeGreaterThan(0);
    // The forward_backward's result is still there too, and a retried submission maps to its id.
    expect(await result(second, run.forward)).toEqual(run.forwardOutcome);
    expect(second.forwardBackward(run.modelId, 1, wire(0), "cross_entropy", undefined, false)).toBe(
      run.forward,
    );
    expect(second.optimStep(run.modelId, 2, ADAM)).toBe(step);
  });

  it("a step applied before the kill, whose outcome had not been written, answers from the run's record", async () => {
    const memory = new MemoryStore();
    const store = new KillableStore(memory);
    const first = await backendOn(store);
    const run = await started(first);
    const step = first.optimStep(run.modelId, 2, ADAM);
    const outcome = await result(first, step);
    // Take away the future's outcome: as if the process died between the two writes.
    const journal = new MemoryStore();
    for (const collection of ["sessions", "runs", "checkpoints", "samplers", "futures"] as const) {
      for (const record of await memory.load(collection)) {
        if (collection === "futures" && record.key === step) {
          const { outcome: _, ...pending } = record.meta as Record<string, unknown>;
          await journal.put(collection, { ...record, meta: pending });
        } else await journal.put(collection, record);
      }
    }
    const second = await backendOn(journal);
    expect(await result(second, step)).toEqual(outcome);
  });

  it("a sample in flight at the kill is answered 410 (the client submits it again)", async () => {
    const memory = new MemoryStore();
    const store = new KillableStore(memory);
    const first = await backendOn(store);
    const session = first.createSession();
    const samplerId = first.createSamplingSession(session, 0, MODEL);
    const { requestId } = first.sample({
      sampling_session_id: samplerId,
      num_samples: 1,
      prompt: JSON.parse(JSON.stringify(ModelInput.fromInts(promptTokens("Hi")))),
      sampling_params: { max_tokens: 2 },
      prompt_logprobs: false,
      topk_prompt_logprobs: 0,
    });
    store.kill();
    const second = await backendOn(memory);
    expect(await result(second, requestId)).toEqual({
      kind: "expired",
      error: `request ${requestId} was lost when the server restarted; submit it again`,
    });
  });
});
