/**
 * The Node transport (src/core/transport.ts): one request over the keep-alive HTTP/1.1 client of
 * ./http1.ts, for ky's `fetch`. Node's own fetch (undici) builds a second Request from ky's and hands
 * the body back through web streams, and `node:http` wraps each exchange in streams and agent
 * bookkeeping: about 0.5–0.9 and 0.2–0.35 ms of CPU per small JSON request on the bench machine,
 * against ~0.1 ms here. Loaded only under the package's `node` export condition.
 *
 * It behaves as fetch with `redirect: "manual"` does for the SDK: no redirect followed (the HTTP
 * layer follows them itself, on every transport), bodies decoded by their Content-Encoding (gzip,
 * deflate, br, as fetch accepts), TLS by Node's defaults (its CA store, NODE_EXTRA_CA_CERTS,
 * NODE_TLS_REJECT_UNAUTHORIZED, as undici), the request's signal honoured until the last byte, a
 * body over `maxBytes` refused as it arrives. Proxies are not spoken: with a proxy variable set the
 * HTTP layer uses the runtime's fetch instead (transport.ts).
 */
import { constants } from "node:buffer";
import zlib from "node:zlib";
import { ValidationError } from "../core/errors.js";
import { isHeaderName, isHeaderValue } from "../core/header-check.js";
import type { RuntimeTransport, TransportRequest } from "../core/transport.js";
import { transportAnswer } from "./answer.js";
import { exchange, type Http1Head, type Origin } from "./http1.js";

/** fetch's own words for a request that got no answer; ky and the SDK recognise it. */
function fetchFailed(cause: unknown): TypeError {
  return new TypeError("fetch failed", { cause });
}

/** Where a URL sends a request: the connection's origin, the Host header, the request path. */
interface Target {
  origin: Origin;
  host: string;
  path: string;
}

/**
 * Parsed URLs without their query: a client sends to a handful of routes, each parsed once (a URL
 * object per request otherwise). The query (ids, cursors, a signed URL's signature) is not kept.
 */
const targets = new Map<string, Target>();
const TARGETS_KEPT = 256;

/** The origin, Host and request target (path and query) of `url`. */
function targetOf(url: string): { target: Target; query: string } {
  const queryAt = url.indexOf("?");
  const base = queryAt < 0 ? url : url.slice(0, queryAt);
  let target = targets.get(base);
  if (!target) {
    const parsed = new URL(base);
    const secure = parsed.protocol === "https:";
    if (!secure && parsed.protocol !== "http:")
      throw fetchFailed(new Error(`unsupported protocol ${parsed.protocol}`));
    target = {
      origin: { secure, hostname: parsed.hostname, port: Number(parsed.port) || (secure ? 443 : 80) },
      host: parsed.host,
      path: parsed.pathname,
    };
    if (targets.size >= TARGETS_KEPT) targets.clear();
    targets.set(base, target);
  }
  // The query as URL would serialize it (a lone "?" is dropped, characters percent-encoded).
  const query = queryAt < 0 ? "" : new URL(url).search;
  return { target, query };
}

/**
 * Checked `name: value` lines of the headers the SDK sets itself, by name, then value: they carry
 * the same few values on every request (platform, package, timeouts, content types), so each line
 * is checked and formatted once. Other headers (a caller's, credentials, the idempotency key) are
 * checked and formatted each time and never kept.
 */
const keptLines = new Map<string, Map<string, string>>();
const VALUES_KEPT_PER_NAME = 16;
const KEPT_NAMES = /^(?:x-stainless-[a-z-]+|user-agent|accept|content-type|content-encoding)$/;

/** One header's line; a name or value a Headers object would refuse is a ValidationError. */
function headerLine(lower: string, value: string): string {
  const kept = keptLines.get(lower)?.get(value);
  if (kept !== undefined) return kept;
  // What a Headers object refuses would end the header, or the head, early. Client options are
  // checked when the client is made; this catches a credential that arrives later (a JWT, a
  // credential command's output), as a typed error rather than a connection failure to retry.
  if (!isHeaderName(lower) || !isHeaderValue(value)) {
    throw new ValidationError([{ path: `headers.${lower}`, message: "is not a valid HTTP header" }]);
  }
  const line = `${lower}: ${value}\r\n`;
  if (KEPT_NAMES.test(lower)) {
    const byValue = keptLines.get(lower) ?? new Map<string, string>();
    if (byValue.size < VALUES_KEPT_PER_NAME) byValue.set(value, line);
    keptLines.set(lower, byValue);
  }
  return line;
}

export const nodeTransport: RuntimeTransport = async (url, request) => {
  const { signal } = request;
  if (signal.aborted) throw signal.reason;
  const { target, query } = targetOf(url);

  let headerLines = "";
  let acceptsEncoding = false;
  const add = (value: string, name: string) => {
    const lower = name.toLowerCase();
    // The Host and the body's framing are the exchange's own; fetch refuses them from callers too.
    if (
      lower === "host" ||
      lower === "content-length" ||
      lower === "connection" ||
      lower === "transfer-encoding"
    )
      return;
    if (lower === "accept-encoding") acceptsEncoding = true;
    headerLines += headerLine(lower, value);
  };
  const { headers } = request;
  if (headers instanceof Headers) headers.forEach(add);
  else for (const name in headers) add(headers[name]!, name);
  if (!acceptsEncoding) headerLines += "accept-encoding: gzip, deflate, br\r\n";

  let head: Http1Head;
  try {
    head = await exchange(target.origin, {
      method: request.method,
      host: target.host,
      target: target.path + query,
      headerLines,
      body: request.body,
      signal,
      maxBodyBytes: request.maxBytes,
      tooLarge: request.tooLarge,
    });
  } catch (error) {
    throw signal.aborted ? signal.reason : fetchFailed(error);
  }

  const answer = head.headers;
  if (Number(answer["content-length"] ?? 0) > request.maxBytes) {
    const error = request.tooLarge();
    head.cancel(error);
    throw error;
  }
  if (head.status < 200 || head.status > 599) {
    // A status no Response can have: fetch fails such an answer too.
    const error = new RangeError(`the answer's status ${head.status} is outside 200–599`);
    head.cancel(error);
    throw fetchFailed(error);
  }
  return transportAnswer(
    url,
    head.status,
    head.statusText,
    answer,
    head.body.then((chunks) => decode(chunks, answer["content-encoding"] ?? "", request)),
  );
};

type Decoder = (
  bytes: Buffer,
  options: { maxOutputLength: number },
  callback: (error: Error | null, out: Buffer) => void,
) => void;

/** The codings fetch undoes. */
const DECODERS = new Map<string, Decoder>([
  ["gzip", zlib.gunzip],
  ["x-gzip", zlib.gunzip],
  ["deflate", zlib.inflate],
  ["br", zlib.brotliDecompress],
]);

/** The body's bytes with its Content-Encoding undone, as fetch does; the limit holds after decoding. */
function decode(
  chunks: Buffer[],
  encoding: string,
  request: TransportRequest,
): Promise<Uint8Array> | Uint8Array {
  const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const inflate = DECODERS.get(encoding.trim().toLowerCase());
  if (!inflate) return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
  return new Promise((resolve, reject) => {
    inflate(
      all,
      { maxOutputLength: Math.max(1, Math.min(request.maxBytes, constants.MAX_LENGTH)) },
      (error, out) => {
        if (!error) return resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
        reject((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" ? request.tooLarge() : error);
      },
    );
  });
}
