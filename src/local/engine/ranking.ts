/**
 * Ordering token ids by score, with ties broken towards the lower id so every ranking (greedy
 * choice, top-k lists) is deterministic.
 */

/** Index of the largest value in `values[offset .. offset + n)`; ties go to the lowest index. */
export function argmax(values: Float64Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[offset + i] > values[offset + best]) best = i;
  return best;
}

/** Token ids ordered by descending value (ties by ascending id). */
export function idsByDescendingValue(values: Float64Array): number[] {
  const ids = Array.from({ length: values.length }, (_, i) => i);
  ids.sort((x, y) => values[y] - values[x] || x - y);
  return ids;
}

/** The k (at most values.length) highest [token, value] pairs of one logprob row, best first. */
export function topEntries(values: Float64Array, k: number): [number, number][] {
  return idsByDescendingValue(values)
    .slice(0, k)
    .map((id): [number, number] => [id, values[id]]);
}
