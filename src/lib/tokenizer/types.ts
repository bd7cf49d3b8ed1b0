/**
 * The tokenizer the SDK hands out (`TrainingClient.getTokenizer()`, `SamplingClient.getTokenizer()`):
 * a small interface in front of either the built-in byte-level tokenizer of the local backend or a
 * Hugging Face `tokenizer.json`, so callers never see which library does the work.
 */

import { TinkerError } from "../../core/errors.js";

export interface EncodeOptions {
  /**
   * Add the special tokens the tokenizer's post-processor adds (Llama 3: `<|begin_of_text|>` first;
   * Qwen: nothing). Default `true`, as Python's `tokenizer.encode`.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens (BOS, EOS, chat markers…) out of the text. Default `false`, as Python. */
  skipSpecialTokens?: boolean;
}

/**
 * A chat template as found in `tokenizer_config.json` (or `chat_template.jinja`): one Jinja source,
 * or several by name when the config lists `[{name, template}]`. Kept raw: rendering it is not done
 * here.
 */
export type ChatTemplate = string | Readonly<Record<string, string>>;

export interface Tokenizer {
  /** The tokenizer's id: a Hugging Face repo id (`Qwen/Qwen3-8B`) or `tinker-ts/byte-level`. */
  readonly id: string;
  /** The Hub revision it was loaded from, when it came from the Hub. */
  readonly revision: string | undefined;
  /** Number of token ids it knows: base vocabulary plus added tokens (Python's `len(tokenizer)`). */
  readonly vocabSize: number;
  /** Id of the beginning-of-sequence token, or null when the tokenizer has none (or none is declared). */
  readonly bosTokenId: number | null;
  /** Id of the end-of-sequence token, or null when none is declared. */
  readonly eosTokenId: number | null;
  /** Id of the padding token, or null when none is declared. */
  readonly padTokenId: number | null;
  /** Every special token, text → id. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** The raw chat template, or null when the tokenizer ships none. */
  readonly chatTemplate: ChatTemplate | null;
  /** Token ids of `text`. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of `ids`. Ids the tokenizer does not know are left out, as Hugging Face's decoder does. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The vocabulary entry of a token's text, or undefined. */
  tokenToId(token: string): number | undefined;
  /** The vocabulary entry of an id, or undefined. */
  idToToken(id: number): string | undefined;
}

/** A tokenizer could not be resolved or loaded. `cause` holds the underlying error, if any. */
export class TokenizerError extends TinkerError {
  protected static override readonly brand: string = "TokenizerError";
  /** The tokenizer id concerned, when known. */
  readonly tokenizerId: string | undefined;
  /** The HTTP status of the failed download, when there was one. */
  readonly status: number | undefined;

  constructor(message: string, details: { tokenizerId?: string; status?: number; cause?: unknown } = {}) {
    super(message, { cause: details.cause });
    this.tokenizerId = details.tokenizerId;
    this.status = details.status;
  }
}
