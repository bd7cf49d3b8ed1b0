/**
 * The one request path of every client (DESIGN.md §4): `call()` for direct endpoints, `send()` +
 * `poll()` (or both as `submit()`) for future endpoints, all driven by the endpoint declarations in
 * src/wire/endpoints. A declaration says which retry layers wrap the call, what the body must look
 * like and how the answer is read; the code here only applies it.
 */
import { ValidationError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import type { HttpClient, HttpRequest, HttpResponse } from "../core/http.js";
import { APIFuture } from "../futures/api-future.js";
import { type FutureEvent, pollFuture } from "../futures/poller.js";
import { type Endpoint, parseBody, parseQuery, pathOf } from "../wire/endpoints/define.js";
import { parseResponse, type UntypedAPIFuture, UntypedAPIFutureSchema } from "../wire/schemas.js";

/** What a call needs of the connection. */
export interface CallContext {
  readonly http: HttpClient;
  /** How long HTTP 402 ("billing") pauses a call before it becomes an error. */
  readonly billingPauseMs: number;
  /** Told the outcome of every call and poll: the last failure, or undefined after a success. */
  noteOutcome?(failure: Error | undefined): void;
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

/** Sends `request` with the declaration's retry layers; resolves with the raw response. */
export function exchange(
  context: CallContext,
  e: Endpoint,
  request: HttpRequest,
  attempt: (response: HttpResponse) => void = () => {},
): Promise<HttpResponse> {
  const once = async () => {
    const response = await context.http.request(request);
    attempt(response);
    return response;
  };
  if (e.retry === "transport") return noted(context, once);
  return noted(context, () =>
    withGenericRetries(once, { signal: request.signal, billingPauseMs: context.billingPauseMs }),
  );
}

/** A direct endpoint: one logical call, its answer read with the declared decoder. */
export async function call<Body, Result>(
  context: CallContext,
  e: Endpoint<Body, Result>,
  input: CallInput<Body> = {},
): Promise<Result> {
  const response = await exchange(context, e, requestOf(e, input));
  return decodeDirect(e, response);
}

function decodeDirect<Result>(e: Endpoint<unknown, Result>, response: HttpResponse): Result {
  if (response.isProtobuf && e.result.protobuf) return e.result.protobuf(response.body);
  return parseResponse(e.result.schema, response.json() ?? null, e.name);
}

/** Submits a future endpoint's request; resolves with the server's immediate answer. */
export async function send<Body>(
  context: CallContext,
  e: Endpoint<Body, unknown>,
  input: CallInput<Body>,
): Promise<UntypedAPIFuture> {
  const response = await exchange(context, e, requestOf(e, input));
  return parseResponse(UntypedAPIFutureSchema, response.json(), `${e.name} submission`);
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
      onEvent: input.onEvent,
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
    const response = await exchange(context, e, request);
    const { request_id } = parseResponse(UntypedAPIFutureSchema, response.json(), `${e.name} submission`);
    setRequestId(request_id);
    return poll(context, e, request_id, {
      signal: input.signal,
      onEvent: emit,
      roundtripSeconds: (Date.now() - startedAt) / 1000,
    });
  });
}
