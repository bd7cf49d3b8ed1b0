/**
 * LoRA adapters: W_eff = W + (alpha / rank) · B · A, with A [rank, in] random and B [out, rank]
 * zero at initialisation so a fresh adapter leaves the base model unchanged.
 *
 * Why alpha/rank: with Adam every element of B moves by about the learning rate per step, and
 * B·A sums `rank` such moves, so the raw update to W grows with the rank. Dividing by the rank
 * cancels that, making a learning rate tuned at one rank work at another (the convention of the
 * LoRA paper and of Tinker, whose recommended learning rates do not depend on the rank).
 *
 * The engine merges the adapters into dense weights before each pass: for these small matrices a
 * merge (out·in·rank multiply-adds) is far cheaper than running two extra low-rank products for
 * every token, and it lets the forward pass, backward pass and sampler share one code path.
 */

import type { ModelConfig } from "./config.js";
import { EngineError } from "./errors.js";
import { deriveSeed, Rng, type Seed, toSeed64 } from "./rng.js";
import type { WeightGradSinks } from "./transformer.js";
import {
  ATTENTION_LINEARS,
  type BlockLinearName,
  blockLinearShape,
  type LayerWeights,
  MLP_LINEARS,
  type ModelWeights,
} from "./weights.js";

export interface LoraSettings {
  /** Adapter rank, 1 ≤ rank ≤ MAX_LORA_RANK. */
  rank: number;
  /** Seed of the random A matrices. */
  seed: Seed;
  /** Adapters on the attention projections q, k, v, o of every layer. */
  trainAttn: boolean;
  /** Adapters on the MLP up and down projections of every layer. */
  trainMlp: boolean;
  /** An adapter on the unembedding (output) matrix. */
  trainUnembed: boolean;
  /** LoRA alpha; the adapter output is scaled by alpha / rank. Defaults to DEFAULT_LORA_ALPHA. */
  alpha?: number;
}

/** Tinker's LoRA alpha; with it the quickstart learning rate does not depend on the rank. */
export const DEFAULT_LORA_ALPHA = 32;
export const MAX_LORA_RANK = 256;

export type LoraTarget = BlockLinearName | "unembed";

/** One trainable tensor together with its gradient accumulator. */
export interface Parameter {
  readonly name: string;
  readonly value: Float64Array;
  readonly grad: Float64Array;
}

export interface LoraAdapter {
  /** e.g. "layers.0.wq" or "unembed". */
  readonly name: string;
  /** Block index, or null for the unembedding. */
  readonly layer: number | null;
  readonly target: LoraTarget;
  readonly outDim: number;
  readonly inDim: number;
  readonly rank: number;
  /** "lora_A" [rank, inDim]. */
  readonly a: Parameter;
  /** "lora_B" [outDim, rank]. */
  readonly b: Parameter;
}

/** Settings after validation and defaulting; what checkpoints record. */
export interface ResolvedLoraSettings {
  readonly rank: number;
  readonly alpha: number;
  readonly seed: bigint;
  readonly trainAttn: boolean;
  readonly trainMlp: boolean;
  readonly trainUnembed: boolean;
}

export function resolveLoraSettings(settings: LoraSettings): ResolvedLoraSettings {
  const { rank } = settings;
  if (!Number.isInteger(rank) || rank < 1 || rank > MAX_LORA_RANK) {
    throw new EngineError(`LoRA rank must be an integer in [1, ${MAX_LORA_RANK}], got ${rank}`);
  }
  const alpha = settings.alpha ?? DEFAULT_LORA_ALPHA;
  if (!Number.isFinite(alpha) || alpha <= 0) {
    throw new EngineError(`LoRA alpha must be a positive number, got ${alpha}`);
  }
  return Object.freeze({
    rank,
    alpha,
    seed: toSeed64(settings.seed),
    trainAttn: Boolean(settings.trainAttn),
    trainMlp: Boolean(settings.trainMlp),
    trainUnembed: Boolean(settings.trainUnembed),
  });
}

function makeAdapter(
  name: string,
  layer: number | null,
  target: LoraTarget,
  outDim: number,
  inDim: number,
  rank: number,
  rng: Rng,
): LoraAdapter {
  // A ~ N(0, 1/in): x·Aᵀ then has unit-scale entries for unit-scale inputs, like a fresh linear layer.
  const aValue = rng.fillNormal(new Float64Array(rank * inDim), 1 / Math.sqrt(inDim));
  return {
    name,
    layer,
    target,
    outDim,
    inDim,
    rank,
    a: { name: `${name}.lora_A`, value: aValue, grad: new Float64Array(rank * inDim) },
    b: { name: `${name}.lora_B`, value: new Float64Array(outDim * rank), grad: new Float64Array(outDim * rank) },
  };
}

/** Creates the adapters selected by `settings`, in a fixed order (the order of checkpoints). */
export function createAdapters(config: ModelConfig, settings: ResolvedLoraSettings): LoraAdapter[] {
  const adapters: LoraAdapter[] = [];
  const targets: BlockLinearName[] = [
    ...(settings.trainAttn ? ATTENTION_LINEARS : []),
    ...(settings.trainMlp ? MLP_LINEARS : []),
  ];
  let streamLabel = 0;
  const rngFor = () => new Rng(deriveSeed(settings.seed, streamLabel++));
  for (let l = 0; l < config.nLayers; l++) {
    for (const target of targets) {
      const [outDim, inDim] = blockLinearShape(config, target);
      adapters.push(makeAdapter(`layers.${l}.${target}`, l, target, outDim, inDim, settings.rank, rngFor()));
    }
  }
  if (settings.trainUnembed) {
    adapters.push(
      makeAdapter("unembed", null, "unembed", config.vocabSize, config.dModel, settings.rank, rngFor()),
    );
  }
  return adapters;
}

/** W += scale · B · A, in place on `w` [outDim, inDim]. */
function addLowRankProduct(adapter: LoraAdapter, scale: number, w: Float64Array): void {
  const { outDim, inDim, rank } = adapter;
  const a = adapter.a.value;
  const b = adapter.b.value;
  for (let j = 0; j < outDim; j++) {
    const wRow = j * inDim;
    for (let r = 0; r < rank; r++) {
      const coefficient = scale * b[j * rank + r];
      if (coefficient === 0) continue;
      const aRow = r * inDim;
      for (let i = 0; i < inDim; i++) w[wRow + i] += coefficient * a[aRow + i];
    }
  }
}

/**
 * Dense weights with every adapter folded in. Matrices without an adapter are shared with the
 * base (never written), so a merge only copies what it changes.
 */
export function mergeAdapters(base: ModelWeights, adapters: readonly LoraAdapter[], scale: number): ModelWeights {
  const layers: LayerWeights[] = base.layers.map((layer) => ({ ...layer }));
  let unembed = base.unembed;
  for (const adapter of adapters) {
    if (adapter.layer === null) {
      unembed = base.unembed.slice();
      addLowRankProduct(adapter, scale, unembed);
    } else {
      const target = adapter.target as BlockLinearName;
      const merged = base.layers[adapter.layer][target].slice();
      addLowRankProduct(adapter, scale, merged);
      layers[adapter.layer][target] = merged;
    }
  }
  return { config: base.config, embedding: base.embedding, layers, unembed };
}

/** Fresh zeroed dense-gradient buffers for exactly the adapted matrices. */
export function createGradSinks(config: ModelConfig, adapters: readonly LoraAdapter[]): WeightGradSinks {
  const layers: Partial<Record<BlockLinearName, Float64Array>>[] = Array.from({ length: config.nLayers }, () => ({}));
  let unembed: Float64Array | null = null;
  for (const adapter of adapters) {
    const buffer = new Float64Array(adapter.outDim * adapter.inDim);
    if (adapter.layer === null) unembed = buffer;
    else layers[adapter.layer][adapter.target as BlockLinearName] = buffer;
  }
  return { layers, unembed };
}

/** The dense-gradient buffer of `adapter` inside `sinks`. */
export function sinkOf(sinks: WeightGradSinks, adapter: LoraAdapter): Float64Array {
  const sink =
    adapter.layer === null ? sinks.unembed : sinks.layers[adapter.layer][adapter.target as BlockLinearName];
  if (!sink) throw new Error(`internal: no gradient sink for ${adapter.name}`);
  return sink;
}

/**
 * Chain rule from the merged weight to the adapter: with W_eff = W + s·B·A and G = ∂L/∂W_eff,
 * ∂L/∂B = s·G·Aᵀ and ∂L/∂A = s·Bᵀ·G. Accumulates (+=) into the adapter's gradients.
 */
export function accumulateAdapterGradients(adapter: LoraAdapter, denseGrad: Float64Array, scale: number): void {
  const { outDim, inDim, rank } = adapter;
  const a = adapter.a.value;
  const b = adapter.b.value;
  const gradA = adapter.a.grad;
  const gradB = adapter.b.grad;
  for (let j = 0; j < outDim; j++) {
    const gRow = j * inDim;
    for (let r = 0; r < rank; r++) {
      const aRow = r * inDim;
      let dotGA = 0;
      for (let i = 0; i < inDim; i++) dotGA += denseGrad[gRow + i] * a[aRow + i];
      gradB[j * rank + r] += scale * dotGA;
      const coefficient = scale * b[j * rank + r];
      if (coefficient === 0) continue;
      for (let i = 0; i < inDim; i++) gradA[aRow + i] += coefficient * denseGrad[gRow + i];
    }
  }
}

/** All trainable tensors in checkpoint order: for each adapter, A then B. */
export function adapterParameters(adapters: readonly LoraAdapter[]): Parameter[] {
  return adapters.flatMap((adapter) => [adapter.a, adapter.b]);
}
