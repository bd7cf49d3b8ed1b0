/**
 * Per-step rollout metrics: returns, episode shape and the envs' own numbers, from the groups a
 * step trained on. Names follow the cookbook's `a/b` style so they read the same in a dashboard.
 */
import type { EpisodeGroup } from "./rollouts.js";

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Population standard deviation. */
function std(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, v) => sum + (v - m) * (v - m), 0) / values.length);
}

/** Means of named numbers, each over the records that have it. */
function meanByName(records: Iterable<Readonly<Record<string, number>>>): Record<string, number> {
  const sums = new Map<string, { sum: number; count: number }>();
  for (const record of records) {
    for (const [name, value] of Object.entries(record)) {
      const entry = sums.get(name) ?? { sum: 0, count: 0 };
      entry.sum += value;
      entry.count++;
      sums.set(name, entry);
    }
  }
  return Object.fromEntries([...sums].map(([name, { sum, count }]) => [name, sum / count]));
}

/**
 * - `reward/mean`, `reward/std`, `reward/min`, `reward/max`: episode returns (step rewards + group reward)
 * - `episodes/count`, `episodes/turns_mean`, `episodes/truncated` (fraction ended by `maxTurns`)
 * - `actions/length_stopped`: fraction of actions ended by `maxTokens` rather than a stop sequence
 * - `tokens/action`: sampled tokens; `tokens/action_mean` per episode
 * - `env/<name>`: the envs' step metrics, averaged; `env/group/<name>`: the group rewards' metrics
 * - `tag/<tag>/reward/mean`: returns of the groups with that logging tag
 */
export function rolloutMetrics(groups: readonly EpisodeGroup[]): Record<string, number> {
  const returns = groups.flatMap((g) => g.totalRewards);
  const episodes = groups.flatMap((g) => g.episodes);
  const transitions = episodes.flatMap((e) => e.transitions);
  const actionTokens = transitions.reduce((sum, t) => sum + t.action.length, 0);
  const metrics: Record<string, number> = {
    "reward/mean": mean(returns),
    "reward/std": std(returns),
    "reward/min": returns.length === 0 ? 0 : Math.min(...returns),
    "reward/max": returns.length === 0 ? 0 : Math.max(...returns),
    "episodes/count": episodes.length,
    "episodes/turns_mean": mean(episodes.map((e) => e.transitions.length)),
    "episodes/truncated": mean(episodes.map((e) => (e.truncated ? 1 : 0))),
    "actions/length_stopped": mean(transitions.map((t) => (t.stopReason === "length" ? 1 : 0))),
    "tokens/action": actionTokens,
    "tokens/action_mean": episodes.length === 0 ? 0 : actionTokens / episodes.length,
  };
  for (const [name, value] of Object.entries(meanByName(transitions.map((t) => t.metrics)))) {
    metrics[`env/${name}`] = value;
  }
  for (const [name, value] of Object.entries(meanByName(groups.flatMap((g) => g.groupMetrics)))) {
    metrics[`env/group/${name}`] = value;
  }
  const byTag = new Map<string, number[]>();
  for (const group of groups) {
    for (const tag of new Set(group.tags)) byTag.set(tag, [...(byTag.get(tag) ?? []), ...group.totalRewards]);
  }
  for (const [tag, values] of byTag) metrics[`tag/${tag}/reward/mean`] = mean(values);
  return metrics;
}
