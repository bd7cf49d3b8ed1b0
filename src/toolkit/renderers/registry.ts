/** Choosing a renderer: by name (built in or registered), by base model, and the one-call `renderMessages`. */

import { ValidationError } from "../../core/errors.js";
import { loadTokenizer, type Tokenizer, tokenizerIdForModelName } from "../../lib/tokenizer/index.js";
import { DeepSeekV3Renderer } from "./deepseek-v3.js";
import { GptOssRenderer } from "./gpt-oss.js";
import { KimiK25Renderer } from "./kimi-k25.js";
import { Llama3Renderer } from "./llama3.js";
import { Qwen3Renderer } from "./qwen3.js";
import { Qwen35Renderer, type QwenReasoningEffort } from "./qwen3-5.js";
import { RoleColonRenderer } from "./role-colon.js";
import type { MultimodalMessage, Renderer, RendererOptions, ToolSpec } from "./types.js";

/** Makes a renderer for a tokenizer; `options` are what `getRenderer` was given. */
export type RendererFactory = (tokenizer: Tokenizer, options: RendererOptions) => Renderer;

const qwen35 =
  (enableThinking: boolean): RendererFactory =>
  (tokenizer) =>
    new Qwen35Renderer(tokenizer, { enableThinking });
const qwen38 =
  (effort: QwenReasoningEffort | undefined): RendererFactory =>
  (tokenizer) =>
    new Qwen35Renderer(tokenizer, {
      version: "3.8",
      enableThinking: effort !== undefined,
      reasoningEffort: effort,
    });
const kimi =
  (name: string, enableThinking: boolean, preserveThinking = false): RendererFactory =>
  (tokenizer) =>
    new KimiK25Renderer(tokenizer, { name, enableThinking, preserveThinking });

const BUILT_IN = {
  qwen3: (tokenizer, options) => new Qwen3Renderer(tokenizer, { enableThinking: options.enableThinking }),
  qwen3_instruct: (tokenizer) => new Qwen3Renderer(tokenizer, { thinkingModel: false }),
  qwen3_5: qwen35(true),
  qwen3_5_disable_thinking: qwen35(false),
  qwen3_8_xhigh_reasoning: qwen38("xhigh"),
  qwen3_8_medium_reasoning: qwen38("medium"),
  qwen3_8_low_reasoning: qwen38("low"),
  qwen3_8_disable_thinking: qwen38(undefined),
  kimi_k25: kimi("kimi_k25", true),
  kimi_k25_disable_thinking: kimi("kimi_k25_disable_thinking", false),
  // K2.6's template is K2.5's plus the opt-in preserve_thinking.
  kimi_k26: kimi("kimi_k26", true),
  kimi_k26_disable_thinking: kimi("kimi_k26_disable_thinking", false),
  kimi_k26_preserve_thinking: kimi("kimi_k26_preserve_thinking", true, true),
  llama3: (tokenizer) => new Llama3Renderer(tokenizer),
  deepseek_v3: (tokenizer) => new DeepSeekV3Renderer(tokenizer),
  gpt_oss: (tokenizer, options) => new GptOssRenderer(tokenizer, options),
  role_colon: (tokenizer) => new RoleColonRenderer(tokenizer),
} satisfies Record<string, RendererFactory>;

/** The hand-written renderers `getRenderer` knows (`chat_template` is async: `createChatTemplateRenderer`). */
export const RENDERER_NAMES = Object.keys(BUILT_IN) as readonly (keyof typeof BUILT_IN)[];
export type RendererName = keyof typeof BUILT_IN;

const registered = new Map<string, RendererFactory>();

/**
 * Adds a renderer under `name` for `getRenderer` (and `renderMessages` given that renderer). Names
 * are lower-case words with `_`; a built-in name, `chat_template`, or a name already registered is
 * refused (pass `{ replace: true }` to replace one you registered).
 */
export function registerRenderer(
  name: string,
  factory: RendererFactory,
  options: { replace?: boolean } = {},
): void {
  if (typeof name !== "string" || !/^[a-z][a-z0-9_.]*$/.test(name)) {
    throw new ValidationError([{ path: "name", message: "must be lower-case letters, digits, _ or ." }]);
  }
  if (typeof factory !== "function")
    throw new ValidationError([{ path: "factory", message: "must be a function" }]);
  if (Object.hasOwn(BUILT_IN, name) || name === "chat_template") {
    throw new ValidationError([{ path: "name", message: `${name} is a built-in renderer` }]);
  }
  if (registered.has(name) && !options.replace) {
    throw new ValidationError([
      { path: "name", message: `${name} is already registered (replace: true to replace it)` },
    ]);
  }
  registered.set(name, factory);
}

/** Removes a renderer added with `registerRenderer`; true when there was one. */
export function unregisterRenderer(name: string): boolean {
  return registered.delete(name);
}

/** Every name `getRenderer` accepts: the built-in renderers, then the registered ones. */
export function listRendererNames(): string[] {
  return [...RENDERER_NAMES, ...registered.keys()];
}

export function getRenderer(name: string, tokenizer: Tokenizer, options: RendererOptions = {}): Renderer {
  const factory = Object.hasOwn(BUILT_IN, name) ? BUILT_IN[name as RendererName] : registered.get(name);
  if (factory !== undefined) return factory(tokenizer, options);
  if (name === "chat_template") {
    throw new ValidationError([
      {
        path: "name",
        message: "the chat_template renderer is created with await createChatTemplateRenderer(tokenizer)",
      },
    ]);
  }
  throw new ValidationError([
    {
      path: "name",
      message: `unknown renderer ${name}; known: ${listRendererNames().join(", ")}, chat_template`,
    },
  ]);
}

// The local backend's models (src/local/backend.ts BUILTIN_BASE_MODEL); compared as a string so that
// the toolkit does not pull in the backend.
const LOCAL_MODEL_PREFIX = "tinker-ts/";

/**
 * Model families and their renderer, in the order they are tried (first match wins), as the
 * cookbook's model_info recommends. A family whose renderer does not exist here has `null`.
 */
const FAMILIES: readonly { family: string; pattern: RegExp; renderer: RendererName | null }[] = [
  { family: "Qwen3.5 / Qwen3.6", pattern: /^qwen\/qwen3\.[56]-/, renderer: "qwen3_5" },
  { family: "Qwen3.8", pattern: /^qwen\/qwen3\.8-/, renderer: "qwen3_8_xhigh_reasoning" },
  // Qwen3-VL (its renderers, qwen3_vl*, are not written here).
  { family: "Qwen3-VL", pattern: /^qwen\/qwen3-vl-/, renderer: null },
  { family: "Qwen3 Instruct-2507", pattern: /^qwen\/qwen3-.*-instruct-2507$/, renderer: "qwen3_instruct" },
  { family: "Qwen3", pattern: /^qwen\/qwen3-/, renderer: "qwen3" },
  {
    family: "Llama 3.x Instruct",
    pattern: /^meta-llama\/(meta-)?llama-3[.\d]*-.*instruct/,
    renderer: "llama3",
  },
  { family: "Llama 3.x base", pattern: /^meta-llama\/(meta-)?llama-3/, renderer: "role_colon" },
  { family: "DeepSeek V3", pattern: /^deepseek-ai\/deepseek-v3/, renderer: "deepseek_v3" },
  { family: "gpt-oss", pattern: /^openai\/gpt-oss-/, renderer: "gpt_oss" },
  { family: "Kimi K2.5", pattern: /^moonshotai\/kimi-k2\.5(-|$)/, renderer: "kimi_k25" },
  { family: "Kimi K2.6", pattern: /^moonshotai\/kimi-k2\.6(-|$)/, renderer: "kimi_k26" },
  // The cookbook's kimi_k2 renderer (Kimi-K2-Thinking) is not written here.
  { family: "Kimi K2 Thinking", pattern: /^moonshotai\/kimi-k2-thinking$/, renderer: null },
];

/**
 * The renderer for a base model, as the cookbook recommends: Qwen3.5/3.6 → `qwen3_5`, Qwen3.8 →
 * `qwen3_8_xhigh_reasoning`, Qwen3 → `qwen3` (Instruct-2507 → `qwen3_instruct`), Llama 3.x Instruct →
 * `llama3`, DeepSeek V3 → `deepseek_v3`, gpt-oss → `gpt_oss`, Kimi K2.5 → `kimi_k25`, K2.6 →
 * `kimi_k26`; base models (`…-Base`, Llama 3.x without `Instruct`) and the local backend's models →
 * `role_colon`. Anything else — an unknown model, or a known one whose renderer is not written
 * here (Kimi-K2-Thinking's `kimi_k2`, Qwen3-VL's) — is a ValidationError naming the known families,
 * never a silent fallback. A `:suffix` (`Qwen/Qwen3-8B:base`) is ignored.
 */
export function recommendedRendererName(baseModel: string): RendererName {
  if (typeof baseModel !== "string" || baseModel === "") {
    throw new ValidationError([{ path: "baseModel", message: "must be a model name like Qwen/Qwen3.5-4B" }]);
  }
  const model = baseModel.split(":")[0]!.toLowerCase();
  if (model.startsWith(LOCAL_MODEL_PREFIX)) return "role_colon";
  const match = FAMILIES.find((f) => f.pattern.test(model));
  // Base models of a known family have no chat template: the cookbook trains them with role_colon.
  if (match !== undefined && model.endsWith("-base")) return "role_colon";
  if (match?.renderer) return match.renderer;
  const known = FAMILIES.filter((f) => f.renderer !== null).map((f) => `${f.family} → ${f.renderer}`);
  const why =
    match === undefined
      ? `no renderer is known for ${baseModel}`
      : `${baseModel} is a ${match.family} model, whose renderer is not written here`;
  throw new ValidationError([
    {
      path: "baseModel",
      message: `${why}; known families: ${known.join(", ")}; their -Base models and tinker-ts/* → role_colon. Pick a renderer by name with getRenderer (renderers: ${listRendererNames().join(", ")}), or createChatTemplateRenderer for the tokenizer's own template`,
    },
  ]);
}

/**
 * Token ids of a conversation: as a generation prompt when `addGenerationPrompt`, else the whole
 * conversation (default false, as `apply_chat_template`). Given a model name, the recommended
 * renderer is used, with `options.tokenizer` or the model's tokenizer (loaded with `loadTokenizer`).
 */
export async function renderMessages(
  baseModelOrRenderer: string | Renderer,
  messages: readonly MultimodalMessage[],
  options: {
    tokenizer?: Tokenizer;
    addGenerationPrompt?: boolean;
    tools?: readonly ToolSpec[];
  } & RendererOptions = {},
): Promise<number[]> {
  let renderer: Renderer;
  if (typeof baseModelOrRenderer === "string") {
    const name = recommendedRendererName(baseModelOrRenderer);
    const tokenizer =
      options.tokenizer ?? (await loadTokenizer(tokenizerIdForModelName(baseModelOrRenderer)));
    renderer = getRenderer(name, tokenizer, options);
  } else {
    renderer = baseModelOrRenderer;
  }
  const tools = options.tools === undefined ? {} : { tools: options.tools };
  if (options.addGenerationPrompt) return renderer.buildGenerationPrompt(messages, tools);
  return renderer.buildSupervisedExample(messages, { trainOnWhat: "all_tokens", ...tools }).tokens;
}
