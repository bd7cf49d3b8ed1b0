/**
 * The `Tokenizer` over a `@huggingface/tokenizers` backend. Only huggingface.ts imports this module,
 * and lazily, next to the library itself: programs that never load a Hugging Face tokenizer download
 * neither (the browser bundle's eager entry stays smaller by this code).
 *
 * Imports types only, so that a bundler puts it in a lazy chunk of its own rather than sharing
 * runtime code with the eager entry.
 */

import type { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import type { HuggingFaceTokenizerFiles, TokenizerMetadata } from "./huggingface.js";
import type { ChatTemplate, DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";

type JsonObject = Record<string, unknown>;

export class HuggingFaceTokenizer implements Tokenizer {
  readonly id: string;
  readonly revision: string | undefined;
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly chatTemplate: ChatTemplate | null;
  readonly #backend: HfTokenizer;
  readonly #cleanUpSpaces: boolean;

  constructor(backend: HfTokenizer, files: HuggingFaceTokenizerFiles, metadata: TokenizerMetadata) {
    const config = files.tokenizerConfig ?? {};
    this.#backend = backend;
    this.id = metadata.id;
    this.revision = metadata.revision;
    this.vocabSize = backend.model?.tokens_to_ids.size ?? 0;
    this.bosTokenId = this.#specialTokenId(config.bos_token);
    this.eosTokenId = this.#specialTokenId(config.eos_token);
    this.padTokenId = this.#specialTokenId(config.pad_token);
    const special = new Map<string, number>();
    for (const [id, token] of backend.get_added_tokens_decoder()) {
      if (token.special) special.set(token.content, id);
    }
    this.specialTokens = special;
    this.chatTemplate = chatTemplateOf(config.chat_template) ?? files.chatTemplateJinja ?? null;
    // transformers 5 never applies `clean_up_tokenization_spaces` to BPE models (it would eat the
    // spaces before punctuation) and defaults it to false for the others.
    const model = files.tokenizerJson.model as JsonObject | undefined;
    const isBpe = model?.type === "BPE" || (model?.type === undefined && model?.merges !== undefined);
    this.#cleanUpSpaces = !isBpe && config.clean_up_tokenization_spaces === true;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new TypeError("encode() takes a string");
    return this.#backend.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id))
        throw new TypeError(`decode() takes integer token ids; got ${id} at index ${i}`);
      // Unknown ids (a model's padded embedding rows, say) are dropped, as the Rust decoder does.
      if (this.#backend.id_to_token(id) !== undefined) known.push(id);
    }
    if (known.length === 0) return "";
    return this.#backend.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.#cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#backend.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#backend.id_to_token(id);
  }

  /** A `bos_token`/`eos_token`/`pad_token` config entry (a string or `{content}`) as an id. */
  #specialTokenId(entry: unknown): number | null {
    const content =
      typeof entry === "string"
        ? entry
        : typeof entry === "object" && entry !== null && typeof (entry as JsonObject).content === "string"
          ? ((entry as JsonObject).content as string)
          : undefined;
    if (content === undefined) return null;
    return this.#backend.token_to_id(content) ?? null;
  }
}

/** `chat_template` of a config: a string, or a list of `{name, template}` turned into a record. */
function chatTemplateOf(value: unknown): ChatTemplate | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const templates: Record<string, string> = {};
    for (const entry of value) {
      if (typeof entry === "object" && entry !== null) {
        const { name, template } = entry as JsonObject;
        if (typeof name === "string" && typeof template === "string") templates[name] = template;
      }
    }
    return Object.keys(templates).length > 0 ? templates : undefined;
  }
  if (typeof value === "object" && value !== null) {
    const templates = Object.fromEntries(
      Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
    );
    return Object.keys(templates).length > 0 ? templates : undefined;
  }
  return undefined;
}
