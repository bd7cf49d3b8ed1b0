/**
 * Bulk checkpoint deletion across runs (FEATURES.md §5.4: storage that otherwise has to be deleted
 * one checkpoint at a time).
 *
 *   await deleteCheckpoints(rest, { olderThan: new Date(Date.now() - 7 * 86_400_000), type: "sampler", dryRun: true });
 */
import type { CallOptions } from "../../clients/call-options.js";
import type { RestClient } from "../../clients/rest.js";
import { ValidationError, type ValidationIssue } from "../../core/errors.js";
import type { Checkpoint } from "../../wire/rest-schemas.js";
import { settleWithConcurrency } from "./concurrency.js";
import { nameOf } from "./listing.js";

export interface CheckpointFilter extends CallOptions {
  /** Only this run's checkpoints; otherwise all of yours (`listUserCheckpoints`, every page). */
  runId?: string;
  /** Only checkpoints saved before this time. */
  olderThan?: Date;
  /** Only checkpoints whose name (the part after `weights/` or `sampler_weights/`) matches. */
  namePattern?: RegExp;
  /** Only training (`weights/`) or sampler (`sampler_weights/`) checkpoints. */
  type?: "training" | "sampler";
  /** Spares every checkpoint for which this returns true (e.g. `(c) => c.public`). */
  keep?: (checkpoint: Checkpoint) => boolean;
  /** Decide, but delete nothing: `deleted` lists what would be deleted. */
  dryRun?: boolean;
  /** Deletions in flight at once. Default 8. */
  concurrency?: number;
}

export interface DeleteCheckpointsResult {
  /** Deleted paths (with `dryRun`: the paths that would be). */
  deleted: string[];
  /** Listed paths the filter spared. */
  kept: string[];
  /** Deletions that failed; the others went ahead. */
  failed: { path: string; error: unknown }[];
}

/**
 * Deletes the checkpoints that match every given criterion and that `keep` does not spare. At least
 * one of runId, olderThan, namePattern or type is required, so that a forgotten filter cannot
 * delete everything (to mean everything, say `namePattern: /.*\/`). The whole list is read before
 * the first deletion: deleting while paging would shift the pages under the listing.
 */
export async function deleteCheckpoints(
  rest: RestClient,
  filter: CheckpointFilter,
): Promise<DeleteCheckpointsResult> {
  validateFilter(filter);
  const call: CallOptions = { signal: filter.signal, timeout: filter.timeout };
  const listed: Checkpoint[] = [];
  if (filter.runId !== undefined) {
    listed.push(...(await rest.listCheckpoints(filter.runId, call)).checkpoints);
  } else {
    for await (const checkpoint of rest.listUserCheckpoints(call)) listed.push(checkpoint);
  }
  const result: DeleteCheckpointsResult = { deleted: [], kept: [], failed: [] };
  const doomed: string[] = [];
  for (const checkpoint of listed) {
    (matches(checkpoint, filter) ? doomed : result.kept).push(checkpoint.tinker_path);
  }
  if (filter.dryRun) {
    result.deleted = doomed;
    return result;
  }
  const outcomes = await settleWithConcurrency(doomed, filter.concurrency ?? 8, (path) =>
    rest.deleteCheckpointFromTinkerPath(path, call),
  );
  outcomes.forEach((outcome, i) => {
    const path = doomed[i]!;
    if (outcome.status === "fulfilled") result.deleted.push(path);
    else result.failed.push({ path, error: outcome.reason });
  });
  return result;
}

function matches(checkpoint: Checkpoint, filter: CheckpointFilter): boolean {
  if (filter.type !== undefined && checkpoint.checkpoint_type !== filter.type) return false;
  if (filter.olderThan !== undefined && !(checkpoint.time.getTime() < filter.olderThan.getTime()))
    return false;
  if (filter.namePattern !== undefined) {
    // A /g or /y pattern remembers where it last matched; every checkpoint is tested from the start.
    filter.namePattern.lastIndex = 0;
    if (!filter.namePattern.test(nameOf(checkpoint.checkpoint_id))) return false;
  }
  return !(filter.keep?.(checkpoint) ?? false);
}

function validateFilter(filter: CheckpointFilter): void {
  if (typeof filter !== "object" || filter === null) {
    throw new ValidationError([{ path: "filter", message: "must be an object" }]);
  }
  const issues: ValidationIssue[] = [];
  if (filter.runId !== undefined && (typeof filter.runId !== "string" || filter.runId === "")) {
    issues.push({ path: "filter.runId", message: "must be a non-empty string" });
  }
  if (
    filter.olderThan !== undefined &&
    !(filter.olderThan instanceof Date && !Number.isNaN(filter.olderThan.getTime()))
  ) {
    issues.push({ path: "filter.olderThan", message: "must be a valid Date" });
  }
  if (filter.namePattern !== undefined && !(filter.namePattern instanceof RegExp)) {
    issues.push({ path: "filter.namePattern", message: "must be a RegExp" });
  }
  if (filter.type !== undefined && filter.type !== "training" && filter.type !== "sampler") {
    issues.push({
      path: "filter.type",
      message: `must be "training" or "sampler", got ${String(filter.type)}`,
    });
  }
  if (filter.keep !== undefined && typeof filter.keep !== "function") {
    issues.push({ path: "filter.keep", message: "must be a function" });
  }
  const concurrency = filter.concurrency;
  if (concurrency !== undefined && !(Number.isSafeInteger(concurrency) && concurrency > 0)) {
    issues.push({
      path: "filter.concurrency",
      message: `must be a positive integer, got ${String(concurrency)}`,
    });
  }
  if (
    filter.runId === undefined &&
    filter.olderThan === undefined &&
    filter.namePattern === undefined &&
    filter.type === undefined
  ) {
    issues.push({
      path: "filter",
      message:
        "give at least one of runId, olderThan, namePattern or type (namePattern: /.*/ means every checkpoint)",
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
}
