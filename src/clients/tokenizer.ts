/**
 * The clients' `getTokenizer()`: a model's tokenizer, resolved as the official client does and
 * loaded. The resolver and the loader (with the byte-level tokenizer and the Hugging Face glue) are
 * imported with the first call (./tokenizer-loader.ts), so an app that never asks for a tokenizer
 * does not download them (docs/PERFORMANCE.md (e)); later calls reuse the loaded module and the
 * loader's cache.
 */
import type { LoadTokenizerOptions } from "../lib/tokenizer/load.js";
import type { TokenizerInfo } from "../lib/tokenizer/resolve.js";
import type { Tokenizer } from "../lib/tokenizer/types.js";
import { loadOnFirstUse } from "./load-on-first-use.js";

const loadLoader = /* @__PURE__ */ loadOnFirstUse("tokenizer loader", () => import("./tokenizer-loader.js"));

/** The tokenizer of the model `info` describes (`get_info`'s answer, or just its name). */
export async function modelTokenizer(info: TokenizerInfo, options: LoadTokenizerOptions): Promise<Tokenizer> {
  return (await loadLoader()).loadModelTokenizer(info, options);
}
