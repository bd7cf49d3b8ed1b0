/**
 * Tokenizers for Tinker models: which one a model uses (`resolveTokenizerId`, the Python SDK's
 * rules) and loading it (`loadTokenizer`), behind one small `Tokenizer` interface.
 */

export {
  BYTE_LEVEL_BOS_TOKEN,
  BYTE_LEVEL_EOS_TOKEN,
  BYTE_LEVEL_VOCAB_SIZE,
  ByteLevelTokenizer,
} from "./byte-level.js";
export type { HuggingFaceTokenizerFiles, TokenizerMetadata } from "./huggingface.js";
export { tokenizerFromJSON } from "./huggingface.js";
export type {
  LoadTokenizerOptions,
  TokenizerFetch,
  TokenizerFileLoader,
  TokenizerFileName,
} from "./load.js";
export {
  clearTokenizerCache,
  DEFAULT_HUB_URL,
  hubFileUrl,
  loadTokenizer,
  TOKENIZER_CACHE_SIZE,
  TOKENIZER_FILES,
} from "./load.js";
export type { TokenizerInfo } from "./resolve.js";
export {
  BYTE_LEVEL_TOKENIZER_ID,
  canonicalTokenizerId,
  isPrivateTokenizerId,
  LLAMA3_TOKENIZER_ID,
  PINNED_TOKENIZER_REVISIONS,
  pinnedTokenizerRevision,
  resolveTokenizerId,
  tokenizerIdForModelName,
} from "./resolve.js";
export type { ChatTemplate, DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";
export { TokenizerError } from "./types.js";
