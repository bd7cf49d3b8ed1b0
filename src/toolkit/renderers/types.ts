/**
 * The renderer contract shared by the toolkit: a renderer turns a conversation into exactly the token
 * ids the model's own chat template gives, knows which tokens belong to which message (for training
 * weights), which tokens end an assistant turn (for sampling), and how to read a sampled reply back.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";

/** Text inside a message's content list. */
export interface TextPart {
  type: "text";
  text: string;
}

/**
 * An image inside a message's content list, for the vision-language families (Qwen3.5/3.6/3.8,
 * Kimi K2.5/K2.6). The image itself is not processed here: `tokens` is the chunk the model's image
 * processor gives for it (e.g. the right number of `<|image_pad|>` ids), and the renderer wraps it in
 * the family's image tokens (`<|vision_start|>…<|vision_end|>`, `<|media_begin|>image<|media_content|>
 * …<|media_end|>\n`). Without `tokens` rendering fails with a ValidationError.
 */
export interface ImagePart {
  type: "image";
  tokens?: readonly number[];
}

export type ContentPart = TextPart | ImagePart;

/** A function call the assistant made (OpenAI's `tool_calls[i]`, flattened). */
export interface ToolCall {
  /**
   * The call's id: Kimi writes it into the turn (`functions.get_weather:0`) and tool results name it
   * (`ChatMessage.toolCallId`). Qwen does not use it. Kimi default: `functions.{name}:{index in turn}`.
   */
  id?: string;
  name: string;
  /**
   * The arguments: a JSON object's text (as OpenAI's `function.arguments`, what `parseResponse`
   * gives), or the object itself. Kimi writes text as is; Qwen writes each argument as a parameter.
   */
  arguments: string | Readonly<Record<string, unknown>>;
}

/**
 * A tool the model may call, as the `function` member of an OpenAI tool. Declared to the model in the
 * family's own way: `{"type": "function", "function": <this>}` JSON lines (Qwen), TypeScript
 * declarations (Kimi).
 */
export interface ToolSpec {
  name: string;
  description?: string;
  /** A JSON Schema object. */
  parameters?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/**
 * A message as the renderers take it: its content is text or, for the vision-language families, a
 * list of parts. `ChatMessage` is the text-only kind (what `parseResponse` gives).
 */
export interface MultimodalMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  /** Text, or a list of parts (text and images) for the families that take them. */
  content: string | readonly ContentPart[];
  /** The assistant's reasoning (Qwen3 `<think>`, gpt-oss analysis channel), when the family has one. */
  thinking?: string;
  /** Assistant: the function calls it made (Qwen3.5/3.8, Kimi). */
  toolCalls?: readonly ToolCall[];
  /** Tool result: the id of the call it answers (Kimi: `## Return of {id}`). */
  toolCallId?: string;
  /** The name shown in the turn header instead of the role (Kimi; a tool result's function name). */
  name?: string;
}

/** A message with text content. */
export interface ChatMessage extends MultimodalMessage {
  content: string;
}

/** Which tokens of a conversation carry loss weight in a supervised example. */
export type TrainOnWhat = "last_assistant_message" | "all_assistant_messages" | "all_messages" | "all_tokens";

export interface SupervisedExample {
  tokens: number[];
  /** `weights[i]` applies to `tokens[i]`: 1 where the model should learn to produce the token. */
  weights: number[];
}

/** A tool-call block of a reply that could not be read (bad JSON, broken XML, never closed). */
export interface UnparsedToolCall {
  /** The block's text as sampled. */
  raw: string;
  error: string;
}

export interface ParsedResponse {
  /** An assistant message. */
  message: ChatMessage;
  /**
   * `stop`: an end-of-turn token ended the reply; `eos`: the tokenizer's end-of-sequence token did,
   * where that is not an end-of-turn token; `length`: no such token (the sampler ran out of tokens);
   * `malformed`: the reply does not have the family's structure.
   */
  termination: "stop" | "eos" | "length" | "malformed";
  /** Tool-call blocks that could not be read (the termination is then `malformed`). */
  unparsedToolCalls?: UnparsedToolCall[];
}

/** What a conversation is rendered with besides its messages. */
export interface RenderOptions {
  /** Tools declared to the model (families with tool calling only; others refuse them). */
  tools?: readonly ToolSpec[];
}

export interface SupervisedOptions extends RenderOptions {
  /** Default `last_assistant_message`. */
  trainOnWhat?: TrainOnWhat;
}

export interface Renderer {
  /** The registry name it was made under (`qwen3`, `qwen3_5`, `kimi_k26`, `role_colon`, …). */
  readonly name: string;
  readonly tokenizer: Tokenizer;
  /** The conversation followed by the header of an assistant turn: the prompt to sample a reply from. */
  buildGenerationPrompt(messages: readonly MultimodalMessage[], options?: RenderOptions): number[];
  /** The whole conversation, with loss weights chosen by `trainOnWhat` (default `last_assistant_message`). */
  buildSupervisedExample(
    messages: readonly MultimodalMessage[],
    options?: SupervisedOptions,
  ): SupervisedExample;
  /** Token ids that end an assistant turn: pass them as `SamplingParams.stop`. */
  stopSequences(): number[];
  /** An assistant message from sampled tokens (the tokens after `buildGenerationPrompt`'s prompt). */
  parseResponse(tokens: ArrayLike<number>): ParsedResponse;
}

/** Options of the hand-written renderers; each family reads the ones that concern it. */
export interface RendererOptions {
  /**
   * Qwen3: `false` renders the generation prompt with an empty `<think>\n\n</think>\n\n` block, as
   * the template's `enable_thinking=False` (the block is then part of the prompt, not trained).
   * Default true. (Qwen3.5/3.8 and Kimi have `*_disable_thinking` renderers instead.)
   */
  enableThinking?: boolean;
  /** gpt-oss: the `Current date:` of the system message, `YYYY-MM-DD`. Default: today (UTC). */
  date?: string;
  /** gpt-oss: the `Reasoning:` effort of the system message. Default `medium`. */
  reasoningEffort?: "low" | "medium" | "high";
  /** gpt-oss: the first line of the system message. Default: the template's ChatGPT identity. */
  modelIdentity?: string;
}
