/**
 * The `retrieve_future` poller (PROTOCOL.md §4): long-polls a request id until the server answers
 * with a result, a failure, or a status that ends the future. Reacts to each answer exactly as the
 * official 0.25.0 client does (§4.3), and reports queue states and polls as events.
 */

import type { RequestFailureCategory } from "../core/errors.js";
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  FutureRetrieveError,
  RequestFailedError,
  UnexpectedResponseError,
} from "../core/errors.js";
import type { HttpClient, HttpResponse, RetryReason } from "../core/http.js";
import { pollBackoffMs, transportBackoffMs, UNEXPECTED_ANSWER_RETRIES } from "../core/retry-policy.js";
import { checkAnswerFormat, decodeProtobuf, unexpected } from "../core/unexpected-answer.js";
import { sleep } from "../internal/sleep.js";
import {
  type Endpoint,
  type FutureRequestType,
  parseBody,
  pathOf,
  type ResultDecoder,
  routeName,
} from "../wire/endpoints/define.js";
import { retrieveFuture } from "../wire/endpoints/futures.js";
import {
  MetadataOnlyResponseSchema,
  matches,
  parseResponse,
  RequestFailedResponseSchema,
  TryAgainResponseSchema,
} from "../wire/schemas.js";

export type { FutureRequestType, ResultDecoder };

export type FutureEvent =
  | { type: "queue_state"; queueState: string; reason: string | undefined; iteration: number }
  | { type: "metadata"; payloadSize: number | undefined; iteration: number }
  | {
      type: "retry";
      status: number | undefined;
      delayMs: number;
      iteration: number;
      /**
       * Why the poll is repeated: a retryable `status` (5xx, 429, 400, 402), a `connection` failure
       * or `timeout`, or an `unexpected_response` (an answer that cannot be the server's).
       */
      reason: RetryReason;
    };

export interface PollOptions<T> {
  requestId: string;
  requestType: FutureRequestType;
  decoder: ResultDecoder<T>;
  /** Seconds from the start of the operation to receipt of the request id (first poll only). */
  roundtripSeconds?: number;
  signal?: AbortSignal;
  onEvent?: (event: FutureEvent) => void;
  /** How long HTTP 402 may pause polling. Default 3600 s. */
  billingPauseMs?: number;
}

const MAX_CONSECUTIVE_BAD_REQUESTS = 3;
const BILLING_RETRY_MS = 5_000;

export async function pollFuture<T>(http: HttpClient, options: PollOptions<T>): Promise<T> {
  let queue: { queueState: string; reason: string | undefined } | undefined;
  try {
    return await pollLoop(http, {
      ...options,
      onEvent: (event) => {
        if (event.type === "queue_state") queue = event;
        options.onEvent?.(event);
      },
    });
  } catch (error) {
    // A caller's timeout that ends a queued request says where it was stuck (PROTOCOL.md §10.3).
    if (error instanceof APITimeoutError && queue && queue.queueState !== "active") {
      const reason = queue.reason ? `, reason: ${queue.reason}` : "";
      throw new APITimeoutError(
        `Request timed out while queued (queue_state: ${queue.queueState}${reason})`,
        {
          requestId: options.requestId,
          body: { queue_state: queue.queueState, queue_state_reason: queue.reason },
        },
      );
    }
    throw error;
  }
}

async function pollLoop<T>(http: HttpClient, options: PollOptions<T>): Promise<T> {
  const { requestId, requestType, decoder, signal } = options;
  let allowMetadataOnly = true;
  let backoffCount = 0;
  let badRequests = 0;
  /** Answers in a row that cannot be the server's (an HTML page, a replay, a broken body). */
  let unexpectedAnswers = 0;
  let billingSince: number | undefined;

  for (let iteration = 0; ; iteration++) {
    const headers: Record<string, string> = {
      "X-Tinker-Request-Iteration": String(iteration),
      "X-Tinker-Request-Type": requestType,
      Accept: decoder.protobuf ? "application/x-protobuf" : "application/json",
    };
    if (iteration === 0 && options.roundtripSeconds !== undefined) {
      headers["X-Tinker-Create-Promise-Roundtrip-Time"] = String(options.roundtripSeconds);
    }

    let response: HttpResponse;
    try {
      // The declared route, body order, attempt count and long-poll timeout (§4.1); this loop is
      // the retry layer, so every answer comes back here (returnErrorResponses).
      response = await http.request({
        method: retrieveFuture.method,
        path: pathOf(retrieveFuture),
        json: declaredBody(retrieveFuture, { request_id: requestId, allow_metadata_only: allowMetadataOnly }),
        headers,
        maxRetries: retrieveFuture.transportRetries,
        timeoutMs: retrieveFuture.timeoutMs,
        signal,
        returnErrorResponses: true,
      });
    } catch (error) {
      // The caller's signal (or timeout) ended the poll: not a connection problem to retry.
      if (signal?.aborted || error instanceof APIUserAbortError || !(error instanceof APIConnectionError))
        throw error;
      const delayMs = pollBackoffMs(backoffCount++);
      const reason = error instanceof APITimeoutError ? "timeout" : "connection";
      options.onEvent?.({ type: "retry", status: undefined, delayMs, iteration, reason });
      await sleep(delayMs, signal);
      continue;
    }

    const { status } = response;
    if (status !== 429) backoffCount = 0;

    if (status >= 200 && status < 300) {
      badRequests = 0;
      let answer: PollAnswer<T>;
      try {
        answer = readAnswer(response, options, allowMetadataOnly);
      } catch (error) {
        const budget = Math.min(UNEXPECTED_ANSWER_RETRIES, http.maxRetries);
        if (!(error instanceof UnexpectedResponseError) || unexpectedAnswers >= budget) throw error;
        // Something on the path answered, not the server: ask again, as after a lost connection.
        const delayMs = transportBackoffMs(unexpectedAnswers++);
        options.onEvent?.({ type: "retry", status, delayMs, iteration, reason: "unexpected_response" });
        await sleep(delayMs, signal);
        continue;
      }
      unexpectedAnswers = 0;
      if (answer.kind === "result") return answer.value;
      if (answer.kind === "try_again") {
        options.onEvent?.({
          type: "queue_state",
          queueState: answer.queueState,
          reason: answer.reason,
          iteration,
        });
        continue;
      }
      allowMetadataOnly = false;
      options.onEvent?.({ type: "metadata", payloadSize: answer.payloadSize, iteration });
      continue;
    }

    if (status === 408) {
      // A try_again in disguise, possibly carrying the queue state.
      badRequests = 0;
      const body = response.json() as { queue_state?: string; queue_state_reason?: string } | undefined;
      options.onEvent?.({
        type: "queue_state",
        queueState: body?.queue_state ?? "unknown",
        reason: body?.queue_state_reason,
        iteration,
      });
      continue;
    }
    if (status >= 500) {
      options.onEvent?.({ type: "retry", status, delayMs: 0, iteration, reason: "status" });
      continue;
    }
    if (status === 429) {
      const delayMs = pollBackoffMs(backoffCount++);
      options.onEvent?.({ type: "retry", status, delayMs, iteration, reason: "status" });
      await sleep(delayMs, signal);
      continue;
    }
    if (status === 400 && ++badRequests <= MAX_CONSECUTIVE_BAD_REQUESTS) {
      // Proxies have been seen injecting spurious 400s; the official client retries three times.
      options.onEvent?.({ type: "retry", status, delayMs: 0, iteration, reason: "status" });
      continue;
    }
    if (status === 402) {
      billingSince ??= Date.now();
      if (Date.now() - billingSince < (options.billingPauseMs ?? 3_600_000)) {
        options.onEvent?.({ type: "retry", status, delayMs: BILLING_RETRY_MS, iteration, reason: "status" });
        await sleep(BILLING_RETRY_MS, signal);
        continue;
      }
    }
    const body = response.json() ?? response.text();
    const what = status === 410 ? "expired (410)" : `failed with status ${status}`;
    // Servers that report a failed request as a 4xx `{"detail"}` (DESIGN.md §7) say why there.
    const detail = serverDetail(body);
    const why = detail === undefined ? "" : `: ${detail}`;
    throw new FutureRetrieveError(
      `Retrieving the result of ${requestType} request ${requestId} ${what}${why}`,
      {
        status,
        headers: response.headers,
        body,
        requestId,
      },
    );
  }
}

type PollAnswer<T> =
  | { kind: "result"; value: T }
  | { kind: "try_again"; queueState: string; reason: string | undefined }
  | { kind: "metadata"; payloadSize: number | undefined };

/**
 * What a 2xx poll answer says. Throws RequestFailedError for a failed request, and
 * UnexpectedResponseError for an answer that cannot be the server's answer to this poll: not JSON
 * (or protobuf where asked for), a body that breaks the schema, a `try_again` about another request,
 * a metadata-only answer to a poll that did not allow one.
 */
function readAnswer<T>(
  response: HttpResponse,
  options: PollOptions<T>,
  allowMetadataOnly: boolean,
): PollAnswer<T> {
  const { requestId, requestType, decoder } = options;
  const route = routeName(retrieveFuture);
  checkAnswerFormat(response, route, decoder.protobuf !== undefined);
  if (response.isProtobuf && decoder.protobuf) {
    return {
      kind: "result",
      value: decodeProtobuf(decoder.protobuf, response.body, `${requestType} result`),
    };
  }
  const body = response.json();
  // The literal each schema requires is checked first: most answers are results, and a failed
  // schema check builds issue objects for nothing.
  const tag = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : undefined;
  if (tag?.type === "try_again" && matches(TryAgainResponseSchema, body)) {
    const answer = body as { request_id?: string; queue_state?: string; queue_state_reason?: string | null };
    if (answer.request_id !== undefined && answer.request_id !== requestId) {
      throw unexpected(
        response,
        route,
        "foreign_request_id",
        `a try_again about request ${answer.request_id}, not ${requestId}`,
      );
    }
    return {
      kind: "try_again",
      queueState: answer.queue_state ?? "unknown",
      reason: answer.queue_state_reason ?? undefined,
    };
  }
  if (tag?.status === "complete_metadata" && matches(MetadataOnlyResponseSchema, body)) {
    if (!allowMetadataOnly) {
      throw unexpected(response, route, "schema", `a second metadata-only answer for request ${requestId}`);
    }
    return {
      kind: "metadata",
      payloadSize: (body as { response_payload_size?: number }).response_payload_size,
    };
  }
  if (tag && "error" in tag) {
    const failure = parseResponse(RequestFailedResponseSchema, body, "request failure");
    throw new RequestFailedError(failureMessage(failure.error), requestId, toCategory(failure.category));
  }
  return { kind: "result", value: parseResponse(decoder.schema, body, `${requestType} result`) };
}

function failureMessage(error: unknown): string {
  return typeof error === "string" ? error : JSON.stringify(error);
}

function toCategory(category: string | null | undefined): RequestFailureCategory {
  const lower = category?.toLowerCase();
  return lower === "user" || lower === "server" ? lower : "unknown";
}

/** The `detail` of a FastAPI-style error body, shortened: it may be long, but it names the cause. */
function serverDetail(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || !("detail" in body)) return undefined;
  const detail = (body as { detail: unknown }).detail;
  const text = typeof detail === "string" ? detail : JSON.stringify(detail);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** A body as its declaration shapes it (defaults, key order); a bad one is a bug here, not the caller's. */
function declaredBody<Body>(e: Endpoint<Body, unknown>, body: Body): Body {
  const parsed = parseBody(e, body);
  if (!parsed.ok)
    throw new Error(`${e.name}: ${parsed.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  return parsed.value;
}
