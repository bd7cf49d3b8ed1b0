/**
 * Splitting one forward_backward batch into requests, and merging their results back
 * (PROTOCOL.md §7.1). Pure functions: the limits come from the server's client config.
 */
import { TinkerError } from "../core/errors.js";
import type { Datum, ForwardBackwardOutput, TensorData } from "../wire/types.js";

export interface ChunkLimits {
  /** `fwdbwd_max_chunk_len`: datums per request (official default 1024). */
  maxDatums: number;
  /** `fwdbwd_max_chunk_bytes_count`: estimated payload bytes per request (default 5 000 000). */
  maxBytes: number;
}

export const DEFAULT_CHUNK_LIMITS: ChunkLimits = { maxDatums: 1024, maxBytes: 5_000_000 };

/**
 * The official estimate of a datum's payload: 4 bytes per text token, the raw size of image, asset
 * and audio chunks, and every tensor's size in its dtype plus 8 bytes per sparse index.
 */
export function estimateDatumBytes(datum: Datum): number {
  let bytes = 0;
  for (const chunk of datum.model_input.chunks) {
    if (chunk.type === "encoded_text") bytes += 4 * chunk.tokens.length;
    else if (chunk.type === "image") bytes += base64DecodedLength(chunk.data);
    else if (chunk.type === "image_asset_pointer") bytes += chunk.location.length;
    else bytes += base64DecodedLength(chunk.dmel);
  }
  for (const tensor of Object.values(datum.loss_fn_inputs)) bytes += tensorBytes(tensor);
  return bytes;
}

function tensorBytes(tensor: TensorData): number {
  const itemSize = tensor.dtype === "int64" ? 8 : 4;
  const indices = (tensor.sparse_crow_indices?.length ?? 0) + (tensor.sparse_col_indices?.length ?? 0);
  return tensor.data.length * itemSize + 8 * indices;
}

function base64DecodedLength(text: string): number {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return Math.floor((text.length * 3) / 4) - padding;
}

/** Greedy split in datum order: a new chunk when the next datum would break either limit. */
export function chunkData(data: readonly Datum[], limits: ChunkLimits): Datum[][] {
  const chunks: Datum[][] = [];
  let current: Datum[] = [];
  let currentBytes = 0;
  for (const datum of data) {
    const bytes = estimateDatumBytes(datum);
    const full =
      current.length >= limits.maxDatums || (current.length > 0 && currentBytes + bytes > limits.maxBytes);
    if (full) {
      chunks.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(datum);
    currentBytes += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

type Reducer = (values: number[], weights: number[]) => number;

const weightedMean: Reducer = (values, weights) => {
  const total = weights.reduce((a, b) => a + b, 0);
  return values.reduce((sum, v, i) => sum + v * weights[i]!, 0) / total;
};

const REDUCERS: Record<string, Reducer> = {
  mean: weightedMean,
  sum: (values) => values.reduce((a, b) => a + b, 0),
  min: (values) => Math.min(...values),
  max: (values) => Math.max(...values),
  slack: (values, weights) => Math.max(...values) - weightedMean(values, weights),
  // The official client hashes the sorted values with Python's tuple hash; the number is opaque,
  // so any order-insensitive combination serves. FNV-1a over the sorted integer values.
  hash_unordered: (values) => orderInsensitiveHash(values),
};

/**
 * Merges chunk results: outputs concatenated in chunk order, the first chunk's output type, and
 * each metric `name:reduction` reduced by its suffix with datum counts as weights. Metrics missing
 * from a chunk or with an unknown reduction are dropped, as the official client does; `unique`
 * keeps the first value under the key and the others as `key_1`, `key_2`, …
 */
export function mergeForwardBackwardOutputs(
  outputs: readonly ForwardBackwardOutput[],
): ForwardBackwardOutput {
  if (outputs.length === 1) {
    checkMetricKeys(outputs[0]!.metrics);
    return outputs[0]!;
  }
  const weights = outputs.map((o) => o.loss_fn_outputs.length);
  const metrics: Record<string, number> = {};
  for (const key of Object.keys(outputs[0]?.metrics ?? {})) {
    const reduction = metricReduction(key);
    if (!outputs.every((o) => key in o.metrics)) continue;
    const values = outputs.map((o) => o.metrics[key]!);
    if (reduction === "unique") {
      metrics[key] = values[0]!;
      values.slice(1).forEach((value, i) => {
        metrics[`${key}_${i + 1}`] = value;
      });
      continue;
    }
    const reduce = REDUCERS[reduction];
    if (reduce) metrics[key] = reduce(values, weights);
  }
  return {
    loss_fn_output_type: outputs[0]?.loss_fn_output_type ?? "ArrayRecord",
    loss_fn_outputs: outputs.flatMap((o) => o.loss_fn_outputs),
    metrics,
  };
}

/** Metric keys must be exactly `name:reduction`; anything else is a server bug worth surfacing. */
function metricReduction(key: string): string {
  const parts = key.split(":");
  if (parts.length !== 2) {
    throw new TinkerError(`metric key "${key}" is not of the form name:reduction`);
  }
  return parts[1]!;
}

function checkMetricKeys(metrics: Record<string, number>): void {
  for (const key of Object.keys(metrics)) metricReduction(key);
}

function orderInsensitiveHash(values: number[]): number {
  let hash = 0x811c9dc5;
  for (const value of values.map((v) => Math.trunc(v)).sort((a, b) => a - b)) {
    for (const char of String(value)) {
      hash ^= char.charCodeAt(0);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    hash = Math.imul(hash ^ 0x2c, 0x01000193) >>> 0;
  }
  return hash;
}
