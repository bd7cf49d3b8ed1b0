/** Pieces every renderer needs: message validation, token lookup, the stop-token scan. */

import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import type { RenderedTokens } from "./token-builder.js";
import type { ChatMessage, ParsedResponse, Renderer, SupervisedExample, TrainOnWhat } from "./types.js";
import { checkTrainOnWhat, supervisedExampleOf } from "./weights.js";

const ROLES: readonly ChatMessage["role"][] = ["system", "developer", "user", "assistant", "tool"];

/** Checks the shape of every message, and that its role is one the family renders. */
export function checkMessages(
  messages: readonly ChatMessage[],
  rendererName: string,
  roles: readonly ChatMessage["role"][] = ROLES,
): void {
  if (!Array.isArray(messages))
    throw new ValidationError([{ path: "messages", message: "must be an array" }]);
  messages.forEach((message, i) => {
    const path = `messages[${i}]`;
    if (typeof message !== "object" || message === null) {
      throw new ValidationError([{ path, message: "must be an object" }]);
    }
    if (!ROLES.includes(message.role)) {
      throw new ValidationError([{ path: `${path}.role`, message: `unknown role ${String(message.role)}` }]);
    }
    if (!roles.includes(message.role)) {
      throw new ValidationError([
        {
          path: `${path}.role`,
          message: `the ${rendererName} renderer does not render ${message.role} messages`,
        },
      ]);
    }
    if (typeof message.content !== "string") {
      throw new ValidationError([{ path: `${path}.content`, message: "must be a string" }]);
    }
    if (message.thinking !== undefined && typeof message.thinking !== "string") {
      throw new ValidationError([{ path: `${path}.thinking`, message: "must be a string when given" }]);
    }
  });
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

  constructor(tokenizer: Tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** The conversation's tokens, each labelled with its message and part. */
  protected abstract render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): RenderedTokens;

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

  buildGenerationPrompt(messages: readonly ChatMessage[]): number[] {
    return this.render(messages, true).tokens;
  }

  buildSupervisedExample(
    messages: readonly ChatMessage[],
    options: { trainOnWhat?: TrainOnWhat } = {},
  ): SupervisedExample {
    const trainOnWhat = checkTrainOnWhat(options.trainOnWhat);
    return supervisedExampleOf(this.render(messages, false), messages, trainOnWhat);
  }
}
