/**
 * `tinker-ts serve`: the local backend over HTTP, on loopback unless told otherwise. Uses node:http,
 * which Node, Bun and Deno all provide; the backend itself is a plain fetch handler.
 *
 * Request bodies are streamed into the handler, never buffered here: the handler checks the
 * credential before it reads a body and counts the bytes as they arrive (413 past the limit), so an
 * unauthenticated or oversized upload costs no memory. What node:http cannot turn into a Request
 * (a method the fetch standard forbids, a Host that is no URL) is answered here with a 4xx.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { createLocalTinker, type LocalTinkerOptions } from "../local/index.js";

export interface ServeOptions extends LocalTinkerOptions {
  port: number;
  host: string;
  /**
   * Called with one line per answered request — method, path (query and URL tokens left out), status,
   * milliseconds — never headers or bodies.
   */
  onRequest?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** Methods the fetch standard refuses to build a Request for; answered 405 here. */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
/** How long a client whose body was refused unread may keep sending before its socket is closed. */
const UNREAD_BODY_LINGER_MS = 2_000;

export async function serve(options: ServeOptions): Promise<RunningServer> {
  const local = createLocalTinker(options);
  // A data directory that cannot be opened fails the start, not the first request.
  try {
    await local.ready;
  } catch (error) {
    await local.close();
    throw error;
  }
  const server = createServer((req, res) => {
    const started = performance.now();
    res.once("finish", () => {
      const ms = Math.round(performance.now() - started);
      options.onRequest?.(`${req.method ?? "?"} ${loggablePath(req.url)} ${res.statusCode} ${ms}ms`);
    });
    handleNodeRequest(local.fetch, req, res).catch((error) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, 500, error instanceof Error ? error.message : String(error));
    });
  });
  // Keep-alive sockets of finished clients must not hold a shutdown open.
  server.keepAliveTimeout = 5_000;
  // Slow clients (slowloris) get 60 s for their headers (a busy server under a burst of thousands
  // of connections needs some of that itself) and 2 min for a whole request; a long poll's hold is
  // the server's and does not count.
  server.headersTimeout = 60_000;
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // A deep accept queue: bursts of thousands of connections (polls of many futures) wait in it
    // rather than being dropped (the kernel caps it at net.core.somaxconn).
    server.listen({ port: options.port, host: options.host, backlog: 4096 }, () => resolve());
  }).catch(async (error) => {
    await local.close();
    throw error;
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const closed = local.close();
        server.close(() => void closed.then(() => resolve()));
        server.closeAllConnections();
      }),
  };
}

async function handleNodeRequest(
  handler: (request: Request) => Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const method = req.method ?? "GET";
  if (FORBIDDEN_METHODS.has(method)) return refuse(req, res, 405, `method ${method} is not allowed`);
  const url = requestUrl(req);
  if (url === undefined) return refuse(req, res, 400, "invalid Host header or request target");
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  // A client that goes away releases what its request holds (a long poll, a held page).
  const gone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) gone.abort();
  });
  const hasBody = method !== "GET" && method !== "HEAD";
  const request = new Request(url, {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    signal: gone.signal,
    duplex: "half",
  } as RequestInit);
  const response = await handler(request);
  if (hasBody && !req.complete) closeAfterAnswer(req, res);
  res.statusCode = response.status;
  response.headers.forEach((value, name) => {
    res.setHeader(name, value);
  });
  // An event stream (a streamed completion of the /oai routes) goes out as it is produced, and is
  // cancelled if the client leaves; every other answer is written whole.
  if (response.body && response.headers.get("content-type")?.startsWith("text/event-stream")) {
    res.flushHeaders();
    await pipeline(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>), res).catch(() => {});
    return;
  }
  res.end(Buffer.from(await response.arrayBuffer()));
}

/** The request's URL, or undefined when its Host header or target does not make one. */
function requestUrl(req: IncomingMessage): URL | undefined {
  const target = req.url ?? "/";
  if (!target.startsWith("/")) return undefined;
  try {
    const base = new URL(`http://${req.headers.host ?? "localhost"}`);
    // `Host: a/b`, `a?b` or `u@a` would move part of the header out of the host.
    if (base.pathname !== "/" || base.search || base.hash || base.username || base.password) return undefined;
    return new URL(base.origin + target);
  } catch {
    return undefined;
  }
}

/** A 4xx answered without reading the body (the connection is closed after it if one was coming). */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  if (!req.complete) closeAfterAnswer(req, res);
  send(res, status, message);
}

function send(res: ServerResponse, status: number, message: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ detail: message }));
}

/**
 * The body was refused unread (401, 413…): answer with `Connection: close`, then give the client a
 * moment to read the answer before the socket goes, however much it still means to send.
 */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader("connection", "close");
  res.once("finish", () => {
    setTimeout(() => req.socket?.destroy(), UNREAD_BODY_LINGER_MS).unref();
  });
}

/**
 * The path of a request as logged: no query (a trace URL's token is in it), and the token segment
 * of the signed archive and external-weights URLs replaced, since those tokens are credentials.
 */
export function loggablePath(target: string | undefined): string {
  const path = (target ?? "/").split("?")[0]!;
  return path
    .replace(/\/archives\/[^/]+/, "/archives/<token>")
    .replace(/\/(external-weights(?:-uploads)?)\/[^/]+/, "/$1/<token>")
    .slice(0, 300);
}
