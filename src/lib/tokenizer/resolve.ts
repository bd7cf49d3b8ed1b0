/**
 * Which tokenizer a model uses, by the rules of the official Python SDK (0.25.0,
 * `sampling_client._load_tokenizer_from_model_info`), plus one rule for the local backend.
 */

import { TokenizerError } from "./types.js";

/** The local backend's byte-level tokenizer (`src/local/engine/tokenizer.ts`, `TOKENIZER_ID`). */
export const BYTE_LEVEL_TOKENIZER_ID = "tinker-ts/byte-level";

/** Ungated mirror of the Llama 3 instruct tokenizer that the Python SDK uses for every `meta-llama/Llama-3*`. */
export const LLAMA3_TOKENIZER_ID = "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer";

/** Model names of the local backend (`tinker-ts/byte-lm-tiny`, …): they all use the byte-level tokenizer. */
const LOCAL_MODEL_PREFIX = "tinker-ts/";

/** Ids the Python SDK loads under another name. */
const TOKENIZER_ID_ALIASES: Readonly<Record<string, string>> = {
  "moonshotai/Kimi-K2.5-Text-Only": "moonshotai/Kimi-K2.5",
};

/** Hub revisions the Python SDK pins (so that SDK and cookbook agree on the Kimi tokenizers). */
export const PINNED_TOKENIZER_REVISIONS: Readonly<Record<string, string>> = {
  "moonshotai/Kimi-K2-Thinking": "612681931a8c906ddb349f8ad0f582cb552189cd",
  "moonshotai/Kimi-K2.5": "4d01dfe0332d63057c186e0b262165819efb6611",
  "moonshotai/Kimi-K2.6": "b5aabbfb20227ed42becbf5541dbffd213942c58",
};

/**
 * Prefixes of tokenizers that Python loads from Thinking Machines' private `tml_tokenizers`
 * package (falling back to the Hub when that package does not know the id).
 */
export const PRIVATE_TOKENIZER_PREFIXES: readonly string[] = ["TML/", "thinkingmachines/"];

/** The fields of a `get_info` response (or `{model_name: base_model}` for a sampler) that matter here. */
export interface TokenizerInfo {
  model_data?: { tokenizer_id?: string | null; model_name?: string | null } | null;
  model_name?: string | null;
}

/**
 * The tokenizer id of a model:
 * 1. `model_data.tokenizer_id` when the server sent one (used as is);
 * 2. else from the model name (`model_data.model_name`, else the top-level `model_name`), see
 *    {@link tokenizerIdForModelName};
 * then Python's renames (`moonshotai/Kimi-K2.5-Text-Only` → `moonshotai/Kimi-K2.5`).
 *
 * Differences from Python, both for robustness: an empty `tokenizer_id` counts as absent, and the
 * top-level `model_name` is used when `model_data.model_name` is missing (Python asserts instead).
 */
export function resolveTokenizerId(info: TokenizerInfo): string {
  const explicit = info.model_data?.tokenizer_id;
  if (explicit !== undefined && explicit !== null && explicit !== "") return canonicalTokenizerId(explicit);
  const modelName = info.model_data?.model_name ?? info.model_name;
  if (modelName === undefined || modelName === null || modelName === "") {
    throw new TokenizerError(
      "cannot resolve a tokenizer: the model info has neither tokenizer_id nor model_name",
    );
  }
  return canonicalTokenizerId(tokenizerIdForModelName(modelName));
}

/**
 * The tokenizer id for a model name when the server named no tokenizer (Python's heuristics):
 * - everything from the first `:` is dropped (`Qwen/Qwen3-8B:base` → `Qwen/Qwen3-8B`);
 * - `tinker-ts/…` (the local backend's models) → `tinker-ts/byte-level` (our addition);
 * - `meta-llama/Llama-3…` → `thinkingmachineslabinc/meta-llama-3-instruct-tokenizer` (ungated mirror);
 * - `org/model/variant` (exactly two slashes) → `org/model`;
 * - anything else is the tokenizer id itself.
 */
export function tokenizerIdForModelName(modelName: string): string {
  const name = modelName.split(":")[0];
  if (name.startsWith(LOCAL_MODEL_PREFIX)) return BYTE_LEVEL_TOKENIZER_ID;
  if (name.startsWith("meta-llama/Llama-3")) return LLAMA3_TOKENIZER_ID;
  const parts = name.split("/");
  if (parts.length === 3) return `${parts[0]}/${parts[1]}`;
  return name;
}

/** Applies Python's renames of tokenizer ids; other ids are returned unchanged. */
export function canonicalTokenizerId(id: string): string {
  return Object.hasOwn(TOKENIZER_ID_ALIASES, id) ? TOKENIZER_ID_ALIASES[id] : id;
}

/** The Hub revision Python pins for `id`, if any. */
export function pinnedTokenizerRevision(id: string): string | undefined {
  return Object.hasOwn(PINNED_TOKENIZER_REVISIONS, id) ? PINNED_TOKENIZER_REVISIONS[id] : undefined;
}

/** True for ids that Python loads from its private `tml_tokenizers` package. */
export function isPrivateTokenizerId(id: string): boolean {
  return PRIVATE_TOKENIZER_PREFIXES.some((prefix) => id.startsWith(prefix));
}
