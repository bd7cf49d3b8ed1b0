/**
 * Datum builders: token sequences with per-token loss weights → the next-token-prediction `Datum`
 * that `forward` / `forwardBackward` take. The shift (inputs right-shifted, targets left-shifted)
 * happens in exactly one place, `datumFromTokensAndWeights`; the other builders only produce tokens
 * and weights and hand them to it.
 */
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { datum, ModelInput } from "../lib/model-input.js";
import type { Tokenizer } from "../lib/tokenizer/index.js";
import type { Datum } from "../wire/types.js";
import type { MultimodalMessage, Renderer, ToolSpec, TrainOnWhat } from "./renderers/index.js";

export interface DatumFromTokensOptions {
  /**
   * Keep only the first `maxLength` tokens (and their weights) of the full sequence, before the
   * shift — as the cookbook's `datum_from_model_input_weights` does. The datum then has
   * `maxLength - 1` input positions, and the last kept token is still a target. Truncation keeps
   * the start: for a conversation that is the system prompt and the first turns, so a long chat
   * loses its tail rather than its context.
   */
  maxLength?: number;
  /**
   * Accept a datum whose weights (after the shift and truncation) are all zero. It trains nothing
   * and is almost always a mistake (a truncation that cut every weighted token, a conversation with
   * no assistant turn), so it is an error unless asked for.
   */
  allowZeroWeights?: boolean;
}

/**
 * The datum for `tokens` with `weights[i]` the loss weight of predicting `tokens[i]`:
 * `model_input = tokens[0 … n-2]`, `target_tokens = tokens[1 … n-1]` (int64) and
 * `weights = weights[1 … n-1]` (float32). `weights[0]` is dropped: nothing predicts the first token.
 */
export function datumFromTokensAndWeights(
  tokens: readonly number[],
  weights: readonly number[],
  options: DatumFromTokensOptions = {},
): Datum {
  const issues: ValidationIssue[] = [];
  if (!Array.isArray(tokens)) issues.push({ path: "tokens", message: "must be an array of token ids" });
  if (!Array.isArray(weights)) issues.push({ path: "weights", message: "must be an array of numbers" });
  if (issues.length > 0) throw new ValidationError(issues);
  const { maxLength, allowZeroWeights = false } = options;
  if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= 2)) {
    throw new ValidationError([
      { path: "options.maxLength", message: `must be an integer ≥ 2, got ${String(maxLength)}` },
    ]);
  }
  if (tokens.length !== weights.length) {
    throw new ValidationError([
      {
        path: "weights",
        message: `has ${weights.length} entries for ${tokens.length} tokens; there must be one weight per token`,
      },
    ]);
  }
  const tokenIssue = firstIssue(tokens, "tokens", (t) =>
    Number.isSafeInteger(t) && t >= 0 ? undefined : "must be a non-negative integer token id",
  );
  const weightIssue = firstIssue(weights, "weights", (w) =>
    typeof w === "number" && Number.isFinite(w) && w >= 0 ? undefined : "must be a finite number ≥ 0",
  );
  if (tokenIssue) issues.push(tokenIssue);
  if (weightIssue) issues.push(weightIssue);
  if (issues.length > 0) throw new ValidationError(issues);

  const keep = maxLength === undefined ? tokens.length : Math.min(tokens.length, maxLength);
  if (keep < 2) {
    throw new ValidationError([
      {
        path: "tokens",
        message: `has ${tokens.length} token(s); a datum needs at least 2 (one input, one target)`,
      },
    ]);
  }
  const input = tokens.slice(0, keep - 1);
  const targets = tokens.slice(1, keep);
  const targetWeights = weights.slice(1, keep);
  if (!allowZeroWeights && targetWeights.every((w) => w === 0)) {
    const truncated = keep < tokens.length ? ` after truncation to maxLength ${keep}` : "";
    throw new ValidationError([
      {
        path: "weights",
        message: `are all zero${truncated}, so the datum trains nothing (pass allowZeroWeights to accept it)`,
      },
    ]);
  }
  return datum(ModelInput.fromInts(input), { target_tokens: targets, weights: targetWeights });
}

function firstIssue(
  values: readonly number[],
  name: string,
  check: (value: number) => string | undefined,
): ValidationIssue | undefined {
  for (let i = 0; i < values.length; i++) {
    const message = check(values[i]!);
    if (message) return { path: `${name}[${i}]`, message: `${message}, got ${String(values[i])}` };
  }
  return undefined;
}

export interface DatumFromConversationOptions extends DatumFromTokensOptions {
  /** Which tokens carry weight 1 (the renderer's default when unset, normally the last assistant turn). */
  trainOnWhat?: TrainOnWhat;
  /** Tools declared to the model, for the families that declare them. */
  tools?: readonly ToolSpec[];
}

/** The datum of a conversation rendered by `renderer`, weighted as `trainOnWhat` says. */
export function datumFromConversation(
  renderer: Renderer,
  messages: readonly MultimodalMessage[],
  options: DatumFromConversationOptions = {},
): Datum {
  const { trainOnWhat, tools, ...rest } = options;
  const example = renderer.buildSupervisedExample(
    messages,
    trainOnWhat === undefined && tools === undefined ? undefined : { trainOnWhat, tools },
  );
  return datumFromTokensAndWeights(example.tokens, example.weights, rest);
}

export interface DatumFromPromptCompletionOptions extends DatumFromTokensOptions {
  /**
   * End the completion with the tokenizer's EOS token (weighted, so the model learns to stop).
   * Default: true when the tokenizer declares an EOS token; `true` with a tokenizer that has none is
   * an error.
   */
  addEos?: boolean;
}

/**
 * A prompt → completion datum with weight 1 on the completion tokens (and the EOS) and 0 on the
 * prompt. Text is encoded with `tokenizer`: the prompt with its special tokens (e.g. BOS), the
 * completion without, so the pair tokenizes as the model will see it at sampling time (prompt
 * tokens, then generated ones). Token ids are used as given.
 */
export function datumFromPromptCompletion(
  tokenizer: Tokenizer,
  prompt: string | readonly number[],
  completion: string | readonly number[],
  options: DatumFromPromptCompletionOptions = {},
): Datum {
  const { addEos, ...rest } = options;
  const promptTokens = typeof prompt === "string" ? tokenizer.encode(prompt) : [...prompt];
  const completionTokens =
    typeof completion === "string"
      ? tokenizer.encode(completion, { addSpecialTokens: false })
      : [...completion];
  if (addEos === true && tokenizer.eosTokenId === null) {
    throw new ValidationError([
      { path: "options.addEos", message: `tokenizer ${tokenizer.id} declares no EOS token` },
    ]);
  }
  if (addEos ?? tokenizer.eosTokenId !== null) completionTokens.push(tokenizer.eosTokenId!);
  if (completionTokens.length === 0) {
    throw new ValidationError([{ path: "completion", message: "is empty: there is nothing to train on" }]);
  }
  const tokens = [...promptTokens, ...completionTokens];
  const weights = [...promptTokens.map(() => 0), ...completionTokens.map(() => 1)];
  return datumFromTokensAndWeights(tokens, weights, rest);
}
