/**
 * Dense kernels on row-major Float64Array matrices. A weight matrix W of shape [out, in] is
 * stored row by row, so `y = W·x` is a dot product of contiguous rows — the access pattern the
 * JIT turns into the tightest loop. Every kernel has a fixed summation order, which is what makes
 * the engine bit-for-bit deterministic.
 */

/** out[rows, outDim] = x[rows, inDim] · Wᵀ, with W stored as [outDim, inDim]. Overwrites `out`. */
export function matmulTransposed(
  x: Float64Array,
  rows: number,
  inDim: number,
  w: Float64Array,
  outDim: number,
  out: Float64Array,
): void {
  // Four output features per pass: each loaded x element feeds four multiply-adds, which roughly
  // halves the memory traffic of the naive loop in V8.
  const blockedOut = outDim - (outDim % 4);
  for (let t = 0; t < rows; t++) {
    const xOffset = t * inDim;
    const outOffset = t * outDim;
    let j = 0;
    for (; j < blockedOut; j += 4) {
      const w0 = j * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const xi = x[xOffset + i];
        s0 += xi * w[w0 + i];
        s1 += xi * w[w1 + i];
        s2 += xi * w[w2 + i];
        s3 += xi * w[w3 + i];
      }
      out[outOffset + j] = s0;
      out[outOffset + j + 1] = s1;
      out[outOffset + j + 2] = s2;
      out[outOffset + j + 3] = s3;
    }
    for (; j < outDim; j++) {
      const wOffset = j * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[xOffset + i] * w[wOffset + i];
      out[outOffset + j] = s;
    }
  }
}

/** dx[rows, inDim] += dy[rows, outDim] · W, with W stored as [outDim, inDim] (the input gradient of y = x·Wᵀ). */
export function accumulateMatmul(
  dy: Float64Array,
  rows: number,
  outDim: number,
  w: Float64Array,
  inDim: number,
  dx: Float64Array,
): void {
  const blockedOut = outDim - (outDim % 4);
  for (let t = 0; t < rows; t++) {
    const dyOffset = t * outDim;
    const dxOffset = t * inDim;
    let j = 0;
    for (; j < blockedOut; j += 4) {
      const g0 = dy[dyOffset + j];
      const g1 = dy[dyOffset + j + 1];
      const g2 = dy[dyOffset + j + 2];
      const g3 = dy[dyOffset + j + 3];
      const w0 = j * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      for (let i = 0; i < inDim; i++) {
        dx[dxOffset + i] += g0 * w[w0 + i] + g1 * w[w1 + i] + g2 * w[w2 + i] + g3 * w[w3 + i];
      }
    }
    for (; j < outDim; j++) {
      const g = dy[dyOffset + j];
      const wOffset = j * inDim;
      for (let i = 0; i < inDim; i++) dx[dxOffset + i] += g * w[wOffset + i];
    }
  }
}

/** dW[outDim, inDim] += dyᵀ · x over all rows (the weight gradient of y = x·Wᵀ). */
export function accumulateOuter(
  dy: Float64Array,
  x: Float64Array,
  rows: number,
  outDim: number,
  inDim: number,
  dw: Float64Array,
): void {
  const blockedRows = rows - (rows % 4);
  let t = 0;
  // Four rows per pass so each dW element is loaded and stored once per four rank-1 updates.
  for (; t < blockedRows; t += 4) {
    const x0 = t * inDim;
    const x1 = x0 + inDim;
    const x2 = x1 + inDim;
    const x3 = x2 + inDim;
    const d0 = t * outDim;
    const d1 = d0 + outDim;
    const d2 = d1 + outDim;
    const d3 = d2 + outDim;
    for (let j = 0; j < outDim; j++) {
      const g0 = dy[d0 + j];
      const g1 = dy[d1 + j];
      const g2 = dy[d2 + j];
      const g3 = dy[d3 + j];
      const wOffset = j * inDim;
      for (let i = 0; i < inDim; i++) {
        dw[wOffset + i] += g0 * x[x0 + i] + g1 * x[x1 + i] + g2 * x[x2 + i] + g3 * x[x3 + i];
      }
    }
  }
  for (; t < rows; t++) {
    const xOffset = t * inDim;
    const dyOffset = t * outDim;
    for (let j = 0; j < outDim; j++) {
      const g = dy[dyOffset + j];
      if (g === 0) continue;
      const wOffset = j * inDim;
      for (let i = 0; i < inDim; i++) dw[wOffset + i] += g * x[xOffset + i];
    }
  }
}

/** Guards the RMS against division by zero for an all-zero row. */
export const RMS_NORM_EPS = 1e-6;

/**
 * Row-wise RMSNorm without a learned gain: y = x / sqrt(mean(x²) + eps). A gain would be a frozen
 * base weight of 1 here (the base model is never trained), so it is omitted. Writes y and the
 * per-row inverse RMS (needed by the backward pass).
 */
export function rmsNormForward(x: Float64Array, rows: number, dim: number, y: Float64Array, invRms: Float64Array): void {
  for (let t = 0; t < rows; t++) {
    const offset = t * dim;
    let sumSquares = 0;
    for (let i = 0; i < dim; i++) sumSquares += x[offset + i] * x[offset + i];
    const inv = 1 / Math.sqrt(sumSquares / dim + RMS_NORM_EPS);
    invRms[t] = inv;
    for (let i = 0; i < dim; i++) y[offset + i] = x[offset + i] * inv;
  }
}

/** dx += invRms · (dy − y · mean(dy ⊙ y)), the exact gradient of `rmsNormForward`. */
export function rmsNormBackward(
  dy: Float64Array,
  y: Float64Array,
  invRms: Float64Array,
  rows: number,
  dim: number,
  dx: Float64Array,
): void {
  for (let t = 0; t < rows; t++) {
    const offset = t * dim;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += dy[offset + i] * y[offset + i];
    const meanDot = dot / dim;
    const inv = invRms[t];
    for (let i = 0; i < dim; i++) dx[offset + i] += inv * (dy[offset + i] - y[offset + i] * meanDot);
  }
}

const GELU_SCALE = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** GELU (tanh approximation). Smooth everywhere, which keeps finite-difference gradient checks exact. */
export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_SCALE * (x + GELU_CUBIC * x * x * x)));
}

/** d gelu(x) / dx for the tanh approximation. */
export function geluDerivative(x: number): number {
  const tanhValue = Math.tanh(GELU_SCALE * (x + GELU_CUBIC * x * x * x));
  return 0.5 * (1 + tanhValue) + 0.5 * x * (1 - tanhValue * tanhValue) * GELU_SCALE * (1 + 3 * GELU_CUBIC * x * x);
}

/**
 * Log-softmax of `logits[offset .. offset + n)` into `out[outOffset ..)`, max-shifted for
 * stability. Returns the log normaliser (logsumexp).
 */
export function logSoftmax(
  logits: Float64Array,
  offset: number,
  n: number,
  out: Float64Array,
  outOffset: number,
): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
  const logNormaliser = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[outOffset + i] = logits[offset + i] - logNormaliser;
  return logNormaliser;
}
