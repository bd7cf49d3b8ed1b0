/**
 * Which managed checkpoints a retention pass keeps: pure, so the policy can be tested (and reasoned
 * about) without a server.
 */

export interface KeepBest {
  /** The metric to rank by, as passed to `save`/`maybeSave`. */
  metric: string;
  mode: "min" | "max";
  /** How many of the best to keep. */
  count: number;
}

export interface RetentionPolicy {
  keepLast?: number;
  keepBest?: KeepBest;
}

export interface RetentionCandidate {
  path: string;
  step: number;
  time: Date;
  pinned: boolean;
  /**
   * The checkpoint's metrics from the ledger; undefined when the ledger has no entry for it (it
   * was lost, or the process died between the save and the ledger write).
   */
  metrics?: Record<string, number>;
}

/** Newest first: by step, then by save time (a step saved twice, e.g. after resuming from an earlier one). */
export function byRecency(a: { step: number; time: Date }, b: { step: number; time: Date }): number {
  return b.step - a.step || b.time.getTime() - a.time.getTime();
}

/**
 * The paths to keep: pinned ones, `justWritten`, the `keepLast` newest, and the `keepBest` best by
 * their metric. With keepBest, a checkpoint the ledger knows nothing about is kept too: retention
 * deletes only what it can judge, and a lost ledger must not cost the best checkpoints. Without
 * any policy everything is kept.
 */
export function checkpointsToKeep(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  justWritten: string | undefined,
): Set<string> {
  if (policy.keepLast === undefined && policy.keepBest === undefined) {
    return new Set(candidates.map((c) => c.path));
  }
  const keep = new Set<string>();
  if (justWritten !== undefined) keep.add(justWritten);
  const newestFirst = [...candidates].sort(byRecency);
  for (const c of newestFirst) if (c.pinned) keep.add(c.path);
  for (const c of newestFirst.slice(0, policy.keepLast ?? 0)) keep.add(c.path);
  const best = policy.keepBest;
  if (best !== undefined) {
    const sign = best.mode === "min" ? 1 : -1;
    const scored: { path: string; value: number }[] = [];
    for (const c of newestFirst) {
      if (c.metrics === undefined) {
        keep.add(c.path);
        continue;
      }
      const value = c.metrics[best.metric];
      if (typeof value === "number" && Number.isFinite(value)) scored.push({ path: c.path, value });
    }
    // A stable sort over newest-first input: among equal values the newer checkpoint wins.
    scored.sort((a, b) => sign * (a.value - b.value));
    for (const s of scored.slice(0, best.count)) keep.add(s.path);
  }
  return keep;
}
