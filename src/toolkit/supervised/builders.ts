/**
 * Dataset builders: conversations (through a renderer) or prompt/completion pairs (through a
 * tokenizer) → datums → a held-out list and a batched, shuffled training `SupervisedDataset`.
 *
 * The held-out split is drawn from the records, before any datum is built, with the dataset's seed;
 * a record that cannot become a datum is reported with where it came from (its index, or its JSONL
 * line), so a bad line in a large file is found without bisecting.
 */
import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import type { Datum } from "../../wire/types.js";
import { type DatumFromTokensOptions, datumFromConversation, datumFromPromptCompletion } from "../datum.js";
import type { ChatMessage, Renderer, TrainOnWhat } from "../renderers/index.js";
import {
  type HeldOut,
  type SupervisedDataset,
  type SupervisedDatasetOptions,
  splitHeldOut,
  supervisedDataset,
  validateDatasetOptions,
} from "./dataset.js";

export interface DatasetBuildOptions extends SupervisedDatasetOptions, DatumFromTokensOptions {
  /** Examples kept out of training for evaluation: a count, or `{ fraction }`. Default: none. */
  heldOut?: HeldOut;
}

export interface BuiltDataset {
  train: SupervisedDataset;
  /** The held-out datums (empty without `heldOut`), e.g. `trainSupervised`'s `evalDataset`. */
  heldOut: Datum[];
}

export interface ConversationDatasetOptions extends DatasetBuildOptions {
  /** Which tokens are trained. Default `all_assistant_messages`: every assistant turn. */
  trainOnWhat?: TrainOnWhat;
}

export interface PromptCompletion {
  prompt: string | readonly number[];
  completion: string | readonly number[];
}

export interface PromptCompletionDatasetOptions extends DatasetBuildOptions {
  /** As in `datumFromPromptCompletion` (default: end with EOS when the tokenizer has one). */
  addEos?: boolean;
}

/** Conversations rendered by `renderer`, trained on the assistant turns by default. */
export function datasetFromConversations(
  renderer: Renderer,
  conversations: readonly (readonly ChatMessage[])[],
  options: ConversationDatasetOptions,
): BuiltDataset {
  validateDatasetOptions(options);
  return buildDataset(
    conversations,
    conversationDatum(renderer, options),
    (i) => `conversations[${i}]`,
    options,
  );
}

/** Prompt → completion pairs, trained on the completion (and EOS). */
export function datasetFromPromptCompletions(
  tokenizer: Tokenizer,
  pairs: readonly PromptCompletion[],
  options: PromptCompletionDatasetOptions,
): BuiltDataset {
  validateDatasetOptions(options);
  return buildDataset(pairs, promptCompletionDatum(tokenizer, options), (i) => `pairs[${i}]`, options);
}

/** @internal The datum builder of a conversation record (shared with the JSONL builder). */
export function conversationDatum(
  renderer: Renderer,
  options: ConversationDatasetOptions,
): (messages: readonly ChatMessage[]) => Datum {
  const { trainOnWhat = "all_assistant_messages", maxLength, allowZeroWeights } = options;
  return (messages) =>
    datumFromConversation(renderer, messages, { trainOnWhat, maxLength, allowZeroWeights });
}

/** @internal The datum builder of a prompt/completion record (shared with the JSONL builder). */
export function promptCompletionDatum(
  tokenizer: Tokenizer,
  options: PromptCompletionDatasetOptions,
): (pair: PromptCompletion) => Datum {
  const { addEos, maxLength, allowZeroWeights } = options;
  return (pair) => {
    if (typeof pair !== "object" || pair === null) {
      throw new ValidationError([{ path: "", message: "must be an object { prompt, completion }" }]);
    }
    const issues = [];
    if (!isTextOrTokens(pair.prompt)) {
      issues.push({ path: "prompt", message: "must be a string or an array of token ids" });
    }
    if (!isTextOrTokens(pair.completion)) {
      issues.push({ path: "completion", message: "must be a string or an array of token ids" });
    }
    if (issues.length > 0) throw new ValidationError(issues);
    return datumFromPromptCompletion(tokenizer, pair.prompt, pair.completion, {
      addEos,
      maxLength,
      allowZeroWeights,
    });
  };
}

function isTextOrTokens(value: unknown): value is string | readonly number[] {
  return typeof value === "string" || Array.isArray(value);
}

/**
 * @internal Splits the records, builds every datum (errors located by `where(i)`, i the record's
 * index in `records`) and batches the training part.
 */
export function buildDataset<T>(
  records: readonly T[],
  toDatum: (record: T) => Datum,
  where: (index: number) => string,
  options: DatasetBuildOptions,
): BuiltDataset {
  if (!Array.isArray(records) || records.length === 0) {
    throw new ValidationError([{ path: "records", message: "must be a non-empty array" }]);
  }
  const indices = records.map((_, i) => i);
  const split =
    options.heldOut === undefined
      ? { train: indices, heldOut: [] }
      : splitHeldOut(indices, options.heldOut, options.seed ?? 0);
  const build = (i: number): Datum => {
    try {
      return toDatum(records[i]!);
    } catch (error) {
      throw locate(error, where(i));
    }
  };
  // In record order, so that the first bad record reported is the first one in the input.
  const datums = indices.map(build);
  return {
    train: supervisedDataset(
      split.train.map((i) => datums[i]!),
      options,
    ),
    heldOut: split.heldOut.map((i) => datums[i]!),
  };
}

/**
 * The error with `location` in front of each issue's path (`conversations[3].messages[1].role`, or
 * `line 7: messages[1].role`). Other errors pass through.
 */
export function locate(error: unknown, location: string): unknown {
  if (!(error instanceof ValidationError)) return error;
  const join = (path: string) => {
    if (path === "") return location;
    if (location.startsWith("line ")) return `${location}: ${path}`;
    return path.startsWith("[") ? `${location}${path}` : `${location}.${path}`;
  };
  return new ValidationError(
    error.issues.map((issue) => ({ path: join(issue.path), message: issue.message })),
  );
}
