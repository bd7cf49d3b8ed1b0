/**
 * The one request path of every client (DESIGN.md §4): `call()` for direct endpoints, `send()` +
 * `poll()` (or both as `submit()`) for future endpoints, all driven by the endpoint declarations in
 * src/wire/endpoints. A declaration says which retry layers wrap the call, what the body must look
 * like and how the answer is read; the code here only applies it.
 */
import { ValidationError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import type { HttpClient, HttpRequest, HttpResponse } from "../core/http.js";
import { checkAnswerFormat, decodeProtobuf, unexpected } from "../core/unexpected-answer.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureEvent, pollFuture } from "../futures/poller.js";
import { type Endpoint, parseBody, parseQuery, pathOf, routeName } from "../wire/endpoints/define.js";
import { parseResponse, type UntypedAPIFuture, UntypedAPIFutureSchema } from "../wire/schemas.js";

/** What a call needs of the connection. */
export interface CallContext {
  readonly http: HttpClient;
  /** How long HTTP 402 ("billing") pauses a call before it becomes an error. */
  readonly billingPauseMs: number;
  /** Told the outcome of every call and poll: the last failure, or undefined after a success. */
  noteOutcome?(failure: Error | undefined): void;
  /** Told every event of every poll (the debug log's poll lines: queue states, retries and why). */
  notePollEvent?(requestId: string, requestType: string, event: FutureEvent): void;
}

/** Runs `work`, telling the context how it ended. */
async function noted<T>(context: CallContext, work: () => Promise<T>): Promise<T> {
  try {
    const value = await work();
    context.noteOutcome?.(undefined);
    return value;
  } catch (error) {
    context.noteOutcome?.(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

export interface CallInput<Body> {
  /** Values of the path's `{placeholders}`. */
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  /** The JSON body before defaults; checked against the declaration before anything is sent. */
  body?: Body | Record<string, unknown>;
  /** A protobuf body (routes declared with `protobufBody`). */
  binary?: HttpRequest["binary"];
  /** Send this credential instead of the client's (e.g. a weights access token). */
  credential?: string;
  signal?: AbortSignal;
}

/**
 * The HTTP request of one call: path filled in, body and query checked against the declaration
 * (a ValidationError here means nothing was sent), defaults applied.
 */
export function requestOf<Body>(e: Endpoint<Body, unknown>, input: CallInput<Body>): HttpRequest {
  const request: HttpRequest = { method: e.method, path: pathOf(e, input.params) };
  if (input.binary) {
    request.binary = input.binary;
  } else if (input.body !== undefined) {
    const parsed = parseBody(e, input.body);
    if (!parsed.ok) throw new ValidationError(parsed.issues);
    request.json = parsed.value;
  } else if (e.method !== "GET") {
    request.json = undefined;
  }
  if (input.query) {
    const parsed = parseQuery(e, input.query);
    if (!parsed.ok) throw new ValidationError(parsed.issues);
    // Unset parameters are left out rather than sent empty.
    request.query = Object.fromEntries(
      Object.entries(parsed.value).filter(([, value]) => value !== undefined && value !== null),
    ) as HttpRequest["query"];
  }
  if (e.headers) request.headers = { ...e.headers };
  if (e.transportRetries !== undefined) request.maxRetries = e.transportRetries;
  if (e.timeoutMs !== undefined) request.timeoutMs = e.timeoutMs;
  if (input.credential !== undefined) request.credential = input.credential;
  if (input.signal) request.signal = input.signal;
  return request;
}

/**
 * Sends `request` with the declaration's retry layers; resolves with what `read` makes of the
 * answer. An answer `read` rejects as not the server's (UnexpectedResponseError) is sent again by
 * the transport, unchanged: the same body, so the same `seq_id`, which the server treats as a
 * repeat of the same request (PROTOCOL.md §6.2).
 */
export function exchange<T>(
  context: CallContext,
  e: Endpoint,
  request: HttpRequest,
  read: (response: HttpResponse) => T,
): Promise<T> {
  const once = () => context.http.request(request, read);
  if (e.retry === "transport") return noted(context, once);
  return noted(context, () =>
    withGenericRetries(once, {
      signal: request.signal,
      billingPauseMs: context.billingPauseMs,
      retryUnexpectedAnswers: e.transportRetries === 0,
    }),
  );
}

/** A direct endpoint: one logical call, its answer read with the declared decoder. */
export async function call<Body, Result>(
  context: CallContext,
  e: Endpoint<Body, Result>,
  input: CallInput<Body> = {},
): Promise<Result> {
  return exchange(context, e, requestOf(e, input), (response) => decodeDirect(e, response));
}

function decodeDirect<Result>(e: Endpoint<unknown, Result>, response: HttpResponse): Result {
  checkAnswerFormat(response, routeName(e), e.result.protobuf !== undefined);
  if (response.isProtobuf && e.result.protobuf)
    return decodeProtobuf(e.result.protobuf, response.body, e.name);
  return parseResponse(e.result.schema, response.json() ?? null, e.name);
}

/**
 * The request ids a client was given, per HttpClient (one per ServiceClient and the clients it
 * made), with the request type each belongs to. A submission answered with one of them is a
 * replayed answer, not the server's answer to this request: the server gives a new request its
 * own id, and a repeated `seq_id` the id of that same request, which this client never received.
 * Bounded to the most recent ids: a replay comes from a recent answer (a proxy or cache handing back
 * what it saw last), and a long training loop must not grow the client by one entry per step.
 */
const heldRequestIds = new WeakMap<HttpClient, Map<string, string>>();
const MAX_HELD_REQUEST_IDS = 4_096;

/** The immediate answer of a future endpoint, checked and recorded. */
function readSubmission(e: Endpoint, response: HttpResponse, ledger: Map<string, string>): UntypedAPIFuture {
  checkAnswerFormat(response, routeName(e), false);
  const answer = parseResponse(UntypedAPIFutureSchema, response.json(), `${e.name} submission`);
  const holder = ledger.get(answer.request_id);
  if (holder !== undefined) {
    throw unexpected(
      response,
      routeName(e),
      "stale_request_id",
      `request id ${answer.request_id} was already given to an earlier ${holder} request of this client (a replayed answer)`,
    );
  }
  ledger.set(answer.request_id, e.future ?? e.name);
  if (ledger.size > MAX_HELD_REQUEST_IDS) ledger.delete(ledger.keys().next().value as string);
  return answer;
}

function ledgerOf(http: HttpClient): Map<string, string> {
  let ledger = heldRequestIds.get(http);
  if (!ledger) {
    ledger = new Map();
    heldRequestIds.set(http, ledger);
  }
  return ledger;
}

/** Submits a future endpoint's request; resolves with the server's immediate answer. */
export async function send<Body>(
  context: CallContext,
  e: Endpoint<Body, unknown>,
  input: CallInput<Body>,
): Promise<UntypedAPIFuture> {
  const ledger = ledgerOf(context.http);
  return exchange(context, e, requestOf(e, input), (response) => readSubmission(e, response, ledger));
}

export interface PollInput {
  signal?: AbortSignal;
  onEvent?: (event: FutureEvent) => void;
  /** Seconds from the start of the operation to receipt of the request id (first poll only). */
  roundtripSeconds?: number;
}

/** Polls a future endpoint's request id until its result. */
export function poll<Result>(
  context: CallContext,
  e: Endpoint<unknown, Result>,
  requestId: string,
  input: PollInput = {},
): Promise<Result> {
  if (!e.future) throw new Error(`${e.name} is not a future endpoint`);
  const requestType = e.future;
  return noted(context, () =>
    pollFuture(context.http, {
      requestId,
      requestType,
      decoder: e.result,
      roundtripSeconds: input.roundtripSeconds,
      signal: input.signal,
      onEvent: context.notePollEvent
        ? (event) => {
            context.notePollEvent?.(requestId, requestType, event);
            input.onEvent?.(event);
          }
        : input.onEvent,
      billingPauseMs: context.billingPauseMs,
    }),
  );
}

/** A future endpoint end to end: submit, then poll, as an APIFuture. */
export function submit<Body, Result>(
  context: CallContext,
  e: Endpoint<Body, Result>,
  input: CallInput<Body>,
): APIFuture<Result> {
  // Bad input fails the call itself, synchronously, before anything is sent.
  const request = requestOf(e, input);
  return new APIFuture<Result>(async ({ setRequestId, emit }) => {
    const startedAt = Date.now();
    const ledger = ledgerOf(context.http);
    const { request_id } = await exchange(context, e, request, (response) =>
      readSubmission(e, response, ledger),
    );
    setRequestId(request_id);
    return poll(context, e, request_id, {
      signal: input.signal,
      onEvent: emit,
      roundtripSeconds: (Date.now() - startedAt) / 1000,
    });
  });
}
