/**
 * The `chat_template` renderer: any model whose tokenizer ships a Jinja chat template, rendered with
 * `@huggingface/jinja` (an optional peer dependency, imported on first use — hence the async factory)
 * and tokenized as transformers' `apply_chat_template` does (special tokens recognised, none added).
 *
 * Which tokens belong to which message is found by rendering successive prefixes of the conversation
 * and comparing them with the whole: message k starts where the rendering of messages[0..k) stops
 * agreeing with it; an assistant message's header ends where the generation prompt for
 * messages[0..k) stops agreeing; its content runs to the first end-of-turn token after that (templates
 * may render a turn differently once it is no longer the last, so prefixes alone cannot bound it).
 */

import { ValidationError } from "../../core/errors.js";
import { lazyImport } from "../../internal/lazy-import.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { assistantMessage, checkMessages, checkTools, cutAtStop } from "./common.js";
import { pyLstrip, pyRstrip, pyStrip } from "./text.js";
import { commonPrefixLength } from "./token-builder.js";
import type {
  MultimodalMessage,
  ParsedResponse,
  Renderer,
  RenderOptions,
  SupervisedExample,
  SupervisedOptions,
  ToolSpec,
} from "./types.js";
import { checkTrainOnWhat, trainedMessages } from "./weights.js";

export interface ChatTemplateRendererOptions {
  /** Which template, when the tokenizer ships several by name. Default `default`, else the first. */
  templateName?: string;
  /** A template to use instead of the tokenizer's own. */
  template?: string;
  /** Extra template variables, as `apply_chat_template`'s kwargs (`enable_thinking`, `reasoning_effort`…). */
  variables?: Record<string, unknown>;
  /** The date `strftime_now` reports, for templates that print today's date. Default: now. */
  date?: Date;
  /** Token ids that end an assistant turn. Default: the tokenizer's EOS. */
  stopTokens?: readonly number[];
}

type RenderFunction = (items: Record<string, unknown>) => string;

const loadJinja = /* @__PURE__ */ lazyImport(() =>
  import("@huggingface/jinja").catch((error: unknown) => {
    throw new Error(
      "the chat_template renderer needs the optional package @huggingface/jinja; install it next to tinker-ts (npm install @huggingface/jinja)",
      { cause: error },
    );
  }),
);

/** A renderer that runs the tokenizer's own chat template. */
export async function createChatTemplateRenderer(
  tokenizer: Tokenizer,
  options: ChatTemplateRendererOptions = {},
): Promise<Renderer> {
  const source = options.template ?? pickTemplate(tokenizer, options.templateName);
  const stopTokens = [
    ...(options.stopTokens ?? (tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId])),
  ];
  if (stopTokens.length === 0) {
    throw new ValidationError([
      {
        path: "options.stopTokens",
        message: `tokenizer ${tokenizer.id} declares no EOS: give the end-of-turn token ids`,
      },
    ]);
  }
  const { Template, Environment, Interpreter } = await loadJinja();
  let template: InstanceType<typeof Template>;
  try {
    template = new Template(source);
  } catch (error) {
    throw new ValidationError([
      {
        path: "template",
        message: `cannot parse the chat template: ${error instanceof Error ? error.message : String(error)}`,
      },
    ]);
  }
  pythonStripCalls(template.parsed);
  // Template.render declares its own strftime_now and raise_exception and refuses redeclarations, so
  // the environment is built here: the same globals, with ours for those two.
  const render: RenderFunction = (items) => {
    const env = new Environment();
    for (const [name, value] of Object.entries({ ...JINJA_GLOBALS, ...items })) env.set(name, value);
    return new Interpreter(env).run(template.parsed).value as string;
  };
  return new ChatTemplateRenderer(tokenizer, render, stopTokens, options);
}

/** The globals @huggingface/jinja's Template.render sets up, but for strftime_now/raise_exception. */
const JINJA_GLOBALS: Record<string, unknown> = {
  false: false,
  true: true,
  none: null,
  False: false,
  True: true,
  None: null,
  range: pythonRange,
  __py_strip: (text: unknown, chars: unknown) => stripOrKeep(pyStrip, text, chars),
  __py_lstrip: (text: unknown, chars: unknown) => stripOrKeep(pyLstrip, text, chars),
  __py_rstrip: (text: unknown, chars: unknown) => stripOrKeep(pyRstrip, text, chars),
};

function stripOrKeep(
  strip: (text: string, chars?: string) => string,
  text: unknown,
  chars: unknown,
): unknown {
  if (typeof text !== "string") return text;
  return strip(text, typeof chars === "string" ? chars : undefined);
}

/**
 * @huggingface/jinja 0.5.11 ignores the argument of `strip`/`lstrip`/`rstrip` and trims all
 * whitespace, where transformers runs Python's `str.strip(chars)` (Qwen3's `content.lstrip('\n')`
 * keeps a leading space). Calls with an argument are rewired, in the parsed template, to our Python
 * versions: `x.lstrip(c)` becomes `__py_lstrip(x, c)`. The interpreter dispatches on `node.type`.
 */
function pythonStripCalls(node: unknown): void {
  if (typeof node !== "object" || node === null) return;
  if (Array.isArray(node)) {
    for (const child of node) pythonStripCalls(child);
    return;
  }
  const record = node as Record<string, unknown>;
  for (const child of Object.values(record)) pythonStripCalls(child);
  if (record.type !== "CallExpression") return;
  const callee = record.callee as Record<string, unknown> | undefined;
  const args = record.args as unknown[] | undefined;
  const property = callee?.property as Record<string, unknown> | undefined;
  if (callee?.type !== "MemberExpression" || callee.computed || property?.type !== "Identifier") return;
  if (!["strip", "lstrip", "rstrip"].includes(property.value as string) || args?.length !== 1) return;
  record.callee = { type: "Identifier", value: `__py_${property.value as string}` };
  record.args = [callee.object, ...args];
}

function pythonRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new ValidationError([{ path: "template", message: "range() step must not be zero" }]);
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

function pickTemplate(tokenizer: Tokenizer, name: string | undefined): string {
  const templates = tokenizer.chatTemplate;
  if (templates === null) {
    throw new ValidationError([
      {
        path: "tokenizer",
        message: `tokenizer ${tokenizer.id} ships no chat template; use a family renderer or role_colon`,
      },
    ]);
  }
  if (typeof templates === "string") return templates;
  const chosen =
    templates[name ?? "default"] ?? (name === undefined ? Object.values(templates)[0] : undefined);
  if (chosen === undefined) {
    throw new ValidationError([
      { path: "options.templateName", message: `tokenizer ${tokenizer.id} has no template ${name}` },
    ]);
  }
  return chosen;
}

class ChatTemplateRenderer implements Renderer {
  readonly name = "chat_template";
  readonly tokenizer: Tokenizer;
  readonly #render: RenderFunction;
  readonly #stopTokens: number[];
  readonly #stopTexts: string[];
  readonly #globals: Record<string, unknown>;

  constructor(
    tokenizer: Tokenizer,
    render: RenderFunction,
    stopTokens: number[],
    options: ChatTemplateRendererOptions,
  ) {
    this.tokenizer = tokenizer;
    this.#render = render;
    this.#stopTokens = stopTokens;
    this.#stopTexts = stopTokens.map((id) => tokenizer.decode([id])).filter((text) => text !== "");
    const tokenText = (id: number | null) => (id === null ? undefined : tokenizer.idToToken(id));
    const date = options.date;
    this.#globals = {
      bos_token: tokenText(tokenizer.bosTokenId),
      eos_token: tokenText(tokenizer.eosTokenId),
      pad_token: tokenText(tokenizer.padTokenId),
      strftime_now: (format: string) => strftime(date ?? new Date(), format),
      raise_exception: (message: string) => {
        throw new ValidationError([
          { path: "messages", message: `the chat template refused them: ${message}` },
        ]);
      },
      ...options.variables,
    };
  }

  stopSequences(): number[] {
    return [...this.#stopTokens];
  }

  /**
   * The template's text for `messages`; `tools` go in as apply_chat_template's `tools`, each as an
   * OpenAI tool (`{"type": "function", "function": spec}`).
   */
  renderText(
    messages: readonly MultimodalMessage[],
    addGenerationPrompt: boolean,
    tools: readonly ToolSpec[] = [],
  ): string {
    return this.#render({
      ...this.#globals,
      messages: messages.map(templateMessage),
      add_generation_prompt: addGenerationPrompt,
      ...(tools.length > 0 ? { tools: tools.map((spec) => ({ type: "function", function: spec })) } : {}),
    });
  }

  buildGenerationPrompt(messages: readonly MultimodalMessage[], options: RenderOptions = {}): number[] {
    const tools = checkTools(options.tools, this.name, true);
    checkMessages(messages, this.name);
    return this.#encode(this.renderText(messages, true, tools));
  }

  buildSupervisedExample(
    messages: readonly MultimodalMessage[],
    options: SupervisedOptions = {},
  ): SupervisedExample {
    const trainOnWhat = checkTrainOnWhat(options.trainOnWhat);
    const tools = checkTools(options.tools, this.name, true);
    checkMessages(messages, this.name);
    const full = this.renderText(messages, false, tools);
    const tokens = this.#encode(full);
    if (trainOnWhat === "all_tokens") return { tokens, weights: tokens.map(() => 1) };
    const trained = trainedMessages(messages, trainOnWhat);
    const weights = tokens.map(() => 0);
    // Token index of a character position of `full`: the shared token prefix of its encoding.
    const tokenAt = (chars: number) => commonPrefixLength(this.#encode(full.slice(0, chars)), tokens);
    const starts = messages.map((_, k) => this.#agreement(messages.slice(0, k), false, full, tools));
    for (let k = 0; k < messages.length; k++) {
      if (!trained(k)) continue;
      const start = starts[k]!;
      let from = start;
      let to = k + 1 < messages.length ? Math.max(start, starts[k + 1]!) : full.length;
      if (messages[k]!.role === "assistant") {
        from = Math.max(start, this.#agreement(messages.slice(0, k), true, full, tools));
        to = this.#endOfTurn(full, from) ?? to;
      }
      const last = tokenAt(to);
      for (let i = tokenAt(from); i < last; i++) weights[i] = 1;
    }
    return { tokens, weights };
  }

  parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { body, stopToken } = cutAtStop(tokens, this.#stopTokens);
    const text = this.tokenizer.decode(body);
    const termination = stopToken === undefined ? "length" : "stop";
    // Reasoning models write <think>…</think> before the reply.
    const close = text.indexOf("</think>");
    if (close < 0) return { message: assistantMessage(text), termination };
    const before = text.slice(0, close);
    const open = before.indexOf("<think>");
    const thinking = pyStrip(open < 0 ? before : before.slice(open + "<think>".length), "\n");
    const reply = pyLstrip(text.slice(close + "</think>".length), "\n");
    return { message: assistantMessage(reply, thinking === "" ? undefined : thinking), termination };
  }

  #encode(text: string): number[] {
    return this.tokenizer.encode(text, { addSpecialTokens: false });
  }

  /** How many leading characters the rendering of `prefix` shares with `full`. */
  #agreement(
    prefix: readonly MultimodalMessage[],
    addGenerationPrompt: boolean,
    full: string,
    tools: readonly ToolSpec[],
  ): number {
    let text: string;
    try {
      text = this.renderText(prefix, addGenerationPrompt, tools);
    } catch {
      return 0; // some templates cannot render an empty conversation
    }
    return commonPrefixLength(text, full);
  }

  /** The character position just after the first end-of-turn token text at or after `from`. */
  #endOfTurn(full: string, from: number): number | undefined {
    let best: number | undefined;
    for (const stop of this.#stopTexts) {
      const at = full.indexOf(stop, from);
      if (at >= 0 && (best === undefined || at + stop.length < best)) best = at + stop.length;
    }
    return best;
  }
}

/** A message as templates expect it: Qwen reads `reasoning_content`, gpt-oss reads `thinking`. */
function templateMessage(message: MultimodalMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: message.role, content: message.content };
  if (message.thinking !== undefined) {
    out.thinking = message.thinking;
    out.reasoning_content = message.thinking;
  }
  return out;
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** The subset of Python's `strftime` that chat templates use, in UTC. */
function strftime(date: Date, format: string): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%([YmdBbHMSy%])/g, (_, code: string) => {
    switch (code) {
      case "Y":
        return String(date.getUTCFullYear());
      case "y":
        return pad(date.getUTCFullYear() % 100);
      case "m":
        return pad(date.getUTCMonth() + 1);
      case "d":
        return pad(date.getUTCDate());
      case "B":
        return MONTHS[date.getUTCMonth()]!;
      case "b":
        return MONTHS[date.getUTCMonth()]!.slice(0, 3);
      case "H":
        return pad(date.getUTCHours());
      case "M":
        return pad(date.getUTCMinutes());
      case "S":
        return pad(date.getUTCSeconds());
      default:
        return "%";
    }
  });
}
