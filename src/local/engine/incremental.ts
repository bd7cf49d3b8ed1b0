/**
 * Inference-only forward pass with a key/value cache: the prompt is processed once ("prefill")
 * and each generated token then costs one row of work instead of re-running the whole sequence.
 * It computes exactly the same function as transformer.ts's training pass (tests check this),
 * just without keeping activations for a backward pass.
 */

import { headDimOf, type ModelConfig } from "./config.js";
import { geluForward, matmulTransposed, rmsNormForward } from "./linalg.js";
import { applyRope, ropeTableFor } from "./rope.js";
import type { ModelWeights } from "./weights.js";

/** Rotated keys and values of every processed position, per layer, [capacity, dModel] each. */
export class KvCache {
  readonly keys: Float64Array[];
  readonly values: Float64Array[];
  /** Number of positions already processed. */
  length = 0;

  constructor(
    readonly config: ModelConfig,
    readonly capacity: number,
  ) {
    const size = capacity * config.dModel;
    this.keys = Array.from({ length: config.nLayers }, () => new Float64Array(size));
    this.values = Array.from({ length: config.nLayers }, () => new Float64Array(size));
  }

  /** An independent copy, so several samples can continue from one shared prefill. */
  clone(): KvCache {
    const copy = new KvCache(this.config, this.capacity);
    const used = this.length * this.config.dModel;
    for (let l = 0; l < this.keys.length; l++) {
      copy.keys[l].set(this.keys[l].subarray(0, used));
      copy.values[l].set(this.values[l].subarray(0, used));
    }
    copy.length = this.length;
    return copy;
  }
}

/**
 * Appends `tokens` to the cached sequence and returns logits, [rows, vocabSize]: one row per new
 * token when `allPositions`, otherwise only the last (all a sampler needs).
 */
export function extendSequence(
  weights: ModelWeights,
  cache: KvCache,
  tokens: ArrayLike<number>,
  allPositions: boolean,
): Float64Array {
  const { config } = weights;
  const { dModel: d, dFF, vocabSize: V } = config;
  const headDim = headDimOf(config);
  const nHeads = config.nHeads;
  const rope = ropeTableFor(config);
  const n = tokens.length;
  const start = cache.length;
  if (start + n > cache.capacity) {
    throw new RangeError(`KV cache overflow: ${start} + ${n} > ${cache.capacity}`);
  }
  const scale = 1 / Math.sqrt(headDim);

  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) x.set(weights.embedding.subarray(tokens[i] * d, (tokens[i] + 1) * d), i * d);

  const normed = new Float64Array(n * d);
  const invRms = new Float64Array(n);
  const q = new Float64Array(n * d);
  const newKeys = new Float64Array(n * d);
  const newValues = new Float64Array(n * d);
  const mix = new Float64Array(n * d);
  const projected = new Float64Array(n * d);
  const hidden = new Float64Array(n * dFF);
  const scores = new Float64Array(start + n);

  for (let l = 0; l < weights.layers.length; l++) {
    const layer = weights.layers[l];
    const keys = cache.keys[l];
    const values = cache.values[l];
    rmsNormForward(x, n, d, normed, invRms);
    matmulTransposed(normed, n, d, layer.wq, d, q);
    matmulTransposed(normed, n, d, layer.wk, d, newKeys);
    matmulTransposed(normed, n, d, layer.wv, d, newValues);
    for (let i = 0; i < n; i++) {
      applyRope(rope, q, i * d, d, start + i, false);
      applyRope(rope, newKeys, i * d, d, start + i, false);
    }
    keys.set(newKeys, start * d);
    values.set(newValues, start * d);

    for (let i = 0; i < n; i++) {
      const visible = start + i + 1;
      for (let h = 0; h < nHeads; h++) {
        const headOffset = h * headDim;
        const qRow = i * d + headOffset;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < visible; j++) {
          const kRow = j * d + headOffset;
          let score = 0;
          for (let c = 0; c < headDim; c++) score += q[qRow + c] * keys[kRow + c];
          score *= scale;
          scores[j] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let j = 0; j < visible; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        const inv = 1 / sum;
        for (let j = 0; j < visible; j++) scores[j] *= inv;
        // Same operation order as the training pass (normalise, then a left-to-right weighted
        // sum), so both paths agree bit for bit.
        const outRow = i * d + headOffset;
        for (let c = 0; c < headDim; c++) {
          let acc = 0;
          for (let j = 0, vIndex = headOffset + c; j < visible; j++, vIndex += d)
            acc += scores[j] * values[vIndex];
          mix[outRow + c] = acc;
        }
      }
    }
    matmulTransposed(mix, n, d, layer.wo, d, projected);
    for (let i = 0; i < x.length; i++) x[i] += projected[i];

    rmsNormForward(x, n, d, normed, invRms);
    matmulTransposed(normed, n, d, layer.wUp, dFF, hidden);
    geluForward(hidden, hidden, null);
    matmulTransposed(hidden, n, dFF, layer.wDown, d, projected);
    for (let i = 0; i < x.length; i++) x[i] += projected[i];
  }
  cache.length = start + n;

  const firstRow = allPositions ? 0 : n - 1;
  const rows = n - firstRow;
  const finalRows = x.subarray(firstRow * d);
  const finalNormed = new Float64Array(rows * d);
  rmsNormForward(finalRows, rows, d, finalNormed, new Float64Array(rows));
  const logits = new Float64Array(rows * V);
  matmulTransposed(finalNormed, rows, d, weights.unembed, V, logits);
  return logits;
}
