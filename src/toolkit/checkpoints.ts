/**
 * Checkpoint housekeeping: a manager that saves on a schedule and applies retention (keep last K,
 * keep best by a metric, pins, TTL instead of deletion), resume from the latest step checkpoint,
 * and bulk deletion with filters. See checkpoints/manager.ts for the retention rules and
 * checkpoints/ledger.ts for what is kept client-side and why.
 */
export {
  type CheckpointFilter,
  type DeleteCheckpointsResult,
  deleteCheckpoints,
} from "./checkpoints/housekeeping.js";
export {
  type CheckpointLedger,
  type CheckpointStore,
  emptyLedger,
  memoryCheckpointStore,
} from "./checkpoints/ledger.js";
export type { SavedCheckpoint } from "./checkpoints/listing.js";
export {
  CheckpointManager,
  type CheckpointManagerOptions,
  type RetentionReport,
  type SaveResult,
} from "./checkpoints/manager.js";
export { checkpointName, stepFromCheckpointName } from "./checkpoints/names.js";
export {
  type LatestCheckpointOptions,
  latestCheckpoint,
  type ResumedTraining,
  type ResumeOptions,
  resumeFromLatest,
} from "./checkpoints/resume.js";
export type { KeepBest } from "./checkpoints/retention.js";
