/** What `getTokenizer()` loads with its first call (./tokenizer.ts): the resolver and the loader. */

// For the bundle's layout only: see the same import in ./service-training.ts.
import "../index.js";
import { type LoadTokenizerOptions, loadTokenizer } from "../lib/tokenizer/load.js";
import { resolveTokenizerId, type TokenizerInfo } from "../lib/tokenizer/resolve.js";
import type { Tokenizer } from "../lib/tokenizer/types.js";

export function loadModelTokenizer(info: TokenizerInfo, options: LoadTokenizerOptions): Promise<Tokenizer> {
  return loadTokenizer(resolveTokenizerId(info), options);
}
