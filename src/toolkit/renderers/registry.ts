/** Choosing a renderer: by name, by base model, and the one-call `renderMessages`. */

import { ValidationError } from "../../core/errors.js";
import { loadTokenizer, type Tokenizer, tokenizerIdForModelName } from "../../lib/tokenizer/index.js";
import { DeepSeekV3Renderer } from "./deepseek-v3.js";
import { GptOssRenderer } from "./gpt-oss.js";
import { Llama3Renderer } from "./llama3.js";
import { Qwen3Renderer } from "./qwen3.js";
import { RoleColonRenderer } from "./role-colon.js";
import type { ChatMessage, Renderer, RendererOptions } from "./types.js";

/** The hand-written renderers `getRenderer` knows (`chat_template` is async: `createChatTemplateRenderer`). */
export const RENDERER_NAMES = [
  "qwen3",
  "qwen3_instruct",
  "llama3",
  "deepseek_v3",
  "gpt_oss",
  "role_colon",
] as const;
export type RendererName = (typeof RENDERER_NAMES)[number];

// The local backend's model (src/local/backend.ts BUILTIN_BASE_MODEL); compared as a string so that
// the toolkit does not pull in the backend.
const LOCAL_BASE_MODEL = "tinker-ts/byte-lm-tiny";

export function getRenderer(name: string, tokenizer: Tokenizer, options: RendererOptions = {}): Renderer {
  switch (name) {
    case "qwen3":
      return new Qwen3Renderer(tokenizer, { enableThinking: options.enableThinking });
    case "qwen3_instruct":
      return new Qwen3Renderer(tokenizer, { thinkingModel: false });
    case "llama3":
      return new Llama3Renderer(tokenizer);
    case "deepseek_v3":
      return new DeepSeekV3Renderer(tokenizer);
    case "gpt_oss":
      return new GptOssRenderer(tokenizer, options);
    case "role_colon":
      return new RoleColonRenderer(tokenizer);
    case "chat_template":
      throw new ValidationError([
        {
          path: "name",
          message: "the chat_template renderer is created with await createChatTemplateRenderer(tokenizer)",
        },
      ]);
    default:
      throw new ValidationError([
        {
          path: "name",
          message: `unknown renderer ${name}; known: ${RENDERER_NAMES.join(", ")}, chat_template`,
        },
      ]);
  }
}

/**
 * The renderer for a base model: Qwen3 → `qwen3` (the Instruct-2507 models → `qwen3_instruct`, their
 * template has no thinking), Llama 3.x → `llama3`, DeepSeek V3 → `deepseek_v3`, gpt-oss → `gpt_oss`;
 * the local backend's model and anything else → `role_colon`.
 */
export function recommendedRendererName(baseModel: string): RendererName {
  const model = baseModel.split(":")[0]!.toLowerCase();
  if (model === LOCAL_BASE_MODEL) return "role_colon";
  if (model.startsWith("qwen/qwen3-")) return /-instruct-2507$/.test(model) ? "qwen3_instruct" : "qwen3";
  if (/^meta-llama\/(meta-)?llama-3/.test(model)) return "llama3";
  if (model.startsWith("deepseek-ai/deepseek-v3")) return "deepseek_v3";
  if (model.startsWith("openai/gpt-oss-")) return "gpt_oss";
  return "role_colon";
}

/**
 * Token ids of a conversation: as a generation prompt when `addGenerationPrompt`, else the whole
 * conversation (default false, as `apply_chat_template`). Given a model name, the recommended
 * renderer is used, with `options.tokenizer` or the model's tokenizer (loaded with `loadTokenizer`).
 */
export async function renderMessages(
  baseModelOrRenderer: string | Renderer,
  messages: readonly ChatMessage[],
  options: { tokenizer?: Tokenizer; addGenerationPrompt?: boolean } & RendererOptions = {},
): Promise<number[]> {
  let renderer: Renderer;
  if (typeof baseModelOrRenderer === "string") {
    const tokenizer =
      options.tokenizer ?? (await loadTokenizer(tokenizerIdForModelName(baseModelOrRenderer)));
    renderer = getRenderer(recommendedRendererName(baseModelOrRenderer), tokenizer, options);
  } else {
    renderer = baseModelOrRenderer;
  }
  if (options.addGenerationPrompt) return renderer.buildGenerationPrompt(messages);
  return renderer.buildSupervisedExample(messages, { trainOnWhat: "all_tokens" }).tokens;
}
