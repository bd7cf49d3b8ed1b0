/**
 * The frozen base model: a tiny pre-norm decoder-only transformer whose weights are drawn from a
 * seeded PRNG. There is no pretraining — the base model is random but fixed, and all learning
 * happens in LoRA adapters, exactly as in a Tinker fine-tune where the base is never updated.
 *
 * Architecture (Llama-shaped, to mirror the models Tinker serves):
 *  - token embedding → nLayers × [RMSNorm → causal multi-head attention with rotary positions
 *    (RoPE) → residual; RMSNorm → GELU MLP → residual] → RMSNorm → unembedding → logits.
 *  - RMSNorm: cheaper than LayerNorm with a simpler backward pass, and the gain is omitted
 *    because a frozen gain of 1 is a no-op.
 *  - RoPE instead of absolute positions: relative offsets are what a model needs to continue an
 *    answer ("which byte came right before me?"), and rotary keys express them without putting
 *    a position signal into the residual stream that the adapters would have to work around.
 *  - GELU (tanh form) instead of ReLU: smooth, so central finite differences match analytic
 *    gradients to ~1e-9 instead of failing at kinks.
 *  - Untied unembedding: LoRA on the unembedding (train_unembed) must not move the input
 *    embedding, and with tied weights it would.
 */

import { DEFAULT_MODEL_CONFIG, type ModelConfig, validateModelConfig } from "./config.js";
import { deriveSeed, Rng, type Seed, toSeed64 } from "./rng.js";
import { blockLinearShape, type LayerWeights, type ModelWeights } from "./weights.js";

export interface BaseModel {
  readonly config: ModelConfig;
  /** The seed the weights were generated from (reduced to 64 bits); identifies the base model. */
  readonly seed: bigint;
  readonly weights: ModelWeights;
}

/**
 * Standard deviations of the random base weights. Chosen so that every residual-stream
 * contribution starts at unit scale (1/√fan_in), with the two residual-writing projections
 * shrunk by 1/√(2·nLayers) as in GPT-2 so the stream does not grow with depth, and logits of
 * standard deviation ≈1 so the untrained model is uncertain but not uniform.
 */
function initStd(config: ModelConfig, name: keyof LayerWeights): number {
  const residualScale = 1 / Math.sqrt(2 * config.nLayers);
  switch (name) {
    case "wq":
    case "wk":
    case "wv":
    case "wUp":
      return 1 / Math.sqrt(config.dModel);
    case "wo":
      return residualScale / Math.sqrt(config.dModel);
    case "wDown":
      return residualScale / Math.sqrt(config.dFF);
  }
}

const LINEAR_ORDER: readonly (keyof LayerWeights)[] = ["wq", "wk", "wv", "wo", "wUp", "wDown"];

/** Builds the base model for `seed`. Same config + seed ⇒ bit-identical weights. */
export function createBaseModel(config: ModelConfig = DEFAULT_MODEL_CONFIG, seed: Seed = 0): BaseModel {
  validateModelConfig(config);
  const frozenConfig: ModelConfig = Object.freeze({ ...config });
  const seed64 = toSeed64(seed);
  const { vocabSize, dModel } = frozenConfig;
  // One independent stream per tensor, so changing e.g. nLayers leaves the embedding unchanged.
  let streamLabel = 0;
  const draw = (length: number, std: number) =>
    new Rng(deriveSeed(seed64, streamLabel++)).fillNormal(new Float64Array(length), std);

  const embedding = draw(vocabSize * dModel, 1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < frozenConfig.nLayers; l++) {
    const layer = {} as LayerWeights;
    for (const name of LINEAR_ORDER) {
      const [outDim, inDim] = blockLinearShape(frozenConfig, name);
      layer[name] = draw(outDim * inDim, initStd(frozenConfig, name));
    }
    layers.push(layer);
  }
  const unembed = draw(vocabSize * dModel, 1 / Math.sqrt(dModel));
  return Object.freeze({
    config: frozenConfig,
    seed: seed64,
    weights: Object.freeze({ config: frozenConfig, embedding, layers, unembed }),
  });
}
