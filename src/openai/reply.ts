/**
 * A sampled reply as OpenAI-shaped answers give it: the text of the generated tokens, without the
 * token that ended the turn and cut before the first stop string, handed out token by token for a
 * stream. A streamed reply's pieces join to exactly the text of the same reply given whole, because
 * both come from this one assembler: text that may still turn out to be part of a stop string, or
 * the first bytes of a character, is held back until the next token decides.
 */

/** One generated token, with what the sampler reported for it. */
export interface SampledTokenInfo {
  token: number;
  /** Untempered log-probability of the token. */
  logprob: number;
  /** The most likely [token, logprob] pairs at its position, best first, when asked for. */
  topk?: readonly (readonly [number, number])[];
}

/** What may be sent now: new text and the tokens whose text it starts. */
export interface ReplyPiece {
  text: string;
  tokens: SampledTokenInfo[];
}

const REPLACEMENT = "\uFFFD";

export class ReplyAssembler {
  readonly #decode: (tokens: number[]) => string;
  readonly #endTokens: ReadonlySet<number>;
  readonly #stop: readonly string[];
  readonly #tokens: SampledTokenInfo[] = [];
  /** Text length before each token of #tokens. */
  readonly #starts: number[] = [];
  #text = "";
  #sent = 0;
  #tokensSent = 0;
  /** Text length where a stop string begins, once one has appeared. */
  #cut: number | undefined;
  #ended: "stop" | undefined;
  #generated = 0;

  /**
   * @param decode the tokenizer's decoding (special tokens left out)
   * @param endTokens tokens that end the turn (the renderer's stop sequences, EOS)
   * @param stop strings the reply ends before (OpenAI's `stop`)
   */
  constructor(
    decode: (tokens: number[]) => string,
    endTokens: Iterable<number> = [],
    stop: readonly string[] = [],
  ) {
    this.#decode = decode;
    this.#endTokens = new Set(endTokens);
    this.#stop = stop.filter((s) => s.length > 0);
  }

  /** True once an end token or a stop string has ended the reply; later tokens are ignored. */
  get done(): boolean {
    return this.#ended !== undefined;
  }

  /** Every token pushed, the ones after the end included (what usage counts as generated). */
  get generatedTokens(): number {
    return this.#generated;
  }

  /** Adds the next sampled token; returns what can be sent now. */
  push(sampled: SampledTokenInfo): ReplyPiece {
    this.#generated++;
    if (this.done) return { text: "", tokens: [] };
    if (this.#endTokens.has(sampled.token)) {
      this.#ended = "stop";
      return { text: "", tokens: [] };
    }
    this.#starts.push(this.#settledLength());
    this.#tokens.push(sampled);
    this.#text = this.#decode(this.#tokens.map((t) => t.token));
    const settled = this.#settledLength();
    const cut = this.#firstStop(settled);
    if (cut !== undefined) {
      this.#cut = cut;
      this.#ended = "stop";
      return this.#handOut(cut);
    }
    return this.#handOut(settled - this.#heldForStop(settled));
  }

  /**
   * Ends the reply: the rest of its text and tokens, and why it ended (`length` when neither an end
   * token nor a stop string did).
   */
  finish(): ReplyPiece & { finishReason: "stop" | "length" } {
    const piece = this.#handOut(this.#cut ?? this.#text.length);
    return { ...piece, finishReason: this.#ended ?? "length" };
  }

  /** The reply's whole text (after `finish`). */
  get text(): string {
    return this.#text.slice(0, this.#cut ?? this.#text.length);
  }

  /** The tokens whose text is part of the reply (after `finish`). */
  get tokens(): SampledTokenInfo[] {
    const end = this.text.length;
    return this.#tokens.filter((_, i) => this.#starts[i]! < end);
  }

  /** The text that cannot change any more: without a trailing incomplete character. */
  #settledLength(): number {
    let end = this.#text.length;
    while (end > 0 && this.#text[end - 1] === REPLACEMENT) end--;
    return end;
  }

  #firstStop(settled: number): number | undefined {
    let first: number | undefined;
    const text = this.#text.slice(0, settled);
    for (const stop of this.#stop) {
      const at = text.indexOf(stop);
      if (at >= 0 && (first === undefined || at < first)) first = at;
    }
    return first;
  }

  /** How much of the settled text's end could be the start of a stop string. */
  #heldForStop(settled: number): number {
    let held = 0;
    for (const stop of this.#stop) {
      for (let k = Math.min(stop.length - 1, settled); k > held; k--) {
        if (this.#text.slice(settled - k, settled) === stop.slice(0, k)) {
          held = k;
          break;
        }
      }
    }
    return held;
  }

  #handOut(upTo: number): ReplyPiece {
    const end = Math.max(upTo, this.#sent);
    const text = this.#text.slice(this.#sent, end);
    this.#sent = end;
    const tokens: SampledTokenInfo[] = [];
    while (this.#tokensSent < this.#tokens.length && this.#starts[this.#tokensSent]! < end) {
      tokens.push(this.#tokens[this.#tokensSent++]!);
    }
    return { text, tokens };
  }
}
