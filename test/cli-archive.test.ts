/**
 * Checkpoint archives of the local backend: the hand-written tar and safetensors formats read back,
 * tensor values equal to the engine's parameters, the PEFT adapter config, and the signed,
 * expiring archive URL (no API key needed; forged → 403, expired → 410).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { ServiceClient } from "../src/index.js";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  ArchiveUrlSigner,
  buildCheckpointArchive,
  peftTensorName,
} from "../src/local/archive.js";
import {
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  hashSeed,
  TrainableModel,
} from "../src/local/engine/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { decodeSafetensors, encodeSafetensors } from "../src/local/safetensors.js";
import { readTar, TarError, tarHeader, writeTar } from "../src/local/tar.js";

afterEach(() => {
  vi.restoreAllMocks();
});

function modelWithNonzeroB(settings: {
  rank: number;
  trainAttn: boolean;
  trainMlp: boolean;
  trainUnembed: boolean;
}) {
  const model = new TrainableModel(createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed("test/base")), {
    ...settings,
    seed: 11,
  });
  // B starts at zero; give it values so the check covers both matrices.
  for (const parameter of model.parameters()) {
    if (parameter.name.endsWith("lora_B")) {
      for (let i = 0; i < parameter.value.length; i++)
        parameter.value[i] = Math.sin(i + parameter.name.length) / 7;
    }
  }
  return model;
}

describe("tar", () => {
  it("round-trips files, directories, long names and modes", () => {
    const long = `${"d".repeat(120)}/${"f".repeat(90)}.bin`;
    const files = [
      { name: "a.txt", data: new TextEncoder().encode("hello") },
      { name: "dir" },
      { name: "dir/empty", data: new Uint8Array(0) },
      { name: long, data: new Uint8Array(1000).map((_, i) => i % 251), mode: 0o600 },
    ];
    const bytes = writeTar(files);
    expect(bytes.length % 512).toBe(0);
    const entries = readTar(bytes);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ["a.txt", "file"],
      ["dir/", "directory"],
      ["dir/empty", "file"],
      [long, "file"],
    ]);
    expect(new TextDecoder().decode(entries[0].data)).toBe("hello");
    expect([...entries[3].data]).toEqual([...files[3].data!]);
    expect(entries[3].mode).toBe(0o600);
    // ustar magic and a valid checksum: a corrupted header is rejected.
    expect(new TextDecoder().decode(bytes.subarray(257, 262))).toBe("ustar");
    const corrupted = bytes.slice();
    corrupted[10] ^= 1;
    expect(() => readTar(corrupted)).toThrow(TarError);
  });

  it("reports links and special files for the extractor to refuse", () => {
    const bytes = new Uint8Array(512 * 4);
    bytes.set(tarHeader({ name: "link", size: 0, typeflag: "2", linkname: "/etc/passwd" }), 0);
    bytes.set(tarHeader({ name: "hard", size: 0, typeflag: "1", linkname: "x" }), 512);
    const entries = readTar(bytes);
    expect(entries.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ["link", "symlink", "/etc/passwd"],
      ["hard", "hardlink", "x"],
    ]);
  });
});

describe("safetensors", () => {
  it("writes the standard layout: u64 LE header length, JSON header, aligned little-endian F32 data", () => {
    const bytes = encodeSafetensors(
      [
        { name: "x", shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
        { name: "y", shape: [1], data: [-0.5] },
      ],
      { format: "pt" },
    );
    const view = new DataView(bytes.buffer);
    const headerLength = Number(view.getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    expect(header).toEqual({
      __metadata__: { format: "pt" },
      x: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
      y: { dtype: "F32", shape: [1], data_offsets: [24, 28] },
    });
    expect(view.getFloat32(8 + headerLength + 4, true)).toBe(2);
    const decoded = decodeSafetensors(bytes);
    expect(decoded.metadata).toEqual({ format: "pt" });
    expect([...decoded.tensors[1].data]).toEqual([-0.5]);
    expect(() => encodeSafetensors([{ name: "bad", shape: [2, 2], data: [1] }])).toThrow(/needs 4 values/);
  });
});

describe("checkpoint archive", () => {
  it.each([
    { rank: 4, trainAttn: true, trainMlp: true, trainUnembed: true },
    { rank: 2, trainAttn: true, trainMlp: false, trainUnembed: false },
  ])("holds the engine's LoRA tensors as a PEFT adapter (%o)", (settings) => {
    const model = modelWithNonzeroB(settings);
    const time = new Date("2026-01-02T03:04:05Z");
    const archive = buildCheckpointArchive({ state: model.exportState(), baseModel: "test/base", time });
    const entries = readTar(archive);
    expect(entries.map((e) => e.name)).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
    expect(entries.every((e) => e.type === "file" && e.mtime.getTime() === time.getTime())).toBe(true);

    const config = JSON.parse(new TextDecoder().decode(entries[0].data));
    expect(config).toMatchObject({
      base_model_name_or_path: "test/base",
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      r: settings.rank,
      lora_alpha: 32,
      bias: "none",
    });
    expect(config.target_modules).toEqual([
      ...(settings.trainAttn ? ["q_proj", "k_proj", "v_proj", "o_proj"] : []),
      ...(settings.trainMlp ? ["up_proj", "down_proj"] : []),
      ...(settings.trainUnembed ? ["lm_head"] : []),
    ]);

    const { tensors, metadata } = decodeSafetensors(entries[1].data);
    expect(metadata.format).toBe("pt");
    const parameters = model.parameters();
    expect(tensors.map((t) => t.name)).toEqual(parameters.map((p) => peftTensorName(p.name)));
    const { dModel, dFF, vocabSize } = DEFAULT_MODEL_CONFIG;
    const r = settings.rank;
    for (const [i, parameter] of parameters.entries()) {
      const tensor = tensors[i];
      expect(tensor.dtype).toBe("F32");
      // The engine's values, rounded to float32.
      expect([...tensor.data]).toEqual([...parameter.value].map(Math.fround));
      expect(tensor.shape[0] * tensor.shape[1]).toBe(parameter.value.length);
    }
    const byName = new Map(tensors.map((t) => [t.name, t.shape]));
    expect(byName.get("base_model.model.layers.0.self_attn.q_proj.lora_A.weight")).toEqual([r, dModel]);
    expect(byName.get("base_model.model.layers.1.self_attn.o_proj.lora_B.weight")).toEqual([dModel, r]);
    if (settings.trainMlp) {
      expect(byName.get("base_model.model.layers.0.mlp.up_proj.lora_B.weight")).toEqual([dFF, r]);
      expect(byName.get("base_model.model.layers.1.mlp.down_proj.lora_A.weight")).toEqual([r, dFF]);
    }
    if (settings.trainUnembed) {
      expect(byName.get("base_model.model.lm_head.lora_B.weight")).toEqual([vocabSize, r]);
    }
  });

  it("maps engine names to PEFT module names", () => {
    expect(peftTensorName("layers.3.wDown.lora_B")).toBe(
      "base_model.model.layers.3.mlp.down_proj.lora_B.weight",
    );
    expect(peftTensorName("unembed.lora_A")).toBe("base_model.model.lm_head.lora_A.weight");
    expect(() => peftTensorName("embedding")).toThrow();
  });
});

describe("signed archive URLs", () => {
  it("verifies its own tokens and rejects forged and expired ones", async () => {
    const signer = new ArchiveUrlSigner();
    const grant = { runId: "run:train:0", checkpointId: "weights/a", expiresAt: 2_000 };
    const token = await signer.sign(grant);
    expect(await signer.verify(token, 1_000)).toEqual({ ok: true, grant });
    expect(await signer.verify(token, 2_000)).toEqual({ ok: false, reason: "expired" });
    const [payload, signature] = token.split(".");
    const otherPayload = btoa(JSON.stringify({ r: "other", c: "weights/a", e: 9e15 })).replace(/=+$/, "");
    expect(await signer.verify(`${otherPayload}.${signature}`, 1_000)).toEqual({
      ok: false,
      reason: "forged",
    });
    expect(await signer.verify(`${payload}.${signature.slice(0, -2)}AA`, 1_000)).toMatchObject({ ok: false });
    expect(await new ArchiveUrlSigner().verify(token, 1_000)).toEqual({ ok: false, reason: "forged" });
    expect(await signer.verify("garbage", 1_000)).toEqual({ ok: false, reason: "forged" });
  });

  it("serves the archive without an API key; forged → 403, expired → 410, deleted → 404", async () => {
    const local = createLocalTinker({ longPollMs: 1_000 });
    const service = new ServiceClient({
      apiKey: "tml-test",
      baseURL: "http://local.tinker",
      fetch: local.fetch,
    });
    try {
      const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 2 });
      const { path } = await training.saveState("a");
      const rest = service.createRestClient();
      const { url, expires } = await rest.getCheckpointArchiveUrlFromTinkerPath(path);
      expect(url).toMatch(/^http:\/\/local\.tinker\/archives\/[\w-]+\.[\w-]+$/);
      expect(expires.getTime() - Date.now()).toBeGreaterThan(14 * 60_000);

      const ok = await local.fetch(new Request(url));
      expect(ok.status).toBe(200);
      expect(ok.headers.get("content-type")).toBe("application/x-tar");
      const bytes = new Uint8Array(await ok.arrayBuffer());
      expect(Number(ok.headers.get("content-length"))).toBe(bytes.length);
      expect(readTar(bytes).map((e) => e.name)).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);

      const token = url.slice(url.lastIndexOf("/") + 1);
      const [payload, signature] = token.split(".");
      const forged = `${btoa(JSON.stringify({ r: "x", c: "weights/a", e: 9e15 })).replace(/=+$/, "")}.${signature}`;
      expect((await local.fetch(new Request(`http://local.tinker/archives/${forged}`))).status).toBe(403);
      expect((await local.fetch(new Request(`http://local.tinker/archives/${payload}.AAAA`))).status).toBe(
        403,
      );
      expect((await local.fetch(new Request(url, { method: "POST" }))).status).toBe(405);

      const realNow = Date.now();
      vi.spyOn(Date, "now").mockReturnValue(realNow + 16 * 60_000);
      expect((await local.fetch(new Request(url))).status).toBe(410);
      vi.restoreAllMocks();

      await rest.deleteCheckpointFromTinkerPath(path);
      expect((await local.fetch(new Request(url))).status).toBe(404);
    } finally {
      await service.close();
      local.close();
    }
  });
});
