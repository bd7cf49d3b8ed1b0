/**
 * Kimi K2.5 and K2.6 (one template; K2.6 adds `preserve_thinking`), as their chat template writes
 * a conversation:
 *
 *     <|im_system|>tool_declare<|im_middle|>{TypeScript tool declarations}<|im_end|>   (with tools)
 *     <|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>
 *     <|im_user|>user<|im_middle|>…<|im_end|>
 *     <|im_assistant|>assistant<|im_middle|><think></think>…<|tool_calls_section_begin|>
 *       <|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{…}<|tool_call_end|>
 *     <|tool_calls_section_end|><|im_end|>
 *     <|im_system|>f<|im_middle|>## Return of functions.f:0\n…<|im_end|>
 *
 * - The default system message is added when the conversation does not start with one.
 * - A header names the message's `name` when it has one, else its role; tool results use a system
 *   header and need `toolCallId`.
 * - Reasoning: assistant turns up to the last one without tool calls are history and keep an empty
 *   `<think></think>`; later ones keep `<think>{thinking}</think>` (`kimi_k26_preserve_thinking`:
 *   every turn keeps it; `*_disable_thinking`: none does).
 * - The generation prompt ends with `<think>` (or `<think></think>` with thinking disabled).
 * - Images: `<|media_begin|>image<|media_content|>` + the image's tokens + `<|media_end|>\n`.
 *
 * Training: a conversation that ends with an assistant message is the generation prompt of the
 * earlier messages plus that turn as sampled (`{thinking}</think>{content}…<|im_end|>`), so the last
 * turn keeps its reasoning — the template's own document form would drop it (the turn is "history"
 * once it is written out), which would train a sequence the model never samples. A disable-thinking
 * renderer refuses a last turn that reasoned.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";
import {
  assistantMessage,
  checkMessages,
  cutAtStop,
  fail,
  LabelledRenderer,
  requireToken,
} from "./common.js";
import { pieces, writePieces } from "./content-parts.js";
import { kimiToolDeclaration } from "./kimi-tool-declaration.js";
import { pyJson } from "./python-format.js";
import { content, header, type RenderedTokens, TokenBuilder } from "./token-builder.js";
import type { MultimodalMessage, ParsedResponse, ToolCall, ToolSpec, UnparsedToolCall } from "./types.js";

export interface KimiK25RendererOptions {
  /** False: the `*_disable_thinking` renderers. Default true. */
  enableThinking?: boolean;
  /** Keep every assistant turn's reasoning (K2.6's `preserve_thinking`). Default false. */
  preserveThinking?: boolean;
  /** The registry name. Default `kimi_k25` / `kimi_k25_disable_thinking`. */
  name?: string;
}

const DEFAULT_SYSTEM = "You are Kimi, an AI assistant created by Moonshot AI.";
const SECTION_BEGIN = "<|tool_calls_section_begin|>";
const SECTION_END = "<|tool_calls_section_end|>";
const CALL = /<\|tool_call_begin\|>([\s\S]*?)<\|tool_call_argument_begin\|>([\s\S]*?)<\|tool_call_end\|>/g;

export class KimiK25Renderer extends LabelledRenderer {
  readonly name: string;
  protected override readonly declaresTools = true;
  readonly #thinking: boolean;
  readonly #preserve: boolean;
  readonly #ids = new Map<string, number>();

  constructor(tokenizer: Tokenizer, options: KimiK25RendererOptions = {}) {
    super(tokenizer);
    this.#thinking = options.enableThinking ?? true;
    this.#preserve = options.preserveThinking ?? false;
    this.name = options.name ?? (this.#thinking ? "kimi_k25" : "kimi_k25_disable_thinking");
    // The tokens every conversation needs; the tool-call and image ones are looked up when used.
    for (const token of [
      "<|im_system|>",
      "<|im_user|>",
      "<|im_assistant|>",
      "<|im_middle|>",
      "<|im_end|>",
      "<think>",
      "</think>",
    ]) {
      this.#id(token);
    }
  }

  stopSequences(): number[] {
    return [this.#id("<|im_end|>")];
  }

  #id(token: string): number {
    let id = this.#ids.get(token);
    if (id === undefined) {
      id = requireToken(this.tokenizer, token, this.name);
      this.#ids.set(token, id);
    }
    return id;
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
      if (message.role === "tool" && !message.toolCallId) {
        fail(`messages[${i}].toolCallId`, "a Kimi tool result names the call it answers");
      }
    });
    const last = messages.length - 1;
    const target = !addGenerationPrompt && messages[last]?.role === "assistant" ? last : -1;
    // History: up to the last assistant turn without tool calls (before the turn being trained).
    let history = -1;
    if (!this.#preserve) {
      for (let i = target < 0 ? last : target - 1; i >= 0; i--) {
        if (messages[i]!.role === "assistant" && !messages[i]!.toolCalls?.length) {
          history = i;
          break;
        }
      }
    }
    const out = new TokenBuilder(this.tokenizer);
    const im = (role: string) =>
      this.#id(role === "user" ? "<|im_user|>" : role === "assistant" ? "<|im_assistant|>" : "<|im_system|>");
    const turn = (role: string, name: string, text: string) =>
      out
        .special(im(role))
        .text(name)
        .special(this.#id("<|im_middle|>"))
        .text(text)
        .special(this.#id("<|im_end|>"));
    if (tools.length > 0) turn("system", "tool_declare", kimiToolDeclaration(tools));
    if (messages[0]?.role !== "system") turn("system", "system", DEFAULT_SYSTEM);
    messages.forEach((message, i) => {
      const h = header(i);
      const c = content(i);
      out
        .special(im(message.role), h)
        .text(message.name || message.role, h)
        .special(this.#id("<|im_middle|>"), h);
      if (message.role === "assistant") {
        const reasoning = message.thinking ?? "";
        if (i === target) {
          if (!this.#thinking && reasoning !== "") {
            fail(
              `messages[${i}].thinking`,
              `${this.name} closes the think block in its prompt; it cannot train a last turn that reasoned`,
            );
          }
          out.special(this.#id("<think>"), h);
          if (this.#thinking) out.text(reasoning, c).special(this.#id("</think>"), c);
          else out.special(this.#id("</think>"), h);
        } else {
          out.special(this.#id("<think>"), c);
          if (this.#thinking && i > history) out.text(reasoning, c);
          out.special(this.#id("</think>"), c);
        }
        this.#write(out, message, c);
        this.#toolCalls(out, message.toolCalls ?? [], c);
      } else {
        if (message.role === "tool") out.text(`## Return of ${message.toolCallId}\n`, h);
        this.#write(out, message, c);
      }
      out.special(this.#id("<|im_end|>"), c);
    });
    if (addGenerationPrompt) {
      out
        .special(im("assistant"))
        .text("assistant")
        .special(this.#id("<|im_middle|>"))
        .special(this.#id("<think>"));
      if (!this.#thinking) out.special(this.#id("</think>"));
    }
    return out.finish();
  }

  #write(out: TokenBuilder, message: MultimodalMessage, label: ReturnType<typeof content>): void {
    writePieces(out, pieces(message.content), label, (image) => [
      [this.#id("<|media_begin|>")],
      "image",
      [this.#id("<|media_content|>"), ...image, this.#id("<|media_end|>")],
      "\n",
    ]);
  }

  #toolCalls(out: TokenBuilder, calls: readonly ToolCall[], label: ReturnType<typeof content>): void {
    if (calls.length === 0) return;
    out.special(this.#id(SECTION_BEGIN), label);
    calls.forEach((call, k) => {
      out
        .special(this.#id("<|tool_call_begin|>"), label)
        .text(call.id ?? `functions.${call.name}:${k}`, label);
      const args = typeof call.arguments === "string" ? call.arguments : pyJson(call.arguments);
      out.special(this.#id("<|tool_call_argument_begin|>"), label).text(args, label);
      out.special(this.#id("<|tool_call_end|>"), label);
    });
    out.special(this.#id(SECTION_END), label);
  }

  /**
   * Reads a reply sampled after the generation prompt: the reasoning up to `</think>` (the prompt
   * opened the block; a reply that never closes it is cut off, or malformed once stopped), the
   * content, then the tool-calls section.
   */
  override parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { body, stopToken } = cutAtStop(tokens, this.stopSequences());
    const stopped = stopToken !== undefined;
    let text = this.tokenizer.decode(body).replace(/^<think>/, "");
    let thinking: string | undefined;
    const close = text.indexOf("</think>");
    if (close >= 0) {
      thinking = text.slice(0, close);
      text = text.slice(close + "</think>".length);
    } else if (this.#thinking) {
      return {
        message: assistantMessage("", text || undefined),
        termination: stopped ? "malformed" : "length",
      };
    }
    let malformed = false;
    const calls: ToolCall[] = [];
    const unparsed: UnparsedToolCall[] = [];
    const begin = text.indexOf(SECTION_BEGIN);
    let reply = text;
    if (begin >= 0) {
      reply = text.slice(0, begin);
      const end = text.indexOf(SECTION_END, begin);
      const section = text.slice(begin + SECTION_BEGIN.length, end < 0 ? undefined : end);
      if (end < 0) unparsed.push({ raw: text.slice(begin), error: "tool-calls section never closed" });
      else if (text.slice(end + SECTION_END.length).trim() !== "") malformed = true;
      let at = 0;
      for (const match of section.matchAll(CALL)) {
        if (section.slice(at, match.index).trim() !== "") malformed = true;
        at = match.index + match[0].length;
        const call = readCall(match[0], match[1]!.trim(), match[2]!.trim());
        if ("error" in call) unparsed.push(call);
        else calls.push(call);
      }
      if (end >= 0 && section.slice(at).trim() !== "") {
        unparsed.push({ raw: section.slice(at), error: "not a complete tool call" });
      }
    }
    const message = assistantMessage(reply, thinking || undefined);
    if (calls.length > 0) message.toolCalls = calls;
    const termination = !stopped ? "length" : malformed || unparsed.length > 0 ? "malformed" : "stop";
    return unparsed.length > 0
      ? { message, termination, unparsedToolCalls: unparsed }
      : { message, termination };
  }
}

/** A call from its id (`functions.get_weather:0`) and arguments (a JSON object's text). */
function readCall(raw: string, id: string, args: string): ToolCall | UnparsedToolCall {
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    return { raw, error: "arguments are not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { raw, error: "arguments are not a JSON object" };
  }
  const name = id.split(":")[0]!.replace(/^functions\./, "");
  if (name === "") return { raw, error: "no function name in the call id" };
  return { id, name, arguments: args };
}
