/**
 * gpt-oss (the harmony format), as its chat template renders it:
 *
 *     <|start|>system<|message|>{identity}\nKnowledge cutoff: 2024-06\nCurrent date: {date}\n\n
 *       Reasoning: {effort}\n\n# Valid channels: analysis, commentary, final. …<|end|>
 *     <|start|>developer<|message|># Instructions\n\n{first system/developer message}\n\n<|end|>
 *     <|start|>user<|message|>…<|end|>
 *     <|start|>assistant<|channel|>final<|message|>…<|end|>
 *
 * Reasoning (the analysis channel) of past turns is dropped. A conversation that ends with an
 * assistant message and no generation prompt is a training example: that message keeps its analysis
 * (when `thinking` is given) and ends with `<|return|>` rather than `<|end|>`, so the model learns to
 * stop. The generation prompt is `<|start|>assistant`: the model writes the channel itself.
 */

import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { assistantMessage, checkTextMessages, cutAtStop, LabelledRenderer, requireToken } from "./common.js";
import { content, header, type RenderedTokens, TokenBuilder } from "./token-builder.js";
import type { MultimodalMessage, ParsedResponse, RendererOptions } from "./types.js";

const DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI.";
const REASONING_EFFORTS = ["low", "medium", "high"] as const;
const CHANNEL_TAGS = ["<|channel|>analysis<|message|>", "<|channel|>final<|message|>"];

export class GptOssRenderer extends LabelledRenderer {
  readonly name = "gpt_oss";
  readonly #start: number;
  readonly #end: number;
  readonly #message: number;
  readonly #channel: number;
  readonly #return: number;
  readonly #call: number;
  readonly #systemText: string;

  constructor(
    tokenizer: Tokenizer,
    options: Pick<RendererOptions, "date" | "reasoningEffort" | "modelIdentity"> = {},
  ) {
    super(tokenizer);
    const date = options.date ?? new Date().toISOString().slice(0, 10);
    if (typeof date !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(date)) {
      throw new ValidationError([
        { path: "options.date", message: `must be YYYY-MM-DD; got ${String(date)}` },
      ]);
    }
    const effort = options.reasoningEffort ?? "medium";
    if (!REASONING_EFFORTS.includes(effort)) {
      throw new ValidationError([
        { path: "options.reasoningEffort", message: `must be low, medium or high; got ${String(effort)}` },
      ]);
    }
    const identity = options.modelIdentity ?? DEFAULT_IDENTITY;
    this.#systemText =
      `${identity}\nKnowledge cutoff: 2024-06\nCurrent date: ${date}\n\nReasoning: ${effort}\n\n` +
      "# Valid channels: analysis, commentary, final. Channel must be included for every message.";
    this.#start = requireToken(tokenizer, "<|start|>", this.name);
    this.#end = requireToken(tokenizer, "<|end|>", this.name);
    this.#message = requireToken(tokenizer, "<|message|>", this.name);
    this.#channel = requireToken(tokenizer, "<|channel|>", this.name);
    this.#return = requireToken(tokenizer, "<|return|>", this.name);
    this.#call = requireToken(tokenizer, "<|call|>", this.name);
  }

  /** `<|return|>` ends the reply; `<|call|>` ends a tool call. `<|end|>` only ends one channel's message. */
  stopSequences(): number[] {
    return [this.#return, this.#call];
  }

  protected render(input: readonly MultimodalMessage[], addGenerationPrompt: boolean): RenderedTokens {
    const messages = checkTextMessages(input, this.name, ["system", "developer", "user", "assistant"]);
    messages.forEach((message, i) => {
      if (i > 0 && (message.role === "system" || message.role === "developer")) {
        // The template silently drops these; refusing is kinder than losing the instructions.
        throw new ValidationError([
          {
            path: `messages[${i}].role`,
            message: "gpt_oss renders a system/developer message only as the first message",
          },
        ]);
      }
      for (const [field, text] of [
        ["content", message.content],
        ["thinking", message.thinking],
      ] as const) {
        if (text !== undefined && CHANNEL_TAGS.some((tag) => text.includes(tag))) {
          throw new ValidationError([
            {
              path: `messages[${i}].${field}`,
              message: "must not contain <|channel|> tags: pass analysis as thinking, final as content",
            },
          ]);
        }
      }
    });
    const out = new TokenBuilder(this.tokenizer);
    out.special(this.#start).text("system").special(this.#message).text(this.#systemText).special(this.#end);
    let first = 0;
    const leading = messages[0];
    if (leading !== undefined && (leading.role === "system" || leading.role === "developer")) {
      first = 1;
      if (leading.content !== "") {
        out.special(this.#start, header(0)).text("developer", header(0)).special(this.#message, header(0));
        out.text("# Instructions\n\n", header(0)).text(`${leading.content}\n\n`, content(0));
        out.special(this.#end, content(0));
      }
    }
    for (let i = first; i < messages.length; i++) {
      const message = messages[i]!;
      if (message.role === "user") {
        out.special(this.#start, header(i)).text("user", header(i)).special(this.#message, header(i));
        out.text(message.content, content(i)).special(this.#end, content(i));
        continue;
      }
      out.special(this.#start, header(i)).text("assistant", header(i));
      const trainingTurn = i === messages.length - 1 && !addGenerationPrompt;
      if (trainingTurn && message.thinking !== undefined) {
        this.#channelMessage(out, i, "analysis", message.thinking, this.#end);
        out.special(this.#start, content(i)).text("assistant", content(i));
      }
      this.#channelMessage(out, i, "final", message.content, trainingTurn ? this.#return : this.#end);
    }
    if (addGenerationPrompt) out.special(this.#start).text("assistant");
    return out.finish();
  }

  #channelMessage(out: TokenBuilder, i: number, channel: string, text: string, endToken: number): void {
    out.special(this.#channel, content(i)).text(channel, content(i)).special(this.#message, content(i));
    out.text(text, content(i)).special(endToken, content(i));
  }

  /**
   * Reads the channel messages of a reply (`<|channel|>analysis<|message|>…<|end|><|start|>assistant
   * <|channel|>final<|message|>…<|return|>`): analysis becomes `thinking`, final becomes `content`.
   */
  override parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { body, stopToken } = cutAtStop(tokens, this.stopSequences());
    const blocks: number[][] = [[]];
    for (const id of body) {
      if (id === this.#end) blocks.push([]);
      else blocks.at(-1)!.push(id);
    }
    const analysis: string[] = [];
    let final: string | undefined;
    let malformed = false;
    blocks.forEach((block, b) => {
      const isOpenTail = b === blocks.length - 1;
      if (isOpenTail && block.length === 0) return;
      // Blocks after the first restate their header: <|start|>assistant…
      if (b > 0 && block[0] !== this.#start) malformed = true;
      const channelAt = block.indexOf(this.#channel);
      const messageAt = block.indexOf(this.#message);
      if (channelAt < 0 || messageAt < channelAt) {
        if (!(isOpenTail && stopToken === undefined)) malformed = true;
        return;
      }
      const channel = this.tokenizer.decode(block.slice(channelAt + 1, messageAt)).split(" ")[0];
      const text = this.tokenizer.decode(block.slice(messageAt + 1));
      if (channel === "analysis") analysis.push(text);
      else if (channel === "final") final = final === undefined ? text : final + text;
    });
    if (stopToken === this.#return && final === undefined) malformed = true;
    const thinking = analysis.length > 0 ? analysis.join("\n") : undefined;
    const termination = malformed ? "malformed" : stopToken === undefined ? "length" : "stop";
    return { message: assistantMessage(final ?? "", thinking), termination };
  }
}
