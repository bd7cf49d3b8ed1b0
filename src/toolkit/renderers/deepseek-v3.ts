/**
 * DeepSeek V3: BOS, then every system message's content (joined by blank lines) as a preamble, then
 * `<｜User｜>content` and `<｜Assistant｜>content<｜end▁of▁sentence｜>` turns; tool results go in
 * `<｜tool▁outputs▁begin｜>…<｜tool▁outputs▁end｜>` and the assistant turn after them has no
 * `<｜Assistant｜>` marker — all as the DeepSeek-V3 chat template does.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { checkTextMessages, LabelledRenderer, requireToken } from "./common.js";
import { content, header, type RenderedTokens, TokenBuilder } from "./token-builder.js";
import type { MultimodalMessage } from "./types.js";

export class DeepSeekV3Renderer extends LabelledRenderer {
  readonly name = "deepseek_v3";
  readonly #bos: number;
  readonly #eos: number;
  readonly #user: number;
  readonly #assistant: number;
  readonly #outputsBegin: number;
  readonly #outputsEnd: number;
  readonly #outputBegin: number;
  readonly #outputEnd: number;

  constructor(tokenizer: Tokenizer) {
    super(tokenizer);
    this.#bos = requireToken(tokenizer, "<｜begin▁of▁sentence｜>", this.name);
    this.#eos = requireToken(tokenizer, "<｜end▁of▁sentence｜>", this.name);
    this.#user = requireToken(tokenizer, "<｜User｜>", this.name);
    this.#assistant = requireToken(tokenizer, "<｜Assistant｜>", this.name);
    this.#outputsBegin = requireToken(tokenizer, "<｜tool▁outputs▁begin｜>", this.name);
    this.#outputsEnd = requireToken(tokenizer, "<｜tool▁outputs▁end｜>", this.name);
    this.#outputBegin = requireToken(tokenizer, "<｜tool▁output▁begin｜>", this.name);
    this.#outputEnd = requireToken(tokenizer, "<｜tool▁output▁end｜>", this.name);
  }

  stopSequences(): number[] {
    return [this.#eos];
  }

  protected render(input: readonly MultimodalMessage[], addGenerationPrompt: boolean): RenderedTokens {
    const messages = checkTextMessages(input, this.name, ["system", "user", "assistant", "tool"]);
    const out = new TokenBuilder(this.tokenizer);
    out.special(this.#bos);
    let firstSystem = true;
    messages.forEach((message, i) => {
      if (message.role !== "system") return;
      if (!firstSystem) out.text("\n\n");
      out.text(message.content, content(i));
      firstSystem = false;
    });
    let inToolOutputs = false;
    // The template never resets this flag: a second run of tool results starts without outputs_begin.
    let firstToolOutput = true;
    messages.forEach((message, i) => {
      if (message.role === "user") {
        inToolOutputs = false;
        out.special(this.#user, header(i)).text(message.content, content(i));
      } else if (message.role === "assistant") {
        out.special(inToolOutputs ? this.#outputsEnd : this.#assistant, header(i));
        out.text(message.content, content(i)).special(this.#eos, content(i));
        inToolOutputs = false;
      } else if (message.role === "tool") {
        inToolOutputs = true;
        if (firstToolOutput) out.special(this.#outputsBegin, header(i));
        else out.text("\n", header(i));
        out.special(this.#outputBegin, header(i)).text(message.content, content(i));
        out.special(this.#outputEnd, content(i));
        firstToolOutput = false;
      }
    });
    if (inToolOutputs) out.special(this.#outputsEnd);
    else if (addGenerationPrompt) out.special(this.#assistant);
    return out.finish();
  }
}
