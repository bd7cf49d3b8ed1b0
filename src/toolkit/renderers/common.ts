/** Pieces every renderer needs: message validation, token lookup, the stop-token scan. */

import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import type { RenderedTokens } from "./token-builder.js";
import type {
  ChatMessage,
  MultimodalMessage,
  ParsedResponse,
  Renderer,
  RenderOptions,
  SupervisedExample,
  SupervisedOptions,
  ToolCall,
  ToolSpec,
} from "./types.js";
import { checkTrainOnWhat, supervisedExampleOf } from "./weights.js";

const ROLES: readonly ChatMessage["role"][] = ["system", "developer", "user", "assistant", "tool"];

/** What a family renders beyond plain text messages. */
export interface MessageFeatures {
  /** Content lists (text and image parts). Default false: content must be a string. */
  parts?: boolean;
  /** Assistant tool calls. Default false. */
  toolCalls?: boolean;
}

/** Throws a ValidationError with one issue. */
export const fail = (path: string, message: string): never => {
  throw new ValidationError([{ path, message }]);
};

/** Checks the shape of every message, and that its role and features are ones the family renders. */
export function checkMessages(
  messages: readonly MultimodalMessage[],
  rendererName: string,
  roles: readonly ChatMessage["role"][] = ROLES,
  features: MessageFeatures = {},
): void {
  if (!Array.isArray(messages)) fail("messages", "must be an array");
  messages.forEach((message, i) => {
    const path = `messages[${i}]`;
    if (typeof message !== "object" || message === null) fail(path, "must be an object");
    if (!ROLES.includes(message.role)) fail(`${path}.role`, `unknown role ${String(message.role)}`);
    if (!roles.includes(message.role)) {
      fail(`${path}.role`, `the ${rendererName} renderer does not render ${message.role} messages`);
    }
    checkContent(message.content, `${path}.content`, rendererName, features.parts === true);
    for (const field of ["thinking", "toolCallId", "name"] as const) {
      if (message[field] !== undefined && typeof message[field] !== "string") {
        fail(`${path}.${field}`, "must be a string when given");
      }
    }
    if (message.toolCalls !== undefined) {
      if (!features.toolCalls) {
        fail(`${path}.toolCalls`, `the ${rendererName} renderer does not render tool calls`);
      }
      if (message.role !== "assistant") fail(`${path}.toolCalls`, "only assistant messages make tool calls");
      if (!Array.isArray(message.toolCalls)) fail(`${path}.toolCalls`, "must be an array");
      message.toolCalls.forEach((call, j) => {
        checkToolCall(call, `${path}.toolCalls[${j}]`);
      });
    }
  });
}

/** `checkMessages` for the text-only families: the same messages, typed as having text content. */
export function checkTextMessages(
  messages: readonly MultimodalMessage[],
  rendererName: string,
  roles?: readonly ChatMessage["role"][],
): readonly ChatMessage[] {
  checkMessages(messages, rendererName, roles);
  return messages as readonly ChatMessage[];
}

function checkContent(content: unknown, path: string, rendererName: string, parts: boolean): void {
  if (typeof content === "string") return;
  if (!parts || !Array.isArray(content)) {
    fail(path, parts ? "must be a string or a list of parts" : "must be a string");
  }
  (content as unknown[]).forEach((part, k) => {
    const at = `${path}[${k}]`;
    const p = part as { type?: unknown; text?: unknown; tokens?: unknown };
    if (typeof part !== "object" || part === null) fail(at, "must be a {type: 'text' | 'image'} object");
    if (p.type === "text") {
      if (typeof p.text !== "string") fail(`${at}.text`, "must be a string");
    } else if (p.type === "image") {
      if (p.tokens === undefined) {
        fail(
          `${at}.tokens`,
          `the ${rendererName} renderer needs the image's token chunk (the ids the model's image processor gives for it); images themselves are not processed here`,
        );
      }
      if (!Array.isArray(p.tokens) || !p.tokens.every((t) => Number.isInteger(t) && t >= 0)) {
        fail(`${at}.tokens`, "must be an array of token ids");
      }
    } else {
      fail(`${at}.type`, `unknown part type ${String(p.type)}; known: text, image`);
    }
  });
}

function checkToolCall(call: ToolCall, path: string): void {
  if (typeof call !== "object" || call === null) fail(path, "must be an object");
  if (typeof call.name !== "string" || call.name === "") fail(`${path}.name`, "must be a non-empty string");
  if (call.id !== undefined && typeof call.id !== "string") fail(`${path}.id`, "must be a string when given");
  toolCallArguments(call, path);
}

/** A call's arguments as an object (parsing them when they are JSON text). */
export function toolCallArguments(call: ToolCall, path = "toolCall"): Record<string, unknown> {
  let value: unknown = call.arguments;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      fail(`${path}.arguments`, "must be the JSON text of an object");
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`${path}.arguments`, "must be an object (or its JSON text)");
  }
  return value as Record<string, unknown>;
}

/** The tools of a render call, refused by families that cannot declare them. */
export function checkTools(
  tools: RenderOptions["tools"],
  rendererName: string,
  supported: boolean,
): readonly ToolSpec[] {
  if (tools === undefined) return [];
  if (!Array.isArray(tools)) fail("options.tools", "must be an array");
  if (tools.length > 0 && !supported) {
    fail("options.tools", `the ${rendererName} renderer does not declare tools`);
  }
  tools.forEach((tool, i) => {
    if (typeof tool !== "object" || tool === null || typeof tool.name !== "string" || tool.name === "") {
      fail(`options.tools[${i}]`, "must be an object with a non-empty name");
    }
  });
  return tools;
}

/** The text of a message's content: a string, or its text parts joined (images are refused). */
export function contentText(message: MultimodalMessage, path: string): string {
  const content = message.content;
  if (typeof content === "string") return content;
  return content
    .map((part, k) =>
      part.type === "text" ? part.text : fail(`${path}.content[${k}]`, "an image is not allowed here"),
    )
    .join("");
}

/** The id of a special (or added) token the family's format needs. */
export function requireToken(tokenizer: Tokenizer, token: string, rendererName: string): number {
  const id = tokenizer.specialTokens.get(token) ?? tokenizer.tokenToId(token);
  if (id === undefined) {
    throw new ValidationError([
      {
        path: "tokenizer",
        message: `the ${rendererName} renderer needs the token ${token}, which tokenizer ${tokenizer.id} does not have`,
      },
    ]);
  }
  return id;
}

/** Sampled tokens up to the first stop token, and whether one was found. */
export function cutAtStop(
  tokens: ArrayLike<number>,
  stopIds: readonly number[],
): { body: number[]; stopToken: number | undefined } {
  const body: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i]!;
    if (stopIds.includes(id)) return { body, stopToken: id };
    body.push(id);
  }
  return { body, stopToken: undefined };
}

export function assistantMessage(content: string, thinking?: string): ChatMessage {
  return thinking === undefined ? { role: "assistant", content } : { role: "assistant", content, thinking };
}

/**
 * The part of a renderer that is the same for every hand-written family: a `render` that labels
 * tokens, from which the generation prompt and the supervised example follow.
 */
export abstract class LabelledRenderer implements Renderer {
  abstract readonly name: string;
  readonly tokenizer: Tokenizer;
  /** Families that declare tools set this; the others refuse `options.tools`. */
  protected readonly declaresTools: boolean = false;

  constructor(tokenizer: Tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** The conversation's tokens, each labelled with its message and part. */
  protected abstract render(
    messages: readonly MultimodalMessage[],
    addGenerationPrompt: boolean,
    tools: readonly ToolSpec[],
  ): RenderedTokens;

  abstract stopSequences(): number[];

  /**
   * The reply as plain text up to the first stop token: what a family without thinking or channels
   * needs. Families with structure in the reply (Qwen3's <think>, gpt-oss's channels) override it.
   */
  parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { body, stopToken } = cutAtStop(tokens, this.stopSequences());
    return {
      message: assistantMessage(this.tokenizer.decode(body)),
      termination: stopToken === undefined ? "length" : "stop",
    };
  }

  buildGenerationPrompt(messages: readonly MultimodalMessage[], options: RenderOptions = {}): number[] {
    return this.render(messages, true, checkTools(options.tools, this.name, this.declaresTools)).tokens;
  }

  buildSupervisedExample(
    messages: readonly MultimodalMessage[],
    options: SupervisedOptions = {},
  ): SupervisedExample {
    const trainOnWhat = checkTrainOnWhat(options.trainOnWhat);
    const tools = checkTools(options.tools, this.name, this.declaresTools);
    return supervisedExampleOf(this.render(messages, false, tools), messages, trainOnWhat);
  }
}
