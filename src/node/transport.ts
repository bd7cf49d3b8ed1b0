/**
 * The Node transport (src/core/transport.ts): one request over `node:http`/`node:https` with
 * keep-alive agents, for ky's `fetch`. Node's own fetch (undici) builds a second Request from ky's,
 * and hands the body back through web streams: about 0.5–0.9 ms of CPU per request on a small JSON
 * answer, against ~0.2–0.35 ms here. Loaded only under the package's `node` export condition.
 *
 * It behaves as fetch with `redirect: "manual"` does for the SDK: no redirect followed (the HTTP
 * layer follows them itself, on every transport), bodies decoded by their Content-Encoding (gzip,
 * deflate, br, as fetch accepts), TLS by Node's defaults (its CA store, NODE_EXTRA_CA_CERTS,
 * NODE_TLS_REJECT_UNAUTHORIZED, as undici), the request's signal honoured until the last byte, a
 * body over `maxBytes` refused as it arrives. Proxies are not spoken: with a proxy variable set the
 * HTTP layer uses the runtime's fetch instead (transport.ts).
 */
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import zlib from "node:zlib";
import type { RuntimeTransport, TransportRequest } from "../core/transport.js";
import { withDirectBody } from "../core/transport.js";

// Free sockets are unref'd by Node's Agent, so an idle pool never keeps a process alive.
const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });

/** fetch's own words for a request that got no answer; ky and the SDK recognise it. */
function fetchFailed(cause: unknown): TypeError {
  return new TypeError("fetch failed", { cause });
}

export const nodeTransport: RuntimeTransport = (url, request) => send(new URL(url), request, true);

function send(url: URL, request: TransportRequest, mayRepeat: boolean): Promise<Response> {
  const { signal } = request;
  if (signal.aborted) return Promise.reject(signal.reason);
  const secure = url.protocol === "https:";
  if (!secure && url.protocol !== "http:") {
    return Promise.reject(fetchFailed(new Error(`unsupported protocol ${url.protocol}`)));
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) headers[name] = value;
  headers["accept-encoding"] ??= "gzip, deflate, br";
  const body = request.body;
  if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));

  return new Promise<Response>((resolve, reject) => {
    let answered = false;
    const req = (secure ? https : http).request(url, {
      method: request.method,
      headers,
      agent: secure ? httpsAgent : httpAgent,
    });
    const onAbort = () => req.destroy(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const done = () => signal.removeEventListener("abort", onAbort);

    req.on("error", (error) => {
      if (answered) return; // the body's own reader reports it
      done();
      if (signal.aborted) return reject(signal.reason);
      // A kept-alive socket the server closed while idle: the request never reached it. Sent again
      // once on a fresh connection, as undici does.
      if (mayRepeat && req.reusedSocket && (error as NodeJS.ErrnoException).code === "ECONNRESET") {
        send(url, request, false).then(resolve, reject);
        return;
      }
      reject(fetchFailed(error));
    });
    req.on("response", (res) => {
      answered = true;
      const bytes = readAll(decoded(res), request, res).finally(done);
      bytes.catch(() => {}); // read or not, a failed body must not become an unhandled rejection
      const responseHeaders = new Headers();
      const raw = res.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) responseHeaders.append(raw[i]!, raw[i + 1]!);
      const declared = Number(res.headers["content-length"]);
      if (Number.isFinite(declared) && declared > request.maxBytes) {
        res.destroy();
        return reject(request.tooLarge());
      }
      let response: Response;
      try {
        response = new Response(null, {
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? "",
          headers: responseHeaders,
        });
      } catch (error) {
        res.destroy();
        return reject(fetchFailed(error));
      }
      resolve(withDirectBody(response, bytes));
    });
    req.end(body);
  });
}

/** The body stream with its Content-Encoding undone, as fetch does. */
function decoded(res: http.IncomingMessage): Readable {
  const encoding = String(res.headers["content-encoding"] ?? "")
    .trim()
    .toLowerCase();
  const decoder =
    encoding === "gzip" || encoding === "x-gzip"
      ? zlib.createGunzip()
      : encoding === "deflate"
        ? zlib.createInflate()
        : encoding === "br"
          ? zlib.createBrotliDecompress()
          : undefined;
  if (!decoder) return res;
  res.on("error", (error) => decoder.destroy(error));
  return res.pipe(decoder);
}

/**
 * Every byte of `stream`, or a rejection: the signal (send's listener destroys the request, which
 * ends the stream), a reset, a bad encoding, too many bytes.
 */
function readAll(
  stream: Readable,
  request: TransportRequest,
  res: http.IncomingMessage,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let failed = false;
    const fail = (error: unknown) => {
      // Once: destroying the message emits `aborted` at once, which must not replace the reason.
      if (failed) return;
      failed = true;
      reject(request.signal.aborted ? request.signal.reason : error);
      res.destroy();
      stream.destroy();
    };
    stream.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > request.maxBytes) return fail(request.tooLarge());
      chunks.push(chunk);
    });
    stream.on("error", fail);
    // A connection that closes before the declared length is `aborted` on the message.
    res.on("aborted", () => fail(new Error("the connection closed before the whole body arrived")));
    stream.on("end", () => {
      if (!res.complete) return fail(new Error("the connection closed before the whole body arrived"));
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      resolve(new Uint8Array(all.buffer, all.byteOffset, all.byteLength));
    });
  });
}
