/**
 * Chat renderers: conversations to the exact tokens of each model family's chat template, with
 * per-token training weights, stop sequences, and parsing of sampled replies.
 */

export type { ChatTemplateRendererOptions } from "./chat-template.js";
export { createChatTemplateRenderer } from "./chat-template.js";
export { toolCallArguments } from "./common.js";
export { DeepSeekV3Renderer } from "./deepseek-v3.js";
export { GptOssRenderer } from "./gpt-oss.js";
export type { KimiK25RendererOptions } from "./kimi-k25.js";
export { KimiK25Renderer } from "./kimi-k25.js";
export { kimiToolDeclaration } from "./kimi-tool-declaration.js";
export { Llama3Renderer } from "./llama3.js";
export { Qwen3Renderer } from "./qwen3.js";
export type { Qwen35RendererOptions, QwenReasoningEffort } from "./qwen3-5.js";
export { Qwen35Renderer } from "./qwen3-5.js";
export type { RendererFactory, RendererName } from "./registry.js";
export {
  getRenderer,
  listRendererNames,
  RENDERER_NAMES,
  recommendedRendererName,
  registerRenderer,
  renderMessages,
  unregisterRenderer,
} from "./registry.js";
export { RoleColonRenderer } from "./role-colon.js";
export type { TiktokenTokenizerOptions } from "./tiktoken-tokenizer.js";
export { tiktokenTokenizer } from "./tiktoken-tokenizer.js";
export type {
  ChatMessage,
  ContentPart,
  ImagePart,
  MultimodalMessage,
  ParsedResponse,
  Renderer,
  RendererOptions,
  RenderOptions,
  SupervisedExample,
  SupervisedOptions,
  TextPart,
  ToolCall,
  ToolSpec,
  TrainOnWhat,
  UnparsedToolCall,
} from "./types.js";
