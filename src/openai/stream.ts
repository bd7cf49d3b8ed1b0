/**
 * A streamed completion: an async iterable of OpenAI-shaped chunks that can also be passed on as
 * SSE bytes (`toReadableStream()`, e.g. from a Worker to a browser) and read back from them
 * (`CompletionStream.fromSSE`, in that browser). It is read once; aborting it (or breaking out of
 * the loop) stops the request.
 */
import { APIError } from "../core/errors.js";
import { readSSE, toSSEStream } from "./sse.js";

export class CompletionStream<Chunk> implements AsyncIterable<Chunk> {
  readonly #source: AsyncIterable<Chunk>;
  readonly #controller: AbortController;
  #used = false;

  /** `controller` is aborted when the reader stops early, to end the request behind the stream. */
  constructor(source: AsyncIterable<Chunk>, controller = new AbortController()) {
    this.#source = source;
    this.#controller = controller;
  }

  /**
   * Reads a stream of OpenAI SSE events (a Response's body, or `toReadableStream()`'s output): each
   * `data:` event is a chunk; an `{"error": …}` event ends the stream with an APIError.
   */
  static fromSSE<Chunk>(
    body: ReadableStream<Uint8Array>,
    controller?: AbortController,
  ): CompletionStream<Chunk> {
    async function* chunks(): AsyncGenerator<Chunk, void, undefined> {
      for await (const data of readSSE(body)) {
        const error = (data as { error?: { message?: unknown } } | null)?.error;
        if (error !== undefined && error !== null) {
          const message = typeof error.message === "string" ? error.message : "the stream reported an error";
          throw new APIError(message, { body: data });
        }
        yield data as Chunk;
      }
    }
    return new CompletionStream(chunks(), controller);
  }

  [Symbol.asyncIterator](): AsyncIterator<Chunk> {
    if (this.#used) throw new Error("a CompletionStream can be read only once");
    this.#used = true;
    const iterator = this.#source[Symbol.asyncIterator]();
    const controller = this.#controller;
    return {
      next: () => iterator.next(),
      return: async (value?: unknown) => {
        controller.abort();
        await iterator.return?.();
        return { done: true, value: value as undefined };
      },
    };
  }

  /** The chunks as SSE bytes ending with `data: [DONE]`, for a `Response` body. */
  toReadableStream(): ReadableStream<Uint8Array> {
    return toSSEStream(this);
  }

  /** Stops the request behind the stream. */
  abort(): void {
    this.#controller.abort();
  }
}

/** A chunk's text per choice: chat deltas' `content` or text completions' `text`. */
export function chunkText(chunk: unknown, index = 0): string {
  const choices = (chunk as { choices?: unknown[] } | null)?.choices ?? [];
  for (const choice of choices as { index?: number; delta?: { content?: string }; text?: string }[]) {
    if (choice.index === index) return choice.delta?.content ?? choice.text ?? "";
  }
  return "";
}
