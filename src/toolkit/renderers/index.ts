/**
 * Chat renderers: conversations to the exact tokens of each model family's chat template, with
 * per-token training weights, stop sequences, and parsing of sampled replies.
 */

export type { ChatTemplateRendererOptions } from "./chat-template.js";
export { createChatTemplateRenderer } from "./chat-template.js";
export { DeepSeekV3Renderer } from "./deepseek-v3.js";
export { GptOssRenderer } from "./gpt-oss.js";
export { Llama3Renderer } from "./llama3.js";
export { Qwen3Renderer } from "./qwen3.js";
export type { RendererName } from "./registry.js";
export { getRenderer, RENDERER_NAMES, recommendedRendererName, renderMessages } from "./registry.js";
export { RoleColonRenderer } from "./role-colon.js";
export type {
  ChatMessage,
  ParsedResponse,
  Renderer,
  RendererOptions,
  SupervisedExample,
  TrainOnWhat,
} from "./types.js";
