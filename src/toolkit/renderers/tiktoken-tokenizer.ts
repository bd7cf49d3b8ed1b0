/**
 * A `Tokenizer` from tiktoken-style files, for models whose tokenizer is not a Hugging Face
 * `tokenizer.json` (Kimi K2.x ships `tiktoken.model` plus its special tokens). The caller supplies
 * the ranks and the pre-tokenizer pattern; nothing is downloaded. The implementation
 * (tiktoken-bpe.ts) is imported on first use, like the Hugging Face tokenizer library.
 */

import { lazyImport } from "../../internal/lazy-import.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import type { TiktokenTokenizerOptions } from "./tiktoken-bpe.js";

export type { TiktokenTokenizerOptions } from "./tiktoken-bpe.js";

const loadBpe = /* @__PURE__ */ lazyImport(() => import("./tiktoken-bpe.js"));

/** A tokenizer over tiktoken-style ranks and special tokens (Kimi K2.x's `tiktoken.model`). */
export async function tiktokenTokenizer(options: TiktokenTokenizerOptions): Promise<Tokenizer> {
  const { TiktokenTokenizer } = await loadBpe();
  return new TiktokenTokenizer(options);
}
