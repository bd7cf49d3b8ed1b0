/**
 * The OpenAI-shaped requests and answers of Tinker's OpenAI-compatible inference (`/chat/completions`
 * and `/completions`), as far as Tinker models use them: text messages, the sampling parameters a
 * Tinker sampler has, logprobs, usage. Field names are the OpenAI API's (snake_case), so these
 * values can go to and come from any OpenAI client unchanged.
 */

/** Who a chat message is from. */
export type ChatRole = "system" | "developer" | "user" | "assistant" | "tool";

/** A text part of a message's content (Tinker's chat path has no image or audio parts). */
export interface ChatContentPart {
  type: "text";
  text: string;
}

export interface ChatCompletionMessageParam {
  role: ChatRole;
  content: string | ChatContentPart[];
  name?: string;
}

/** What both routes take besides the prompt. */
export interface SamplingRequestParams {
  /**
   * A base model ID, a `tinker://…/sampler_weights/…` path, or `<base model ID>;<path>`
   * (model-string.ts builds them).
   */
  model: string;
  /** Most tokens to generate per choice; default: until the context is full. */
  max_tokens?: number | null;
  /** 0 (greedy) to 2. Default 1. */
  temperature?: number | null;
  /** Nucleus mass in (0, 1]. Default 1. */
  top_p?: number | null;
  /** Up to 4 strings; the reply ends before the first one. */
  stop?: string | string[] | null;
  /** Reproducible draws for the same request. */
  seed?: number | null;
  /** Number of choices. Default 1. */
  n?: number | null;
  stream?: boolean | null;
  /** With `stream`: `include_usage` adds a last chunk with the usage and no choices. */
  stream_options?: { include_usage?: boolean } | null;
  /** Ignored where it has no meaning (OpenAI's `user`). */
  user?: string;
}

export interface ChatCompletionCreateParams extends SamplingRequestParams {
  messages: ChatCompletionMessageParam[];
  /** OpenAI's newer name of `max_tokens`; takes precedence when both are set. */
  max_completion_tokens?: number | null;
  /** Return the logprob of every generated token. */
  logprobs?: boolean | null;
  /** With `logprobs`: also the 0–20 most likely alternatives at each position. */
  top_logprobs?: number | null;
}

export interface CompletionCreateParams extends SamplingRequestParams {
  /** The text to continue, or its token ids. */
  prompt: string | number[];
  /** 0–5: return the logprob of every generated token and this many alternatives at each. */
  logprobs?: number | null;
  /** Put the prompt in front of the returned text. */
  echo?: boolean | null;
}

export type FinishReason = "stop" | "length";

export interface CompletionUsage {
  prompt_tokens: number;
  /** Every generated token, the ones that ended the reply included. */
  completion_tokens: number;
  total_tokens: number;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface ChatCompletionTokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface ChatChoiceLogprobs {
  content: ChatCompletionTokenLogprob[] | null;
  refusal?: null;
}

export interface ChatCompletionMessage {
  role: "assistant";
  content: string;
  refusal: null;
}

export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  logprobs: ChatChoiceLogprobs | null;
  finish_reason: FinishReason;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunkChoice {
  index: number;
  delta: { role?: "assistant"; content?: string };
  logprobs: ChatChoiceLogprobs | null;
  finish_reason: FinishReason | null;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: ChatCompletionChunkChoice[];
  /** Only on the last chunk, and only with `stream_options.include_usage`; else null. */
  usage?: CompletionUsage | null;
}

/** The legacy completions form of logprobs. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** Per position: alternative token text → logprob. */
  top_logprobs: Record<string, number>[] | null;
  /** Offset of each token's text in the choice's text. */
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReason | null;
}

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: CompletionUsage | null;
}

/** A streamed piece of a text completion has the same shape as the whole. */
export type CompletionChunk = Completion;

/** The body of an error answer, as OpenAI sends it. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}
