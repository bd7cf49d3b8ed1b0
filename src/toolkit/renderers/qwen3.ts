/**
 * Qwen3 (ChatML): `<|im_start|>role\ncontent<|im_end|>\n` per message, written to give the tokens of
 * the Qwen3 chat template (tokenizer_config.json of Qwen/Qwen3-*), including its handling of thinking:
 *
 * - an assistant message's reasoning is its `thinking`, else the `<think>…</think>` part of its
 *   content (the template's `reasoning_content`);
 * - after the last user query, the last message always gets a `<think>\n…\n</think>\n\n` block (an
 *   empty one when there is no reasoning) and earlier assistant messages get one when they have
 *   reasoning; before it, reasoning is dropped;
 * - `enableThinking: false` ends the generation prompt with an empty think block.
 *
 * `qwen3_instruct` (Qwen3-*-Instruct-2507) has no thinking at all: assistant content is rendered as
 * is and the generation prompt is bare.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { assistantMessage, checkTextMessages, cutAtStop, LabelledRenderer, requireToken } from "./common.js";
import { pyLstrip, pyRstrip, pyStrip } from "./text.js";
import { content, header, type RenderedTokens, TokenBuilder } from "./token-builder.js";
import type { ChatMessage, MultimodalMessage, ParsedResponse } from "./types.js";

const EMPTY_THINK = "<think>\n\n</think>\n\n";

export class Qwen3Renderer extends LabelledRenderer {
  readonly name: string;
  readonly #imStart: number;
  readonly #imEnd: number;
  /** False for the Instruct-2507 models, whose template knows no `<think>`. */
  readonly #thinkingModel: boolean;
  readonly #enableThinking: boolean;

  constructor(tokenizer: Tokenizer, options: { thinkingModel?: boolean; enableThinking?: boolean } = {}) {
    super(tokenizer);
    this.#thinkingModel = options.thinkingModel ?? true;
    this.#enableThinking = options.enableThinking ?? true;
    this.name = this.#thinkingModel ? "qwen3" : "qwen3_instruct";
    this.#imStart = requireToken(tokenizer, "<|im_start|>", this.name);
    this.#imEnd = requireToken(tokenizer, "<|im_end|>", this.name);
  }

  stopSequences(): number[] {
    return [this.#imEnd];
  }

  protected render(input: readonly MultimodalMessage[], addGenerationPrompt: boolean): RenderedTokens {
    const messages = checkTextMessages(input, this.name, ["system", "user", "assistant", "tool"]);
    const out = new TokenBuilder(this.tokenizer);
    const lastQuery = lastQueryIndex(messages);
    messages.forEach((message, i) => {
      const isLast = i === messages.length - 1;
      if (message.role === "user" || message.role === "system") {
        this.#turn(out, i, message.role, message.content);
      } else if (message.role === "assistant") {
        out.special(this.#imStart, header(i)).text("assistant\n", header(i));
        if (this.#thinkingModel) this.#assistantBody(out, i, message, i > lastQuery, isLast);
        else out.text(message.content, content(i));
        out.special(this.#imEnd, content(i)).text("\n");
      } else {
        // Tool results: consecutive ones share one user turn, each wrapped in <tool_response>.
        if (i === 0 || messages[i - 1]!.role !== "tool")
          out.special(this.#imStart, header(i)).text("user", header(i));
        out.text(`\n<tool_response>\n${message.content}\n</tool_response>`, content(i));
        if (isLast || messages[i + 1]!.role !== "tool") out.special(this.#imEnd, content(i)).text("\n");
      }
    });
    if (addGenerationPrompt) {
      out.special(this.#imStart).text("assistant\n");
      if (this.#thinkingModel && !this.#enableThinking) out.text(EMPTY_THINK);
    }
    return out.finish();
  }

  #turn(out: TokenBuilder, i: number, role: string, text: string): void {
    out.special(this.#imStart, header(i)).text(`${role}\n`, header(i)).text(text, content(i));
    out.special(this.#imEnd, content(i)).text("\n");
  }

  #assistantBody(
    out: TokenBuilder,
    i: number,
    message: ChatMessage,
    afterLastQuery: boolean,
    isLast: boolean,
  ): void {
    let body = message.content;
    let reasoning = "";
    if (message.thinking !== undefined) {
      reasoning = message.thinking;
    } else if (body.includes("</think>")) {
      const parts = body.split("</think>");
      body = pyLstrip(parts.at(-1)!, "\n");
      reasoning = pyLstrip(pyRstrip(parts[0]!, "\n").split("<think>").at(-1)!, "\n");
    }
    if (afterLastQuery && (isLast || reasoning !== "")) {
      const think = `<think>\n${pyStrip(reasoning, "\n")}\n</think>\n\n`;
      // With thinking disabled the generation prompt already holds the empty block: not trained.
      const thinkLabel = !this.#enableThinking && think === EMPTY_THINK ? header(i) : content(i);
      out.text(think, thinkLabel).text(pyLstrip(body, "\n"), content(i));
    } else {
      out.text(body, content(i));
    }
  }

  override parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { body, stopToken } = cutAtStop(tokens, this.stopSequences());
    const text = this.tokenizer.decode(body);
    const termination = stopToken === undefined ? "length" : "stop";
    if (!this.#thinkingModel) return { message: assistantMessage(text), termination };
    const close = text.indexOf("</think>");
    if (close < 0) {
      const open = text.indexOf("<think>");
      if (open < 0) return { message: assistantMessage(text), termination };
      // Reasoning that never closed: cut off by the length limit, or broken.
      const thinking = pyLstrip(text.slice(open + "<think>".length), "\n");
      return {
        message: assistantMessage("", thinking),
        termination: stopToken === undefined ? "length" : "malformed",
      };
    }
    const before = text.slice(0, close);
    const open = before.indexOf("<think>");
    const thinking = pyStrip(open < 0 ? before : before.slice(open + "<think>".length), "\n");
    const reply = pyLstrip(text.slice(close + "</think>".length), "\n");
    return { message: assistantMessage(reply, thinking === "" ? undefined : thinking), termination };
  }
}

/**
 * Index of the last user message that is a real query (not a `<tool_response>` wrapper), as the
 * template's `ns.last_query_index`; the last index when there is none.
 */
function lastQueryIndex(messages: readonly ChatMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    const text = message.content;
    if (
      message.role === "user" &&
      !(text.startsWith("<tool_response>") && text.endsWith("</tool_response>"))
    ) {
      return i;
    }
  }
  return messages.length - 1;
}
