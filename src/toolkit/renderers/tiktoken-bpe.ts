/**
 * The tiktoken-style tokenizer itself, imported by tiktoken-tokenizer.ts on first use (so the toolkit
 * entry does not carry it for apps that never build one).
 *
 * Encoding is tiktoken's: special tokens are recognised anywhere in the text (as a Hugging Face
 * tokenizer recognises added tokens, which is what chat templates rely on), the rest is split by
 * `pattern` into pieces, and each piece's UTF-8 bytes are merged pairwise, lowest rank first.
 */

import { bytesToBinaryString } from "../../internal/base64.js";
import type { ChatTemplate, Tokenizer } from "../../lib/tokenizer/index.js";
import { TokenizerError } from "../../lib/tokenizer/types.js";

export interface TiktokenTokenizerOptions {
  /** What `Tokenizer.id` reports. Default `tiktoken`. */
  id?: string;
  /**
   * The byte-pair ranks: the text of a tiktoken rank file (`<base64 bytes> <rank>` per line), or the
   * pairs themselves. A token's id is its rank. Every single byte must have a rank.
   */
  ranks: string | Iterable<readonly [Uint8Array, number]>;
  /** Special tokens, text → id (`<|im_end|>`, `<think>`, …). */
  specialTokens?: Readonly<Record<string, number>>;
  /** The pre-tokenizer: text between special tokens is cut into this pattern's matches (use the `u` flag). */
  pattern: RegExp;
  /** The special token that begins a sequence, when the model has one. */
  bosToken?: string;
  /** The special token that ends a sequence (what sampling stops at), when the model has one. */
  eosToken?: string;
  /** The special token used for padding, when the model has one. */
  padToken?: string;
  /** Put the BOS in front when `encode` is asked to add special tokens. Default false. */
  addBosToken?: boolean;
  /** The model's chat template, for `chat_template` renderers over this tokenizer; none by default. */
  chatTemplate?: ChatTemplate | null;
}

const utf8 = new TextEncoder();

/** Bytes as a binary string (one char per byte): the key ranks are looked up by. */
const binary = bytesToBinaryString;

function parseRanks(ranks: TiktokenTokenizerOptions["ranks"]): Map<string, number> {
  const out = new Map<string, number>();
  if (typeof ranks !== "string") {
    for (const [bytes, rank] of ranks) out.set(binary(bytes), rank);
    return out;
  }
  ranks.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const [token, rank] = line.trim().split(/\s+/);
    const id = Number(rank);
    let bytes: string;
    try {
      bytes = atob(token!);
    } catch {
      bytes = "";
    }
    if (bytes === "" || !Number.isInteger(id) || id < 0) {
      throw new TokenizerError(`tiktoken ranks, line ${i + 1}: expected "<base64 bytes> <rank>"`);
    }
    out.set(bytes, id);
  });
  return out;
}

export class TiktokenTokenizer implements Tokenizer {
  readonly id: string;
  readonly revision = undefined;
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly chatTemplate: ChatTemplate | null;
  readonly #ranks: Map<string, number>;
  readonly #bytesOf = new Map<number, string>();
  readonly #specialOf = new Map<number, string>();
  readonly #pattern: RegExp;
  readonly #specialPattern: RegExp | undefined;
  readonly #addBos: boolean;

  constructor(options: TiktokenTokenizerOptions) {
    this.id = options.id ?? "tiktoken";
    this.#ranks = parseRanks(options.ranks);
    for (const [bytes, id] of this.#ranks) this.#bytesOf.set(id, bytes);
    this.specialTokens = new Map(Object.entries(options.specialTokens ?? {}));
    for (const [text, id] of this.specialTokens) this.#specialOf.set(id, text);
    const flags = new Set(`${options.pattern.flags}gu`);
    flags.delete("y");
    this.#pattern = new RegExp(options.pattern.source, [...flags].join(""));
    // Longest first, so that `<|im_end|>` wins over a special token that is its prefix.
    const specials = [...this.specialTokens.keys()].sort((a, b) => b.length - a.length);
    this.#specialPattern =
      specials.length === 0
        ? undefined
        : new RegExp(specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
    const special = (token: string | undefined, what: string): number | null => {
      if (token === undefined) return null;
      const id = this.specialTokens.get(token);
      if (id === undefined) throw new TokenizerError(`the ${what} token ${token} is not a special token`);
      return id;
    };
    this.bosTokenId = special(options.bosToken, "BOS");
    this.eosTokenId = special(options.eosToken, "EOS");
    this.padTokenId = special(options.padToken, "padding");
    this.#addBos = options.addBosToken ?? false;
    this.chatTemplate = options.chatTemplate ?? null;
    let top = -1;
    for (const id of [...this.#bytesOf.keys(), ...this.#specialOf.keys()]) top = Math.max(top, id);
    this.vocabSize = top + 1;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== "string") throw new TypeError("encode() takes a string");
    const ids: number[] = [];
    if (this.#addBos && (options.addSpecialTokens ?? true) && this.bosTokenId !== null)
      ids.push(this.bosTokenId);
    let from = 0;
    if (this.#specialPattern !== undefined) {
      for (const match of text.matchAll(this.#specialPattern)) {
        this.#encodeOrdinary(text.slice(from, match.index), ids);
        ids.push(this.specialTokens.get(match[0])!);
        from = match.index + match[0].length;
      }
    }
    this.#encodeOrdinary(text.slice(from), ids);
    return ids;
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const special = this.#specialOf.get(id);
      const piece =
        special === undefined
          ? this.#bytesOf.get(id)
          : options.skipSpecialTokens
            ? undefined
            : binary(utf8.encode(special));
      // Unknown ids are left out, as Hugging Face's decoder does.
      if (piece !== undefined) for (let k = 0; k < piece.length; k++) bytes.push(piece.charCodeAt(k));
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }

  tokenToId(token: string): number | undefined {
    return this.specialTokens.get(token) ?? this.#ranks.get(binary(utf8.encode(token)));
  }

  idToToken(id: number): string | undefined {
    const special = this.#specialOf.get(id);
    if (special !== undefined) return special;
    const bytes = this.#bytesOf.get(id);
    return bytes === undefined
      ? undefined
      : new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
  }

  #encodeOrdinary(text: string, ids: number[]): void {
    for (const match of text.matchAll(this.#pattern)) {
      if (match[0] === "") continue;
      const piece = binary(utf8.encode(match[0]));
      const whole = this.#ranks.get(piece);
      if (whole !== undefined) ids.push(whole);
      else for (const part of this.#merge(piece)) ids.push(this.#rank(part));
    }
  }

  /** tiktoken's byte-pair merge: repeatedly join the adjacent pair whose join has the lowest rank. */
  #merge(piece: string): string[] {
    const parts = [...piece];
    for (;;) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < parts.length; i++) {
        const rank = this.#ranks.get(parts[i]! + parts[i + 1]!);
        if (rank !== undefined && rank < bestRank) {
          best = i;
          bestRank = rank;
        }
      }
      if (best < 0) return parts;
      parts.splice(best, 2, parts[best]! + parts[best + 1]!);
    }
  }

  #rank(part: string): number {
    const rank = this.#ranks.get(part);
    if (rank === undefined) {
      const hex = [...part].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join(" ");
      throw new TokenizerError(`tokenizer ${this.id} has no rank for the bytes ${hex}`, {
        tokenizerId: this.id,
      });
    }
    return rank;
  }
}
