/**
 * Forward and backward passes of the transformer for training.
 *
 * A batch of sequences is packed row-wise into [totalTokens, width] matrices so that every linear
 * map runs as one large kernel call; only attention, which must not mix sequences, loops per
 * sequence. The forward pass keeps the activations the backward pass needs (a "trace").
 *
 * The backward pass produces gradients with respect to the (LoRA-merged) weight matrices that
 * the caller asks for; lora.ts turns those into adapter gradients. Base weights are frozen, so
 * gradients are only computed where an adapter exists, and the pass stops at the lowest layer
 * that has one.
 */

import { headDimOf } from "./config.js";
import {
  accumulateMatmul,
  accumulateOuter,
  geluForward,
  matmulTransposed,
  rmsNormBackward,
  rmsNormForward,
} from "./linalg.js";
import { applyRope, type RopeTable, ropeTableFor } from "./rope.js";
import type { BlockLinearName, ModelWeights } from "./weights.js";

/** What the backward pass needs from one block (the residual stream itself is not needed). */
interface LayerTrace {
  /** RMSNorm of the stream entering the block and the per-row inverse RMS. */
  readonly attnNormed: Float64Array;
  readonly attnInvRms: Float64Array;
  /** Queries and keys after the rotary embedding, [T, d]. */
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  /** Attention probabilities; for sequence s and head h an n×n block at probOffsets[s] + h·n². */
  readonly probs: Float64Array;
  /** Attention output before the output projection, [T, d]. */
  readonly attnMix: Float64Array;
  /** RMSNorm of the stream after the attention sub-block. */
  readonly mlpNormed: Float64Array;
  readonly mlpInvRms: Float64Array;
  /** MLP activation gelu(wUp·mlpNormed) and its derivative, [T, dFF]. */
  readonly act: Float64Array;
  readonly actDerivative: Float64Array;
}

/** Activations of one training forward pass, consumed by `backwardPass`. */
export interface ForwardTrace {
  readonly totalTokens: number;
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
  readonly probOffsets: readonly number[];
  readonly layers: readonly LayerTrace[];
  readonly finalNormed: Float64Array;
  readonly finalInvRms: Float64Array;
  /** Softmax over the vocabulary at every position, [T, V]. */
  readonly vocabProbs: Float64Array;
  readonly targets: Int32Array;
}

export interface ForwardResult {
  /** log p(target_i | tokens[0..i]) per sequence. */
  readonly logprobs: Float64Array[];
  /** Activations for `backwardPass`; null when the pass ran without `keepTrace`. */
  readonly trace: ForwardTrace | null;
}

/** Where the backward pass accumulates weight gradients; `null`/absent = not needed (frozen, no adapter). */
export interface WeightGradSinks {
  readonly layers: readonly Partial<Record<BlockLinearName, Float64Array>>[];
  readonly unembed: Float64Array | null;
}

/**
 * Causal self-attention of one sequence (rows [offset, offset + n) of q/k/v), all heads.
 * Writes the probabilities to `probs` and the mixed values to `out`.
 */
function causalAttentionForward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  offset: number,
  n: number,
  dModel: number,
  headDim: number,
  probs: Float64Array,
  probOffset: number,
  out: Float64Array,
): void {
  const scale = 1 / Math.sqrt(headDim);
  const nHeads = dModel / headDim;
  for (let h = 0; h < nHeads; h++) {
    const headOffset = h * headDim;
    const block = probOffset + h * n * n;
    const firstRow = offset * dModel + headOffset;
    for (let i = 0; i < n; i++) {
      const qRow = firstRow + i * dModel;
      const pRow = block + i * n;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0, kRow = firstRow; j <= i; j++, kRow += dModel) {
        let score = 0;
        for (let c = 0; c < headDim; c++) score += q[qRow + c] * k[kRow + c];
        score *= scale;
        probs[pRow + j] = score;
        if (score > max) max = score;
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) {
        const e = Math.exp(probs[pRow + j] - max);
        probs[pRow + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j <= i; j++) probs[pRow + j] *= inv;
      // One output feature at a time, summing over keys in a register (a strided walk down v)
      // instead of read-modify-writing the output row once per key.
      for (let c = 0; c < headDim; c++) {
        let acc = 0;
        for (let j = 0, vIndex = firstRow + c; j <= i; j++, vIndex += dModel)
          acc += probs[pRow + j] * v[vIndex];
        out[qRow + c] = acc;
      }
    }
  }
}

/**
 * Backward of `causalAttentionForward`: writes dq, dk (w.r.t. the rotated q, k) and dv for the
 * sequence's rows. `dScores` is scratch of at least n² entries.
 */
function causalAttentionBackward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  probs: Float64Array,
  probOffset: number,
  dOut: Float64Array,
  offset: number,
  n: number,
  dModel: number,
  headDim: number,
  dq: Float64Array,
  dk: Float64Array,
  dv: Float64Array,
  dScores: Float64Array,
): void {
  const scale = 1 / Math.sqrt(headDim);
  const nHeads = dModel / headDim;
  for (let h = 0; h < nHeads; h++) {
    const block = probOffset + h * n * n;
    const firstRow = offset * dModel + h * headDim;
    // dP_ij = dOut_i · v_j, then through the softmax: dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'),
    // pre-multiplied by the score scale.
    for (let i = 0; i < n; i++) {
      const iRow = firstRow + i * dModel;
      const pRow = block + i * n;
      let weightedSum = 0;
      for (let j = 0, jRow = firstRow; j <= i; j++, jRow += dModel) {
        let dp = 0;
        for (let c = 0; c < headDim; c++) dp += dOut[iRow + c] * v[jRow + c];
        dScores[i * n + j] = dp;
        weightedSum += probs[pRow + j] * dp;
      }
      for (let j = 0; j <= i; j++) {
        dScores[i * n + j] = probs[pRow + j] * (dScores[i * n + j] - weightedSum) * scale;
      }
    }
    // dq_i = Σ_{j≤i} dS_ij k_j
    for (let i = 0; i < n; i++) {
      const iRow = firstRow + i * dModel;
      for (let c = 0; c < headDim; c++) {
        let acc = 0;
        for (let j = 0, kIndex = firstRow + c; j <= i; j++, kIndex += dModel)
          acc += dScores[i * n + j] * k[kIndex];
        dq[iRow + c] += acc;
      }
    }
    // dk_j = Σ_{i≥j} dS_ij q_i and dv_j = Σ_{i≥j} P_ij dOut_i
    for (let j = 0; j < n; j++) {
      const jRow = firstRow + j * dModel;
      for (let c = 0; c < headDim; c++) {
        let accK = 0;
        let accV = 0;
        for (let i = j, iIndex = firstRow + j * dModel + c; i < n; i++, iIndex += dModel) {
          accK += dScores[i * n + j] * q[iIndex];
          accV += probs[block + i * n + j] * dOut[iIndex];
        }
        dk[jRow + c] += accK;
        dv[jRow + c] += accV;
      }
    }
  }
}

function applyRopeToRows(
  table: RopeTable,
  rows: Float64Array,
  offsets: readonly number[],
  lengths: readonly number[],
  dModel: number,
  inverse: boolean,
): void {
  for (let s = 0; s < offsets.length; s++) {
    for (let i = 0; i < lengths[s]; i++)
      applyRope(table, rows, (offsets[s] + i) * dModel, dModel, i, inverse);
  }
}

/**
 * Training forward pass over a batch. `sequences[s]` are the input tokens and `targets[s]` the
 * token each position must predict (same length). Token validity is the caller's job.
 * Without `keepTrace` (forward-only requests) the work that only serves the backward pass —
 * activation derivatives and vocabulary probabilities — is skipped.
 */
export function forwardPass(
  weights: ModelWeights,
  sequences: readonly ArrayLike<number>[],
  targets: readonly ArrayLike<number>[],
  keepTrace: boolean,
): ForwardResult {
  const { config } = weights;
  const { dModel: d, dFF, vocabSize: V } = config;
  const headDim = headDimOf(config);
  const rope = ropeTableFor(config);

  const offsets: number[] = [];
  const lengths: number[] = [];
  const probOffsets: number[] = [];
  let T = 0;
  let probTotal = 0;
  for (const sequence of sequences) {
    offsets.push(T);
    lengths.push(sequence.length);
    probOffsets.push(probTotal);
    T += sequence.length;
    probTotal += config.nHeads * sequence.length * sequence.length;
  }

  const targetIds = new Int32Array(T);
  // The residual stream, updated in place block by block.
  const stream = new Float64Array(T * d);
  for (let s = 0; s < sequences.length; s++) {
    for (let i = 0; i < lengths[s]; i++) {
      const row = offsets[s] + i;
      stream.set(weights.embedding.subarray(sequences[s][i] * d, (sequences[s][i] + 1) * d), row * d);
      targetIds[row] = targets[s][i];
    }
  }

  const projected = new Float64Array(T * d);
  const layerTraces: LayerTrace[] = [];
  for (const layer of weights.layers) {
    const attnNormed = new Float64Array(T * d);
    const attnInvRms = new Float64Array(T);
    rmsNormForward(stream, T, d, attnNormed, attnInvRms);
    const q = new Float64Array(T * d);
    const k = new Float64Array(T * d);
    const v = new Float64Array(T * d);
    matmulTransposed(attnNormed, T, d, layer.wq, d, q);
    matmulTransposed(attnNormed, T, d, layer.wk, d, k);
    matmulTransposed(attnNormed, T, d, layer.wv, d, v);
    applyRopeToRows(rope, q, offsets, lengths, d, false);
    applyRopeToRows(rope, k, offsets, lengths, d, false);
    const probs = new Float64Array(probTotal);
    const attnMix = new Float64Array(T * d);
    for (let s = 0; s < sequences.length; s++) {
      causalAttentionForward(q, k, v, offsets[s], lengths[s], d, headDim, probs, probOffsets[s], attnMix);
    }
    matmulTransposed(attnMix, T, d, layer.wo, d, projected);
    for (let i = 0; i < stream.length; i++) stream[i] += projected[i];

    const mlpNormed = new Float64Array(T * d);
    const mlpInvRms = new Float64Array(T);
    rmsNormForward(stream, T, d, mlpNormed, mlpInvRms);
    // Pre-activation, then GELU in place: the backward pass only needs the activation and its derivative.
    const act = new Float64Array(T * dFF);
    matmulTransposed(mlpNormed, T, d, layer.wUp, dFF, act);
    const actDerivative = new Float64Array(keepTrace ? T * dFF : 0);
    geluForward(act, act, keepTrace ? actDerivative : null);
    matmulTransposed(act, T, dFF, layer.wDown, d, projected);
    for (let i = 0; i < stream.length; i++) stream[i] += projected[i];

    layerTraces.push({
      attnNormed,
      attnInvRms,
      q,
      k,
      v,
      probs,
      attnMix,
      mlpNormed,
      mlpInvRms,
      act,
      actDerivative,
    });
  }

  const finalNormed = new Float64Array(T * d);
  const finalInvRms = new Float64Array(T);
  rmsNormForward(stream, T, d, finalNormed, finalInvRms);
  const vocabProbs = new Float64Array(T * V);
  matmulTransposed(finalNormed, T, d, weights.unembed, V, vocabProbs);

  const logprobs: Float64Array[] = [];
  for (let s = 0; s < sequences.length; s++) {
    const sequenceLogprobs = new Float64Array(lengths[s]);
    for (let i = 0; i < lengths[s]; i++) {
      const start = (offsets[s] + i) * V;
      const targetLogit = vocabProbs[start + targetIds[offsets[s] + i]];
      // In place: logits → exp(logit − max) → softmax probabilities (for the backward pass), with a
      // single exp per entry. log p(target) = logit − logsumexp, computed exactly as in
      // linalg.logSoftmax so sampler and trainer report identical logprobs.
      let max = Number.NEGATIVE_INFINITY;
      for (let j = start; j < start + V; j++) if (vocabProbs[j] > max) max = vocabProbs[j];
      let sum = 0;
      for (let j = start; j < start + V; j++) {
        const e = Math.exp(vocabProbs[j] - max);
        vocabProbs[j] = e;
        sum += e;
      }
      sequenceLogprobs[i] = targetLogit - (max + Math.log(sum));
      if (keepTrace) {
        const inv = 1 / sum;
        for (let j = start; j < start + V; j++) vocabProbs[j] *= inv;
      }
    }
    logprobs.push(sequenceLogprobs);
  }

  if (!keepTrace) return { logprobs, trace: null };
  return {
    logprobs,
    trace: {
      totalTokens: T,
      offsets,
      lengths,
      probOffsets,
      layers: layerTraces,
      finalNormed,
      finalInvRms,
      vocabProbs,
      targets: targetIds,
    },
  };
}

function lowestLayerWithSinks(sinks: WeightGradSinks): number {
  for (let l = 0; l < sinks.layers.length; l++) {
    if (Object.values(sinks.layers[l]).some((sink) => sink !== undefined)) return l;
  }
  return sinks.layers.length;
}

/**
 * Backward pass. `dLogprobs[s][i]` is ∂loss/∂logprob of position i of sequence s. Accumulates
 * (+=) the gradient of each weight that has a sink.
 */
export function backwardPass(
  weights: ModelWeights,
  trace: ForwardTrace,
  dLogprobs: readonly ArrayLike<number>[],
  sinks: WeightGradSinks,
): void {
  const { config } = weights;
  const { dModel: d, dFF, vocabSize: V } = config;
  const headDim = headDimOf(config);
  const rope = ropeTableFor(config);
  const { totalTokens: T, offsets, lengths, probOffsets } = trace;
  const lowestLayer = lowestLayerWithSinks(sinks);
  const needStreamGrad = lowestLayer < weights.layers.length;
  if (!needStreamGrad && sinks.unembed === null) return;

  // Logits: ∂logprob_target/∂logit_v = 1[v = target] − p_v. Positions with a zero loss gradient
  // (e.g. prompt tokens of weight 0) are skipped by compacting the active rows, which removes
  // most of the unembedding cost of a typical supervised batch.
  const activeRows: number[] = [];
  const activeGrads: number[] = [];
  for (let s = 0; s < offsets.length; s++) {
    for (let i = 0; i < lengths[s]; i++) {
      const g = dLogprobs[s][i];
      if (g !== 0) {
        activeRows.push(offsets[s] + i);
        activeGrads.push(g);
      }
    }
  }
  const nActive = activeRows.length;
  if (nActive === 0) return; // the loss does not depend on the weights (e.g. all weights 0)
  const dLogits = new Float64Array(nActive * V);
  const activeNormed = new Float64Array(nActive * d);
  for (let a = 0; a < nActive; a++) {
    const row = activeRows[a];
    const g = activeGrads[a];
    for (let v = 0; v < V; v++) dLogits[a * V + v] = -g * trace.vocabProbs[row * V + v];
    dLogits[a * V + trace.targets[row]] += g;
    activeNormed.set(trace.finalNormed.subarray(row * d, (row + 1) * d), a * d);
  }
  if (sinks.unembed !== null) accumulateOuter(dLogits, activeNormed, nActive, V, d, sinks.unembed);
  if (!needStreamGrad) return;

  const dActiveNormed = new Float64Array(nActive * d);
  accumulateMatmul(dLogits, nActive, V, weights.unembed, d, dActiveNormed);
  const dFinalNormed = new Float64Array(T * d);
  for (let a = 0; a < nActive; a++) {
    dFinalNormed.set(dActiveNormed.subarray(a * d, (a + 1) * d), activeRows[a] * d);
  }
  // dStream holds ∂loss/∂(residual stream) at the current depth.
  const dStream = new Float64Array(T * d);
  rmsNormBackward(dFinalNormed, trace.finalNormed, trace.finalInvRms, T, d, dStream);

  let maxLength = 0;
  for (const n of lengths) maxLength = Math.max(maxLength, n);
  const dScores = new Float64Array(maxLength * maxLength);

  for (let l = weights.layers.length - 1; l >= lowestLayer; l--) {
    const layer = weights.layers[l];
    const layerTrace = trace.layers[l];
    const layerSinks = sinks.layers[l];
    const hasAttentionSinks =
      layerSinks.wq !== undefined ||
      layerSinks.wk !== undefined ||
      layerSinks.wv !== undefined ||
      layerSinks.wo !== undefined;
    // Below the lowest adapter nothing needs gradients, so the lowest block stops as early as possible.
    const needGradBelowMlp = l > lowestLayer || hasAttentionSinks;
    const needGradBelowAttention = l > lowestLayer;

    // MLP sub-block: stream += wDown·gelu(wUp·norm(stream)).
    if (layerSinks.wDown) accumulateOuter(dStream, layerTrace.act, T, d, dFF, layerSinks.wDown);
    if (layerSinks.wUp || needGradBelowMlp) {
      const dPreAct = new Float64Array(T * dFF);
      accumulateMatmul(dStream, T, d, layer.wDown, dFF, dPreAct);
      for (let i = 0; i < dPreAct.length; i++) dPreAct[i] *= layerTrace.actDerivative[i];
      if (layerSinks.wUp) accumulateOuter(dPreAct, layerTrace.mlpNormed, T, dFF, d, layerSinks.wUp);
      if (needGradBelowMlp) {
        const dMlpNormed = new Float64Array(T * d);
        accumulateMatmul(dPreAct, T, dFF, layer.wUp, d, dMlpNormed);
        // The residual connection passes dStream through unchanged; the norm branch adds to it.
        rmsNormBackward(dMlpNormed, layerTrace.mlpNormed, layerTrace.mlpInvRms, T, d, dStream);
      }
    }
    if (!needGradBelowMlp) break;

    // Attention sub-block: stream += wo·attention(rope(wq·a), rope(wk·a), wv·a) with a = norm(stream).
    if (layerSinks.wo) accumulateOuter(dStream, layerTrace.attnMix, T, d, d, layerSinks.wo);
    const dAttnMix = new Float64Array(T * d);
    accumulateMatmul(dStream, T, d, layer.wo, d, dAttnMix);
    const dq = new Float64Array(T * d);
    const dk = new Float64Array(T * d);
    const dv = new Float64Array(T * d);
    for (let s = 0; s < offsets.length; s++) {
      causalAttentionBackward(
        layerTrace.q,
        layerTrace.k,
        layerTrace.v,
        layerTrace.probs,
        probOffsets[s],
        dAttnMix,
        offsets[s],
        lengths[s],
        d,
        headDim,
        dq,
        dk,
        dv,
        dScores,
      );
    }
    applyRopeToRows(rope, dq, offsets, lengths, d, true);
    applyRopeToRows(rope, dk, offsets, lengths, d, true);
    if (layerSinks.wq) accumulateOuter(dq, layerTrace.attnNormed, T, d, d, layerSinks.wq);
    if (layerSinks.wk) accumulateOuter(dk, layerTrace.attnNormed, T, d, d, layerSinks.wk);
    if (layerSinks.wv) accumulateOuter(dv, layerTrace.attnNormed, T, d, d, layerSinks.wv);
    if (!needGradBelowAttention) break;
    const dAttnNormed = new Float64Array(T * d);
    accumulateMatmul(dq, T, d, layer.wq, d, dAttnNormed);
    accumulateMatmul(dk, T, d, layer.wk, d, dAttnNormed);
    accumulateMatmul(dv, T, d, layer.wv, d, dAttnNormed);
    // Residual path again: the norm branch adds to the gradient that passes straight through.
    rmsNormBackward(dAttnNormed, layerTrace.attnNormed, layerTrace.attnInvRms, T, d, dStream);
  }
}
