/**
 * Building a rendered conversation token by token while remembering, for each token, which message
 * it belongs to and whether it is that message's header (what the generation prompt supplies) or its
 * content (what the model produces, end-of-turn token included).
 *
 * Special tokens go in as ids. Text goes in as pieces that are encoded together up to the next
 * special token, because that is how a Hugging Face tokenizer treats the template's rendered string
 * (it splits at added tokens first, then runs the pre-tokenizer and the model on each stretch of
 * text): encoding each piece alone could merge characters differently (`"\n" + "\n\nHi"` is not
 * `"\n\n\nHi"` to a BPE). Where a stretch holds pieces with different labels, the token boundary
 * between them is found by encoding the stretch's prefix; a token that straddles two pieces goes to
 * the later one.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";

/** A token outside every message (a BOS, the separator between turns, the system preamble). */
export const NO_MESSAGE = -1;

export interface TokenLabel {
  /** Index of the message in the conversation, or `NO_MESSAGE`. */
  message: number;
  /** True for a message's content (and end-of-turn token); false for its header. */
  content: boolean;
}

/** A rendered conversation: its tokens and, per token, the message and part it came from. */
export interface RenderedTokens {
  tokens: number[];
  messageOf: number[];
  isContent: boolean[];
}

const STRUCTURE: TokenLabel = { message: NO_MESSAGE, content: false };

interface TextPiece {
  text: string;
  label: TokenLabel;
}

export class TokenBuilder {
  readonly #tokenizer: Tokenizer;
  readonly #out: RenderedTokens = { tokens: [], messageOf: [], isContent: [] };
  #pending: TextPiece[] = [];

  constructor(tokenizer: Tokenizer) {
    this.#tokenizer = tokenizer;
  }

  /** Appends a special token's id. */
  special(id: number, label: TokenLabel = STRUCTURE): this {
    this.flush();
    this.#push(id, label);
    return this;
  }

  /** Appends token ids as they are (an image's chunk). */
  ids(ids: readonly number[], label: TokenLabel = STRUCTURE): this {
    this.flush();
    for (const id of ids) this.#push(id, label);
    return this;
  }

  /** Appends text; it is encoded together with the text around it, up to the next special token. */
  text(text: string, label: TokenLabel = STRUCTURE): this {
    if (text.length === 0) return this;
    const last = this.#pending.at(-1);
    if (last !== undefined && sameLabel(last.label, label)) last.text += text;
    else this.#pending.push({ text, label });
    return this;
  }

  /**
   * Encodes the pending text now. Renderers whose format is their own (role_colon) call it between a
   * header and its content so that the content encodes exactly as a sampled reply would.
   */
  flush(): this {
    const pieces = this.#pending;
    if (pieces.length === 0) return this;
    this.#pending = [];
    const full = pieces.map((piece) => piece.text).join("");
    const ids = this.#tokenizer.encode(full, { addSpecialTokens: false });
    let start = 0;
    let chars = 0;
    for (let p = 0; p < pieces.length; p++) {
      const piece = pieces[p]!;
      chars += piece.text.length;
      const end =
        p === pieces.length - 1 ? ids.length : Math.max(start, this.#boundary(full.slice(0, chars), ids));
      for (let i = start; i < end; i++) this.#push(ids[i]!, piece.label);
      start = end;
    }
    return this;
  }

  finish(): RenderedTokens {
    this.flush();
    return this.#out;
  }

  /** Number of leading tokens of `ids` that `prefix` alone encodes to (the shared token prefix). */
  #boundary(prefix: string, ids: readonly number[]): number {
    return commonPrefixLength(this.#tokenizer.encode(prefix, { addSpecialTokens: false }), ids);
  }

  #push(id: number, label: TokenLabel): void {
    this.#out.tokens.push(id);
    this.#out.messageOf.push(label.message);
    this.#out.isContent.push(label.content);
  }
}

export function header(message: number): TokenLabel {
  return { message, content: false };
}

export function content(message: number): TokenLabel {
  return { message, content: true };
}

function sameLabel(a: TokenLabel, b: TokenLabel): boolean {
  return a.message === b.message && a.content === b.content;
}

export function commonPrefixLength<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
