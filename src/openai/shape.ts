/**
 * OpenAI-shaped answers from sampled replies: whole completions, stream chunks and the two forms of
 * logprobs, for chat and text completions alike. The local backend's `/oai` routes and the native
 * facade both answer with these, so they cannot drift apart.
 */
import type { SampledTokenInfo } from "./reply.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionTokenLogprob,
  Completion,
  CompletionLogprobs,
  CompletionUsage,
  FinishReason,
  TopLogprob,
} from "./types.js";

/** How a token reads: its text and bytes. */
export type DescribeToken = (token: number) => { token: string; bytes: number[] | null };

/** A token's text from a decode function; its bytes are the UTF-8 of that text. */
export function describeWith(decode: (tokens: number[]) => string): DescribeToken {
  const encoder = new TextEncoder();
  return (token) => {
    const text = decode([token]);
    return { token: text, bytes: Array.from(encoder.encode(text)) };
  };
}

export type CompletionKind = "chat" | "text";

/** One choice of a whole answer. */
export interface ShapedChoice {
  text: string;
  tokens: readonly SampledTokenInfo[];
  finishReason: FinishReason;
}

export interface AnswerShape {
  kind: CompletionKind;
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  describe: DescribeToken;
  /** Logprobs asked for: `undefined` = none; else how many alternatives per position. */
  logprobs?: number;
}

export function usageOf(promptTokens: number, completionTokens: number): CompletionUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** A new id for an answer, in OpenAI's style (`chatcmpl-…`, `cmpl-…`). */
export function answerId(kind: CompletionKind): string {
  const random = crypto.getRandomValues(new Uint8Array(12));
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${kind === "chat" ? "chatcmpl" : "cmpl"}-${hex}`;
}

function topOf(shape: AnswerShape, sampled: SampledTokenInfo): TopLogprob[] {
  const k = shape.logprobs ?? 0;
  return (sampled.topk ?? []).slice(0, k).map(([token, logprob]) => ({ ...shape.describe(token), logprob }));
}

export function chatLogprobs(
  shape: AnswerShape,
  tokens: readonly SampledTokenInfo[],
): ChatCompletionTokenLogprob[] {
  return tokens.map((sampled) => ({
    ...shape.describe(sampled.token),
    logprob: sampled.logprob,
    top_logprobs: topOf(shape, sampled),
  }));
}

/** The completions form; `offset` is where the first token's text starts in the choice's text. */
export function completionLogprobs(
  shape: AnswerShape,
  tokens: readonly SampledTokenInfo[],
  offset = 0,
): CompletionLogprobs {
  const text_offset: number[] = [];
  const names: string[] = [];
  let at = offset;
  for (const sampled of tokens) {
    const { token } = shape.describe(sampled.token);
    names.push(token);
    text_offset.push(at);
    at += token.length;
  }
  return {
    tokens: names,
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs:
      (shape.logprobs ?? 0) > 0
        ? tokens.map((t) => Object.fromEntries(topOf(shape, t).map((top) => [top.token, top.logprob])))
        : null,
    text_offset,
  };
}

/** A whole answer with its choices in order. */
export function wholeAnswer(
  shape: AnswerShape,
  choices: readonly ShapedChoice[],
  usage: CompletionUsage,
): ChatCompletion | Completion {
  const base = { id: shape.id, created: shape.created, model: shape.model, usage };
  const wantLogprobs = shape.logprobs !== undefined;
  if (shape.kind === "chat") {
    return {
      ...base,
      object: "chat.completion",
      choices: choices.map((choice, index) => ({
        index,
        message: { role: "assistant", content: choice.text, refusal: null },
        logprobs: wantLogprobs ? { content: chatLogprobs(shape, choice.tokens), refusal: null } : null,
        finish_reason: choice.finishReason,
      })),
    };
  }
  return {
    ...base,
    object: "text_completion",
    choices: choices.map((choice, index) => ({
      index,
      text: choice.text,
      logprobs: wantLogprobs ? completionLogprobs(shape, choice.tokens) : null,
      finish_reason: choice.finishReason,
    })),
  };
}

/**
 * The chunks of a streamed answer, one choice at a time: `start` (chat only: the role), `piece`
 * for new text, `end` with the finish reason, and `usage` for the last chunk when asked for.
 */
export class ChunkShaper {
  readonly #shape: AnswerShape;
  /** Text already streamed per choice (the completions form's `text_offset` counts from it). */
  readonly #offsets = new Map<number, number>();

  constructor(shape: AnswerShape) {
    this.#shape = shape;
  }

  #chunk(choice: unknown[], usage?: CompletionUsage | null): ChatCompletionChunk | Completion {
    const { id, created, model, kind } = this.#shape;
    const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    return { id, object, created, model, choices: choice, ...(usage === undefined ? {} : { usage }) } as
      | ChatCompletionChunk
      | Completion;
  }

  /** The first chunk of a chat choice (the role), or nothing for text completions. */
  start(index: number): ChatCompletionChunk | undefined {
    if (this.#shape.kind !== "chat") return undefined;
    return this.#chunk([
      { index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null },
    ]) as ChatCompletionChunk;
  }

  /** New text of a choice with its tokens; undefined when there is nothing to send. */
  piece(
    index: number,
    text: string,
    tokens: readonly SampledTokenInfo[],
  ): ChatCompletionChunk | Completion | undefined {
    const wantLogprobs = this.#shape.logprobs !== undefined;
    if (text === "" && !(wantLogprobs && tokens.length > 0)) return undefined;
    const offset = this.#offsets.get(index) ?? 0;
    this.#offsets.set(index, offset + text.length);
    if (this.#shape.kind === "chat") {
      return this.#chunk([
        {
          index,
          delta: { content: text },
          logprobs: wantLogprobs ? { content: chatLogprobs(this.#shape, tokens), refusal: null } : null,
          finish_reason: null,
        },
      ]);
    }
    return this.#chunk([
      {
        index,
        text,
        logprobs: wantLogprobs ? completionLogprobs(this.#shape, tokens, offset) : null,
        finish_reason: null,
      },
    ]);
  }

  /** The last chunk of a choice. */
  end(index: number, finishReason: FinishReason): ChatCompletionChunk | Completion {
    if (this.#shape.kind === "chat") {
      return this.#chunk([{ index, delta: {}, logprobs: null, finish_reason: finishReason }]);
    }
    return this.#chunk([{ index, text: "", logprobs: null, finish_reason: finishReason }]);
  }

  /** The usage chunk that closes a stream with `stream_options.include_usage`: no choices. */
  usage(usage: CompletionUsage): ChatCompletionChunk | Completion {
    return this.#chunk([], usage);
  }
}
