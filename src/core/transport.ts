/**
 * The runtime transport: the fastest way this runtime has to send one HTTP request, when it is not
 * its own `fetch`. On Node that is a keep-alive HTTP/1.1 client on `node:net`/`node:tls` (src/node),
 * which the package's `node` export condition registers before anything else runs; every other runtime
 * (browsers, workers, Deno, Bun) has none and uses its fetch. Web standards only: this module is on
 * the main entry's path, the Node code is not.
 *
 * A runtime transport answers with a stand-in for a Response that carries the whole body as bytes
 * (`transportAnswer`, `directBody`): small JSON answers then never go through a web stream.
 */

export interface TransportRequest {
  method: string;
  /** A Headers object (a redirect's next hop), or the SDK's own header record for the call. */
  headers: Headers | Readonly<Record<string, string>>;
  /** The call's body as given (a JSON string or bytes), resent as is on a 307/308. */
  body: string | Uint8Array | undefined;
  /** Aborts the request and the body read. */
  signal: AbortSignal;
  /** Largest body accepted; a larger one rejects the body with `tooLarge()`. */
  maxBytes: number;
  tooLarge: () => Error;
}

/**
 * Sends one request, no redirect followed. Resolves once status and headers are in; the body then
 * arrives through `directBody(response)`. A failure to connect or a reset before the headers
 * rejects with a TypeError whose message is fetch's ("fetch failed") and whose cause says why.
 */
export type RuntimeTransport = (url: string, request: TransportRequest) => Promise<Response>;

let registered: RuntimeTransport | undefined;

/** Called once by the runtime's entry (`tinker-ts` under the `node` condition). */
export function registerRuntimeTransport(transport: RuntimeTransport): void {
  registered = transport;
}

/**
 * The registered transport, unless the environment names a proxy or asks for fetch: the runtime
 * transport speaks straight to the server, so a proxied environment keeps the runtime's fetch (which
 * honours HTTPS_PROXY where the runtime does, e.g. Node 24 with NODE_USE_ENV_PROXY=1), and
 * `TINKER_TS_TRANSPORT=fetch` keeps it too (e.g. for an undici dispatcher set with
 * setGlobalDispatcher). Read when a client is made, not at import.
 */
export function runtimeTransport(): RuntimeTransport | undefined {
  if (!registered) return undefined;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env && (env.TINKER_TS_TRANSPORT === "fetch" || PROXY_VARIABLES.some((name) => env[name])))
    return undefined;
  return registered;
}

const PROXY_VARIABLES = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/**
 * A runtime transport's answer, standing in for a fetch Response: the status and headers that ky
 * and the HTTP layer read, and the whole body as bytes beside them. A fetch Response and its
 * Headers cost ~3 µs and a dozen short-lived objects per request, and the SDK reads one or two
 * headers of a successful answer; here the Headers object is built only when something asks for it
 * (an `onResponse` observer, an error's `headers`).
 *
 * ky takes it as a response: it accepts any object whose `toString` tag is "Response", and with no
 * hooks, no progress callback and `throwHttpErrors: false` it reads only `ok`, `type` and `status`.
 * The body can also be read as a Response's is (`bytes`, `arrayBuffer`, `text`, `json`), once each
 * way, for code that treats it as one; `body` is null, as no stream is made.
 */
class TransportAnswer {
  readonly type = "basic";
  readonly redirected = false;
  readonly body = null;
  readonly bodyUsed = false;
  /** The whole body, as the transport reads it (`directBody`). */
  readonly #bytes: Promise<Uint8Array>;
  #headers: Headers | undefined;

  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    /** Lower-case names to values, as the transport parsed them. */
    readonly headerRecord: Readonly<Record<string, string>>,
    bytes: Promise<Uint8Array>,
  ) {
    this.#bytes = bytes;
    // Nobody reads a redirect hop's body: its failure (a reset, a bad encoding) must not become an
    // unhandled rejection. Whoever awaits the body still sees it.
    bytes.catch(() => {});
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get headers(): Headers {
    this.#headers ??= new Headers(this.headerRecord);
    return this.#headers;
  }

  get [Symbol.toStringTag](): string {
    return "Response";
  }

  /** The body's bytes: the transport's promise, shared by every reader of this answer. */
  get directBody(): Promise<Uint8Array> {
    return this.#bytes;
  }

  clone(): TransportAnswer {
    return new TransportAnswer(this.url, this.status, this.statusText, this.headerRecord, this.#bytes);
  }

  async bytes(): Promise<Uint8Array> {
    return (await this.#bytes).slice();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer as ArrayBuffer;
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(await this.#bytes);
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/**
 * A runtime transport's answer (see TransportAnswer), typed as the Response that ky's `fetch` and
 * the HTTP layer pass around. `headers` must hold lower-case names; the caller has checked that a
 * Headers object would accept every value and that the status is one a Response can have.
 */
export function transportAnswer(
  url: string,
  status: number,
  statusText: string,
  headers: Readonly<Record<string, string>>,
  body: Promise<Uint8Array>,
): Response {
  return new TransportAnswer(url, status, statusText, headers, body) as unknown as Response;
}

/** The body of a runtime transport's answer; undefined for any other Response. */
export function directBody(response: Response): Promise<Uint8Array> | undefined {
  return response instanceof TransportAnswer ? response.directBody : undefined;
}

/** One header of an answer (a lower-case name), without building a transport answer's Headers. */
export function answerHeader(response: Response, name: string): string | null {
  return response instanceof TransportAnswer
    ? (response.headerRecord[name] ?? null)
    : response.headers.get(name);
}
