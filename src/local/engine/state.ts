/**
 * Binary checkpoint format of a trainable model: LoRA tensors, optionally the optimizer state.
 *
 * Layout (all integers little-endian):
 *   bytes 0..3   magic "TTLS" (tinker-ts LoRA state)
 *   bytes 4..7   u32 format version
 *   bytes 8..11  u32 byte length H of the JSON header
 *   12..12+H     UTF-8 JSON header (model config, base seed, LoRA settings, optimizer family,
 *                step, tensor list)
 *   padding      zeros up to a multiple of 8
 *   payload      float64 little-endian: every tensor's values, then (with optimizer state) each
 *                of the family's tensor groups in header order — AdamW: first moments, then
 *                second moments; Dimuon: momenta.
 *
 * float64 end to end makes a save/load round trip bit-exact, so resumed training continues
 * exactly as if it had never stopped. A JSON header keeps the format self-describing and
 * lets a loader validate compatibility before touching the payload.
 *
 * Version 2 added the header's `optimizer` (the run's family, recorded even in weights-only
 * states). Version 1 states predate Dimuon and are read as AdamW.
 */

import type { ModelConfig } from "./config.js";
import { EngineError } from "./errors.js";
import type { ResolvedLoraSettings } from "./lora.js";
import { isOptimizerFamily, OPTIMIZER_TENSOR_GROUPS, type OptimizerFamily } from "./optimizer.js";

const MAGIC = [0x54, 0x54, 0x4c, 0x53]; // "TTLS"
const FORMAT_VERSION = 2;
const FIRST_VERSION_WITH_OPTIMIZER_FAMILY = 2;
const PREAMBLE_BYTES = 12;

export interface StateHeader {
  readonly modelConfig: ModelConfig;
  /** Seed of the base model, as a decimal string (a u64 does not fit a JSON number). */
  readonly baseSeed: string;
  readonly lora: {
    readonly rank: number;
    readonly alpha: number;
    readonly seed: string;
    readonly trainAttn: boolean;
    readonly trainMlp: boolean;
    readonly trainUnembed: boolean;
  };
  /** The training run's optimizer family. */
  readonly optimizer: OptimizerFamily;
  /** Optimizer steps taken so far. */
  readonly step: number;
  readonly hasOptimizer: boolean;
  readonly tensors: readonly { readonly name: string; readonly length: number }[];
}

export interface StateContents {
  readonly header: StateHeader;
  readonly values: Float64Array[];
  /** Present iff header.hasOptimizer: OPTIMIZER_TENSOR_GROUPS[header.optimizer] groups, one tensor per entry of header.tensors. */
  readonly optimizerGroups?: readonly Float64Array[][];
}

/** The public summary of a checkpoint, enough to build a matching model before loading it. */
export interface StateInfo {
  readonly modelConfig: ModelConfig;
  readonly baseSeed: bigint;
  readonly lora: ResolvedLoraSettings;
  readonly optimizer: OptimizerFamily;
  readonly step: number;
  readonly hasOptimizer: boolean;
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function encodeState(contents: StateContents): Uint8Array {
  const { header } = contents;
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const groups = [contents.values];
  if (header.hasOptimizer) {
    const optimizerGroups = contents.optimizerGroups ?? [];
    if (optimizerGroups.length !== OPTIMIZER_TENSOR_GROUPS[header.optimizer])
      throw new Error("internal: optimizer state does not match its family");
    groups.push(...optimizerGroups);
  }
  const payloadStart = align8(PREAMBLE_BYTES + headerBytes.length);
  let floats = 0;
  for (const group of groups) for (const tensor of group) floats += tensor.length;
  const bytes = new Uint8Array(payloadStart + floats * 8);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, headerBytes.length, true);
  bytes.set(headerBytes, PREAMBLE_BYTES);
  // DataView with an explicit byte order: the file reads the same on any platform.
  let position = payloadStart;
  for (const group of groups) {
    for (const tensor of group) {
      for (let i = 0; i < tensor.length; i++) {
        view.setFloat64(position, tensor[i], true);
        position += 8;
      }
    }
  }
  return bytes;
}

function corrupt(reason: string): EngineError {
  return new EngineError(`invalid model state: ${reason}`);
}

function parseHeader(bytes: Uint8Array): { header: StateHeader; payloadStart: number } {
  if (bytes.length < PREAMBLE_BYTES || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    throw corrupt("not a tinker-ts LoRA state (bad magic bytes)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version < 1 || version > FORMAT_VERSION) throw corrupt(`unsupported format version ${version}`);
  const headerLength = view.getUint32(8, true);
  if (PREAMBLE_BYTES + headerLength > bytes.length) throw corrupt("truncated header");
  let header: StateHeader;
  try {
    header = JSON.parse(
      new TextDecoder().decode(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)),
    );
  } catch {
    throw corrupt("header is not valid JSON");
  }
  if (
    typeof header !== "object" ||
    header === null ||
    typeof header.modelConfig !== "object" ||
    typeof header.lora !== "object" ||
    !Array.isArray(header.tensors) ||
    !Number.isInteger(header.step) ||
    typeof header.hasOptimizer !== "boolean" ||
    typeof header.baseSeed !== "string" ||
    typeof header.lora.seed !== "string"
  ) {
    throw corrupt("header is missing fields");
  }
  if (version < FIRST_VERSION_WITH_OPTIMIZER_FAMILY) header = { ...header, optimizer: "adamw" };
  else if (!isOptimizerFamily(header.optimizer))
    throw corrupt(`unknown optimizer ${JSON.stringify(header.optimizer)}`);
  return { header, payloadStart: align8(PREAMBLE_BYTES + headerLength) };
}

export function decodeState(bytes: Uint8Array): StateContents {
  const { header, payloadStart } = parseHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let floats = 0;
  for (const tensor of header.tensors) floats += tensor.length;
  const groupCount = 1 + (header.hasOptimizer ? OPTIMIZER_TENSOR_GROUPS[header.optimizer] : 0);
  if (bytes.length !== payloadStart + groupCount * floats * 8)
    throw corrupt("payload size does not match header");
  let position = payloadStart;
  const readGroup = () =>
    header.tensors.map(({ length }) => {
      const tensor = new Float64Array(length);
      for (let i = 0; i < length; i++) {
        tensor[i] = view.getFloat64(position, true);
        position += 8;
      }
      return tensor;
    });
  const values = readGroup();
  if (!header.hasOptimizer) return { header, values };
  const optimizerGroups = Array.from({ length: groupCount - 1 }, () => readGroup());
  return { header, values, optimizerGroups };
}

/** Reads a checkpoint's description without decoding its tensors. */
export function inspectState(bytes: Uint8Array): StateInfo {
  const { header } = parseHeader(bytes);
  const parseSeed = (text: string) => {
    try {
      return BigInt(text);
    } catch {
      throw corrupt(`seed "${text}" is not an integer`);
    }
  };
  return {
    modelConfig: Object.freeze({ ...header.modelConfig }),
    baseSeed: parseSeed(header.baseSeed),
    lora: Object.freeze({ ...header.lora, seed: parseSeed(header.lora.seed) }),
    optimizer: header.optimizer,
    step: header.step,
    hasOptimizer: header.hasOptimizer,
  };
}
