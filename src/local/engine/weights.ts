/**
 * The weight layout of the transformer, shared by the frozen base model, the LoRA-merged
 * training weights and inference snapshots. Every linear map is stored as [out, in] row-major
 * (see linalg.ts).
 */

import type { ModelConfig } from "./config.js";

/** Names of the linear maps inside one transformer block. */
export type BlockLinearName = "wq" | "wk" | "wv" | "wo" | "wUp" | "wDown";

export const ATTENTION_LINEARS: readonly BlockLinearName[] = ["wq", "wk", "wv", "wo"];
export const MLP_LINEARS: readonly BlockLinearName[] = ["wUp", "wDown"];

export type LayerWeights = Record<BlockLinearName, Float64Array>;

export interface ModelWeights {
  readonly config: ModelConfig;
  /** Token embedding, [vocabSize, dModel]. */
  readonly embedding: Float64Array;
  readonly layers: readonly LayerWeights[];
  /** Output projection to logits, [vocabSize, dModel]. Separate from `embedding` (see base-model.ts). */
  readonly unembed: Float64Array;
}

/** [out, in] shape of a block linear map. */
export function blockLinearShape(
  config: ModelConfig,
  name: BlockLinearName,
): [outDim: number, inDim: number] {
  switch (name) {
    case "wq":
    case "wk":
    case "wv":
    case "wo":
      return [config.dModel, config.dModel];
    case "wUp":
      return [config.dFF, config.dModel];
    case "wDown":
      return [config.dModel, config.dFF];
  }
}

/** A deep copy; inference snapshots use it so later training cannot change what they compute. */
export function cloneWeights(weights: ModelWeights): ModelWeights {
  return {
    config: weights.config,
    embedding: weights.embedding.slice(),
    layers: weights.layers.map((layer) => ({
      wq: layer.wq.slice(),
      wk: layer.wk.slice(),
      wv: layer.wv.slice(),
      wo: layer.wo.slice(),
      wUp: layer.wUp.slice(),
      wDown: layer.wDown.slice(),
    })),
    unembed: weights.unembed.slice(),
  };
}
