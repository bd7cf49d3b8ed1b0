/**
 * The `model` of an OpenAI-compatible request to Tinker, in its three forms (public Tinker docs,
 * "OpenAI API compatible inference"):
 *
 *   - a base model ID, such as `Qwen/Qwen3-8B` or `thinkingmachines/Inkling:peft:262144`;
 *   - a checkpoint path saved for sampling, `tinker://<run>/sampler_weights/<name>`: it runs on the
 *     base model it was trained on;
 *   - `<base model ID>;<checkpoint path>`: the checkpoint on that base model, chosen for its context
 *     length (the base model must be the one the checkpoint was trained on).
 *
 * A context length is part of a base model ID as its `:peft:<tokens>` suffix.
 */
import { ValidationError } from "../core/errors.js";

export interface ModelSpec {
  /** The base model ID, when the string names one (with its `:peft:<n>` suffix, if any). */
  baseModel?: string;
  /** The `tinker://` checkpoint path, when the string names one. */
  checkpoint?: string;
}

const CHECKPOINT_SCHEME = "tinker://";
const CONTEXT_SUFFIX = /:peft:(\d+)$/;

function invalid(path: string, message: string): ValidationError {
  return new ValidationError([{ path, message }]);
}

/** The parts of a model string; a ValidationError when it has none of the three forms. */
export function parseModelString(model: string): ModelSpec {
  if (typeof model !== "string" || model.trim() === "") {
    throw invalid("model", "must be a base model ID, a tinker:// checkpoint path, or <base>;<path>");
  }
  const separator = model.indexOf(";");
  if (separator < 0) {
    return model.startsWith(CHECKPOINT_SCHEME) ? { checkpoint: model } : { baseModel: model };
  }
  const baseModel = model.slice(0, separator);
  const checkpoint = model.slice(separator + 1);
  if (baseModel === "" || baseModel.startsWith(CHECKPOINT_SCHEME)) {
    throw invalid("model", `"${model}": the part before ";" must be a base model ID`);
  }
  if (!checkpoint.startsWith(CHECKPOINT_SCHEME) || checkpoint.includes(";")) {
    throw invalid("model", `"${model}": the part after ";" must be one tinker:// checkpoint path`);
  }
  return { baseModel, checkpoint };
}

/** A base model ID with the context length `tokens` (its `:peft:<tokens>` suffix set or replaced). */
export function withContextLength(baseModel: string, tokens: number): string {
  if (!Number.isInteger(tokens) || tokens <= 0) {
    throw invalid("contextLength", `must be a positive integer, got ${String(tokens)}`);
  }
  if (baseModel === "" || baseModel.includes(";") || baseModel.startsWith(CHECKPOINT_SCHEME)) {
    throw invalid("baseModel", `"${baseModel}" is not a base model ID`);
  }
  return `${baseModel.replace(CONTEXT_SUFFIX, "")}:peft:${tokens}`;
}

/** The context length a base model ID asks for (its `:peft:<n>` suffix), if any. */
export function contextLengthOf(baseModel: string): number | undefined {
  const match = CONTEXT_SUFFIX.exec(baseModel);
  return match ? Number(match[1]) : undefined;
}

/** The base model ID without its context-length suffix. */
export function baseModelName(baseModel: string): string {
  return baseModel.replace(CONTEXT_SUFFIX, "");
}

/**
 * The model string for a checkpoint: the path alone, or `<base>;<path>` to run it on `baseModel`,
 * with `contextLength` applied to that base model when given.
 */
export function checkpointModel(
  checkpointPath: string,
  options: { baseModel?: string; contextLength?: number } = {},
): string {
  if (!checkpointPath.startsWith(CHECKPOINT_SCHEME) || checkpointPath.includes(";")) {
    throw invalid("checkpointPath", `must be a tinker:// checkpoint path, got "${checkpointPath}"`);
  }
  if (options.baseModel === undefined) {
    if (options.contextLength !== undefined) {
      throw invalid("baseModel", "a context length is set on the base model: give baseModel too");
    }
    return checkpointPath;
  }
  const base =
    options.contextLength === undefined
      ? options.baseModel
      : withContextLength(options.baseModel, options.contextLength);
  parseModelString(base); // refuses a base that is itself a path or a pair
  return `${base};${checkpointPath}`;
}
