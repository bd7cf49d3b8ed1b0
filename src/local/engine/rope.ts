/**
 * Rotary position embeddings. Each head's query/key vector is split into two halves whose
 * element pairs (x[c], x[c + half]) are rotated by an angle proportional to the position, so the
 * attention score q·k depends on the positions only through their difference.
 */

import { headDimOf, type ModelConfig } from "./config.js";

export interface RopeTable {
  readonly half: number;
  /** cos/sin of position p and pair c at index p·half + c. */
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

const tableCache = new Map<string, RopeTable>();

/** The (memoised) rotation table of a model configuration. */
export function ropeTableFor(config: ModelConfig): RopeTable {
  const headDim = headDimOf(config);
  const key = `${config.maxSeqLen}:${headDim}:${config.ropeBase}`;
  const cached = tableCache.get(key);
  if (cached) return cached;
  const half = headDim / 2;
  const cos = new Float64Array(config.maxSeqLen * half);
  const sin = new Float64Array(config.maxSeqLen * half);
  for (let c = 0; c < half; c++) {
    const frequency = config.ropeBase ** (-c / half);
    for (let p = 0; p < config.maxSeqLen; p++) {
      cos[p * half + c] = Math.cos(p * frequency);
      sin[p * half + c] = Math.sin(p * frequency);
    }
  }
  const table: RopeTable = { half, cos, sin };
  tableCache.set(key, table);
  return table;
}

/**
 * Rotates, in place, every head of the `dModel`-wide row starting at `offset` for `position`.
 * With `inverse` it applies the transposed rotation, which is the backward pass (rotations are
 * orthogonal, so the gradient of a rotation is the inverse rotation of the gradient).
 */
export function applyRope(
  table: RopeTable,
  row: Float64Array,
  offset: number,
  dModel: number,
  position: number,
  inverse: boolean,
): void {
  const { half, cos, sin } = table;
  const headDim = 2 * half;
  const tableOffset = position * half;
  const sign = inverse ? -1 : 1;
  for (let headStart = offset; headStart < offset + dModel; headStart += headDim) {
    for (let c = 0; c < half; c++) {
      const cosine = cos[tableOffset + c];
      const sine = sign * sin[tableOffset + c];
      const x1 = row[headStart + c];
      const x2 = row[headStart + c + half];
      row[headStart + c] = x1 * cosine - x2 * sine;
      row[headStart + c + half] = x1 * sine + x2 * cosine;
    }
  }
}
