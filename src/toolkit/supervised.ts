/**
 * Supervised fine-tuning: datasets (conversations, prompt/completion pairs, JSONL) batched and
 * shuffled by seed with a held-out split, learning-rate schedules, and `trainSupervised`, the
 * driver with evaluation, checkpoints and exact resume. See supervised/train.ts for why a resumed
 * run ends with the weights of an uninterrupted one.
 */
export {
  type BuiltDataset,
  type ConversationDatasetOptions,
  type DatasetBuildOptions,
  datasetFromConversations,
  datasetFromPromptCompletions,
  type PromptCompletion,
  type PromptCompletionDatasetOptions,
} from "./supervised/builders.js";
export {
  type DatasetBatch,
  type DatasetPosition,
  type HeldOut,
  type SupervisedDataset,
  type SupervisedDatasetOptions,
  seededPermutation,
  splitHeldOut,
  supervisedDataset,
} from "./supervised/dataset.js";
export {
  conversationFromRecord,
  datasetFromJsonl,
  type JsonlDatasetOptions,
  type JsonlRecord,
  type JsonlSource,
  promptCompletionFromRecord,
  type ReadJsonlOptions,
  readJsonl,
} from "./supervised/jsonl.js";
export {
  LR_SCHEDULE_KINDS,
  type LRSchedule,
  type LRScheduleKind,
  type LRScheduleOptions,
  lrSchedule,
  scheduledAdam,
} from "./supervised/schedules.js";
export {
  type ScheduleSpec,
  type SupervisedCheckpointOptions,
  type SupervisedEvaluation,
  type SupervisedStepMetrics,
  type TrainSupervisedOptions,
  type TrainSupervisedResult,
  trainSupervised,
} from "./supervised/train.js";
