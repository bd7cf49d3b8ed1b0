/**
 * The bodies of `POST /oai/api/v1/chat/completions` and `/completions`, checked and read into one
 * request form, by the local backend's routes (a refusal is a 400 naming the field, OpenAI's
 * `param`) and by the native facade (a ValidationError before any request) alike.
 * Fields OpenAI clients send that change nothing here (`user`, `stream_options` without a stream)
 * are accepted; fields asking for what a Tinker sampler cannot do (tools, penalties, logit bias,
 * images) are refused rather than ignored.
 */
import type { ChatMessage } from "../toolkit/renderers/types.js";

/** A request that cannot be served: the field concerned (OpenAI's `param`), and a code. */
export class ParamError extends Error {
  override name = "ParamError";
  constructor(
    readonly param: string | null,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export interface OaiRequest {
  kind: "chat" | "text";
  model: string;
  /** chat: the conversation. */
  messages: ChatMessage[];
  /** text: the prompt as text or token ids. */
  prompt: string | number[];
  echo: boolean;
  maxTokens: number | undefined;
  temperature: number;
  topP: number;
  stop: string[];
  seed: number | undefined;
  n: number;
  /** undefined: no logprobs; else the number of alternatives per position. */
  logprobs: number | undefined;
  stream: boolean;
  includeUsage: boolean;
}

/** Most choices per request (as the native API's num_samples limit is for one sample call). */
export const MAX_CHOICES = 16;
const MAX_STOP_STRINGS = 4;
const MAX_TOP_LOGPROBS = 20;
const MAX_COMPLETION_LOGPROBS = 5;
const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function bad(param: string, message: string, code: string | null = null): ParamError {
  return new ParamError(param, `${param}: ${message}`, code);
}

type Body = Record<string, unknown>;

function present(body: Body, key: string): boolean {
  return body[key] !== undefined && body[key] !== null;
}

function integer(body: Body, key: string, min: number, max: number): number | undefined {
  if (!present(body, key)) return undefined;
  const value = body[key];
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw bad(key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function number(body: Body, key: string, fallback: number, check: (v: number) => boolean, range: string) {
  if (!present(body, key)) return fallback;
  const value = body[key];
  if (typeof value !== "number" || !Number.isFinite(value) || !check(value)) {
    throw bad(key, `must be a number ${range}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function boolean(body: Body, key: string): boolean {
  if (!present(body, key)) return false;
  if (typeof body[key] !== "boolean")
    throw bad(key, `must be true or false, got ${JSON.stringify(body[key])}`);
  return body[key] as boolean;
}

function stopStrings(body: Body): string[] {
  if (!present(body, "stop")) return [];
  const stop = body.stop;
  const list = typeof stop === "string" ? [stop] : stop;
  if (
    !Array.isArray(list) ||
    list.length > MAX_STOP_STRINGS ||
    !list.every((s) => typeof s === "string" && s.length > 0)
  ) {
    throw bad("stop", `must be a non-empty string or a list of up to ${MAX_STOP_STRINGS} of them`);
  }
  return list as string[];
}

/** Fields that ask for what this endpoint does not do: refused unless at their no-op value. */
function refuseUnsupported(body: Body): void {
  for (const key of ["tools", "functions", "tool_choice", "function_call", "logit_bias"]) {
    const value = body[key];
    const empty =
      value === undefined ||
      value === null ||
      value === "none" ||
      (Array.isArray(value) && value.length === 0) ||
      (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0);
    if (!empty) throw bad(key, "is not supported by Tinker models on this endpoint", "unsupported_parameter");
  }
  for (const key of ["frequency_penalty", "presence_penalty"]) {
    if (present(body, key) && body[key] !== 0) {
      throw bad(key, "is not supported (only 0)", "unsupported_parameter");
    }
  }
  const format = body.response_format as { type?: unknown } | undefined | null;
  if (format !== undefined && format !== null && format.type !== "text") {
    throw bad("response_format", "only {type: 'text'} is supported", "unsupported_parameter");
  }
  if (present(body, "best_of") && body.best_of !== 1) {
    throw bad("best_of", "is not supported (only 1)", "unsupported_parameter");
  }
  if (present(body, "suffix")) throw bad("suffix", "is not supported", "unsupported_parameter");
}

function common(body: unknown, kind: OaiRequest["kind"]): { body: Body; request: OaiRequest } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ParamError(null, "the request body must be a JSON object");
  }
  const b = body as Body;
  if (typeof b.model !== "string" || b.model.trim() === "") {
    throw bad("model", "must be a base model ID, a tinker:// checkpoint path, or <base>;<path>");
  }
  refuseUnsupported(b);
  const stream = boolean(b, "stream");
  const options = b.stream_options as { include_usage?: unknown } | undefined | null;
  if (options !== undefined && options !== null && typeof options !== "object") {
    throw bad("stream_options", "must be an object");
  }
  return {
    body: b,
    request: {
      kind,
      model: b.model,
      messages: [],
      prompt: "",
      echo: false,
      maxTokens: integer(b, "max_tokens", 1, Number.MAX_SAFE_INTEGER),
      temperature: number(b, "temperature", 1, (v) => v >= 0 && v <= 2, "from 0 to 2"),
      topP: number(b, "top_p", 1, (v) => v > 0 && v <= 1, "in (0, 1]"),
      stop: stopStrings(b),
      seed: integer(b, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
      n: integer(b, "n", 1, MAX_CHOICES) ?? 1,
      logprobs: undefined,
      stream,
      includeUsage: stream && options?.include_usage === true,
    },
  };
}

function messageText(content: unknown, param: string): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw bad(param, "must be a string or a list of text parts");
  return content
    .map((part, i) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (p?.type === "text" && typeof p.text === "string") return p.text;
      const type = typeof p?.type === "string" ? p.type : "unknown";
      throw bad(
        `${param}[${i}]`,
        `${type} parts are not supported: Tinker's chat path takes text only`,
        "unsupported_content",
      );
    })
    .join("");
}

export function parseChatRequest(input: unknown): OaiRequest {
  const { body, request } = common(input, "chat");
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw bad("messages", "must be a non-empty list of messages");
  }
  request.messages = body.messages.map((m, i) => {
    const message = m as { role?: unknown; content?: unknown } | null;
    if (typeof message?.role !== "string" || !ROLES.has(message.role)) {
      throw bad(`messages[${i}].role`, `must be one of ${[...ROLES].join(", ")}`);
    }
    return {
      role: message.role as ChatMessage["role"],
      content: messageText(message.content ?? "", `messages[${i}].content`),
    };
  });
  // max_completion_tokens is the newer name and wins.
  request.maxTokens = integer(body, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER) ?? request.maxTokens;
  const top = integer(body, "top_logprobs", 0, MAX_TOP_LOGPROBS);
  if (boolean(body, "logprobs")) request.logprobs = top ?? 0;
  else if (top !== undefined && top > 0) throw bad("top_logprobs", "needs logprobs: true");
  return request;
}

export function parseCompletionRequest(input: unknown): OaiRequest {
  const { body, request } = common(input, "text");
  const prompt = body.prompt;
  if (typeof prompt === "string") {
    if (prompt === "") throw bad("prompt", "must not be empty");
    request.prompt = prompt;
  } else if (
    Array.isArray(prompt) &&
    prompt.length > 0 &&
    prompt.every((t) => typeof t === "number" && Number.isInteger(t) && t >= 0)
  ) {
    request.prompt = prompt as number[];
  } else if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") {
    request.prompt = prompt[0];
  } else {
    throw bad("prompt", "must be one non-empty string or one list of token ids (one prompt per request)");
  }
  request.echo = boolean(body, "echo");
  request.logprobs = integer(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS);
  if (request.echo && request.logprobs !== undefined) {
    throw bad(
      "echo",
      "with logprobs is not supported (prompt logprobs are not returned)",
      "unsupported_parameter",
    );
  }
  return request;
}
