/**
 * The HTTP layer: the only module that imports ky. It sends one logical call with the transport
 * retries of PROTOCOL.md §5.1 (layer 1), every protocol header of §1.6, and maps every failure onto
 * the SDK's own error classes so that no ky type leaks into the public surface.
 */
import type { Options as KyOptions } from "ky";
import { lazyImport } from "../internal/lazy-import.js";
import { abortError, sleep, untilAborted } from "../internal/sleep.js";
import { uuid4 } from "../internal/uuid.js";
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  APIUserAbortError,
  TinkerError,
  UnexpectedResponseError,
} from "./errors.js";
import { isCredentialHeader } from "./header-check.js";
import { registerSecret } from "./redact.js";
import {
  serverRetryDelayMs,
  shouldRetryResponse,
  transportBackoffMs,
  UNEXPECTED_ANSWER_RETRIES,
} from "./retry-policy.js";
import { answerHeader, directBody, type RuntimeTransport, runtimeTransport } from "./transport.js";

export type FetchLike = (input: Request, init?: RequestInit) => Promise<Response>;

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface HttpRequest {
  method: HttpMethod;
  /** Path relative to the base URL, e.g. `api/v1/create_session` (a leading `/` is ignored). */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON body. Non-GET calls without a body still send `Content-Type: application/json`. */
  json?: unknown;
  /** Binary body (protobuf), sent with its own content type. */
  binary?: { bytes: Uint8Array; contentType: string; contentEncoding?: string };
  headers?: Record<string, string>;
  /** Send this credential instead of the client's (e.g. a weights access token). */
  credential?: string;
  /** Transport retries (layer 1); the client default (10) when absent. */
  maxRetries?: number;
  /**
   * Per-attempt timeout, from sending the request to the last byte of the answer; the client
   * default (60 s) when absent. A longer one (a long poll's) covers the wait for the answer to
   * begin; its body must then arrive within the client default.
   */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Return non-2xx answers instead of throwing (after the transport retries). Used by the poller,
   * which gives statuses such as 408 and 410 their own meaning.
   */
  returnErrorResponses?: boolean;
  /**
   * `"manual"`: do not follow redirects; a 3xx answer is returned as the response (used by the
   * checkpoint archive call, whose 302 `Location` is the result). Browsers hide such an answer
   * behind an opaque response with status 0, which is returned too so the caller can say so.
   */
  redirect?: "follow" | "manual";
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** The Content-Type header, lower-cased; "" when there is none. */
  contentType: string;
  /** True when the response declares `application/x-protobuf`. */
  isProtobuf: boolean;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json(): unknown;
  text(): string;
}

/** What `onResponse` sees of every HTTP response, retried attempts included. */
export interface ResponseInfo {
  method: string;
  /** The request URL (credentials travel in a header, never in the URL). */
  url: string;
  status: number;
  headers: Headers;
  /** 0 for the first attempt of a call, 1 for its first transport retry, … */
  retryCount: number;
}

/** What `onAttempt` sees of every attempt of `request()`: answered (`status`) or failed (`error`). */
export interface AttemptInfo {
  method: string;
  url: string;
  /** 0 for the first attempt of a call, 1 for its first transport retry, … */
  retryCount: number;
  /** From sending to the whole body received, or to the failure. */
  ms: number;
  status?: number;
  error?: unknown;
}

/** Why an attempt is followed by another (`RetryInfo.reason`). */
export type RetryReason =
  /** A retryable status (408, 409, 429, 5xx) or `x-should-retry: true`. */
  | "status"
  /** No answer, or the connection failed while the answer was read. */
  | "connection"
  /** The per-attempt timeout ran out before the last byte of the answer. */
  | "timeout"
  /** An answer that cannot be the server's (`UnexpectedResponseError`). */
  | "unexpected_response";

/** What `onRetry` is told before each retry wait of one call. */
export interface RetryInfo {
  method: string;
  /** The request URL (without credentials). */
  url: string;
  /** The number of the retry about to be made: 1 for the first. */
  attempt: number;
  /** How long the call waits before it. */
  delayMs: number;
  reason: RetryReason;
  /** The status of the answer, when there was one. */
  status?: number;
  /** A short description (the error's message, masked); no body, no credential. */
  detail: string;
}

export interface HttpClientOptions {
  /** Raw access to every response's status and headers (request ids, rate-limit headers, …). */
  onResponse?: (info: ResponseInfo) => void;
  /**
   * Told before every retry wait of a call, whatever the reason (a status, a connection failure,
   * a timeout, an answer that cannot be the server's). An observer's exception is ignored.
   */
  onRetry?: (info: RetryInfo) => void;
  /** Told of every attempt's outcome and time (the debug log's request lines). */
  onAttempt?: (info: AttemptInfo) => void;
  baseURL: string;
  fetch?: FetchLike;
  /** Headers sent on every request (platform headers, Cloudflare Access, user defaults). */
  defaultHeaders: Record<string, string>;
  /** Returns the credential for `X-API-Key` at send time (an API key, or a JWT that may refresh). */
  credential: () => Promise<string> | string;
  maxRetries: number;
  timeoutMs: number;
  /**
   * Largest response body accepted, in bytes (default 100 MiB): a hostile or broken server cannot
   * make the client buffer without bound. A larger answer fails the call with an APIError.
   */
  maxResponseBytes?: number;
}

/** Default of `maxResponseBytes`. */
export const DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024;

const decoder = new TextDecoder();

/**
 * ky, imported with the first request rather than with the SDK: its module evaluation probes the
 * runtime's Request and streams (on Node that loads undici, ~30 ms), and a browser app downloads it
 * as its own chunk. Nothing before the first request needs it.
 */
let kyModule: typeof import("ky") | undefined;
const loadKy = lazyImport(async () => {
  kyModule = await import("ky");
  return kyModule;
});

/**
 * ky's call, typed without ky's own types: the published CommonJS declarations cannot name an
 * ES module's types (TS1542), and this one is public through core/http.d.ts.
 */
export type KyCall = (url: string, options: Record<string, unknown>) => Promise<Response>;

/** ky itself, loaded on first use (for the few modules that send through ky outside HttpClient). */
export async function lazyKy(): Promise<KyCall> {
  return (kyModule ?? (await loadKy())).default as unknown as KyCall;
}

/** ky's NetworkError (no answer at all); none can exist before ky is loaded. */
function isNetworkError(error: unknown): error is Error {
  return kyModule?.isNetworkError(error) ?? false;
}

/** Thrown inside one attempt when its timeout ran out (mapped to APITimeoutError at the end). */
class AttemptTimeout extends Error {
  override name = "AttemptTimeout";
}

/** Thrown inside one attempt when the answer's body failed to arrive (reset, bad encoding, …). */
class BodyReadFailure extends Error {
  override name = "BodyReadFailure";
}

export class HttpClient {
  readonly #options: HttpClientOptions;
  /** The base URL with exactly one trailing slash (ky's `prefix` joining, done once). */
  readonly #prefix: string;
  /** `defaultHeaders` with lower-case names (header names are case-insensitive; later ones win). */
  readonly #defaultHeaders: Record<string, string>;
  readonly #maxBytes: number;
  /** The runtime transport (Node's keep-alive one), unless the caller brought its own fetch. */
  readonly #direct: RuntimeTransport | undefined;
  /** Sends one hop of a call, no redirect followed (a redirect's next hop goes the same way). */
  readonly #send: Send;

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.#prefix = `${options.baseURL.replace(/\/+$/, "")}/`;
    this.#defaultHeaders = {};
    for (const [name, value] of Object.entries(options.defaultHeaders)) {
      this.#defaultHeaders[name.toLowerCase()] = value;
      if (isCredentialHeader(name)) registerSecret(value);
    }
    this.#maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const custom = options.fetch;
    const direct = custom ? undefined : runtimeTransport();
    this.#direct = direct;
    const maxBytes = this.#maxBytes;
    const tooLarge = () => responseTooLarge(maxBytes);
    this.#send = custom
      ? (url, init) => custom(new Request(url, { ...init, body: init.body as BodyInit, redirect: "manual" }))
      : direct
        ? (url, init) => direct(url, { ...init, maxBytes, tooLarge })
        : (url, init) => globalThis.fetch(url, { ...init, body: init.body as BodyInit, redirect: "manual" });
  }

  /** Which transport this client sends with: the caller's fetch, the runtime's, or Node's own. */
  get transport(): "custom" | "fetch" | "node" {
    return this.#options.fetch ? "custom" : this.#direct ? "node" : "fetch";
  }

  /**
   * The fetch ky uses for one call. ky always calls it with a Request, so a Request-only fetch (the
   * local backend's) fits. Every request goes out with `redirect: "manual"`; redirects the caller
   * wants followed are followed here, with `body` resent when the status asks for it, so credentials
   * never go to another origin. Bodies are size-limited as they stream in.
   */
  #transport(
    follow: boolean,
    body: string | Uint8Array | undefined,
    headers: Readonly<Record<string, string>>,
  ): typeof globalThis.fetch {
    const custom = this.#options.fetch;
    const send = this.#send;
    const maxBytes = this.#maxBytes;
    return (async (request: Request, init?: { attemptSignal?: AbortSignal }) => {
      const signal = init?.attemptSignal ?? request.signal;
      const response = custom
        ? await custom(request)
        : // The runtime's fetch (or transport) gets the same request as URL and init, with the
          // original body (given a Request with a body, fetch must proxy that body's stream through
          // a TransformStream) and the SDK's own header record (ky's Request carries headers only
          // for a caller's fetch, which reads them from it).
          await send(request.url, { method: request.method, headers, body, signal });
      const final =
        follow && isFollowableRedirect(response)
          ? await followRedirects(send, request, headers, response, body, signal)
          : response;
      // A runtime transport's answer is size-limited by the transport, as it arrives.
      return directBody(final) ? final : limitBody(final, maxBytes);
    }) as typeof globalThis.fetch;
  }

  /**
   * ky's options for one call: one attempt, statuses reported rather than thrown, redirects left to
   * `#transport`. Only a caller's fetch is handed ky's Request itself, so only it needs the body and
   * the headers inside: the runtime's fetch and transport send `body` and `headers` as they are. A
   * Request given a body wraps it in a ReadableStream that nobody would read, and ky copies headers
   * into three Headers objects per request (its merge, a content-type check, the Request's own).
   */
  #kyOptions(
    method: string,
    follow: boolean,
    body: string | Uint8Array | undefined,
    headers: Record<string, string>,
  ): KyOptions {
    const options: KyOptions = {
      method,
      timeout: false,
      throwHttpErrors: false,
      redirect: "manual",
      fetch: this.#transport(follow, body, headers),
      retry: 0,
    };
    if (this.#options.fetch) {
      options.headers = headers;
      if (body !== undefined) options.body = body as BodyInit;
    }
    return options;
  }

  get baseURL(): string {
    return this.#options.baseURL;
  }

  /** The client's transport retry setting (also caps how often the poller repeats a bad answer). */
  get maxRetries(): number {
    return this.#options.maxRetries;
  }

  /**
   * One logical call with its transport retries. With `read`, a 2xx answer is handed to it and its
   * value returned; when `read` throws an UnexpectedResponseError (an answer that cannot be the
   * server's), the same request is sent again, like after a connection failure, at most
   * UNEXPECTED_ANSWER_RETRIES times (none when the call allows no transport retry).
   */
  request(req: HttpRequest): Promise<HttpResponse>;
  request<T>(req: HttpRequest, read: (response: HttpResponse) => T): Promise<T>;
  async request<T>(req: HttpRequest, read?: (response: HttpResponse) => T): Promise<T | HttpResponse> {
    const timeoutMs = req.timeoutMs ?? this.#options.timeoutMs;
    const maxRetries = req.maxRetries ?? this.#options.maxRetries;
    // One plain object (lower-case names) that ky turns into the request's Headers.
    const headers: Record<string, string> = { ...this.#defaultHeaders };
    if (req.headers) {
      for (const name in req.headers) {
        headers[name.toLowerCase()] = req.headers[name]!;
        if (isCredentialHeader(name)) registerSecret(req.headers[name]);
      }
    }
    // The caller's signal bounds the whole call, the credential (a JWT refresh) included.
    const credential =
      req.credential ?? (await untilAborted(Promise.resolve(this.#options.credential()), req.signal));
    registerSecret(credential);
    headers["x-api-key"] = credential;
    headers["x-stainless-retry-count"] = "0";
    headers["x-stainless-read-timeout"] = formatSeconds(timeoutMs);
    headers.accept ??= "application/json";

    let body: string | Uint8Array | undefined;
    if (req.method !== "GET") {
      // One key for every transport attempt of this call, so a server can drop duplicates.
      headers["x-idempotency-key"] = `tinker-ts-retry-${uuid4()}`;
      if (req.binary) {
        headers["content-type"] = req.binary.contentType;
        if (req.binary.contentEncoding) headers["content-encoding"] = req.binary.contentEncoding;
        body = req.binary.bytes;
      } else {
        headers["content-type"] = "application/json";
        body = req.json === undefined ? undefined : JSON.stringify(req.json);
      }
    }

    // ky makes one attempt per call (`retry: 0`) and reports statuses instead of throwing; the
    // transport retries (layer 1), the attempt timeout and the body read are this loop's. ky would
    // clone the request for each call that may be retried, teeing its body stream; here every
    // attempt builds its one Request afresh from the same body. The query is part of the URL given
    // to ky (its `searchParams` would build the Request twice).
    const options = this.#kyOptions(req.method, req.redirect !== "manual", body, headers);
    const query = compactQuery(req.query);
    const path = this.#prefix + req.path.replace(/^\/+/, "");
    const url = query ? `${path}?${new URLSearchParams(query)}` : path;
    const attempt = { count: 0 };
    // Told here, not through a ky afterResponse hook: ky clones every response for its hooks.
    const observe = this.#options.onResponse;
    const onHeaders = observe
      ? (response: Response) => notifyResponse(observe, req.method, url, response, attempt.count)
      : undefined;
    let transportRetries = 0;
    let unexpectedRetries = 0;

    for (;;) {
      let retry: { delayMs: number; reason: RetryReason; status?: number; detail: string } | undefined;
      const sentAt = this.#options.onAttempt ? Date.now() : 0;
      let answered = false;
      try {
        const response = await attemptOnce(
          url,
          options,
          timeoutMs,
          this.#options.timeoutMs,
          req.signal,
          this.#options.fetch !== undefined,
          onHeaders,
        );
        const { status } = response;
        answered = true;
        this.#notifyAttempt(req.method, url, attempt.count, sentAt, { status });
        const success =
          (status >= 200 && status < 300) || (req.redirect === "manual" && isUnfollowedRedirect(status));
        if (success) return read ? read(response) : response;
        if (transportRetries < maxRetries && shouldRetryResponse(status, response.headers)) {
          retry = {
            delayMs: serverRetryDelayMs(response.headers) ?? transportBackoffMs(transportRetries),
            reason: "status",
            status,
            detail: `status ${status}`,
          };
          transportRetries++;
        } else {
          if (req.returnErrorResponses) return response;
          throw APIError.fromResponse(status, response.json() ?? response.text(), response.headers);
        }
      } catch (error) {
        if (!answered) this.#notifyAttempt(req.method, url, attempt.count, sentAt, { error });
        if (req.signal?.aborted) throw abortError(req.signal);
        // A route whose transport makes one attempt (telemetry, saves, samples) leaves the repeat to
        // the layer above it (the generic loop, the telemetry queue), as for a connection failure.
        if (
          error instanceof UnexpectedResponseError &&
          unexpectedRetries < Math.min(UNEXPECTED_ANSWER_RETRIES, maxRetries)
        ) {
          retry = {
            delayMs: transportBackoffMs(unexpectedRetries++),
            reason: "unexpected_response",
            status: error.status,
            detail: error.message,
          };
        } else if (isTransportFailure(error) && transportRetries < maxRetries) {
          retry = {
            delayMs: transportBackoffMs(transportRetries++),
            reason: error instanceof AttemptTimeout ? "timeout" : "connection",
            detail: mapError(error, req.signal, url).message,
          };
        } else {
          throw mapError(error, req.signal, url);
        }
      }
      attempt.count++;
      this.#notifyRetry({ method: req.method, url, attempt: attempt.count, ...retry });
      // Rejects with the SDK's abort or timeout error as soon as the call's signal fires.
      await sleep(retry.delayMs, req.signal);
      headers["x-stainless-retry-count"] = String(attempt.count);
    }
  }

  #notifyAttempt(
    method: string,
    url: string,
    retryCount: number,
    sentAt: number,
    outcome: { status?: number; error?: unknown },
  ): void {
    const observe = this.#options.onAttempt;
    if (!observe) return;
    try {
      observe({ method, url, retryCount, ms: Date.now() - sentAt, ...outcome });
    } catch {
      // An observer's bug must not break the call it observes.
    }
  }

  #notifyRetry(info: RetryInfo): void {
    try {
      this.#options.onRetry?.(info);
    } catch {
      // An observer's bug must not break the call it observes.
    }
  }

  /**
   * One call to a signed URL, such as the upload URLs of external weights (PROTOCOL.md §W4): the
   * URL is its own credential, so nothing of the client's goes with it — no API key, no default
   * headers, no base URL — only the given headers. The transport retries apply (the same bytes to
   * the same URL are idempotent), through this client's fetch. Non-2xx answers throw as usual.
   */
  async sendSigned(req: SignedRequest): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...req.headers };
    const body = req.body;
    const options = this.#kyOptions(req.method, true, body, headers);
    for (let retry = 0; ; retry++) {
      let delayMs: number;
      try {
        const timeoutMs = this.#options.timeoutMs;
        const response = await attemptOnce(
          req.url,
          options,
          timeoutMs,
          timeoutMs,
          req.signal,
          this.#options.fetch !== undefined,
        );
        if (response.status >= 200 && response.status < 300) return response;
        if (retry >= this.#options.maxRetries || !shouldRetryResponse(response.status, response.headers)) {
          throw APIError.fromResponse(response.status, response.json() ?? response.text(), response.headers);
        }
        delayMs = serverRetryDelayMs(response.headers) ?? transportBackoffMs(retry);
      } catch (error) {
        if (req.signal?.aborted) throw abortError(req.signal);
        if (!isTransportFailure(error) || retry >= this.#options.maxRetries)
          throw mapError(error, req.signal);
        delayMs = transportBackoffMs(retry);
      }
      await sleep(delayMs, req.signal);
    }
  }
}

/** A request to a signed URL (`HttpClient.sendSigned`). */
export interface SignedRequest {
  method: "GET" | "PUT";
  /** The absolute signed URL, used as given. */
  url: string;
  body?: Uint8Array;
  /** Headers the URL's issuer asked for (e.g. the `headers` of an upload URL entry, §W7). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Tells the `onResponse` observer of one answer, as soon as its headers are in. */
function notifyResponse(
  observe: (info: ResponseInfo) => void,
  method: string,
  url: string,
  response: Response,
  retryCount: number,
): void {
  try {
    observe({ method, url, status: response.status, headers: response.headers, retryCount });
  } catch {
    // An observer's bug must not break the call it observes.
  }
}

/**
 * One attempt: the request, then every byte of its answer, all under the attempt's timeout and the
 * caller's signal (a server that sends headers and then stalls is abandoned like one that never
 * answers). Once the headers are in, the rest may take at most `bodyTimeoutMs` (the client's own
 * per-attempt timeout): a long poll's longer timeout covers the wait for its answer to begin, not a
 * body that stalls after it began. Throws AttemptTimeout, BodyReadFailure, the caller's abort, or
 * what ky and the transport throw.
 */
async function attemptOnce(
  url: string,
  options: KyOptions,
  timeoutMs: number,
  bodyTimeoutMs: number,
  signal: AbortSignal | undefined,
  requestCarriesSignal: boolean,
  onHeaders?: (response: Response) => void,
): Promise<HttpResponse> {
  if (signal?.aborted) throw abortError(signal);
  // One signal per attempt: the timeout's, which the caller's signal fires too through a listener
  // removed at the end (AbortSignal.any would leave a dependent signal on a long-lived caller
  // signal per attempt, released only by GC).
  const deadline = new AbortController();
  const attemptSignal = deadline.signal;
  const expire = () => deadline.abort(new AttemptTimeout(`No complete answer within ${timeoutMs} ms`));
  const forward = () => deadline.abort(signal!.reason);
  signal?.addEventListener("abort", forward, { once: true });
  const startedAt = Date.now();
  let timer = setTimeout(expire, timeoutMs);
  try {
    // A caller's fetch gets ky's Request, which must carry the signal; the runtime's fetch and
    // transport take it beside the Request (ky hands unknown options to `fetch` as its `init`), so
    // ky does not chain signals of its own onto it.
    const { default: ky } = kyModule ?? (await loadKy());
    const response = await ky(
      url,
      requestCarriesSignal
        ? { ...options, signal: attemptSignal }
        : ({ ...options, attemptSignal } as KyOptions),
    );
    onHeaders?.(response);
    if (bodyTimeoutMs < timeoutMs - (Date.now() - startedAt)) {
      clearTimeout(timer);
      timer = setTimeout(expire, bodyTimeoutMs);
    }
    const body = await readBody(response, attemptSignal);
    return toHttpResponse(response, body);
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    if (deadline.signal.aborted) throw deadline.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", forward);
  }
}

/**
 * The whole body, or a rejection as soon as `signal` fires: the reader is cancelled, which ends a
 * pending read even when the stream (a custom fetch's) does not follow the request's signal.
 */
async function readBody(response: Response, signal: AbortSignal): Promise<Uint8Array> {
  // A runtime transport's body: already being read, under the same signal (no web stream).
  const direct = directBody(response);
  if (direct) {
    try {
      return await direct;
    } catch (error) {
      if (signal.aborted || error instanceof TinkerError) throw error;
      throw new BodyReadFailure(`The answer's body could not be read: ${describe(error)}`, { cause: error });
    }
  }
  if (!response.body) return new Uint8Array();
  const reader = response.body.getReader();
  const onAbort = () => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (signal.aborted) throw signal.reason;
      if (done) break;
      chunks.push(value);
      length += value.byteLength;
    }
  } catch (error) {
    if (signal.aborted || error instanceof TinkerError) throw error;
    // The connection failed mid-body, or the bytes do not decode (a corrupt gzip stream).
    throw new BodyReadFailure(`The answer's body could not be read: ${describe(error)}`, { cause: error });
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** A failure the transport retries: no answer, a broken body, or an attempt that timed out. */
function isTransportFailure(error: unknown): boolean {
  return error instanceof AttemptTimeout || error instanceof BodyReadFailure || isNetworkError(error);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}

function toHttpResponse(response: Response, body: Uint8Array): HttpResponse {
  const contentType = (answerHeader(response, "content-type") ?? "").toLowerCase();
  let parsed: { value: unknown } | undefined;
  return {
    status: response.status,
    // Built on first read: a transport answer makes its Headers object only when asked.
    get headers() {
      return response.headers;
    },
    body,
    contentType,
    isProtobuf: contentType.includes("application/x-protobuf"),
    text: () => decoder.decode(body),
    json: () => {
      parsed ??= { value: parseJsonOrUndefined(decoder.decode(body)) };
      return parsed.value;
    },
  };
}

function parseJsonOrUndefined(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * One place that turns ky's and the runtime's failures into SDK errors. The ky error itself is never
 * kept as `cause`: it carries the Request, whose headers hold the credential.
 */
function mapError(error: unknown, signal: AbortSignal | undefined, url?: string): Error {
  if (error instanceof TinkerError) return error;
  if (signal?.aborted) return abortError(signal);
  if (error instanceof AttemptTimeout) return new APITimeoutError();
  if (error instanceof BodyReadFailure) return new APIConnectionError(error.message, { cause: error.cause });
  if (isNetworkError(error)) {
    // The URL (never a credential: those travel in headers) says which server did not answer.
    const where = url === undefined ? "" : ` reaching ${url.split("?")[0]}`;
    const cause = error.cause instanceof Error ? `: ${describe(error.cause)}` : "";
    return new APIConnectionError(`Connection error${where}${cause}.`, { cause: error.cause });
  }
  if (error instanceof Error && error.name === "AbortError")
    return new APIUserAbortError(undefined, { cause: error });
  return new APIConnectionError(`Connection error: ${describe(error)}`, { cause: error });
}

/** A 3xx, or the status 0 of the opaque response a browser gives for an unfollowed redirect. */
function isUnfollowedRedirect(status: number): boolean {
  return status === 0 || (status >= 300 && status < 400);
}

function compactQuery(query: HttpRequest["query"]): Record<string, string> | undefined {
  if (!query) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    out[key] = String(value);
    any = true;
  }
  return any ? out : undefined;
}

/** `60`, `45`, `10` for whole seconds (as the official client prints them), else a decimal. */
function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(1);
}

const MAX_REDIRECTS = 20;

/** One hop of a request, sent without following a redirect (HttpClient's transport). */
type Send = (
  url: string,
  init: {
    method: string;
    headers: Headers | Readonly<Record<string, string>>;
    body: string | Uint8Array | undefined;
    signal: AbortSignal;
  },
) => Promise<Response>;

function isFollowableRedirect(response: Response): boolean {
  return response.status >= 300 && response.status < 400 && response.headers.has("location");
}

/**
 * Follows the redirect chain that `first` starts, as fetch would, except that credential headers are
 * dropped when a hop goes to another origin. `body` is the request's original body (the first
 * request's stream is spent), resent on 307/308 and dropped where fetch turns the call into a GET.
 */
async function followRedirects(
  send: Send,
  request: Request,
  sentHeaders: Readonly<Record<string, string>>,
  first: Response,
  body: string | Uint8Array | undefined,
  signal: AbortSignal,
): Promise<Response> {
  let response = first;
  let url = request.url;
  let method = request.method;
  let payload = body;
  const headers = new Headers(sentHeaders);
  for (let hop = 1; ; hop++) {
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || location === null) return response;
    await response.body?.cancel();
    if (hop > MAX_REDIRECTS) throw new APIConnectionError(`Too many redirects (${MAX_REDIRECTS})`);
    const next = new URL(location, url);
    if (next.origin !== new URL(url).origin) {
      for (const name of [...headers.keys()]) if (isCredentialHeader(name)) headers.delete(name);
    }
    if (
      response.status === 303 ||
      ((response.status === 301 || response.status === 302) && method === "POST")
    ) {
      method = "GET";
      payload = undefined;
      headers.delete("content-type");
      headers.delete("content-encoding");
    }
    url = next.href;
    response = await send(url, { method, headers, body: payload, signal });
  }
}

function responseTooLarge(maxBytes: number): APIError {
  return new APIError(`Response body exceeds the limit of ${maxBytes} bytes`);
}

/** The response, with a body that errors once more than `maxBytes` have arrived. */
function limitBody(response: Response, maxBytes: number): Response {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) {
    void response.body?.cancel();
    throw responseTooLarge(maxBytes);
  }
  // A declared length within the limit needs no counting: fetch fails a body that overruns its
  // Content-Length, and wrapping every body in a stream transform is a measurable per-call cost.
  if (!response.body || (Number.isFinite(declared) && response.headers.has("content-length")))
    return response;
  let received = 0;
  const limited = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.byteLength;
        if (received > maxBytes) controller.error(responseTooLarge(maxBytes));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(limited, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
