/**
 * The HTTP layer: the only module that imports ky. It sends one logical call with the transport
 * retries of PROTOCOL.md §5.1 (layer 1), every protocol header of §1.6, and maps every failure onto
 * the SDK's own error classes so that no ky type leaks into the public surface.
 */
import ky, { type AfterResponseHook, HTTPError, isHTTPError, isNetworkError, isTimeoutError } from "ky";
import { abortError, sleep } from "../internal/sleep.js";
import { uuid4 } from "../internal/uuid.js";
import { APIConnectionError, APIError, APITimeoutError, APIUserAbortError, TinkerError } from "./errors.js";
import { serverRetryDelayMs, shouldRetryResponse, transportBackoffMs } from "./retry-policy.js";

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
  /** Per-attempt timeout; the client default (60 s) when absent. */
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

export interface HttpClientOptions {
  /** Raw access to every response's status and headers (request ids, rate-limit headers, …). */
  onResponse?: (info: ResponseInfo) => void;
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

type KyOptions = NonNullable<Parameters<typeof ky>[1]>;

/** `throwHttpErrors` of a `redirect: "manual"` call: a 3xx (or opaque 0) answer is the result. */
const throwUnlessRedirect = (status: number): boolean => !isUnfollowedRedirect(status);

export class HttpClient {
  readonly #options: HttpClientOptions;
  /** The base URL with exactly one trailing slash (ky's `prefix` joining, done once). */
  readonly #prefix: string;
  /** `defaultHeaders` with lower-case names (header names are case-insensitive; later ones win). */
  readonly #defaultHeaders: Record<string, string>;
  readonly #maxBytes: number;

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.#prefix = `${options.baseURL.replace(/\/+$/, "")}/`;
    this.#defaultHeaders = {};
    for (const [name, value] of Object.entries(options.defaultHeaders)) {
      this.#defaultHeaders[name.toLowerCase()] = value;
    }
    this.#maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  }

  /**
   * The fetch ky uses for one call. ky always calls it with a Request, so a Request-only fetch (the
   * local backend's) fits. Every request goes out with `redirect: "manual"`; redirects the caller
   * wants followed are followed here, with `body` resent when the status asks for it, so credentials
   * never go to another origin. Bodies are size-limited as they stream in.
   */
  #transport(follow: boolean, body: BodyInit | undefined): typeof globalThis.fetch {
    const custom = this.#options.fetch;
    const fetch = custom ?? (globalThis.fetch as FetchLike);
    const maxBytes = this.#maxBytes;
    return (async (request: Request) => {
      const response = custom
        ? await custom(request)
        : // The runtime's fetch gets the same request as URL and init, with the original body: given
          // a Request with a body, fetch must proxy that body's stream through a TransformStream.
          await globalThis.fetch(request.url, {
            method: request.method,
            headers: request.headers,
            body,
            signal: request.signal,
            redirect: "manual",
          });
      if (!follow || !isFollowableRedirect(response)) return limitBody(response, maxBytes);
      return limitBody(await followRedirects(fetch, request, response, body), maxBytes);
    }) as typeof globalThis.fetch;
  }

  get baseURL(): string {
    return this.#options.baseURL;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const timeoutMs = req.timeoutMs ?? this.#options.timeoutMs;
    const maxRetries = req.maxRetries ?? this.#options.maxRetries;
    // One plain object (lower-case names) that ky turns into the request's Headers.
    const headers: Record<string, string> = { ...this.#defaultHeaders };
    if (req.headers) for (const name in req.headers) headers[name.toLowerCase()] = req.headers[name]!;
    headers["x-api-key"] = req.credential ?? (await this.#options.credential());
    headers["x-stainless-retry-count"] = "0";
    headers["x-stainless-read-timeout"] = formatSeconds(timeoutMs);
    headers.accept ??= "application/json";

    let body: BodyInit | undefined;
    if (req.method !== "GET") {
      // One key for every transport attempt of this call, so a server can drop duplicates.
      headers["x-idempotency-key"] = `tinker-ts-retry-${uuid4()}`;
      if (req.binary) {
        headers["content-type"] = req.binary.contentType;
        if (req.binary.contentEncoding) headers["content-encoding"] = req.binary.contentEncoding;
        body = req.binary.bytes as Uint8Array<ArrayBuffer>;
      } else {
        headers["content-type"] = "application/json";
        body = req.json === undefined ? undefined : JSON.stringify(req.json);
      }
    }

    // ky makes one attempt per call (`retry: 0`); the transport retries (layer 1) are this loop's.
    // ky would clone the request for each call that may be retried, teeing its body stream; here
    // every attempt builds its Request afresh from the same body.
    const options: KyOptions = {
      method: req.method,
      headers,
      timeout: timeoutMs,
      redirect: "manual",
      fetch: this.#transport(req.redirect !== "manual", body),
      retry: 0,
    };
    if (body !== undefined) options.body = body;
    if (req.signal) options.signal = req.signal;
    if (req.redirect === "manual") options.throwHttpErrors = throwUnlessRedirect;
    const query = compactQuery(req.query);
    if (query) options.searchParams = query;
    const attempt = { count: 0 };
    // Registered only when someone observes: ky clones every response for its afterResponse hooks,
    // which costs a stream tee and a cancel per request.
    const observe = this.#options.onResponse;
    if (observe) options.hooks = { afterResponse: [observeHook(observe, attempt)] };
    const url = this.#prefix + req.path.replace(/^\/+/, "");

    for (;;) {
      const sentAt = Date.now();
      const told = (outcome: { status?: number; error?: unknown }) =>
        tell(this.#options.onAttempt, {
          method: req.method,
          url,
          retryCount: attempt.count,
          ms: Date.now() - sentAt,
          ...outcome,
        });
      try {
        const response = await ky(url, options);
        const bytes = new Uint8Array(await response.arrayBuffer());
        told({ status: response.status });
        return toHttpResponse(response.status, response.headers, bytes);
      } catch (error) {
        told(isHTTPError(error) ? { status: error.response.status } : { error });
        const delayMs = attempt.count < maxRetries ? retryDelayMs(error, attempt.count) : undefined;
        if (delayMs === undefined) {
          if (error instanceof HTTPError && req.returnErrorResponses) {
            // ky already consumed the body into `data`; rebuild the bytes from it.
            return toHttpResponse(error.response.status, error.response.headers, dataToBytes(error.data));
          }
          throw mapError(error, req.signal);
        }
        // Rejects with the SDK's abort or timeout error as soon as the call's signal fires.
        await sleep(delayMs, req.signal);
        headers["x-stainless-retry-count"] = String(++attempt.count);
      }
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
    const body = req.body as Uint8Array<ArrayBuffer> | undefined;
    const options: KyOptions = {
      method: req.method,
      headers,
      timeout: this.#options.timeoutMs,
      redirect: "manual",
      fetch: this.#transport(true, body),
      retry: 0,
    };
    if (body !== undefined) options.body = body;
    if (req.signal) options.signal = req.signal;
    for (let retry = 0; ; retry++) {
      try {
        const response = await ky(req.url, options);
        return toHttpResponse(
          response.status,
          response.headers,
          new Uint8Array(await response.arrayBuffer()),
        );
      } catch (error) {
        const delayMs = retry < this.#options.maxRetries ? retryDelayMs(error, retry) : undefined;
        if (delayMs === undefined) throw mapError(error, req.signal);
        await sleep(delayMs, req.signal);
      }
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

/** Calls an observer, if any; its bug must not break the call it observes. */
function tell(observe: ((info: AttemptInfo) => void) | undefined, info: AttemptInfo): void {
  try {
    observe?.(info);
  } catch {}
}

/** The `onResponse` observer as a ky afterResponse hook; `attempt.count` is the call's retry count. */
function observeHook(observe: (info: ResponseInfo) => void, attempt: { count: number }): AfterResponseHook {
  return ({ request, response }) => {
    try {
      observe({
        method: request.method,
        url: request.url,
        status: response.status,
        headers: response.headers,
        retryCount: attempt.count,
      });
    } catch {
      // An observer's bug must not break the call it observes.
    }
  };
}

/**
 * Layer 1: the wait before retrying after `error` (retry number `retry`, 0 for the first), or
 * undefined when the error is not retried. Retried: statuses that `shouldRetryResponse` accepts
 * (waiting what the server asks, if it asks sensibly), network errors and timeouts.
 */
function retryDelayMs(error: unknown, retry: number): number | undefined {
  if (isHTTPError(error)) {
    const { status, headers } = error.response;
    if (!shouldRetryResponse(status, headers)) return undefined;
    return serverRetryDelayMs(headers) ?? transportBackoffMs(retry);
  }
  return isNetworkError(error) || isTimeoutError(error) ? transportBackoffMs(retry) : undefined;
}

function toHttpResponse(status: number, headers: Headers, body: Uint8Array): HttpResponse {
  const contentType = headers.get("content-type") ?? "";
  let parsed: { value: unknown } | undefined;
  return {
    status,
    headers,
    body,
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

function dataToBytes(data: unknown): Uint8Array {
  if (data === undefined) return new Uint8Array();
  return new TextEncoder().encode(typeof data === "string" ? data : JSON.stringify(data));
}

/**
 * One place that turns ky's and the runtime's failures into SDK errors. The ky error itself is never
 * kept as `cause`: it carries the Request, whose headers hold the credential.
 */
function mapError(error: unknown, signal: AbortSignal | undefined): Error {
  if (error instanceof TinkerError) return error;
  if (isHTTPError(error)) {
    return APIError.fromResponse(error.response.status, error.data, error.response.headers);
  }
  if (isTimeoutError(error)) return new APITimeoutError();
  if (signal?.aborted) return abortError(signal);
  if (isNetworkError(error)) return new APIConnectionError(undefined, { cause: error.cause });
  if (error instanceof Error && error.name === "AbortError")
    return new APIUserAbortError(undefined, { cause: error });
  return new APIConnectionError(
    `Connection error: ${error instanceof Error ? error.message : String(error)}`,
    {
      cause: error,
    },
  );
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

/** Headers that carry credentials: never sent to another origin (PROTOCOL.md §13.28). */
function isCredentialHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === "x-api-key" ||
    lower === "authorization" ||
    lower === "cookie" ||
    lower === "proxy-authorization" ||
    lower.startsWith("cf-access-")
  );
}

const MAX_REDIRECTS = 20;

function isFollowableRedirect(response: Response): boolean {
  return response.status >= 300 && response.status < 400 && response.headers.has("location");
}

/**
 * Follows the redirect chain that `first` starts, as fetch would, except that credential headers are
 * dropped when a hop goes to another origin. `body` is the request's original body (the first
 * request's stream is spent), resent on 307/308 and dropped where fetch turns the call into a GET.
 */
async function followRedirects(
  fetch: FetchLike,
  request: Request,
  first: Response,
  body: BodyInit | undefined,
): Promise<Response> {
  let response = first;
  let url = request.url;
  let method = request.method;
  let payload = body;
  const headers = new Headers(request.headers);
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
    response = await fetch(
      new Request(url, { method, headers, body: payload, redirect: "manual", signal: request.signal }),
    );
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
