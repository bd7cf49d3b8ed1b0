/**
 * Llama 3 / 3.1: `<|begin_of_text|>` once, then per message
 * `<|start_header_id|>role<|end_header_id|>\n\n` + content (stripped of surrounding whitespace, the
 * template's `| trim`) + `<|eot_id|>`; the generation prompt is an assistant header.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { checkTextMessages, LabelledRenderer, requireToken } from "./common.js";
import { pyStrip } from "./text.js";
import { content, header, type RenderedTokens, TokenBuilder } from "./token-builder.js";
import type { MultimodalMessage } from "./types.js";

export class Llama3Renderer extends LabelledRenderer {
  readonly name = "llama3";
  readonly #bos: number;
  readonly #startHeader: number;
  readonly #endHeader: number;
  readonly #eot: number;

  constructor(tokenizer: Tokenizer) {
    super(tokenizer);
    this.#bos = tokenizer.bosTokenId ?? requireToken(tokenizer, "<|begin_of_text|>", this.name);
    this.#startHeader = requireToken(tokenizer, "<|start_header_id|>", this.name);
    this.#endHeader = requireToken(tokenizer, "<|end_header_id|>", this.name);
    this.#eot = requireToken(tokenizer, "<|eot_id|>", this.name);
  }

  stopSequences(): number[] {
    return [this.#eot];
  }

  protected render(input: readonly MultimodalMessage[], addGenerationPrompt: boolean): RenderedTokens {
    const messages = checkTextMessages(input, this.name);
    const out = new TokenBuilder(this.tokenizer);
    messages.forEach((message, i) => {
      // The template puts the BOS in front of the first message only (none for an empty conversation).
      if (i === 0) out.special(this.#bos);
      out.special(this.#startHeader, header(i)).text(message.role, header(i));
      out.special(this.#endHeader, header(i)).text("\n\n", header(i));
      out.text(pyStrip(message.content), content(i)).special(this.#eot, content(i));
    });
    if (addGenerationPrompt)
      out.special(this.#startHeader).text("assistant").special(this.#endHeader).text("\n\n");
    return out.finish();
  }
}
