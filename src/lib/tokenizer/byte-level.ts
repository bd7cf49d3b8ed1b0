/**
 * The local backend's byte-level tokenizer, for the SDK side: ids 0–255 are the UTF-8 bytes of the
 * text, 256 is `<|bos|>`, 257 is `<|eos|>`. No I/O, no merges.
 */

import { BYTE_LEVEL_TOKENIZER_ID } from "./resolve.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";

// The SDK must not import src/local/, so these duplicate the constants of
// src/local/engine/tokenizer.ts (BOS_TOKEN, EOS_TOKEN, VOCAB_SIZE, TOKENIZER_ID).
// test/tokenizer-byte-level.test.ts checks that both agree.
/** Id of `<|bos|>`. */
export const BYTE_LEVEL_BOS_TOKEN = 256;
/** Id of `<|eos|>`. */
export const BYTE_LEVEL_EOS_TOKEN = 257;
/** 256 byte values and the two special tokens. */
export const BYTE_LEVEL_VOCAB_SIZE = 258;

const BOS_TEXT = "<|bos|>";
const EOS_TEXT = "<|eos|>";

const textEncoder = new TextEncoder();

function isByte(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < 256;
}

/**
 * Byte-level tokenizer of the local backend (`tinker-ts/byte-level`).
 *
 * - `encode` never turns text into special tokens (the text "<|bos|>" is seven bytes), as the
 *   engine's `encodeText`; with `addSpecialTokens` (the default) it puts `<|bos|>` first, as the
 *   engine's prompts do (Llama 3 style: BOS, no EOS).
 * - `decode` writes special tokens as `<|bos|>`/`<|eos|>` and unknown ids as `<|unk:N|>`, as the
 *   engine's `decodeTokens`; invalid UTF-8 becomes U+FFFD. Unlike the engine, a leading U+FEFF is
 *   kept, so that every text round-trips.
 * - Byte tokens are named `<0xNN>` for `idToToken`/`tokenToId`.
 */
export class ByteLevelTokenizer implements Tokenizer {
  readonly id = BYTE_LEVEL_TOKENIZER_ID;
  readonly revision = undefined;
  readonly vocabSize = BYTE_LEVEL_VOCAB_SIZE;
  readonly bosTokenId = BYTE_LEVEL_BOS_TOKEN;
  readonly eosTokenId = BYTE_LEVEL_EOS_TOKEN;
  readonly padTokenId = null;
  readonly specialTokens: ReadonlyMap<string, number> = new Map([
    [BOS_TEXT, BYTE_LEVEL_BOS_TOKEN],
    [EOS_TEXT, BYTE_LEVEL_EOS_TOKEN],
  ]);
  readonly chatTemplate = null;

  encode(text: string, options: EncodeOptions = {}): number[] {
    const bytes = Array.from(textEncoder.encode(text));
    return (options.addSpecialTokens ?? true) ? [BYTE_LEVEL_BOS_TOKEN, ...bytes] : bytes;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? false;
    // A fresh decoder per run of bytes: no state carried across calls or across special tokens.
    const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    let text = "";
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) {
        text += decoder.decode(new Uint8Array(run));
        run = [];
      }
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (isByte(id)) {
        run.push(id);
        continue;
      }
      flush();
      if (id === BYTE_LEVEL_BOS_TOKEN) {
        if (!skipSpecial) text += BOS_TEXT;
      } else if (id === BYTE_LEVEL_EOS_TOKEN) {
        if (!skipSpecial) text += EOS_TEXT;
      } else {
        text += `<|unk:${id}|>`;
      }
    }
    flush();
    return text;
  }

  tokenToId(token: string): number | undefined {
    if (token === BOS_TEXT) return BYTE_LEVEL_BOS_TOKEN;
    if (token === EOS_TEXT) return BYTE_LEVEL_EOS_TOKEN;
    const match = /^<0x([0-9A-F]{2})>$/.exec(token);
    return match ? Number.parseInt(match[1], 16) : undefined;
  }

  idToToken(id: number): string | undefined {
    if (id === BYTE_LEVEL_BOS_TOKEN) return BOS_TEXT;
    if (id === BYTE_LEVEL_EOS_TOKEN) return EOS_TEXT;
    return isByte(id) ? `<0x${id.toString(16).toUpperCase().padStart(2, "0")}>` : undefined;
  }
}
