/**
 * The Node transport's answer, standing in for a fetch Response: the status and headers that ky and
 * the HTTP layer read, and the whole body as bytes beside them (src/core/transport.ts's
 * `directBody` and `answerHeader` read them). A fetch Response and its Headers cost ~3 µs and a
 * dozen short-lived objects per request, and the SDK reads one or two headers of a successful
 * answer; here the Headers object is built only when something asks for it (an `onResponse`
 * observer, an error's `headers`).
 *
 * ky takes it as a response: it accepts any object whose `toString` tag is "Response", and with no
 * hooks, no progress callback and `throwHttpErrors: false` it reads only `ok`, `type` and `status`.
 * The body can also be read as a Response's is (`bytes`, `arrayBuffer`, `text`, `json`), for code
 * that treats it as one; `body` is null, as no stream is made.
 */
import { ANSWER_BYTES, ANSWER_HEADERS } from "../core/transport.js";

class TransportAnswer {
  readonly type = "basic";
  readonly redirected = false;
  readonly body = null;
  readonly bodyUsed = false;
  readonly [ANSWER_BYTES]: Promise<Uint8Array>;
  readonly [ANSWER_HEADERS]: Readonly<Record<string, string>>;
  #headers: Headers | undefined;

  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    headers: Readonly<Record<string, string>>,
    bytes: Promise<Uint8Array>,
  ) {
    this[ANSWER_HEADERS] = headers;
    this[ANSWER_BYTES] = bytes;
    // Nobody reads a redirect hop's body: its failure (a reset, a bad encoding) must not become an
    // unhandled rejection. Whoever awaits the body still sees it.
    bytes.catch(() => {});
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get headers(): Headers {
    this.#headers ??= new Headers(this[ANSWER_HEADERS]);
    return this.#headers;
  }

  get [Symbol.toStringTag](): string {
    return "Response";
  }

  clone(): TransportAnswer {
    return new TransportAnswer(
      this.url,
      this.status,
      this.statusText,
      this[ANSWER_HEADERS],
      this[ANSWER_BYTES],
    );
  }

  async bytes(): Promise<Uint8Array> {
    return (await this[ANSWER_BYTES]).slice();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer as ArrayBuffer;
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(await this[ANSWER_BYTES]);
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/**
 * A transport answer, typed as the Response that ky's `fetch` and the HTTP layer pass around.
 * `headers` must hold lower-case names; the caller has checked that a Headers object would accept
 * every value and that the status is one a Response can have.
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
