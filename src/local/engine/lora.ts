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
import { matmulNT, transpose } from "./linalg.js";
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

/**
 * One trainable tensor together with its gradient accumulator. Every trainable tensor of the
 * engine is a row-major matrix (LoRA A or B), so it carries its shape; matrix optimizers such as
 * Dimuon need it.
 */
export interface Parameter {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
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
    a: {
      name: `${name}.lora_A`,
      rows: rank,
      cols: inDim,
      value: aValue,
      grad: new Float64Array(rank * inDim),
    },
    b: {
      name: `${name}.lora_B`,
      rows: outDim,
      cols: rank,
      value: new Float64Array(outDim * rank),
      grad: new Float64Array(outDim * rank),
    },
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

/** W + scale · B · A as a new [outDim, inDim] matrix. */
function withLowRankProduct(adapter: LoraAdapter, scale: number, w: Float64Array): Float64Array {
  const { outDim, inDim, rank } = adapter;
  // (B·A)[j, i] = Σ_r B[j, r]·Aᵀ[i, r]: the row-times-row form of the shared matmul kernel.
  const product = new Float64Array(outDim * inDim);
  matmulNT(adapter.b.value, outDim, rank, transpose(adapter.a.value, rank, inDim), inDim, product, false);
  for (let i = 0; i < product.length; i++) product[i] = w[i] + scale * product[i];
  return product;
}

/**
 * Dense weights with every adapter folded in. Matrices without an adapter are shared with the
 * base (never written), so a merge only copies what it changes.
 */
export function mergeAdapters(
  base: ModelWeights,
  adapters: readonly LoraAdapter[],
  scale: number,
): ModelWeights {
  const layers: LayerWeights[] = base.layers.map((layer) => ({ ...layer }));
  let unembed = base.unembed;
  for (const adapter of adapters) {
    if (adapter.layer === null) {
      unembed = withLowRankProduct(adapter, scale, base.unembed);
    } else {
      const target = adapter.target as BlockLinearName;
      layers[adapter.layer][target] = withLowRankProduct(adapter, scale, base.layers[adapter.layer][target]);
    }
  }
  return { config: base.config, embedding: base.embedding, layers, unembed };
}

/** Fresh zeroed dense-gradient buffers for exactly the adapted matrices. */
export function createGradSinks(config: ModelConfig, adapters: readonly LoraAdapter[]): WeightGradSinks {
  const layers: Partial<Record<BlockLinearName, Float64Array>>[] = Array.from(
    { length: config.nLayers },
    () => ({}),
  );
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
export function accumulateAdapterGradients(
  adapter: LoraAdapter,
  denseGrad: Float64Array,
  scale: number,
): void {
  const { outDim, inDim, rank } = adapter;
  // ∂L/∂B [out, rank] = G [out, in] · Aᵀ: rows of G against rows of A.
  const gradB = new Float64Array(outDim * rank);
  matmulNT(denseGrad, outDim, inDim, adapter.a.value, rank, gradB, false);
  // ∂L/∂A [rank, in] = Bᵀ · G: rows of Bᵀ against rows of Gᵀ.
  const gradA = new Float64Array(rank * inDim);
  matmulNT(
    transpose(adapter.b.value, outDim, rank),
    rank,
    outDim,
    transpose(denseGrad, outDim, inDim),
    inDim,
    gradA,
    false,
  );
  for (let i = 0; i < gradB.length; i++) adapter.b.grad[i] += scale * gradB[i];
  for (let i = 0; i < gradA.length; i++) adapter.a.grad[i] += scale * gradA[i];
}

/** All trainable tensors in checkpoint order: for each adapter, A then B. */
export function adapterParameters(adapters: readonly LoraAdapter[]): Parameter[] {
  return adapters.flatMap((adapter) => [adapter.a, adapter.b]);
}
