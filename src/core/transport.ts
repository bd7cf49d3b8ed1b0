/**
 * The runtime transport: the fastest way this runtime has to send one HTTP request, when it is not
 * its own `fetch`. On Node that is a keep-alive HTTP/1.1 client on `node:net`/`node:tls` (src/node),
 * which the package's `node` export condition registers before anything else runs; every other runtime
 * (browsers, workers, Deno, Bun) has none and uses its fetch. Web standards only: this module is on
 * the main entry's path, the Node code is not.
 *
 * A runtime transport answers with a stand-in for a Response that carries the whole body as bytes
 * (src/node/answer.ts, read through `directBody`): small JSON answers then never go through a web
 * stream.
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
 * What a runtime transport's answer carries beside a Response's members: the whole body as bytes
 * and the headers as the record it parsed (src/node/answer.ts makes such answers; the class is not
 * in the browser's bundle). Symbols, so nothing a caller's fetch returns can carry them.
 */
export const ANSWER_BYTES: unique symbol = Symbol("tinker-ts.answerBytes");
export const ANSWER_HEADERS: unique symbol = Symbol("tinker-ts.answerHeaders");

interface DirectAnswer {
  [ANSWER_BYTES]: Promise<Uint8Array>;
  [ANSWER_HEADERS]: Readonly<Record<string, string>>;
}

/** The body of a runtime transport's answer; undefined for any other Response. */
export function directBody(response: Response): Promise<Uint8Array> | undefined {
  return (response as Partial<DirectAnswer>)[ANSWER_BYTES];
}

/** One header of an answer (a lower-case name), without building a transport answer's Headers. */
export function answerHeader(response: Response, name: string): string | null {
  const record = (response as Partial<DirectAnswer>)[ANSWER_HEADERS];
  return record ? (record[name] ?? null) : response.headers.get(name);
}
