/**
 * Dense kernels on row-major Float64Array matrices. A weight matrix W of shape [out, in] is
 * stored row by row, so `y = W·x` is a dot product of contiguous rows — the access pattern the
 * JIT turns into the tightest loop. Every kernel has a fixed summation order, which is what makes
 * the engine bit-for-bit deterministic.
 */

/**
 * The one matrix-product kernel: c[m, n] (+)= a[m, k] · b[n, k]ᵀ, i.e. every output element is
 * the dot product of a row of `a` and a row of `b`. All three products of a linear layer reduce
 * to it (the backward ones after a cheap transpose), so only this loop needs to be fast.
 *
 * It computes a 2×4 block of outputs per pass: each loaded element of `a` feeds four
 * multiply-adds and each element of `b` two, which runs ~1.5× faster than one output at a time
 * in V8. Every output is still a plain left-to-right sum over k, so the result does not depend
 * on the blocking or on how many rows are processed together — the incremental (KV-cache) pass
 * and the batched training pass therefore agree bit for bit.
 */
export function matmulNT(
  a: Float64Array,
  m: number,
  k: number,
  b: Float64Array,
  n: number,
  c: Float64Array,
  accumulate: boolean,
): void {
  const blockedN = n - (n % 4);
  let row = 0;
  for (; row + 1 < m; row += 2) {
    const a0 = row * k;
    const a1 = a0 + k;
    const c0 = row * n;
    const c1 = c0 + n;
    let col = 0;
    for (; col < blockedN; col += 4) {
      const b0 = col * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let i = 0; i < k; i++) {
        const x0 = a[a0 + i];
        const x1 = a[a1 + i];
        const y0 = b[b0 + i];
        const y1 = b[b1 + i];
        const y2 = b[b2 + i];
        const y3 = b[b3 + i];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      if (accumulate) {
        c[c0 + col] += s00;
        c[c0 + col + 1] += s01;
        c[c0 + col + 2] += s02;
        c[c0 + col + 3] += s03;
        c[c1 + col] += s10;
        c[c1 + col + 1] += s11;
        c[c1 + col + 2] += s12;
        c[c1 + col + 3] += s13;
      } else {
        c[c0 + col] = s00;
        c[c0 + col + 1] = s01;
        c[c0 + col + 2] = s02;
        c[c0 + col + 3] = s03;
        c[c1 + col] = s10;
        c[c1 + col + 1] = s11;
        c[c1 + col + 2] = s12;
        c[c1 + col + 3] = s13;
      }
    }
    for (; col < n; col++) {
      const b0 = col * k;
      let s0 = 0;
      let s1 = 0;
      for (let i = 0; i < k; i++) {
        s0 += a[a0 + i] * b[b0 + i];
        s1 += a[a1 + i] * b[b0 + i];
      }
      c[c0 + col] = accumulate ? c[c0 + col] + s0 : s0;
      c[c1 + col] = accumulate ? c[c1 + col] + s1 : s1;
    }
  }
  // The odd last row (and the single-row products of token-by-token decoding): 1×4 blocks.
  for (; row < m; row++) {
    const a0 = row * k;
    const c0 = row * n;
    let col = 0;
    for (; col < blockedN; col += 4) {
      const b0 = col * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < k; i++) {
        const x = a[a0 + i];
        s0 += x * b[b0 + i];
        s1 += x * b[b1 + i];
        s2 += x * b[b2 + i];
        s3 += x * b[b3 + i];
      }
      c[c0 + col] = accumulate ? c[c0 + col] + s0 : s0;
      c[c0 + col + 1] = accumulate ? c[c0 + col + 1] + s1 : s1;
      c[c0 + col + 2] = accumulate ? c[c0 + col + 2] + s2 : s2;
      c[c0 + col + 3] = accumulate ? c[c0 + col + 3] + s3 : s3;
    }
    for (; col < n; col++) {
      const b0 = col * k;
      let s = 0;
      for (let i = 0; i < k; i++) s += a[a0 + i] * b[b0 + i];
      c[c0 + col] = accumulate ? c[c0 + col] + s : s;
    }
  }
}

/** The transpose of a [rows, cols] matrix, [cols, rows]. */
export function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const rowOffset = r * cols;
    for (let col = 0; col < cols; col++) out[col * rows + r] = x[rowOffset + col];
  }
  return out;
}

/** out[rows, outDim] = x[rows, inDim] · Wᵀ, with W stored as [outDim, inDim] (a linear layer). Overwrites `out`. */
export function matmulTransposed(
  x: Float64Array,
  rows: number,
  inDim: number,
  w: Float64Array,
  outDim: number,
  out: Float64Array,
): void {
  matmulNT(x, rows, inDim, w, outDim, out, false);
}

/** dx[rows, inDim] += dy[rows, outDim] · W, W stored as [outDim, inDim] (the input gradient of a linear layer). */
export function accumulateMatmul(
  dy: Float64Array,
  rows: number,
  outDim: number,
  w: Float64Array,
  inDim: number,
  dx: Float64Array,
): void {
  matmulNT(dy, rows, outDim, transpose(w, outDim, inDim), inDim, dx, true);
}

/** dW[outDim, inDim] += dyᵀ · x over all rows (the weight gradient of a linear layer). */
export function accumulateOuter(
  dy: Float64Array,
  x: Float64Array,
  rows: number,
  outDim: number,
  inDim: number,
  dw: Float64Array,
): void {
  matmulNT(transpose(dy, rows, outDim), outDim, rows, transpose(x, rows, inDim), inDim, dw, true);
}

/** Guards the RMS against division by zero for an all-zero row. */
export const RMS_NORM_EPS = 1e-6;

/**
 * Row-wise RMSNorm without a learned gain: y = x / sqrt(mean(x²) + eps). A gain would be a frozen
 * base weight of 1 here (the base model is never trained), so it is omitted. Writes y and the
 * per-row inverse RMS (needed by the backward pass).
 */
export function rmsNormForward(
  x: Float64Array,
  rows: number,
  dim: number,
  y: Float64Array,
  invRms: Float64Array,
): void {
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

/**
 * GELU in its tanh form, 0.5·x·(1 + tanh(z)) with z = √(2/π)·(x + 0.044715·x³), evaluated as
 * the identical x·σ(2z) because one Math.exp is cheaper than Math.tanh. Smooth everywhere, which
 * keeps finite-difference gradient checks exact (ReLU's kink would not).
 *
 * Writes gelu(pre[i]) to `act` and, when `derivative` is given, d gelu/dx at pre[i] — computed
 * here from the same sigmoid so the backward pass needs no transcendental functions at all.
 */
export function geluForward(pre: Float64Array, act: Float64Array, derivative: Float64Array | null): void {
  for (let i = 0; i < pre.length; i++) {
    const x = pre[i];
    const z = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    const sigma = 1 / (1 + Math.exp(-2 * z));
    act[i] = x * sigma;
    if (derivative !== null) {
      // d/dx [x·σ(2z)] = σ + x·σ(1−σ)·2·dz/dx
      derivative[i] = sigma + 2 * x * sigma * (1 - sigma) * GELU_SCALE * (1 + 3 * GELU_CUBIC * x * x);
    }
  }
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
