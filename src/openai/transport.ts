/**
 * The one streamed request of the OpenAI-compatible client: a POST whose answer body is handed
 * over as it arrives (the SDK's HttpClient reads whole bodies). It goes through ky like every other
 * request, makes one attempt (a stream cannot be retried halfway), and maps failures onto the SDK's
 * errors, with the credential masked in whatever the server said.
 */
import { APIConnectionError, APIError, APITimeoutError, APIUserAbortError } from "../core/errors.js";
import { type FetchLike, lazyKy } from "../core/http.js";
import { registerSecret } from "../core/redact.js";
import { eitherSignal } from "../internal/abort.js";
import { SSE_HEADERS } from "./sse.js";

export interface EventStreamRequest {
  url: string;
  headers: Record<string, string>;
  json: unknown;
  signal: AbortSignal;
  /** Until the answer's headers. */
  timeoutMs: number;
  fetch?: FetchLike;
}

/** The body of a 2xx answer to `request`, unread; an SDK error for anything else. */
export async function openEventStream(request: EventStreamRequest): Promise<ReadableStream<Uint8Array>> {
  for (const value of Object.values(request.headers)) registerSecret(value);
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), request.timeoutMs);
  const signal = eitherSignal(request.signal, timeout.signal);
  let response: Response;
  try {
    const ky = await lazyKy();
    response = await ky(request.url, {
      method: "POST",
      headers: { ...request.headers, accept: SSE_HEADERS["content-type"]!.split(";")[0]! },
      json: request.json,
      signal,
      retry: 0,
      timeout: false,
      throwHttpErrors: false,
      ...(request.fetch ? { fetch: request.fetch as typeof globalThis.fetch } : {}),
    });
  } catch (error) {
    if (request.signal.aborted) throw new APIUserAbortError();
    if (timeout.signal.aborted) throw new APITimeoutError();
    // The error is not kept as cause: ky's carries the Request, whose headers hold the key.
    const detail = error instanceof Error ? error.message : String(error);
    throw new APIConnectionError(`Connection error reaching ${request.url.split("?")[0]}: ${detail}.`);
  } finally {
    clearTimeout(timer);
  }
  if (response.status < 200 || response.status >= 300) {
    const text = await response.text().catch(() => "");
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text (an excerpt goes into the message)
    }
    throw APIError.fromResponse(response.status, body, response.headers);
  }
  if (!response.body) throw new APIConnectionError("The answer to a streamed request has no body.");
  return response.body;
}
