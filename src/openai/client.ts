/**
 * A small client for Tinker's OpenAI-compatible inference (`<service>/oai/api/v1`, or the same
 * routes of `tinker-ts serve`): chat and text completions, whole or streamed, with no OpenAI SDK
 * behind it. Whole answers go through the SDK's HTTP layer (transport retries, error mapping);
 * streamed ones through one ky request read as it arrives (see ./transport.ts). The API key is sent
 * as OpenAI clients send it (`Authorization: Bearer`) and never appears in an error.
 */
import { DEFAULT_BASE_URL } from "../core/config.js";
import { ValidationError } from "../core/errors.js";
import { type FetchLike, HttpClient } from "../core/http.js";
import { registerSecret } from "../core/redact.js";
import { eitherSignal } from "../internal/abort.js";
import { parseModelString } from "./model-string.js";
import { CompletionStream } from "./stream.js";
import { openEventStream } from "./transport.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  Completion,
  CompletionChunk,
  CompletionCreateParams,
} from "./types.js";

/** The path of the OpenAI-compatible routes under a Tinker base URL. */
export const OPENAI_COMPAT_PATH = "/oai/api/v1";

export interface RequestOptions {
  /** Cancels the request, and a stream's reading. */
  signal?: AbortSignal;
}

export interface ChatCompletions {
  create(
    params: ChatCompletionCreateParams & { stream: true },
    options?: RequestOptions,
  ): Promise<CompletionStream<ChatCompletionChunk>>;
  create(
    params: ChatCompletionCreateParams & { stream?: false | null },
    options?: RequestOptions,
  ): Promise<ChatCompletion>;
  create(
    params: ChatCompletionCreateParams,
    options?: RequestOptions,
  ): Promise<ChatCompletion | CompletionStream<ChatCompletionChunk>>;
}

export interface Completions {
  create(
    params: CompletionCreateParams & { stream: true },
    options?: RequestOptions,
  ): Promise<CompletionStream<CompletionChunk>>;
  create(
    params: CompletionCreateParams & { stream?: false | null },
    options?: RequestOptions,
  ): Promise<Completion>;
  create(
    params: CompletionCreateParams,
    options?: RequestOptions,
  ): Promise<Completion | CompletionStream<CompletionChunk>>;
}

/** What the client and the native facade both offer: OpenAI's `chat.completions` and `completions`. */
export interface OpenAIShapedClient {
  readonly chat: { readonly completions: ChatCompletions };
  readonly completions: Completions;
}

export interface TinkerOpenAIOptions {
  /** The Tinker API key (it is the OpenAI key of these routes). */
  apiKey: string;
  /**
   * The Tinker base URL (default: the Tinker service); `/oai/api/v1` is appended unless it is
   * already there.
   */
  baseURL?: string;
  /** Another fetch (a Worker's service binding, `createLocalTinker().fetch`). */
  fetch?: FetchLike;
  /** Per-attempt timeout of a whole answer; for a stream, of its first byte. Default 120 s. */
  timeoutMs?: number;
  /** Transport retries of whole answers (never of a stream once it has begun). Default 2. */
  maxRetries?: number;
}

/** The OpenAI-compatible routes of a Tinker server. */
export class TinkerOpenAI implements OpenAIShapedClient {
  readonly chat: { readonly completions: ChatCompletions };
  readonly completions: Completions;
  readonly baseURL: string;

  constructor(options: TinkerOpenAIOptions) {
    const { apiKey } = options;
    if (typeof apiKey !== "string" || apiKey.trim() === "") {
      throw new ValidationError([{ path: "apiKey", message: "a Tinker API key is required" }]);
    }
    registerSecret(apiKey);
    const base = (options.baseURL ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.baseURL = base.endsWith(OPENAI_COMPAT_PATH) ? base : base + OPENAI_COMPAT_PATH;
    const timeoutMs = options.timeoutMs ?? 120_000;
    const authorization = `Bearer ${apiKey}`;
    const http = new HttpClient({
      baseURL: this.baseURL,
      fetch: options.fetch,
      defaultHeaders: { authorization },
      credential: () => apiKey,
      maxRetries: options.maxRetries ?? 2,
      timeoutMs,
    });
    const post = async (path: string, params: object, request: RequestOptions = {}) => {
      if ((params as { stream?: unknown }).stream === true) {
        const controller = new AbortController();
        const signal = request.signal ? eitherSignal(request.signal, controller.signal) : controller.signal;
        const body = await openEventStream({
          url: `${this.baseURL}/${path}`,
          headers: { authorization },
          json: params,
          signal,
          timeoutMs,
          fetch: options.fetch,
        });
        return CompletionStream.fromSSE(body, controller);
      }
      return http.request({ method: "POST", path, json: params, signal: request.signal }, (r) => r.json());
    };
    this.chat = {
      completions: {
        create: ((params: ChatCompletionCreateParams, request?: RequestOptions) => {
          checkModel(params);
          if (!Array.isArray(params.messages) || params.messages.length === 0) {
            throw new ValidationError([
              { path: "messages", message: "must be a non-empty list of messages" },
            ]);
          }
          return post("chat/completions", params, request);
        }) as ChatCompletions["create"],
      },
    };
    this.completions = {
      create: ((params: CompletionCreateParams, request?: RequestOptions) => {
        checkModel(params);
        if (
          params.prompt === undefined ||
          params.prompt === "" ||
          (Array.isArray(params.prompt) && !params.prompt.length)
        ) {
          throw new ValidationError([
            { path: "prompt", message: "must be a non-empty string or list of token ids" },
          ]);
        }
        return post("completions", params, request);
      }) as Completions["create"],
    };
  }
}

function checkModel(params: { model?: unknown }): void {
  if (typeof params !== "object" || params === null) {
    throw new ValidationError([{ path: "params", message: "must be an object" }]);
  }
  parseModelString(params.model as string);
}
