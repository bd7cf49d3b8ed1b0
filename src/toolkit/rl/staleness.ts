/**
 * Staleness bookkeeping for off-policy (async) RL, as pure functions.
 *
 * Versions: the sampler made after k training steps is version k; a rollout records the version
 * it was sampled with, and when step t trains on it its staleness is t − version. Sync training is
 * staleness 0: every rollout of step t was sampled with the weights step t starts from.
 *
 * Two rules keep staleness within `maxStaleness` (K):
 * - admission: rollouts of dataset batch b start only once b ≤ version + K, so sampling runs at
 *   most K batches ahead of training (K = 0: batch t is sampled after step t − 1, i.e. sync);
 * - at training time, a rollout that finished too late (t − version > K: a slow episode overtaken
 *   by faster ones) is dropped, counted, and its group sampled again with the current weights.
 */

/** A finished group rollout, as far as staleness is concerned. */
export interface VersionedGroup {
  /** Dataset batch of the group. */
  readonly batch: number;
  /** Index of the group within its batch. */
  readonly index: number;
  /** Training steps applied to the weights it was sampled with. */
  readonly samplerStep: number;
}

/** Whether the groups of `batch` may start sampling with sampler version `samplerStep`. */
export function canStartBatch(batch: number, samplerStep: number, maxStaleness: number): boolean {
  return batch <= samplerStep + maxStaleness;
}

/** True when a group sampled with `samplerStep` is too old for training step `step`. */
export function isTooStale(samplerStep: number, step: number, maxStaleness: number): boolean {
  return step - samplerStep > maxStaleness;
}

export interface TakeResult<G> {
  /** Up to `count` groups for the step, stalest first (then in dataset order). */
  taken: G[];
  /** Groups too stale for the step: drop them (and sample their problems again). */
  stale: G[];
  /** Fresh groups left for later steps, in the order they came. */
  rest: G[];
}

/**
 * Picks the groups step `step` trains on from the finished ones: the too-stale ones are set aside,
 * then the stalest of the rest are taken first, so that no group waits until it is too old.
 */
export function takeForStep<G extends VersionedGroup>(
  finished: readonly G[],
  step: number,
  count: number,
  maxStaleness: number,
): TakeResult<G> {
  const stale = finished.filter((g) => isTooStale(g.samplerStep, step, maxStaleness));
  const fresh = finished.filter((g) => !isTooStale(g.samplerStep, step, maxStaleness));
  const order = [...fresh].sort(
    (a, b) => a.samplerStep - b.samplerStep || a.batch - b.batch || a.index - b.index,
  );
  const taken = order.slice(0, Math.max(0, count));
  const takenSet = new Set(taken);
  return { taken, stale, rest: fresh.filter((g) => !takenSet.has(g)) };
}

export interface StalenessStats {
  mean: number;
  max: number;
  min: number;
}

/** Staleness of the groups trained at `step`. */
export function stalenessStats(groups: readonly VersionedGroup[], step: number): StalenessStats {
  if (groups.length === 0) return { mean: 0, max: 0, min: 0 };
  const values = groups.map((g) => step - g.samplerStep);
  return {
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    max: Math.max(...values),
    min: Math.min(...values),
  };
}
