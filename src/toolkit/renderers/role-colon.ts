/**
 * A plain-text format for models without a chat template (base models, the local backend's byte-level
 * model): the tokenizer's BOS (if it has one), then `System: …`, `User: …`, `Assistant: …` turns
 * separated by blank lines, each assistant turn ending with the tokenizer's EOS token — which is
 * also the stop sequence. Works with any tokenizer that declares an EOS.
 *
 * Headers and contents are encoded separately (`Assistant: ` then the reply), so that the tokens of
 * a reply in training are the tokens the model samples after the generation prompt.
 */

import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { checkTextMessages, LabelledRenderer } from "./common.js";
import { content, header, type RenderedTokens, TokenBuilder } from "./token-builder.js";
import type { ChatMessage, MultimodalMessage } from "./types.js";

const ROLE_NAMES: Readonly<Record<ChatMessage["role"], string>> = {
  system: "System",
  developer: "Developer",
  user: "User",
  assistant: "Assistant",
  tool: "Tool",
};

const TURN_SEPARATOR = "\n\n";

export class RoleColonRenderer extends LabelledRenderer {
  readonly name = "role_colon";
  readonly #eos: number;

  constructor(tokenizer: Tokenizer) {
    super(tokenizer);
    if (tokenizer.eosTokenId === null) {
      throw new ValidationError([
        {
          path: "tokenizer",
          message: `role_colon ends assistant turns with EOS; tokenizer ${tokenizer.id} declares none`,
        },
      ]);
    }
    this.#eos = tokenizer.eosTokenId;
  }

  stopSequences(): number[] {
    return [this.#eos];
  }

  protected render(input: readonly MultimodalMessage[], addGenerationPrompt: boolean): RenderedTokens {
    const messages = checkTextMessages(input, this.name);
    const out = new TokenBuilder(this.tokenizer);
    if (this.tokenizer.bosTokenId !== null) out.special(this.tokenizer.bosTokenId);
    messages.forEach((message, i) => {
      if (i > 0) out.text(TURN_SEPARATOR).flush();
      out.text(`${ROLE_NAMES[message.role]}: `, header(i)).flush();
      out.text(message.content, content(i)).flush();
      if (message.role === "assistant") out.special(this.#eos, content(i));
    });
    if (addGenerationPrompt) {
      if (messages.length > 0) out.text(TURN_SEPARATOR).flush();
      out.text(`${ROLE_NAMES.assistant}: `);
    }
    return out.finish();
  }
}
