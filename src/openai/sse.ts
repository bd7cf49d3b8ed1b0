/**
 * Server-sent events as OpenAI streams use them: one `data: <json>` event per chunk, then
 * `data: [DONE]`. Encoding (for a server, or a Worker passing a stream on to a browser) and
 * decoding (for a client reading one), with web streams only.
 */

/** The event that ends an OpenAI stream. */
export const SSE_DONE = "[DONE]";

const encoder = new TextEncoder();

/** One event's bytes: `data: <json>\n\n` (or the `[DONE]` marker). */
export function encodeSSE(value: unknown): Uint8Array {
  const data = value === SSE_DONE ? SSE_DONE : JSON.stringify(value);
  return encoder.encode(`data: ${data}\n\n`);
}

/** Headers for an SSE answer: not cached, not buffered by proxies. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/**
 * The chunks of `source` as an SSE byte stream ending with `[DONE]`. Cancelling the stream (the
 * reader went away) stops `source` through its iterator's `return`.
 */
export function toSSEStream<T>(source: AsyncIterable<T>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (finished) return;
      try {
        const next = await iterator.next();
        if (next.done) {
          finished = true;
          controller.enqueue(encodeSSE(SSE_DONE));
          controller.close();
        } else {
          controller.enqueue(encodeSSE(next.value));
        }
      } catch (error) {
        finished = true;
        controller.error(error);
      }
    },
    async cancel() {
      finished = true;
      await iterator.return?.();
    },
  });
}

/** A `data:` payload that is not JSON, or an event that is not `data:`-only, as the stream gave it. */
export class SSEFormatError extends Error {
  override name = "SSEFormatError";
}

/**
 * The data of each event of an SSE byte stream, parsed as JSON, until `[DONE]` or the end of the
 * stream. Comment lines (`: keep-alive`) and other fields are skipped; an event's several `data:`
 * lines are joined with newlines, as the SSE standard says.
 */
export async function* readSSE(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown, void, undefined> {
  const reader = body
    .pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>)
    .getReader();
  let buffer = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let newline = buffer.search(/\r\n|\r|\n/);
      // A lone "\r" at the end may be the first half of "\r\n": wait for the next bytes.
      while (newline >= 0 && !(newline === buffer.length - 1 && buffer.endsWith("\r"))) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) {
            const payload = data.join("\n");
            data = [];
            if (payload === SSE_DONE) return;
            yield parseData(payload);
          }
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
        newline = buffer.search(/\r\n|\r|\n/);
      }
    }
    // A last event without its blank line still counts.
    if (buffer.startsWith("data:")) data.push(buffer.slice(buffer.startsWith("data: ") ? 6 : 5));
    if (data.length > 0 && data.join("\n") !== SSE_DONE) yield parseData(data.join("\n"));
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function parseData(payload: string): unknown {
  try {
    return JSON.parse(payload);
  } catch {
    throw new SSEFormatError(`an event's data is not JSON: ${payload.slice(0, 200)}`);
  }
}
