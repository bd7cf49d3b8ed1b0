/**
 * Hugging Face `tokenizer.json` tokenizers, run by `@huggingface/tokenizers` (pure JavaScript, no
 * dependencies). The library and our wrapper around it (huggingface-tokenizer.ts) are imported
 * lazily, in parallel, so programs that never load a Hugging Face tokenizer never load either.
 */

import type { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { lazyImport } from "../../internal/lazy-import.js";
import type { Tokenizer } from "./types.js";
import { TokenizerError } from "./types.js";

type JsonObject = Record<string, unknown>;

/** What a Hugging Face tokenizer is made of: the files of its repo, parsed. */
export interface HuggingFaceTokenizerFiles {
  /** The parsed `tokenizer.json`. */
  tokenizerJson: JsonObject;
  /** The parsed `tokenizer_config.json`, if the repo has one (special tokens, chat template). */
  tokenizerConfig?: JsonObject | null;
  /** The content of `chat_template.jinja`, used when the config has no `chat_template`. */
  chatTemplateJinja?: string | null;
}

export interface TokenizerMetadata {
  /** The id reported by `Tokenizer.id`. */
  id: string;
  /** The revision reported by `Tokenizer.revision`. */
  revision?: string;
}

const loadLibrary = /* @__PURE__ */ lazyImport(() =>
  import("@huggingface/tokenizers").catch((error: unknown) => {
    throw new TokenizerError(
      "loading a Hugging Face tokenizer needs the package @huggingface/tokenizers; install it next to tinker-ts",
      { cause: error },
    );
  }),
);

const loadWrapper = /* @__PURE__ */ lazyImport(() => import("./huggingface-tokenizer.js"));

/**
 * A tokenizer from parsed `tokenizer.json` (+ `tokenizer_config.json`) content, for callers that
 * already have the files (bundled, from a cache, …). No I/O besides the lazy import of the library.
 */
export async function tokenizerFromJSON(
  files: HuggingFaceTokenizerFiles,
  metadata: TokenizerMetadata,
): Promise<Tokenizer> {
  const [{ Tokenizer: HfTokenizerClass }, { HuggingFaceTokenizer }] = await Promise.all([
    loadLibrary(),
    loadWrapper(),
  ]);
  const config = files.tokenizerConfig ?? {};
  let backend: HfTokenizer;
  try {
    backend = new HfTokenizerClass(files.tokenizerJson, config);
  } catch (error) {
    throw new TokenizerError(`cannot build tokenizer ${metadata.id}: ${errorMessage(error)}`, {
      tokenizerId: metadata.id,
      cause: error,
    });
  }
  return new HuggingFaceTokenizer(backend, files, metadata);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
