/**
 * The renderer contract shared by the toolkit: a renderer turns a conversation into exactly the token
 * ids the model's own chat template gives, knows which tokens belong to which message (for training
 * weights), which tokens end an assistant turn (for sampling), and how to read a sampled reply back.
 */

import type { Tokenizer } from "../../lib/tokenizer/index.js";

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string;
  /** The assistant's reasoning (Qwen3 `<think>`, gpt-oss analysis channel), when the family has one. */
  thinking?: string;
}

/** Which tokens of a conversation carry loss weight in a supervised example. */
export type TrainOnWhat = "last_assistant_message" | "all_assistant_messages" | "all_messages" | "all_tokens";

export interface SupervisedExample {
  tokens: number[];
  /** `weights[i]` applies to `tokens[i]`: 1 where the model should learn to produce the token. */
  weights: number[];
}

export interface ParsedResponse {
  message: ChatMessage;
  /**
   * `stop`: an end-of-turn token ended the reply; `eos`: the tokenizer's end-of-sequence token did,
   * where that is not an end-of-turn token; `length`: no such token (the sampler ran out of tokens);
   * `malformed`: the reply does not have the family's structure.
   */
  termination: "stop" | "eos" | "length" | "malformed";
}

export interface Renderer {
  /** `qwen3`, `qwen3_instruct`, `llama3`, `deepseek_v3`, `gpt_oss`, `role_colon` or `chat_template`. */
  readonly name: string;
  readonly tokenizer: Tokenizer;
  /** The conversation followed by the header of an assistant turn: the prompt to sample a reply from. */
  buildGenerationPrompt(messages: readonly ChatMessage[]): number[];
  /** The whole conversation, with loss weights chosen by `trainOnWhat` (default `last_assistant_message`). */
  buildSupervisedExample(
    messages: readonly ChatMessage[],
    options?: { trainOnWhat?: TrainOnWhat },
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
   * Default true.
   */
  enableThinking?: boolean;
  /** gpt-oss: the `Current date:` of the system message, `YYYY-MM-DD`. Default: today (UTC). */
  date?: string;
  /** gpt-oss: the `Reasoning:` effort of the system message. Default `medium`. */
  reasoningEffort?: "low" | "medium" | "high";
  /** gpt-oss: the first line of the system message. Default: the template's ChatGPT identity. */
  modelIdentity?: string;
}
