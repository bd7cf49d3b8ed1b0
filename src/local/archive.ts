/**
 * Checkpoint archives of the local backend (PROTOCOL.md §2.7.5) and the signed, expiring URLs they
 * are downloaded from. Web-standard only (WebCrypto HMAC, Uint8Array): runs in browsers and Workers.
 *
 * An archive is an uncompressed ustar tar with two files, a PEFT-style LoRA adapter:
 *
 * - `adapter_model.safetensors`: every LoRA tensor as float32, named by this mapping from the
 *   engine's parameters (`layers.<i>.<linear>.lora_A|lora_B`, `unembed.lora_A|lora_B`):
 *
 *     engine            safetensors name
 *     layers.i.wq    →  base_model.model.layers.i.self_attn.q_proj.lora_{A,B}.weight
 *     layers.i.wk    →  base_model.model.layers.i.self_attn.k_proj.lora_{A,B}.weight
 *     layers.i.wv    →  base_model.model.layers.i.self_attn.v_proj.lora_{A,B}.weight
 *     layers.i.wo    →  base_model.model.layers.i.self_attn.o_proj.lora_{A,B}.weight
 *     layers.i.wUp   →  base_model.model.layers.i.mlp.up_proj.lora_{A,B}.weight
 *     layers.i.wDown →  base_model.model.layers.i.mlp.down_proj.lora_{A,B}.weight
 *     unembed        →  base_model.model.lm_head.lora_{A,B}.weight
 *
 *   with PEFT's shapes: lora_A [r, in_features], lora_B [out_features, r] (the engine's own
 *   row-major layout, so values are copied in order). The adapted weight is
 *   W + (lora_alpha / r) · B · A. The engine keeps float64; the archive rounds to float32.
 *   `__metadata__` records `format: pt`, the base model, the engine's model config and seeds.
 * - `adapter_config.json`: PEFT's LoraConfig fields (base_model_name_or_path, peft_type, task_type,
 *   r, lora_alpha, lora_dropout, bias, target_modules, …).
 *
 * Optimizer moments of training checkpoints are not part of the archive (as with PEFT adapters).
 */
import { base64UrlToBytes, bytesToBase64Url } from "../core/jwt.js";
import type { ModelConfig } from "./engine/config.js";
import { decodeState } from "./engine/state.js";
import { type BlockLinearName, blockLinearShape } from "./engine/weights.js";
import { encodeSafetensors, type SafetensorInput } from "./safetensors.js";
import { writeTar } from "./tar.js";

export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";
export const ADAPTER_CONFIG_FILE = "adapter_config.json";

/** The engine's linear maps and the Hugging Face module names they stand for. */
export const PEFT_MODULE_NAMES: Readonly<Record<BlockLinearName | "unembed", string>> = Object.freeze({
  wq: "self_attn.q_proj",
  wk: "self_attn.k_proj",
  wv: "self_attn.v_proj",
  wo: "self_attn.o_proj",
  wUp: "mlp.up_proj",
  wDown: "mlp.down_proj",
  unembed: "lm_head",
});

/** `layers.0.wq.lora_A` → `base_model.model.layers.0.self_attn.q_proj.lora_A.weight`. */
export function peftTensorName(engineName: string): string {
  const layer = /^layers\.(\d+)\.(wq|wk|wv|wo|wUp|wDown)\.(lora_A|lora_B)$/.exec(engineName);
  if (layer) {
    const module = PEFT_MODULE_NAMES[layer[2] as BlockLinearName];
    return `base_model.model.layers.${layer[1]}.${module}.${layer[3]}.weight`;
  }
  const unembed = /^unembed\.(lora_A|lora_B)$/.exec(engineName);
  if (unembed) return `base_model.model.lm_head.${unembed[1]}.weight`;
  throw new Error(`internal: unknown LoRA parameter ${engineName}`);
}

/** [rows, cols] of an engine LoRA parameter. */
function tensorShape(engineName: string, config: ModelConfig, rank: number): [number, number] {
  const parts = engineName.split(".");
  const kind = parts[parts.length - 1];
  const [outDim, inDim] =
    parts[0] === "unembed"
      ? [config.vocabSize, config.dModel]
      : blockLinearShape(config, parts[2] as BlockLinearName);
  return kind === "lora_A" ? [rank, inDim] : [outDim, rank];
}

export interface AdapterFiles {
  safetensors: Uint8Array;
  config: Record<string, unknown>;
}

/** The PEFT adapter files of an engine state (`TrainableModel.exportState`). */
export function adapterFromState(state: Uint8Array, baseModel: string): AdapterFiles {
  const { header, values } = decodeState(state);
  const { rank, alpha } = header.lora;
  const tensors: SafetensorInput[] = header.tensors.map((tensor, i) => {
    const shape = tensorShape(tensor.name, header.modelConfig, rank);
    if (shape[0] * shape[1] !== tensor.length) {
      throw new Error(`internal: ${tensor.name} has ${tensor.length} values, expected [${shape}]`);
    }
    return { name: peftTensorName(tensor.name), shape, data: values[i] };
  });
  const targetModules = [
    ...new Set(
      header.tensors.map((t) => {
        const target = t.name.startsWith("unembed") ? "unembed" : t.name.split(".")[2];
        return PEFT_MODULE_NAMES[target as BlockLinearName | "unembed"].split(".").pop()!;
      }),
    ),
  ];
  const safetensors = encodeSafetensors(tensors, {
    format: "pt",
    base_model: baseModel,
    "tinker_ts.model_config": JSON.stringify(header.modelConfig),
    "tinker_ts.base_seed": header.baseSeed,
    "tinker_ts.lora_seed": header.lora.seed,
    "tinker_ts.step": String(header.step),
  });
  const config = {
    base_model_name_or_path: baseModel,
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: rank,
    lora_alpha: alpha,
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    target_modules: targetModules,
    use_rslora: false,
    use_dora: false,
  };
  return { safetensors, config };
}

/** The adapter's files as they are written out (archives, external weights §W2): config first. */
export function adapterFileList(state: Uint8Array, baseModel: string): { name: string; data: Uint8Array }[] {
  const adapter = adapterFromState(state, baseModel);
  return [
    {
      name: ADAPTER_CONFIG_FILE,
      data: new TextEncoder().encode(`${JSON.stringify(adapter.config, null, 2)}\n`),
    },
    { name: ADAPTER_WEIGHTS_FILE, data: adapter.safetensors },
  ];
}

/** The tar archive of a checkpoint: the adapter weights and their config. */
export function buildCheckpointArchive(checkpoint: {
  state: Uint8Array;
  baseModel: string;
  time: Date;
}): Uint8Array {
  const mtime = checkpoint.time;
  return writeTar(
    adapterFileList(checkpoint.state, checkpoint.baseModel).map((file) => ({ ...file, mtime })),
  );
}

// Signed URLs -------------------------------------------------------------------------------------

export interface ArchiveGrant {
  runId: string;
  checkpointId: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export type ArchiveTokenCheck =
  | { ok: true; grant: ArchiveGrant }
  | { ok: false; reason: "forged" | "expired" };

/**
 * Issues and checks download tokens: `<base64url(JSON grant)>.<base64url(HMAC-SHA256)>`, keyed by a
 * random secret of this backend (so URLs do not survive a restart). The token is the credential,
 * like the signature of a cloud storage URL: no API key is needed to use it.
 */
export class ArchiveUrlSigner {
  readonly #secret: Uint8Array | undefined;
  #keyPromise: Promise<CryptoKey> | undefined;

  /** `secret`: the HMAC key; default 32 random bytes, drawn on first use. */
  constructor(secret?: Uint8Array) {
    this.#secret = secret;
  }

  /** Imported lazily: WebCrypto is missing in insecure browser contexts, where no URL is signed. */
  get #key(): Promise<CryptoKey> {
    this.#keyPromise ??= crypto.subtle.importKey(
      "raw",
      (this.#secret ?? crypto.getRandomValues(new Uint8Array(32))) as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return this.#keyPromise;
  }

  async sign(grant: ArchiveGrant): Promise<string> {
    const payload = bytesToBase64Url(
      new TextEncoder().encode(JSON.stringify({ r: grant.runId, c: grant.checkpointId, e: grant.expiresAt })),
    );
    const signature = await crypto.subtle.sign("HMAC", await this.#key, new TextEncoder().encode(payload));
    return `${payload}.${bytesToBase64Url(new Uint8Array(signature))}`;
  }

  async verify(token: string, now: number = Date.now()): Promise<ArchiveTokenCheck> {
    const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
    if (!match) return { ok: false, reason: "forged" };
    let signature: Uint8Array;
    try {
      signature = base64UrlToBytes(match[2]);
    } catch {
      return { ok: false, reason: "forged" };
    }
    const valid = await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      signature as Uint8Array<ArrayBuffer>,
      new TextEncoder().encode(match[1]),
    );
    if (!valid) return { ok: false, reason: "forged" };
    const grant = JSON.parse(new TextDecoder().decode(base64UrlToBytes(match[1])));
    if (typeof grant.e !== "number" || grant.e <= now) return { ok: false, reason: "expired" };
    return { ok: true, grant: { runId: grant.r, checkpointId: grant.c, expiresAt: grant.e } };
  }
}
