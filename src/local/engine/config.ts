/**
 * Shape of the tiny transformer. The defaults are sized so that a LoRA fine-tune of a dozen short
 * examples runs at interactive speed in plain JavaScript on two CPU cores (see bench/engine.ts).
 */

import { EngineError } from "./errors.js";
import { VOCAB_SIZE } from "./tokenizer.js";

export interface ModelConfig {
  /** Must equal the tokenizer's vocabulary (258 for the byte-level tokenizer). */
  readonly vocabSize: number;
  /** Width of the residual stream. */
  readonly dModel: number;
  readonly nLayers: number;
  /** Attention heads; `dModel / nHeads` must be an even integer (RoPE rotates pairs). */
  readonly nHeads: number;
  /** Hidden width of the MLP. */
  readonly dFF: number;
  /** Longest sequence (prompt + generation) the model accepts. */
  readonly maxSeqLen: number;
  /** RoPE frequency base. */
  readonly ropeBase: number;
}

export const DEFAULT_MODEL_CONFIG: Readonly<ModelConfig> = Object.freeze({
  vocabSize: VOCAB_SIZE,
  dModel: 64,
  nLayers: 2,
  nHeads: 4,
  dFF: 256,
  maxSeqLen: 256,
  ropeBase: 10000,
});

/** Alias of DEFAULT_MODEL_CONFIG in camelCase, the spelling the local backend imports. */
export const defaultModelConfig: Readonly<ModelConfig> = DEFAULT_MODEL_CONFIG;

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new EngineError(`model config: ${name} must be a positive integer, got ${value}`);
  }
}

/** Throws `EngineError` unless `config` describes a buildable model. */
export function validateModelConfig(config: ModelConfig): void {
  requirePositiveInteger("vocabSize", config.vocabSize);
  requirePositiveInteger("dModel", config.dModel);
  requirePositiveInteger("nLayers", config.nLayers);
  requirePositiveInteger("nHeads", config.nHeads);
  requirePositiveInteger("dFF", config.dFF);
  requirePositiveInteger("maxSeqLen", config.maxSeqLen);
  if (config.vocabSize < VOCAB_SIZE) {
    throw new EngineError(
      `model config: vocabSize must be at least ${VOCAB_SIZE} (the tokenizer's vocabulary)`,
    );
  }
  const headDim = config.dModel / config.nHeads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new EngineError(
      `model config: dModel/nHeads must be an even integer for rotary embeddings, got ${config.dModel}/${config.nHeads}`,
    );
  }
  if (!(config.ropeBase > 1)) {
    throw new EngineError(`model config: ropeBase must be > 1, got ${config.ropeBase}`);
  }
}

/** Head dimension `dModel / nHeads`. */
export function headDimOf(config: ModelConfig): number {
  return config.dModel / config.nHeads;
}
