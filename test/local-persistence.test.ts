/**
 * The embedded backend as a product: state that survives a real process being killed (SIGKILL)
 * and restarted on the same data directory, damaged store files detected and skipped, session
 * expiry, and concurrent clients giving the same results as sequential ones.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ServeChild, spawnServe } from "../scripts/lib/serve-child.js";
import {
  ModelInput,
  NotFoundError,
  type SampleResponse,
  ServiceClient,
  type TrainingClient,
} from "../src/index.js";
import { createLocalTinker, MemoryStore } from "../src/local/index.js";
import { localService, promptTokens, QA, qaDatum, sampleContent } from "./helpers.js";

const MODEL = "tinker-ts/byte-lm-tiny";
const batch = QA.map((qa) => qaDatum(qa.question, qa.answer));
const prompt = ModelInput.fromInts(promptTokens("What is 2+2?"));

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tinker-ts-store-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

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

async function forwardLogprobs(training: TrainingClient): Promise<unknown> {
  const out = await training.forward(batch, "cross_entropy");
  return out.loss_fn_outputs;
}

/** `tinker-ts serve` as a child process, killed after the test if it still runs. */
async function startServer(args: string[]): Promise<ServeChild> {
  const server = await spawnServe(args);
  const { child } = server;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  return server;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

describe("persistence across a real restart", () => {
  it("keeps sessions, runs (weights, optimizer, seq_id), checkpoints and samplers after SIGKILL", async () => {
    const dataDir = await tempDir();
    const first = await startServer(["--port", "0", "--data-dir", dataDir]);
    expect(first.output()).toContain(`export TINKER_BASE_URL=${first.url} TINKER_API_KEY=tml-local`);
    const port = new URL(first.url).port;
    const service = new ServiceClient({
      apiKey: "tml-local",
      baseURL: first.url,
      heartbeatIntervalMs: 60_000,
    });
    cleanups.push(() => service.close());

    const training = await service.createLoraTrainingClient(MODEL, { rank: 4, seed: 5 });
    await train(training, 2);
    const { path: trainingPath } = await training.saveState("after-2");
    const { path: samplerPath } = await training.saveWeightsForSampler("sampler-2");
    const sampler = await service.createSamplingClient({ modelPath: samplerPath });
    const sampledBefore = await sampler.sample(prompt, 2, { max_tokens: 6, seed: 11 });
    await train(training, 1);
    // The run's current state (3 steps) also as a checkpoint, the reference for the old run.
    const { path: currentPath } = await training.saveState("after-3");
    const logprobsBefore = await forwardLogprobs(training);
    const resumedBefore = await service.createTrainingClientFromStateWithOptimizer(trainingPath);
    const resumedLossesBefore = await train(resumedBefore, 2);

    // No graceful shutdown: what was acknowledged must already be on disk.
    await kill(first.child);
    const second = await startServer(["--port", port, "--data-dir", dataDir]);
    expect(second.url).toBe(first.url);

    const rest = service.createRestClient();
    const sessionId = training.modelId.split(":train:")[0]!;
    const runs = await rest.listTrainingRuns({ limit: 100 });
    expect(runs.training_runs.map((r) => r.training_run_id)).toEqual(
      expect.arrayContaining([training.modelId, resumedBefore.modelId]),
    );
    const run = await rest.getTrainingRun(training.modelId);
    expect(run).toMatchObject({ base_model: MODEL, lora_rank: 4, corrupted: false });
    const checkpoints = await rest.listCheckpoints(training.modelId);
    expect(checkpoints.checkpoints.map((c) => c.tinker_path)).toEqual([
      trainingPath,
      samplerPath,
      currentPath,
    ]);
    expect((await rest.listSessions({ limit: 100 })).sessions).toContain(sessionId);
    expect((await rest.getSession(sessionId)).training_run_ids).toContain(training.modelId);

    // The sampler made from a checkpoint answers as before.
    expect(sampleContent(await sampler.sample(prompt, 2, { max_tokens: 6, seed: 11 }))).toEqual(
      sampleContent(sampledBefore),
    );

    // A checkpoint resumes exactly as it did before the restart.
    const resumedAfter = await service.createTrainingClientFromStateWithOptimizer(trainingPath);
    expect(await train(resumedAfter, 2)).toEqual(resumedLossesBefore);

    // The old run continues with its weights, optimizer state and seq_ids.
    expect(await forwardLogprobs(training)).toEqual(logprobsBefore);
    const reference = await service.createTrainingClientFromStateWithOptimizer(currentPath);
    expect(await train(training, 2)).toEqual(await train(reference, 2));
    // Closed while the server is up: the cleanups kill the server first, and a close against a dead
    // server spends its connection-retry budget (half a minute) finishing the session.
    await service.close();
  });
});

describe("tinker-ts serve flags", () => {
  it("applies --chaos, --models and --session-ttl, and refuses a bad fault plan", async () => {
    const dir = await tempDir();
    const plan = join(dir, "plan.json");
    await writeFile(plan, JSON.stringify({ seed: 7, rate: 0.3, kinds: { http503: 1, delay: 1 } }));
    const server = await startServer([
      "--port",
      "0",
      "--chaos",
      plan,
      "--models",
      "Qwen/Qwen3-8B,other/m",
      "--session-ttl",
      "60",
    ]);
    expect(server.output()).toContain(`injecting faults from ${plan} (seed 7)`);
    const service = new ServiceClient({ apiKey: "tml-local", baseURL: server.url });
    cleanups.push(() => service.close());
    const caps = await service.getServerCapabilities();
    expect(caps.supported_models.map((m) => m.model_name)).toEqual(["Qwen/Qwen3-8B", "other/m"]);
    const training = await service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 4 });
    expect(await train(training, 2)).toHaveLength(2);

    await writeFile(plan, JSON.stringify({ seed: 7, rate: 2, kinds: {} }));
    const bad = spawn(process.execPath, [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "serve",
      "--port",
      "0",
      "--chaos",
      plan,
    ]);
    let stderr = "";
    bad.stderr.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const code = await new Promise<number | null>((resolve) => bad.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("invalid fault plan");
  });
});

describe("persistence in one process (MemoryStore)", () => {
  it("restores metadata changes, deletions, flags and every kind of sampler", async () => {
    const store = new MemoryStore();
    const t = localService({ local: { store } });
    cleanups.push(t.close);
    const rest = t.service.createRestClient();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 2 });
    const sessionId = training.modelId.split(":train:")[0]!;
    await train(training, 1);
    const { path: kept } = await training.saveState("kept");
    const { path: gone } = await training.saveState("gone");
    await rest.publishCheckpointFromTinkerPath(kept);
    await rest.setCheckpointTtlFromTinkerPath(kept, 3600);
    await rest.deleteCheckpointFromTinkerPath(gone);
    await rest.assignSessionProject(sessionId, "project-1");
    const current = await training.saveWeightsAndGetSamplingClient();
    const base = await t.service.createSamplingClient({ baseModel: MODEL });
    const other = await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 3 });
    await other.unloadModel();
    const samples = [
      await current.sample(prompt, 1, { max_tokens: 4, seed: 3 }),
      await base.sample(prompt, 1, { max_tokens: 4, seed: 3 }),
    ];
    const before = {
      checkpoints: await rest.listCheckpoints(training.modelId),
      runs: await rest.listTrainingRuns({ limit: 10 }),
    };
    // The backend restarts under a live client: its session is not finished (§S1), so the
    // samplers still serve afterwards.
    await t.local.close();

    const t2 = localService({ local: { store } });
    cleanups.push(t2.close);
    const rest2 = t2.service.createRestClient();
    expect(await rest2.listCheckpoints(training.modelId)).toEqual(before.checkpoints);
    expect(before.checkpoints.checkpoints[0]).toMatchObject({ tinker_path: kept, public: true });
    expect(await rest2.listTrainingRuns({ limit: 10 })).toEqual(before.runs);
    expect((await rest2.listTrainingRuns({ limit: 10, projectId: "project-1" })).training_runs).toHaveLength(
      2,
    );
    // The new client reaches the old samplers by id (the SDK keeps the id in the sampling client).
    const local2 = t2.local.fetch;
    for (const [i, sampler] of [current, base].entries()) {
      const response = await local2(
        new Request("http://local.tinker/api/v1/asample", {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": "tml-test-key" },
          body: JSON.stringify({
            sampling_session_id: sampler.samplingSessionId,
            num_samples: 1,
            prompt,
            sampling_params: { max_tokens: 4, seed: 3 },
          }),
        }),
      );
      const { request_id } = (await response.json()) as { request_id: string };
      const result = await t2.service.futures.retrieve(request_id, "Sample");
      expect(sampleContent(result as SampleResponse).sequences).toEqual(sampleContent(samples[i]!).sequences);
    }
    // The unloaded run stays unloaded (410), but readable.
    expect((await rest2.getTrainingRun(other.modelId)).training_run_id).toBe(other.modelId);
    const info = await local2(
      new Request("http://local.tinker/api/v1/get_info", {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "tml-test-key" },
        body: JSON.stringify({ model_id: other.modelId }),
      }),
    );
    expect(info.status).toBe(410);
  });
});

describe("damaged store files", () => {
  it("skips a torn checkpoint file with a warning and serves everything else", async () => {
    const dataDir = await tempDir();
    const warnings: string[] = [];
    const onWarning = (message: string) => warnings.push(message);
    const t = localService({ local: { dataDir, onWarning } });
    cleanups.push(t.close);
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 });
    await train(training, 1);
    const { path: kept } = await training.saveState("kept");
    const { path: torn } = await training.saveState("torn");
    await t.close();

    const dir = join(dataDir, "v1", "checkpoints");
    const tornFile = (await readdir(dir)).find((name) => name.includes("weights_torn"))!;
    await truncate(join(dir, tornFile), 100);
    await writeFile(join(dir, "garbage-0000000000000000.rec"), "not a record");
    await writeFile(join(dir, ".interrupted.tmp"), "half a write");

    const t2 = localService({ local: { dataDir, onWarning } });
    cleanups.push(t2.close);
    const rest = t2.service.createRestClient();
    const paths = (await rest.listCheckpoints(training.modelId)).checkpoints.map((c) => c.tinker_path);
    expect(paths).toEqual([kept]);
    expect(warnings.some((w) => w.includes(tornFile) && /torn write/.test(w))).toBe(true);
    expect(warnings.some((w) => w.includes("garbage"))).toBe(true);
    expect(await readdir(dir)).not.toContain(".interrupted.tmp");
    await expect(t2.service.createTrainingClientFromState(torn)).rejects.toThrow(/not found/);
    const resumed = await t2.service.createTrainingClientFromStateWithOptimizer(kept);
    expect(await train(resumed, 1)).toHaveLength(1);
  });

  it("detects a flipped bit by checksum (memory store, same record format)", async () => {
    const store = new MemoryStore({ onWarning: () => {} });
    const warnings: string[] = [];
    const t = localService({ local: { store } });
    cleanups.push(t.close);
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 });
    await train(training, 1);
    await t.close();
    const record = store.raw("runs").get(training.modelId)!;
    record[record.length - 9]! ^= 0x10;
    const reloaded = new MemoryStore({ onWarning: (m) => warnings.push(m) });
    for (const [key, bytes] of store.raw("runs")) reloaded.raw("runs").set(key, bytes);
    expect(await reloaded.load("runs")).toEqual([]);
    expect(warnings.join("\n")).toMatch(/checksum mismatch/);
  });
});

describe("session expiry", () => {
  it("answers 404 for new work in a session without heartbeats; its runs stay readable", async () => {
    const t = localService({
      local: { sessionTtlMs: 150 },
      client: { heartbeatIntervalMs: 60_000, maxRetries: 0 },
    });
    cleanups.push(t.close);
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 });
    await train(training, 1);
    const lively = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: t.local.fetch,
      heartbeatIntervalMs: 30,
    });
    cleanups.push(() => lively.close());
    const other = await lively.createSamplingClient({ baseModel: MODEL });

    await new Promise((resolve) => setTimeout(resolve, 400));
    await expect(train(training, 1)).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.service.createSamplingClient({ baseModel: MODEL })).rejects.toBeInstanceOf(NotFoundError);
    const run = await t.service.createRestClient().getTrainingRun(training.modelId);
    expect(run.training_run_id).toBe(training.modelId);
    // The heartbeating session is alive.
    expect((await other.sample(prompt, 1, { max_tokens: 2, seed: 1 })).sequences).toHaveLength(1);
  });
});

describe("concurrency", () => {
  it("two training clients and ten samplers used concurrently match a one-by-one run", async () => {
    const work = async (concurrent: boolean) => {
      const t = localService();
      cleanups.push(t.close);
      const trainers = [
        await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 }),
        await t.service.createLoraTrainingClient(MODEL, { rank: 8, seed: 2 }),
      ];
      const samplers = [];
      for (let i = 0; i < 10; i++) samplers.push(await t.service.createSamplingClient({ baseModel: MODEL }));
      const jobs: (() => Promise<unknown>)[] = [
        ...trainers.map((training) => () => train(training, 3)),
        ...samplers.map(
          (sampler, i) => async () =>
            sampleContent(await sampler.sample(prompt, 2, { max_tokens: 5, seed: i })),
        ),
      ];
      if (concurrent) return Promise.all(jobs.map((job) => job()));
      const results: unknown[] = [];
      for (const job of jobs) results.push(await job());
      return results;
    };
    const concurrent = await work(true);
    expect(concurrent).toEqual(await work(false));
  });
});

describe("createLocalTinker", () => {
  it("lists the configured models and refuses others", async () => {
    const local = createLocalTinker({ models: ["Qwen/Qwen3-8B"] });
    cleanups.push(() => local.close());
    const service = new ServiceClient({
      apiKey: "tml-k",
      baseURL: "http://local.tinker",
      fetch: local.fetch,
    });
    cleanups.push(() => service.close());
    const caps = await service.getServerCapabilities();
    expect(caps.supported_models.map((m) => m.model_name)).toEqual(["Qwen/Qwen3-8B"]);
    await service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 4 });
    await expect(service.createLoraTrainingClient("other/model", { rank: 4 })).rejects.toThrow(
      /unknown base model/,
    );
  });
});
