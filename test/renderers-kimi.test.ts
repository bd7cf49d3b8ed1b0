/**
 * The Kimi K2.5/K2.6 renderers (`kimi_k25`, `kimi_k25_disable_thinking`, `kimi_k26`,
 * `kimi_k26_disable_thinking`, `kimi_k26_preserve_thinking`) and the TypeScript tool declarations.
 *
 * Kimi's tokenizer is tiktoken-style (`tiktoken.model` plus special tokens) and is not available
 * offline, so these tests use `tiktokenTokenizer` over a synthetic rank file made here: every byte,
 * a few merges, and Kimi's special tokens. The renderers only depend on the special tokens being
 * single ids and on text being tokenized as a whole between them; the tests check the exact text
 * each renderer writes (from the template's documented behaviour) and that its tokens are that text
 * tokenized as a whole.
 *
 * Token parity with the real template runs when a copy of it is given (kept outside the repository;
 * it is rendered with the synthetic tokenizer's special tokens, which is enough: the template is text):
 *
 *   TINKER_TS_KIMI_K25_TEMPLATE=/path/Kimi-K2.5/chat_template.jinja npx vitest run test/renderers-kimi.test.ts
 */

import { beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../src/core/errors.js";
import type { Tokenizer } from "../src/lib/tokenizer/index.js";
import {
  type ChatMessage,
  getRenderer,
  kimiToolDeclaration,
  type MultimodalMessage,
  type Renderer,
  type ToolSpec,
  tiktokenTokenizer,
} from "../src/toolkit/renderers/index.js";
import { openAiTools, renderTemplate, templateFromEnv, templateMessage } from "./renderers-reference.js";

const SPECIAL = [
  "<|im_end|>",
  "<|im_user|>",
  "<|im_assistant|>",
  "<|im_system|>",
  "<|im_middle|>",
  "<|media_begin|>",
  "<|media_content|>",
  "<|media_end|>",
  "<|media_pad|>",
  "<think>",
  "</think>",
  "<|tool_calls_section_begin|>",
  "<|tool_calls_section_end|>",
  "<|tool_call_begin|>",
  "<|tool_call_argument_begin|>",
  "<|tool_call_end|>",
];

/** A small tiktoken-style tokenizer: all 256 bytes, some merges, Kimi's special tokens from 163584. */
function kimiTokenizer(): Promise<Tokenizer> {
  const toBase64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  const lines = Array.from({ length: 256 }, (_, b) => `${btoa(String.fromCharCode(b))} ${b}`);
  ["th", "he", "in", "er", " t", " the", "re", "on", "at", "es"].forEach((merge, i) => {
    lines.push(`${toBase64(merge)} ${256 + i}`);
  });
  return tiktokenTokenizer({
    id: "synthetic-kimi",
    ranks: lines.join("\n"),
    specialTokens: Object.fromEntries(SPECIAL.map((token, i) => [token, 163584 + i])),
    pattern: /'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/u,
    eosToken: "<|im_end|>",
  });
}

let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await kimiTokenizer();
});
const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });

const DEFAULT_SYSTEM =
  "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>";
const turn = (header: string, name: string, text: string) =>
  `<|im_${header}|>${name}<|im_middle|>${text}<|im_end|>`;
const sys = (text: string): ChatMessage => ({ role: "system", content: text });
const user = (text: string): ChatMessage => ({ role: "user", content: text });
const assistant = (text: string, thinking?: string): ChatMessage =>
  thinking === undefined
    ? { role: "assistant", content: text }
    : { role: "assistant", content: text, thinking };

const WEATHER: ToolSpec = {
  name: "get_weather",
  description: "Get the weather",
  parameters: {
    type: "object",
    properties: {
      unit: { type: "string", enum: ["c", "f"] },
      city: { type: "string", description: "The city" },
    },
    required: ["city"],
  },
};
const WEATHER_TS =
  '# Tools\n\n## functions\nnamespace functions {\n// Get the weather\ntype get_weather = (_: {\n  // The city\n  city: string,\n  unit?: "c" | "f"\n}) => any;\n}\n';

const CALL_TURN: ChatMessage = {
  role: "assistant",
  content: "",
  thinking: "I need the weather.",
  toolCalls: [{ id: "functions.get_weather:0", name: "get_weather", arguments: '{"city": "Paris"}' }],
};
const RESULT: ChatMessage = {
  role: "tool",
  name: "get_weather",
  toolCallId: "functions.get_weather:0",
  content: '{"temp": 18}',
};
const CALLS_TEXT =
  '<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>';

interface Variant {
  name: string;
  thinking: boolean;
  preserve: boolean;
}
const VARIANTS: Variant[] = [
  { name: "kimi_k25", thinking: true, preserve: false },
  { name: "kimi_k25_disable_thinking", thinking: false, preserve: false },
  { name: "kimi_k26", thinking: true, preserve: false },
  { name: "kimi_k26_disable_thinking", thinking: false, preserve: false },
  { name: "kimi_k26_preserve_thinking", thinking: true, preserve: true },
];

function expectRendering(tokens: number[], expected: string): void {
  expect(tokenizer.decode(tokens)).toBe(expected);
  expect(tokens).toEqual(encode(expected));
}

/** The example is the generation prompt of the earlier messages plus the trained, parseable turn. */
function expectTrainedCompletion(
  renderer: Renderer,
  messages: readonly MultimodalMessage[],
  tools?: ToolSpec[],
) {
  const prompt = renderer.buildGenerationPrompt(messages.slice(0, -1), { tools });
  const { tokens, weights } = renderer.buildSupervisedExample(messages, { tools });
  expect(tokens.slice(0, prompt.length)).toEqual(prompt);
  expect(weights.slice(0, prompt.length).every((w) => w === 0)).toBe(true);
  expect(weights.slice(prompt.length).every((w) => w === 1)).toBe(true);
  const completion = tokens.slice(prompt.length);
  const parsed = renderer.parseResponse(completion);
  expect(parsed.termination).toBe("stop");
  return { parsed, completion, tokens };
}

describe.each(VARIANTS)("$name", (variant) => {
  let renderer: Renderer;
  beforeAll(() => {
    renderer = getRenderer(variant.name, tokenizer);
  });
  const prefill = () => (variant.thinking ? "<think>" : "<think></think>");
  const promptEnd = () => `<|im_assistant|>assistant<|im_middle|>${prefill()}`;

  it("generation prompt: the default system message when none is given, then the think prefill", () => {
    expect(renderer.name).toBe(variant.name);
    expect(renderer.stopSequences()).toEqual([tokenizer.specialTokens.get("<|im_end|>")]);
    expectRendering(
      renderer.buildGenerationPrompt([user("What is the time?")]),
      `${DEFAULT_SYSTEM}${turn("user", "user", "What is the time?")}${promptEnd()}`,
    );
    expectRendering(
      renderer.buildGenerationPrompt([sys("Be brief."), user("hi")]),
      `${turn("system", "system", "Be brief.")}${turn("user", "user", "hi")}${promptEnd()}`,
    );
  });

  it("whole conversation with thinking: past turns keep an empty think block, the trained turn its reasoning", () => {
    const messages = [
      sys("S"),
      user("q1"),
      assistant("a1", "t1"),
      user("q2"),
      assistant("a2", variant.thinking ? "t2" : undefined),
    ];
    const past = variant.preserve ? "<think>t1</think>a1" : "<think></think>a1";
    const last = variant.thinking ? "<think>t2</think>a2" : "<think></think>a2";
    const { tokens, weights } = renderer.buildSupervisedExample(messages);
    expect(tokenizer.decode(tokens)).toBe(
      turn("system", "system", "S") +
        turn("user", "user", "q1") +
        turn("assistant", "assistant", past) +
        turn("user", "user", "q2") +
        turn("assistant", "assistant", last),
    );
    expect(tokenizer.decode(tokens.filter((_, i) => weights[i] === 1))).toBe(
      variant.thinking ? "t2</think>a2<|im_end|>" : "a2<|im_end|>",
    );
    const { parsed } = expectTrainedCompletion(renderer, messages);
    expect(parsed.message).toEqual(messages.at(-1));
    if (!variant.thinking) {
      expect(() => renderer.buildSupervisedExample([user("q"), assistant("a", "reasoned")])).toThrow(
        /messages\[1\]\.thinking: .*closes the think block/,
      );
    }
  });

  it("tools: TypeScript declaration first, tool calls, tool results with their call id; calls parse back", () => {
    const tools = [WEATHER];
    const think = variant.thinking ? "<think>I need the weather.</think>" : "<think></think>";
    const messages = [user("Weather in Paris?"), CALL_TURN, RESULT];
    const expected =
      turn("system", "tool_declare", WEATHER_TS) +
      DEFAULT_SYSTEM +
      turn("user", "user", "Weather in Paris?") +
      turn("assistant", "assistant", `${think}${CALLS_TEXT}`) +
      turn("system", "get_weather", '## Return of functions.get_weather:0\n{"temp": 18}') +
      promptEnd();
    // The tool-call turn comes after the last assistant turn without calls: it keeps its reasoning.
    expectRendering(renderer.buildGenerationPrompt(messages, { tools }), expected);
    // Trained and parsed (a disable-thinking renderer trains the turn without its reasoning).
    const { thinking: _, ...withoutThinking } = CALL_TURN;
    const trained = variant.thinking ? CALL_TURN : withoutThinking;
    const { parsed, tokens } = expectTrainedCompletion(renderer, [messages[0]!, trained], tools);
    expect(parsed.message).toEqual(trained);
    // Re-rendering the parsed turn gives the same tokens (the arguments are kept as sampled).
    expect(renderer.buildSupervisedExample([messages[0]!, parsed.message], { tools }).tokens).toEqual(tokens);
  });

  it("past reasoning: dropped up to the last assistant turn without tool calls, kept after it", () => {
    const messages = [user("q1"), assistant("a1", "t1"), user("q2"), CALL_TURN, RESULT];
    const text = tokenizer.decode(renderer.buildGenerationPrompt(messages));
    expect(text).toContain(variant.preserve ? "<think>t1</think>a1" : "<think></think>a1");
    expect(text).toContain(
      variant.thinking ? "<think>I need the weather.</think>" : "<think></think><|tool_calls",
    );
  });

  it("tool-call ids default to functions.{name}:{index}; object arguments are written as Python's json.dumps", () => {
    const call: ChatMessage = {
      role: "assistant",
      content: "Checking.",
      toolCalls: [
        { name: "get_weather", arguments: { city: "Paris", days: [1, 2] } },
        { name: "get_weather", arguments: { city: "Rome" } },
      ],
    };
    const text = tokenizer.decode(renderer.buildSupervisedExample([user("go"), call]).tokens);
    expect(text).toContain(
      'Checking.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"city": "Paris", "days": [1, 2]}<|tool_call_end|>' +
        '<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{"city": "Rome"}<|tool_call_end|><|tool_calls_section_end|><|im_end|>',
    );
  });

  it("images: <|media_begin|>image<|media_content|> + the caller's chunk + <|media_end|> and a newline", () => {
    const pad = tokenizer.specialTokens.get("<|media_pad|>")!;
    const messages: MultimodalMessage[] = [
      {
        role: "user",
        content: [
          { type: "image", tokens: [pad, pad] },
          { type: "text", text: "What is this?" },
        ],
      },
    ];
    expectRendering(
      renderer.buildGenerationPrompt(messages),
      `${DEFAULT_SYSTEM}<|im_user|>user<|im_middle|><|media_begin|>image<|media_content|><|media_pad|><|media_pad|><|media_end|>\nWhat is this?<|im_end|>${promptEnd()}`,
    );
    expect(() => renderer.buildGenerationPrompt([{ role: "user", content: [{ type: "image" }] }])).toThrow(
      ValidationError,
    );
  });

  it("refuses a tool result without its call id, and roles the template does not know", () => {
    expect(() =>
      renderer.buildGenerationPrompt([user("q"), CALL_TURN, { ...RESULT, toolCallId: undefined }]),
    ).toThrow(/messages\[2\]\.toolCallId: a Kimi tool result names the call it answers/);
    expect(() => renderer.buildGenerationPrompt([{ role: "developer", content: "x" }])).toThrow(
      ValidationError,
    );
  });

  it("parseResponse: reasoning, content, malformed and cut-off replies", () => {
    const parse = (text: string) => renderer.parseResponse(encode(text));
    const head = variant.thinking ? "Let me see.</think>" : "";
    expect(parse(`${head}It is 4.<|im_end|>`)).toEqual({
      message: variant.thinking
        ? { role: "assistant", content: "It is 4.", thinking: "Let me see." }
        : { role: "assistant", content: "It is 4." },
      termination: "stop",
    });
    if (variant.thinking) {
      expect(parse("still thinking").termination).toBe("length");
      expect(parse("still thinking<|im_end|>").termination).toBe("malformed");
    }
    const badJson = parse(
      `${head}<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{oops<|tool_call_end|><|tool_calls_section_end|><|im_end|>`,
    );
    expect(badJson.termination).toBe("malformed");
    expect(badJson.unparsedToolCalls?.[0]?.error).toBe("arguments are not JSON");
    const open = parse(`${head}<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0`);
    expect(open.termination).toBe("length");
    expect(open.unparsedToolCalls?.[0]?.error).toBe("tool-calls section never closed");
    const trailing = parse(`${head}${CALLS_TEXT}and more<|im_end|>`);
    expect(trailing.termination).toBe("malformed");
    expect(trailing.message.toolCalls).toEqual([
      { id: "functions.get_weather:0", name: "get_weather", arguments: '{"city": "Paris"}' },
    ]);
  });
});

describe("kimiToolDeclaration", () => {
  it("writes Moonshot's TypeScript declarations: order, comments, constraints, defaults, nesting", () => {
    const search: ToolSpec = {
      name: "search",
      description: "Search the catalogue.\n\nReturns matches.",
      parameters: {
        type: "object",
        required: ["query", "filters"],
        properties: {
          query: { type: "string", description: "What to look for", minLength: 1, maxLength: 200 },
          limit: { type: "integer", minimum: 1, maximum: 50, default: 10 },
          sort: { type: "string", enum: ["relevance", "price"], default: "relevance" },
          exact: { type: "boolean", default: false },
          tags: { type: "array", items: { type: "string", description: "A tag" }, maxItems: 5 },
          ids: { type: "array", items: { type: "number" } },
          filters: {
            type: "object",
            description: "Narrowing",
            properties: { min: { type: "number" }, color: { anyOf: [{ type: "string" }, { type: "null" }] } },
            required: ["min"],
            additionalProperties: false,
          },
          extra: { type: ["string", "null"] },
          meta: { type: "object", additionalProperties: { type: "integer" } },
        },
      },
    };
    expect(kimiToolDeclaration([search, { name: "ping" }])).toBe(
      '# Tools\n\n## functions\nnamespace functions {\n// Search the catalogue.\n\n// Returns matches.\ntype search = (_: {\n  // Narrowing\n  filters: {\n    min: number,\n    color?: string | null,\n    [k: string]: never\n  },\n  // What to look for\n  // maxLength: 200, minLength: 1\n  query: string,\n  // Default: False\n  exact?: boolean,\n  extra?: string | null,\n  ids?: Array<number>,\n  // maximum: 50, minimum: 1\n  // Default: 10\n  limit?: number,\n  meta?: {\n    [k: string]: number\n  },\n  // Default: "relevance"\n  sort?: "relevance" | "price",\n  // maxItems: 5\n  tags?: Array<\n    // A tag\n    string\n  >\n}) => any;\ntype ping = (_: {}) => any;\n}\n',
    );
  });

  it("turns $defs into interfaces and a self-reference into `parameters`", () => {
    const tree: ToolSpec = {
      name: "tree",
      description: "A tree",
      parameters: {
        type: "object",
        $defs: {
          Node: {
            type: "object",
            description: "A node",
            properties: {
              value: { type: "integer" },
              children: { type: "array", items: { $ref: "#/$defs/Node" } },
            },
            required: ["value"],
          },
        },
        properties: { root: { $ref: "#/$defs/Node" }, label: { type: "string" } },
        required: ["root"],
      },
    };
    const expr: ToolSpec = {
      name: "expr",
      parameters: {
        type: "object",
        properties: { op: { type: "string" }, args: { type: "array", items: { $ref: "#" } } },
        required: ["op"],
      },
    };
    expect(kimiToolDeclaration([tree, expr])).toBe(
      "# Tools\n\n## functions\nnamespace functions {\n// A node\ninterface Node {\n  value: number,\n  children?: Array<Node>\n}\n// A tree\ntype tree = (_: {\n  root: Node,\n  label?: string\n}) => any;\ninterface parameters {\n  args?: Array<parameters>,\n  op: string\n}\ntype expr = (_: parameters) => any;\n}\n",
    );
  });

  it("falls back to the tools' compact JSON, keys sorted, when a schema is beyond the encoder", () => {
    const odd: ToolSpec = {
      name: "odd",
      parameters: { type: "object", properties: { x: { description: "no type" } } },
    };
    expect(kimiToolDeclaration([odd])).toBe(
      '[{"function":{"name":"odd","parameters":{"properties":{"x":{"description":"no type"}},"type":"object"}},"type":"function"}]',
    );
  });
});

// ---- Token parity with the model's own template, when a copy is given ----------------------------

const KIMI_TEMPLATE = templateFromEnv("TINKER_TS_KIMI_K25_TEMPLATE");

describe.skipIf(KIMI_TEMPLATE === undefined)(
  "parity with the template in TINKER_TS_KIMI_K25_TEMPLATE",
  () => {
    const conversations: Record<string, { messages: MultimodalMessage[]; tools?: ToolSpec[] }> = {
      "no system message": { messages: [user("hi")] },
      "history with thinking": { messages: [sys("S"), user("q1"), assistant("a1", "t1"), user("q2")] },
      "tool call and result": { messages: [user("Weather in Paris?"), CALL_TURN, RESULT], tools: [WEATHER] },
      "tool call after history": {
        messages: [user("q1"), assistant("a1", "t1"), user("q2"), CALL_TURN, RESULT],
      },
    };
    const variants: [string, Record<string, unknown>][] = [
      ["kimi_k25", { thinking: true }],
      ["kimi_k25_disable_thinking", { thinking: false }],
      ["kimi_k26_preserve_thinking", { thinking: true, preserve_thinking: true }],
    ];
    describe.each(variants)("%s", (name, variables) => {
      it.each(Object.entries(conversations))("generation prompt: %s", (_title, { messages, tools }) => {
        const expected = renderTemplate(KIMI_TEMPLATE!, {
          messages: messages.map(templateMessage),
          add_generation_prompt: true,
          ...(tools ? { tools: openAiTools(tools), tools_ts_str: kimiToolDeclaration(tools) } : {}),
          ...variables,
        });
        expect(getRenderer(name, tokenizer).buildGenerationPrompt(messages, { tools })).toEqual(
          encode(expected),
        );
      });
    });
  },
);
