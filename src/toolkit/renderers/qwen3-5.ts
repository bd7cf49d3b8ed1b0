/**
 * Qwen3.5 (and Qwen3.6, same template) and Qwen3.8: ChatML turns as their chat templates write them.
 *
 * - Content is stripped; an image part is `<|vision_start|>` + its tokens + `<|vision_end|>`.
 * - The system turn holds, in order: Qwen3.8's reasoning-effort sentence (`xhigh` and `low`; none
 *   for `medium` or with thinking off), the tool declaration, the first message when it is a system
 *   message. Qwen3.5 writes an empty system turn for an empty system message, Qwen3.8 none.
 * - Assistant turns: `<think>\n{reasoning}\n</think>\n\n{content}` — on Qwen3.5 only after the last
 *   user query (earlier turns lose their reasoning, and their inline `<think>` blocks), on Qwen3.8
 *   always (its `preserve_thinking` defaults to true). Reasoning is `thinking`; Qwen3.5 also reads
 *   an inline `…</think>` in string content, Qwen3.8 does not. Tool calls follow in XML.
 * - Consecutive tool results share one `user` turn, each in `<tool_response>` tags.
 * - The generation prompt opens the think block (`<think>\n`), or closes it empty for the
 *   `*_disable_thinking` renderers (`<think>\n\n</think>\n\n`).
 *
 * The templates refuse a system message that is not first, and a conversation without a user query;
 * so do these renderers (ValidationError).
 *
 * Training: a conversation that ends with an assistant message is a prompt and its completion. The
 * last turn's header includes the generation prompt's think prefix, encoded on its own as the
 * sampler sees it; so the example's tokens start with exactly `buildGenerationPrompt` of the earlier
 * messages (the template's own text, with the token boundary where sampling puts it). A disable-
 * thinking renderer refuses to train a last turn that has reasoning: its prompt told the model not to.
 */

import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import {
  assistantMessage,
  checkMessages,
  contentText,
  cutAtStop,
  fail,
  LabelledRenderer,
  requireToken,
} from "./common.js";
import { type Piece, pieces, textOf, trimPieces, writePieces } from "./content-parts.js";
import { parseQwenToolCall, qwenToolCallsText, qwenToolsText, type ScalarStyle } from "./qwen-xml-tools.js";
import { pyLstrip, pyRstrip, pyStrip } from "./text.js";
import { content, header, type RenderedTokens, TokenBuilder, type TokenLabel } from "./token-builder.js";
import type { MultimodalMessage, ParsedResponse, ToolCall, ToolSpec, UnparsedToolCall } from "./types.js";

/** Qwen3.8's `reasoning_effort`. */
export type QwenReasoningEffort = "xhigh" | "medium" | "low";

/** The sentence Qwen3.8's template puts first in the system turn for each effort (facts of the template). */
const EFFORT_INSTRUCTIONS: Readonly<Record<QwenReasoningEffort, string>> = {
  xhigh:
    "Reasoning effort is set to xhigh. Please think carefully through the task, validate key assumptions, consider plausible alternatives, and prioritize correctness, consistency, and clarity in the final answer.",
  medium: "",
  low: "Reasoning effort is set to low. Keep your thinking brief and focused, moving directly to the conclusion without unnecessary elaboration.",
};

export interface Qwen35RendererOptions {
  /** `3.5` (also Qwen3.6) or `3.8`. Default `3.5`. */
  version?: "3.5" | "3.8";
  /** False: the `*_disable_thinking` renderers. Default true. */
  enableThinking?: boolean;
  /** Qwen3.8 only. Default `xhigh`. */
  reasoningEffort?: QwenReasoningEffort;
  /** The registry name. Default from the other options (`qwen3_5`, `qwen3_8_low_reasoning`, …). */
  name?: string;
}

const OPEN_THINK = "<think>\n";
const EMPTY_THINK = "<think>\n\n</think>\n\n";

export class Qwen35Renderer extends LabelledRenderer {
  readonly name: string;
  protected override readonly declaresTools = true;
  readonly #imStart: number;
  readonly #imEnd: number;
  readonly #v38: boolean;
  readonly #thinking: boolean;
  readonly #instructions: string;
  readonly #style: ScalarStyle;

  constructor(tokenizer: Tokenizer, options: Qwen35RendererOptions = {}) {
    super(tokenizer);
    this.#v38 = options.version === "3.8";
    this.#thinking = options.enableThinking ?? true;
    const effort = options.reasoningEffort ?? "xhigh";
    if (!Object.hasOwn(EFFORT_INSTRUCTIONS, effort)) {
      throw new ValidationError([
        { path: "options.reasoningEffort", message: `must be xhigh, medium or low; got ${String(effort)}` },
      ]);
    }
    this.#instructions = this.#v38 && this.#thinking ? EFFORT_INSTRUCTIONS[effort] : "";
    this.#style = this.#v38 ? "json" : "python";
    this.name =
      options.name ??
      (this.#v38
        ? this.#thinking
          ? `qwen3_8_${effort}_reasoning`
          : "qwen3_8_disable_thinking"
        : this.#thinking
          ? "qwen3_5"
          : "qwen3_5_disable_thinking");
    this.#imStart = requireToken(tokenizer, "<|im_start|>", this.name);
    this.#imEnd = requireToken(tokenizer, "<|im_end|>", this.name);
  }

  stopSequences(): number[] {
    return [this.#imEnd];
  }

  protected render(
    messages: readonly MultimodalMessage[],
    addGenerationPrompt: boolean,
    tools: readonly ToolSpec[],
  ): RenderedTokens {
    checkMessages(messages, this.name, ["system", "user", "assistant", "tool"], {
      parts: true,
      toolCalls: true,
    });
    messages.forEach((message, i) => {
      if (message.role === "system" && i > 0) fail(`messages[${i}].role`, "a system message must come first");
      if (message.role === "tool" && i === 0) fail("messages[0].role", "a tool result must follow a turn");
    });
    const lastQuery = this.#lastQueryIndex(messages);
    const out = new TokenBuilder(this.tokenizer);
    this.#systemTurn(out, messages[0], tools);
    const last = messages.length - 1;
    const target = !addGenerationPrompt && messages[last]?.role === "assistant" ? last : -1;
    messages.forEach((message, i) => {
      const body = trimPieces(pieces(message.content));
      if (message.role === "user") {
        this.#open(out, "user\n", i);
        this.#write(out, body, content(i));
        out.special(this.#imEnd, content(i)).text("\n");
      } else if (message.role === "assistant") {
        this.#assistantTurn(out, message, i, body, i > lastQuery, i === target);
      } else if (message.role === "tool") {
        if (messages[i - 1]!.role !== "tool") out.special(this.#imStart, header(i)).text("user", header(i));
        out.text("\n<tool_response>\n", content(i));
        this.#write(out, body, content(i));
        out.text("\n</tool_response>", content(i));
        if (i === last || messages[i + 1]!.role !== "tool") out.special(this.#imEnd, content(i)).text("\n");
      }
    });
    if (addGenerationPrompt)
      out.special(this.#imStart).text(`assistant\n${this.#thinking ? OPEN_THINK : EMPTY_THINK}`);
    return out.finish();
  }

  /** Index of the last user message that is a query, not wrapped tool output (`ns.last_query_index`). */
  #lastQueryIndex(messages: readonly MultimodalMessage[]): number {
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i]!.role !== "user") continue;
      const text = pieces(messages[i]!.content)
        .map((p) => (typeof p === "string" ? p : "<|vision_start|>"))
        .join("");
      const stripped = pyStrip(text);
      if (!(stripped.startsWith("<tool_response>") && stripped.endsWith("</tool_response>"))) return i;
    }
    return fail(
      "messages",
      `the ${this.name} template needs a user message (it refuses conversations without one)`,
    );
  }

  #systemTurn(out: TokenBuilder, first: MultimodalMessage | undefined, tools: readonly ToolSpec[]): void {
    const system = first?.role === "system" ? pyStrip(contentText(first, "messages[0]")) : undefined;
    const label = (part: "header" | "content"): TokenLabel | undefined =>
      system === undefined ? undefined : part === "header" ? header(0) : content(0);
    const lead = this.#instructions && `${this.#instructions}\n\n`;
    if (tools.length > 0) {
      this.#open(out, "system\n", system === undefined ? undefined : 0);
      out.text(lead + qwenToolsText(tools));
      if (system) out.text(`\n\n${system}`, content(0));
    } else if (system || (system !== undefined && !this.#v38)) {
      this.#open(out, "system\n", 0);
      out.text(lead).text(system, content(0));
    } else if (this.#instructions) {
      this.#open(out, "system\n", undefined);
      out.text(this.#instructions);
    } else {
      return;
    }
    out.special(this.#imEnd, label("content")).text("\n");
  }

  #assistantTurn(
    out: TokenBuilder,
    message: MultimodalMessage,
    i: number,
    body: Piece[],
    afterLastQuery: boolean,
    isTarget: boolean,
  ): void {
    let run = body;
    let reasoning = message.thinking ?? "";
    const text = textOf(run);
    if (message.thinking === undefined && !this.#v38 && text?.includes("</think>")) {
      // Qwen3.5 reads reasoning written inline in the content, as its template does.
      const [before] = text.split("</think>");
      reasoning = pyLstrip(pyRstrip(before!, "\n").split("<think>").at(-1)!, "\n");
      run = [pyLstrip(text.split("</think>").at(-1)!, "\n")];
    }
    reasoning = pyStrip(reasoning);
    this.#open(out, "assistant\n", i);
    if (isTarget) {
      if (!this.#thinking && reasoning !== "") {
        fail(
          `messages[${i}].thinking`,
          `${this.name} closes the think block in its prompt; it cannot train a last turn that reasoned`,
        );
      }
      // The generation prompt's think prefix is the header; encoded on its own, as sampling sees it.
      out.text(this.#thinking ? OPEN_THINK : EMPTY_THINK, header(i)).flush();
      if (this.#thinking) out.text(`${reasoning}\n</think>\n\n`, content(i));
    } else if (this.#v38 || afterLastQuery) {
      out.text(`<think>\n${reasoning}\n</think>\n\n`, content(i));
    }
    this.#write(out, run, content(i));
    const calls: readonly ToolCall[] = message.toolCalls ?? [];
    // A blank line separates the calls from content (an image counts as content).
    if (calls.length > 0) out.text(qwenToolCallsText(calls, textOf(run) !== "", this.#style), content(i));
    out.special(this.#imEnd, content(i)).text("\n");
  }

  #open(out: TokenBuilder, role: string, message: number | undefined): void {
    const label = message === undefined ? undefined : header(message);
    out.special(this.#imStart, label).text(role, label);
  }

  #write(out: TokenBuilder, run: readonly Piece[], label: TokenLabel): void {
    writePieces(out, run, label, (image) => [
      [
        requireToken(this.tokenizer, "<|vision_start|>", this.name),
        ...image,
        requireToken(this.tokenizer, "<|vision_end|>", this.name),
      ],
    ]);
  }

  /**
   * Reads a reply sampled after the generation prompt: the reasoning up to `</think>` (the prompt
   * opened the block; a reply that never closes it is cut off, or malformed once stopped), then the
   * content and the XML tool calls.
   */
  override parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { body, stopToken } = cutAtStop(tokens, this.stopSequences());
    const stopped = stopToken !== undefined;
    let text = this.tokenizer.decode(body);
    let thinking: string | undefined;
    const close = text.indexOf("</think>");
    if (close >= 0) {
      thinking = pyStrip(text.slice(0, close).replace(/^\s*<think>/, ""));
      text = text.slice(close + "</think>".length);
    } else if (this.#thinking) {
      const reasoning = pyStrip(text.replace(/^\s*<think>/, ""));
      return {
        message: assistantMessage("", reasoning || undefined),
        termination: stopped ? "malformed" : "length",
      };
    }
    const calls: ToolCall[] = [];
    const unparsed: UnparsedToolCall[] = [];
    const outside: string[] = [];
    let at = 0;
    for (;;) {
      const open = text.indexOf("<tool_call>", at);
      if (open < 0) break;
      outside.push(text.slice(at, open));
      const end = text.indexOf("</tool_call>", open);
      if (end < 0) {
        unparsed.push({ raw: text.slice(open), error: "<tool_call> never closed" });
        at = text.length;
        break;
      }
      const call = parseQwenToolCall(text.slice(open + "<tool_call>".length, end), this.#style);
      if ("error" in call) unparsed.push(call);
      else calls.push(call);
      at = end + "</tool_call>".length;
    }
    outside.push(text.slice(at));
    const message = assistantMessage(pyStrip(outside.join("")), thinking || undefined);
    if (calls.length > 0) message.toolCalls = calls;
    const result: ParsedResponse = {
      message,
      termination: !stopped ? "length" : unparsed.length > 0 ? "malformed" : "stop",
    };
    if (unparsed.length > 0) result.unparsedToolCalls = unparsed;
    return result;
  }
}
