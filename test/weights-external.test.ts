/**
 * External (Hugging Face PEFT) weights against the real local backend (PROTOCOL.md §W2, §W4, §W7):
 * save_weights_external writes a PEFT adapter, its files come from signed URLs, and uploading them
 * again (start, PUT to signed URLs without credentials, finish) creates an external checkpoint with
 * the same bytes; the backend refuses files that do not fit the base model and LoRA config.
 */
import { describe, expect, it } from "vitest";
import {
  BadRequestError,
  NotFoundError,
  ServiceClient,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/base-models.js";
import { createLocalTinker, MemoryStore } from "../src/local/index.js";
import { decodeSafetensors } from "../src/local/safetensors.js";
import { readTar } from "../src/local/tar.js";
import {
  localServicesClosedAfterEach,
  QA,
  qaDatum,
  type RecordedRequest,
  recordingFetch,
} from "./helpers.js";

const { setup, closers } = localServicesClosedAfterEach();

const MODEL = BUILTIN_BASE_MODEL;
const LORA = { rank: 4, seed: 5 };
const WIRE_LORA = { rank: 4, train_unembed: true, train_mlp: true, train_attn: true };
const CONFIG_FILE = "adapter_config.json";
const WEIGHTS_FILE = "adapter_model.safetensors";
const batch = QA.slice(0, 3).map((qa) => qaDatum(qa.question, qa.answer));

async function trained(
  service: ServiceClient,
  lora: { rank: number; seed?: number } = LORA,
): Promise<TrainingClient> {
  const training = await service.createLoraTrainingClient(MODEL, lora);
  await Promise.all([
    training.forwardBackward(batch, "cross_entropy"),
    training.optimStep({ learning_rate: 1e-2 }),
  ]);
  return training;
}

/** Fetches every file of an external checkpoint from its signed URLs (no API key). */
async function download(
  t: { service: ServiceClient; local: { fetch(r: Request): Promise<Response> } },
  tinkerPath: string,
): Promise<Record<string, Uint8Array>> {
  const { urls } = await t.service.createRestClient().getExternalWeightsUrls(tinkerPath);
  const files: Record<string, Uint8Array> = {};
  for (const [name, url] of Object.entries(urls)) {
    const response = await t.local.fetch(new Request(url));
    expect(response.status, name).toBe(200);
    files[name] = new Uint8Array(await response.arrayBuffer());
  }
  return files;
}

const sentTo = (requests: RecordedRequest[], suffix: string) =>
  requests.filter((r) => r.path.endsWith(suffix));
const text = (r: RecordedRequest) => new TextDecoder().decode(r.body);

describe("save_weights_external and its signed URLs (§W2)", () => {
  it("writes the run's adapter as PEFT files, listed as an external checkpoint", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await trained(t.service);
    const { path } = await training.saveWeightsExternal("hf", { ttlSeconds: 7_200 });
    expect(path).toBe(`tinker://${training.modelId}/external_weights/hf`);
    const { path: samplerPath } = await training.saveWeightsForSampler("same-weights");
    expect(sentTo(t.requests, "/save_weights_external").map(text)).toEqual([
      JSON.stringify({
        model_id: training.modelId,
        path: "hf",
        seq_id: 3,
        ttl_seconds: 7_200,
        type: "save_weights_external",
      }),
    ]);

    const listed = (await rest.listCheckpoints(training.modelId)).checkpoints.find(
      (c) => c.tinker_path === path,
    );
    expect(listed).toMatchObject({
      checkpoint_id: "external_weights/hf",
      checkpoint_type: "external",
      base_model: MODEL,
      user_metadata: null,
    });
    expect(listed!.expires_at).not.toBeNull();

    const files = await download(t, path);
    expect(Object.keys(files).sort()).toEqual([CONFIG_FILE, WEIGHTS_FILE]);
    const [urlsCall] = sentTo(t.requests, "/external_weights_urls");
    expect(urlsCall!.path).toBe(
      `/api/v1/training_runs/${training.modelId}/checkpoints/external_weights/hf/external_weights_urls`,
    );
    const config = JSON.parse(new TextDecoder().decode(files[CONFIG_FILE]));
    expect(config).toMatchObject({
      base_model_name_or_path: MODEL,
      peft_type: "LORA",
      r: 4,
      lora_alpha: 32,
    });
    expect([...config.target_modules].sort()).toEqual(
      ["down_proj", "k_proj", "lm_head", "o_proj", "q_proj", "up_proj", "v_proj"].sort(),
    );
    // The same tensors as the archive of a sampler checkpoint of the same weights.
    const archiveUrl = await rest.getCheckpointArchiveUrlFromTinkerPath(samplerPath);
    const archive = readTar(
      new Uint8Array(await (await t.local.fetch(new Request(archiveUrl.url))).arrayBuffer()),
    );
    expect(files[WEIGHTS_FILE]).toEqual(archive.find((e) => e.name === WEIGHTS_FILE)!.data);
    expect(decodeSafetensors(files[WEIGHTS_FILE]!).tensors.length).toBeGreaterThan(0);
    // An existing name is not replaced.
    await expect(training.saveWeightsExternal("hf")).rejects.toThrow(/already exists/);
  });

  it("hands out URLs only for external_weights paths", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await trained(t.service);
    const { path } = await training.saveState("state");
    const before = t.requests.length;
    for (const bad of [path, `tinker://${training.modelId}/sampler_weights/x`, "tinker://x", "hf://x"]) {
      await expect(rest.getExternalWeightsUrls(bad)).rejects.toThrow(ValidationError);
    }
    expect(t.requests.length).toBe(before);
    const get = (checkpointId: string) =>
      t.local.fetch(
        new Request(
          `http://local.tinker/api/v1/training_runs/${training.modelId}/checkpoints/${checkpointId}/external_weights_urls`,
          { headers: { "x-api-key": "tml-test-key" } },
        ),
      );
    expect((await get("weights/state")).status).toBe(400);
    expect((await get("external_weights/missing")).status).toBe(404);
    await expect(
      rest.getExternalWeightsUrls(`tinker://${training.modelId}/external_weights/missing`),
    ).rejects.toThrow(NotFoundError);
  });

  it("signed URLs need no API key, but a valid token; deleting the checkpoint ends them", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await trained(t.service);
    const { path } = await training.saveWeightsExternal("hf");
    const { urls } = await rest.getExternalWeightsUrls(path);
    const url = new URL(urls[WEIGHTS_FILE]!);
    const forged = url.href.replace(/\/external-weights\/([^.]+)\.([^/]+)\//, "/external-weights/$1.AAAA/");
    expect((await t.local.fetch(new Request(forged))).status).toBe(403);
    expect((await t.local.fetch(new Request(url.href, { method: "PUT", body: "x" }))).status).toBe(405);
    // The archive of an external checkpoint is its files.
    const archive = readTar(
      new Uint8Array(
        await (
          await t.local.fetch(new Request((await rest.getCheckpointArchiveUrlFromTinkerPath(path)).url))
        ).arrayBuffer(),
      ),
    );
    expect(archive.map((e) => e.name).sort()).toEqual([CONFIG_FILE, WEIGHTS_FILE]);
    await rest.deleteCheckpointFromTinkerPath(path);
    expect((await t.local.fetch(new Request(url.href))).status).toBe(404);
    expect((await rest.listCheckpoints(training.modelId)).checkpoints).toEqual([]);
  });
});

describe("external-weights upload (§W4)", () => {
  it("round trip: the downloaded files uploaded again make an external checkpoint with the same bytes", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await trained(t.service);
    const { path } = await training.saveWeightsExternal("hf");
    const files = await download(t, path);
    const before = t.requests.length;

    const uploaded = await rest.uploadExternalWeights(MODEL, { rank: 4 }, files);
    expect(uploaded).toMatch(/^tinker:\/\/upload-[^/]+:train:0\/external_weights\/adapter$/);
    expect(await download(t, uploaded)).toEqual(files);
    const runId = uploaded.split("/")[2]!;
    expect((await rest.listCheckpoints(runId)).checkpoints).toMatchObject([
      { tinker_path: uploaded, checkpoint_type: "external", base_model: MODEL },
    ]);
    expect((await rest.listUserCheckpoints()).checkpoints.map((c) => c.tinker_path)).toContain(uploaded);
    const info = await t.service.getWeightsInfo(uploaded);
    expect(info).toMatchObject({ base_model: MODEL, lora_rank: 4, train_attn: true });

    // The wire: start (0.39 body), one PUT per file without credentials, finish.
    const sent = t.requests.slice(before);
    const [start] = sentTo(sent, "/external_weights_upload_start");
    expect(text(start!)).toBe(
      JSON.stringify({ base_model: MODEL, lora_config: WIRE_LORA, destination_project_id: null }),
    );
    const puts = sent.filter((r) => r.method === "PUT");
    expect(puts.map((r) => r.path.split("/").at(-1)).sort()).toEqual([CONFIG_FILE, WEIGHTS_FILE]);
    for (const put of puts) {
      expect(put.path).toMatch(/^\/external-weights-uploads\//);
      expect(put.headers.get("x-api-key")).toBeNull();
      expect(put.headers.get("authorization")).toBeNull();
    }
    expect(puts.map((p) => p.body)).toEqual(puts.map((p) => files[p.path.split("/").at(-1)!]));
    const [finish] = sentTo(sent, "/external_weights_upload_finish");
    expect(Object.keys(JSON.parse(text(finish!)))).toEqual(["upload_id"]);

    // The uploaded run holds the checkpoint only: it cannot be trained.
    const step = await t.local.fetch(
      new Request("http://local.tinker/api/v1/optim_step", {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "tml-test-key" },
        body: JSON.stringify({ adam_params: {}, model_id: runId, seq_id: 1 }),
      }),
    );
    expect(step.status).toBe(400);
  });

  it("refuses files that do not fit the base model and LoRA config (400), and checks its own input", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await trained(t.service);
    const files = await download(t, (await training.saveWeightsExternal("hf")).path);

    await expect(rest.uploadExternalWeights(MODEL, { rank: 8 }, files)).rejects.toThrow(
      /lora_A\.weight has shape \[4, 64\], expected \[8, 64\]/,
    );
    await expect(rest.uploadExternalWeights(MODEL, { rank: 4, train_attn: false }, files)).rejects.toThrow(
      BadRequestError,
    );
    await expect(rest.uploadExternalWeights("other/base-model", { rank: 4 }, files)).rejects.toThrow(
      /base_model_name_or_path is .*tinker-ts\/byte-lm-tiny.*, expected .*other\/base-model/,
    );
    const garbled = { ...files, [WEIGHTS_FILE]: new Uint8Array([1, 2, 3]) };
    await expect(rest.uploadExternalWeights(MODEL, { rank: 4 }, garbled)).rejects.toThrow(
      /not a float32 safetensors/,
    );

    // A file missing from `files`, or one the server does not list: refused before any PUT.
    const puts = () => t.requests.filter((r) => r.method === "PUT").length;
    const putsBefore = puts();
    await expect(
      rest.uploadExternalWeights(MODEL, { rank: 4 }, { [CONFIG_FILE]: files[CONFIG_FILE]! }),
    ).rejects.toThrow(ValidationError);
    await expect(
      rest.uploadExternalWeights(MODEL, { rank: 4 }, { ...files, "extra.bin": new Uint8Array(1) }),
    ).rejects.toThrow(/files\.extra\.bin/);
    expect(puts()).toBe(putsBefore);
    await expect(rest.externalWeightsUploadStart(MODEL, { rank: 0 })).rejects.toThrow(ValidationError);
  });

  it("finish: a missing file is a 400, an unknown upload a 404, a repeat the same path; PUTs after it conflict", async () => {
    const t = setup();
    const rest = t.service.createRestClient();
    const training = await trained(t.service);
    const files = await download(t, (await training.saveWeightsExternal("hf")).path);
    const started = await rest.externalWeightsUploadStart(MODEL, { rank: 4 }, { destinationProjectId: "p1" });
    expect(Object.keys(started.urls).sort()).toEqual([CONFIG_FILE, WEIGHTS_FILE]);
    expect(started.expires).toBeInstanceOf(Date);
    const put = (name: string, body: Uint8Array) =>
      t.local.fetch(
        new Request(started.urls[name]!.url, { method: "PUT", body: body as Uint8Array<ArrayBuffer> }),
      );
    expect((await put(CONFIG_FILE, files[CONFIG_FILE]!)).status).toBe(200);
    await expect(rest.externalWeightsUploadFinish(started.upload_id)).rejects.toThrow(
      /adapter_model\.safetensors was not uploaded/,
    );
    expect((await put(WEIGHTS_FILE, files[WEIGHTS_FILE]!)).status).toBe(200);
    const path = await rest.externalWeightsUploadFinish(started.upload_id);
    expect(await rest.externalWeightsUploadFinish(started.upload_id)).toBe(path);
    expect((await put(WEIGHTS_FILE, files[WEIGHTS_FILE]!)).status).toBe(409);
    await expect(rest.externalWeightsUploadFinish("upload-unknown")).rejects.toThrow(NotFoundError);
    const forged = started.urls[CONFIG_FILE]!.url.replace(
      /\.([^./]+)\/adapter_config/,
      ".AAAA/adapter_config",
    );
    expect((await t.local.fetch(new Request(forged, { method: "PUT", body: "{}" }))).status).toBe(403);
  });

  it("sends the headers of 0.40-shaped URL entries with the PUT (§W7)", async () => {
    const local = createLocalTinker();
    // A server answering upload_start in the 0.40 shape: every entry `{url, headers}`.
    const shaped = async (request: Request): Promise<Response> => {
      const response = await local.fetch(request);
      if (!new URL(request.url).pathname.endsWith("/external_weights_upload_start")) return response;
      const answer = (await response.json()) as { urls: Record<string, string> };
      const urls = Object.fromEntries(
        Object.entries(answer.urls).map(([name, url]) => [
          name,
          { url, headers: { "x-upload-tag": `tag-${name}` } },
        ]),
      );
      return Response.json({ ...answer, urls });
    };
    const recorder = recordingFetch(shaped);
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: recorder.fetch,
    });
    closers.add(async () => {
      await service.close();
      await local.close();
    });
    const training = await trained(service);
    const files = await download({ service, local }, (await training.saveWeightsExternal("hf")).path);
    const path = await service.createRestClient().uploadExternalWeights(MODEL, { rank: 4 }, files);
    expect(path).toMatch(/external_weights/);
    const puts = recorder.requests.filter((r) => r.method === "PUT");
    expect(puts).toHaveLength(2);
    for (const p of puts) {
      expect(p.headers.get("x-upload-tag")).toBe(`tag-${p.path.split("/").at(-1)}`);
      expect(p.headers.get("x-api-key")).toBeNull();
    }
  });
});

describe("persistence", () => {
  it("saved and uploaded external checkpoints survive a restart byte for byte", async () => {
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
    const t = {
      service,
      local: { fetch: (request: Request) => local.fetch(request) },
    };
    const training = await trained(service);
    const { path } = await training.saveWeightsExternal("hf");
    const files = await download(t, path);
    const uploaded = await service.createRestClient().uploadExternalWeights(MODEL, { rank: 4 }, files);
    await local.close();
    local = createLocalTinker({ store });
    expect(await download(t, path)).toEqual(files);
    expect(await download(t, uploaded)).toEqual(files);
    const listed = await service.createRestClient().listCheckpoints(uploaded.split("/")[2]!);
    expect(listed.checkpoints).toMatchObject([{ tinker_path: uploaded, checkpoint_type: "external" }]);
  });
});
