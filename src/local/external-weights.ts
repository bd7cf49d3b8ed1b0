/**
 * External (Hugging Face PEFT) weights of the local backend (PROTOCOL.md §W2, §W4).
 *
 * An external-weights checkpoint (`tinker://<run>/external_weights/<name>`) is a PEFT LoRA adapter:
 * `adapter_config.json` and `adapter_model.safetensors`, exactly the files of a checkpoint archive
 * (see archive.ts for their layout). It is stored as those files in one ustar archive, so its bytes
 * are kept verbatim — an uploaded adapter is served back byte for byte.
 *
 * Its files are handed out as signed, expiring URLs (`<base>/external-weights/<token>/<file>`), and
 * uploads go to signed URLs too (`<base>/external-weights-uploads/<token>/<file>`, PUT): as with the
 * archive URLs, the token is the credential, so neither takes an API key. Each kind of URL has its
 * own signing key, so a token of one kind is worthless for the other. Uploads in progress live in
 * memory only; a restart forgets them (their URLs would not verify anyway).
 */
import { uuid4 } from "../internal/uuid.js";
import { ArchiveUrlSigner, adapterFileList } from "./archive.js";
import type { BaseModels } from "./base-models.js";
import { EngineError } from "./engine/index.js";
import { LocalBackendError } from "./errors.js";
import type { Persistence } from "./persistence.js";
import { decodeSafetensors } from "./safetensors.js";
import { type BackendState, type Checkpoint, type LoraSettings, registerRun } from "./state.js";
import { readTar, writeTar } from "./tar.js";

/** The files of an external adapter, by name. */
export type AdapterFiles = Record<string, Uint8Array>;

/** How long download URLs stay valid (as archive URLs). */
const DOWNLOAD_URL_LIFETIME_MS = 15 * 60_000;
/** How long an upload may take from start to finish. */
const UPLOAD_LIFETIME_MS = 60 * 60_000;
/** Largest file accepted by an upload URL (the local model's adapters are far smaller). */
const MAX_UPLOAD_FILE_BYTES = 256 * 1024 * 1024;
/** The name of the checkpoint an upload creates, in a run of its own. */
const UPLOADED_CHECKPOINT_NAME = "adapter";

/** The URL path prefixes (outside `/api/v1/`) of the signed file URLs. */
export const DOWNLOAD_PREFIX = "external-weights";
export const UPLOAD_PREFIX = "external-weights-uploads";

/** The adapter files `save_weights_external` writes for an engine state. */
export function exportAdapterFiles(state: Uint8Array, baseModel: string): AdapterFiles {
  return Object.fromEntries(adapterFileList(state, baseModel).map((file) => [file.name, file.data]));
}

/** The stored form of an external checkpoint: its files in one ustar archive, in name order. */
export function packAdapterFiles(files: AdapterFiles, mtime: Date): Uint8Array {
  return writeTar(
    Object.keys(files)
      .sort()
      .map((name) => ({ name, data: files[name]!, mtime })),
  );
}

/** The files of a stored external checkpoint. */
export function unpackAdapterFiles(bytes: Uint8Array): AdapterFiles {
  const files: AdapterFiles = {};
  for (const entry of readTar(bytes)) {
    if (entry.type !== "file") throw new Error(`unexpected ${entry.type} entry ${entry.name}`);
    files[entry.name] = entry.data.slice();
  }
  return files;
}

interface Upload {
  id: string;
  baseModel: string;
  lora: LoraSettings;
  /** What `save_weights_external` would write for this base model and LoRA config. */
  expected: AdapterFiles;
  files: Map<string, Uint8Array>;
  expiresAt: number;
  /** Set once finished: a repeated finish (within the lifetime) answers the same path. */
  tinkerPath?: string;
}

export class ExternalWeights {
  readonly #state: BackendState;
  readonly #persistence: Persistence;
  readonly #models: BaseModels;
  readonly #downloads = new ArchiveUrlSigner();
  readonly #uploadUrls = new ArchiveUrlSigner();
  readonly #uploads = new Map<string, Upload>();

  constructor(state: BackendState, persistence: Persistence, models: BaseModels) {
    this.#state = state;
    this.#persistence = persistence;
    this.#models = models;
  }

  /**
   * `GET …/checkpoints/external_weights/<name>/external_weights_urls`: a signed URL per file of
   * the adapter, and when they expire. Another kind of checkpoint → 400, none → 404.
   */
  async urls(runId: string, checkpointId: string, baseUrl: string): Promise<unknown> {
    const checkpoint = this.#externalCheckpoint(runId, checkpointId);
    const expiresAt = Date.now() + DOWNLOAD_URL_LIFETIME_MS;
    const token = await this.#downloads.sign({ runId, checkpointId, expiresAt });
    const urls = Object.fromEntries(
      Object.keys(unpackAdapterFiles(checkpoint.state)).map((file) => [
        file,
        `${baseUrl}/${DOWNLOAD_PREFIX}/${token}/${encodeURIComponent(file)}`,
      ]),
    );
    return { urls, expires: new Date(expiresAt).toISOString() };
  }

  /** `GET <base>/external-weights/<token>/<file>`: one file of an external checkpoint. */
  async download(token: string, file: string): Promise<Uint8Array> {
    const check = await this.#downloads.verify(token);
    if (!check.ok) throw signedUrlError(check.reason);
    const checkpoint = this.#externalCheckpoint(check.grant.runId, check.grant.checkpointId);
    const data = unpackAdapterFiles(checkpoint.state)[file];
    if (data === undefined)
      throw new LocalBackendError("not_found", `${checkpoint.tinkerPath} has no file ${file}`);
    return data;
  }

  /**
   * `POST external_weights_upload_start` (§W4): an upload id and a signed PUT URL per file that
   * `save_weights_external` would write for this base model and LoRA config (the 0.39 answer
   * shape: plain URL strings). `destination_project_id` is accepted; one local user owns everything.
   */
  async start(baseModel: string, lora: LoraSettings, baseUrl: string): Promise<unknown> {
    let expected: AdapterFiles;
    try {
      const model = this.#models.create(baseModel, lora, 0, "adamw");
      expected = exportAdapterFiles(model.exportState({ withOptimizer: false }), baseModel);
    } catch (error) {
      if (error instanceof EngineError) throw new LocalBackendError("invalid", error.message);
      throw error;
    }
    this.#forgetExpiredUploads();
    const id = `upload-${uuid4()}`;
    const expiresAt = Date.now() + UPLOAD_LIFETIME_MS;
    this.#uploads.set(id, { id, baseModel, lora, expected, files: new Map(), expiresAt });
    const token = await this.#uploadUrls.sign({ runId: id, checkpointId: "upload", expiresAt });
    const urls = Object.fromEntries(
      Object.keys(expected).map((file) => [
        file,
        `${baseUrl}/${UPLOAD_PREFIX}/${token}/${encodeURIComponent(file)}`,
      ]),
    );
    return { upload_id: id, urls, expires: new Date(expiresAt).toISOString() };
  }

  /**
   * `PUT <base>/external-weights-uploads/<token>/<file>`: one file of an upload (a repeat replaces
   * it). `read` is called for the body only once the token and the file are known to be good.
   */
  async receive(token: string, file: string, read: () => Promise<Uint8Array>): Promise<void> {
    const check = await this.#uploadUrls.verify(token);
    if (!check.ok) throw signedUrlError(check.reason);
    const upload = this.#uploads.get(check.grant.runId);
    if (!upload) throw new LocalBackendError("not_found", `upload ${check.grant.runId} not found`);
    if (upload.tinkerPath !== undefined) {
      throw new LocalBackendError("conflict", `upload ${upload.id} is already finished`);
    }
    if (!Object.hasOwn(upload.expected, file)) {
      throw new LocalBackendError(
        "not_found",
        `upload ${upload.id} has no file ${JSON.stringify(file)}; expected ${Object.keys(upload.expected).join(", ")}`,
      );
    }
    const data = await read();
    if (data.length > MAX_UPLOAD_FILE_BYTES) {
      throw new LocalBackendError("invalid", `${file} exceeds ${MAX_UPLOAD_FILE_BYTES} bytes`);
    }
    upload.files.set(file, data);
  }

  /**
   * `POST external_weights_upload_finish`: checks that every file arrived and fits the base model
   * and LoRA config (400 otherwise), then stores them as the external checkpoint of a new,
   * untrainable run and answers its path. Unknown upload → 404; a repeated finish → the same path.
   */
  finish(uploadId: string): { tinker_path: string } {
    const upload = this.#uploads.get(uploadId);
    if (!upload) throw new LocalBackendError("not_found", `upload ${uploadId} not found`);
    if (upload.tinkerPath !== undefined) return { tinker_path: upload.tinkerPath };
    if (upload.expiresAt <= Date.now()) throw new LocalBackendError("gone", `upload ${uploadId} has expired`);
    const files = Object.fromEntries(upload.files);
    const problems = adapterMismatches(files, upload.expected);
    if (problems.length > 0) {
      throw new LocalBackendError(
        "invalid",
        `the uploaded files do not fit ${upload.baseModel} with this LoRA config: ${problems.join("; ")}`,
      );
    }
    const modelId = `${upload.id}:train:0`;
    const run = registerRun(this.#state, {
      modelId,
      sessionId: upload.id,
      baseModel: upload.baseModel,
      lora: upload.lora,
      userMetadata: undefined,
      model: this.#models.create(upload.baseModel, upload.lora, 0, "adamw"),
      trainable: false,
    });
    const time = new Date();
    const checkpoint: Checkpoint = {
      tinkerPath: `tinker://${modelId}/external_weights/${UPLOADED_CHECKPOINT_NAME}`,
      runId: modelId,
      kind: "external_weights",
      name: UPLOADED_CHECKPOINT_NAME,
      baseModel: upload.baseModel,
      state: packAdapterFiles(files, time),
      lora: upload.lora,
      time,
      expiresAt: null,
      public: false,
      userMetadata: undefined,
    };
    this.#state.checkpoints.set(checkpoint.tinkerPath, checkpoint);
    this.#persistence.persistRun(run);
    this.#persistence.persistCheckpoint(checkpoint);
    upload.tinkerPath = checkpoint.tinkerPath;
    upload.files.clear();
    return { tinker_path: checkpoint.tinkerPath };
  }

  /** Uploads past their lifetime, finished or not: their URLs no longer verify anyway. */
  #forgetExpiredUploads(): void {
    const now = Date.now();
    for (const [id, upload] of this.#uploads) if (upload.expiresAt <= now) this.#uploads.delete(id);
  }

  /** A live external-weights checkpoint addressed as the REST routes do. */
  #externalCheckpoint(runId: string, checkpointId: string): Checkpoint {
    const path = `tinker://${runId}/${checkpointId}`;
    const checkpoint = this.#state.checkpoints.get(path);
    if (!checkpoint || (checkpoint.expiresAt !== null && checkpoint.expiresAt.getTime() <= Date.now())) {
      throw new LocalBackendError("not_found", `checkpoint not found: ${path}`);
    }
    if (checkpoint.kind !== "external_weights") {
      throw new LocalBackendError(
        "invalid",
        `${path} is not an external-weights checkpoint; save one with save_weights_external (tinker://…/external_weights/…)`,
      );
    }
    return checkpoint;
  }
}

function signedUrlError(reason: "forged" | "expired"): LocalBackendError {
  return reason === "expired"
    ? new LocalBackendError("gone", "this URL has expired; request a new one")
    : new LocalBackendError("forbidden", "invalid URL signature");
}

/** PEFT config fields that must be as `save_weights_external` writes them; the rest is free. */
const STRUCTURAL_CONFIG_FIELDS = [
  "base_model_name_or_path",
  "peft_type",
  "r",
  "lora_alpha",
  "target_modules",
];

/**
 * How `files` differ from the adapter `expected` (what `save_weights_external` exports for the same
 * base model and LoRA config): the same file names, a config with the same structural fields, and
 * safetensors with the same tensors (names, shapes, float32). Values are free — they are the weights.
 */
export function adapterMismatches(files: AdapterFiles, expected: AdapterFiles): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(expected)) {
    if (!Object.hasOwn(files, name)) problems.push(`${name} was not uploaded`);
  }
  for (const name of Object.keys(files)) {
    if (!Object.hasOwn(expected, name)) problems.push(`unexpected file ${name}`);
  }
  if (problems.length > 0) return problems;
  for (const name of Object.keys(expected)) {
    problems.push(
      ...(name.endsWith(".json")
        ? configMismatches(name, files[name]!, expected[name]!)
        : tensorMismatches(name, files[name]!, expected[name]!)),
    );
  }
  return problems;
}

function configMismatches(name: string, given: Uint8Array, expected: Uint8Array): string[] {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(new TextDecoder().decode(given));
    if (typeof config !== "object" || config === null || Array.isArray(config)) throw new Error();
  } catch {
    return [`${name} is not a JSON object`];
  }
  const wanted = JSON.parse(new TextDecoder().decode(expected)) as Record<string, unknown>;
  const canonical = (value: unknown) =>
    JSON.stringify(Array.isArray(value) ? [...value].map(String).sort() : value);
  return STRUCTURAL_CONFIG_FIELDS.filter(
    (field) => canonical(config[field]) !== canonical(wanted[field]),
  ).map(
    (field) =>
      `${name}: ${field} is ${JSON.stringify(config[field])}, expected ${JSON.stringify(wanted[field])}`,
  );
}

function tensorMismatches(name: string, given: Uint8Array, expected: Uint8Array): string[] {
  let tensors: Map<string, string>;
  try {
    tensors = shapes(given);
  } catch (error) {
    return [`${name} is not a float32 safetensors file (${(error as Error).message})`];
  }
  const wanted = shapes(expected);
  const problems: string[] = [];
  for (const [tensor, shape] of wanted) {
    const got = tensors.get(tensor);
    if (got === undefined) problems.push(`${name} lacks tensor ${tensor}`);
    else if (got !== shape) problems.push(`${name}: ${tensor} has shape ${got}, expected ${shape}`);
  }
  for (const tensor of tensors.keys()) {
    if (!wanted.has(tensor)) problems.push(`${name} has an unexpected tensor ${tensor}`);
  }
  return problems;
}

function shapes(bytes: Uint8Array): Map<string, string> {
  return new Map(decodeSafetensors(bytes).tensors.map((t) => [t.name, `[${t.shape.join(", ")}]`]));
}
