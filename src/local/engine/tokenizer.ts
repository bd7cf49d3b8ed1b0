/**
 * Byte-level tokenizer: ids 0..255 are the UTF-8 bytes themselves, followed by two specials.
 * A byte vocabulary needs no merge tables, round-trips any text exactly, and keeps the model's
 * unembedding small enough for a pure-TypeScript engine.
 */

export const BOS_TOKEN = 256;
export const EOS_TOKEN = 257;
export const VOCAB_SIZE = 258;
export const TOKENIZER_ID = "tinker-ts/byte-level";

const SPECIAL_TOKEN_NAMES: Readonly<Record<number, string>> = {
  [BOS_TOKEN]: "<|bos|>",
  [EOS_TOKEN]: "<|eos|>",
};

const textEncoder = new TextEncoder();

/** UTF-8 bytes of `text` as token ids. Never emits special tokens, even for the text "<|bos|>". */
export function encodeText(text: string): number[] {
  return Array.from(textEncoder.encode(text));
}

/**
 * Renders token ids as text. Special tokens appear as their names; invalid UTF-8 (for example a
 * sample cut in the middle of a multi-byte character) becomes U+FFFD instead of throwing, because
 * sampled byte sequences are not guaranteed to be valid UTF-8.
 */
export function decodeTokens(tokens: ArrayLike<number>): string {
  // A fresh decoder per call: TextDecoder keeps state between `stream: true` calls, and a shared
  // instance would make this function non-reentrant for no real gain.
  const decoder = new TextDecoder("utf-8", { fatal: false });
  let text = "";
  let run: number[] = [];
  const flushBytes = () => {
    if (run.length > 0) {
      text += decoder.decode(new Uint8Array(run));
      run = [];
    }
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (Number.isInteger(token) && token >= 0 && token < 256) {
      run.push(token);
      continue;
    }
    flushBytes();
    text += SPECIAL_TOKEN_NAMES[token] ?? `<|unk:${token}|>`;
  }
  flushBytes();
  return text;
}

/** True when `token` is an integer id the model can read or emit. */
export function isValidToken(token: number): boolean {
  return Number.isInteger(token) && token >= 0 && token < VOCAB_SIZE;
}
