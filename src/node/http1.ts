/**
 * A small HTTP/1.1 client on `node:net`/`node:tls`: keep-alive connections per origin, one request at
 * a time on each, the answer parsed straight from the socket's bytes.
 *
 * Why not `node:http`: its ClientRequest, Agent bookkeeping, OutgoingMessage and the IncomingMessage
 * stream cost about 0.15 ms of CPU per request here, more than everything else the SDK does for a
 * small JSON call; the SDK needs none of what they add (it sends whole bodies, reads whole bodies,
 * follows redirects itself and bounds every wait with its own signal). What it does need is kept:
 * Content-Length and chunked framing, 1xx answers skipped, bodies read until close when the server
 * frames them so, keep-alive by the HTTP/1.x rules, a request on a kept-alive socket that the server
 * closed while idle sent again once on a fresh one (as undici and node:http do), TLS with Node's
 * defaults.
 */
import net from "node:net";
import type tls from "node:tls";
import { isHeaderName, isHeaderValue } from "../core/header-check.js";
import { lazyImport } from "../internal/lazy-import.js";

/** What one exchange needs to know about its request; bytes are written as given. */
export interface Http1Request {
  method: string;
  /** `host[:port]` as the Host header gives it. */
  host: string;
  /** Path and query. */
  target: string;
  /** `name: value\r\n` lines, already checked: no line break or NUL inside a name or value. */
  headerLines: string;
  body: string | Uint8Array | undefined;
  signal: AbortSignal;
  /** Largest body accepted, as framed; past it the exchange ends with `tooLarge()`. */
  maxBodyBytes: number;
  tooLarge: () => Error;
}

/** Status line and headers of an answer; the body follows through `body`. */
export interface Http1Head {
  status: number;
  statusText: string;
  /**
   * Lower-case names to values, without a prototype; a repeated name's values joined with ", " as
   * Headers.get joins them (a repeated Content-Length, which must repeat the same value, kept once).
   */
  headers: Record<string, string>;
  /** Every body byte, as framed (not decoded); rejects on a reset, an abort or a short body. */
  body: Promise<Buffer[]>;
  /** Abandons the body (its promise rejects with `reason`) and closes the connection. */
  cancel: (reason: unknown) => void;
}

export interface Origin {
  secure: boolean;
  hostname: string;
  port: number;
}

/** Largest status line plus headers accepted, as Node's own parser (16 KiB by default; 64 here). */
const MAX_HEAD_BYTES = 64 * 1024;
/** A socket idle for longer is not reused: servers close idle ones after 5 s (Node's default). */
const IDLE_REUSE_MS = 4_000;
/** Idle sockets kept per origin (node:http's Agent keeps 256): a burst of calls leaves no more open. */
const MAX_IDLE_PER_ORIGIN = 256;
const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Where plain-TCP reads land (see Connection); one for all connections, as reads run one at a time. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);
/** A character past ASCII: a head without one goes out in one write with a UTF-8 body. */
const NON_ASCII = /[\u0080-\uffff]/;
/** Binary bodies up to this size go out copied behind the head in one write (see Connection.send). */
const COPY_BODY_BYTES = 64 * 1024;

type Framing =
  | { kind: "length"; remaining: number }
  | { kind: "chunked"; state: ChunkState; remaining: number; line: string }
  | { kind: "close" };

type ChunkState = "size" | "data" | "data-end" | "trailers";

/** An answer that breaks HTTP/1.1's syntax. */
class ProtocolError extends Error {}

/** The exchange under way on a connection. */
interface Exchange {
  request: Http1Request;
  onHead: (head: Http1Head) => void;
  onFailure: (error: unknown, repeatable: boolean) => void;
  /** Bytes of the head seen so far (before the blank line). */
  headBytes: Buffer[];
  headLength: number;
  receivedAny: boolean;
  framing?: Framing;
  keepAlive: boolean;
  chunks: Buffer[];
  bodyLength: number;
  resolveBody?: (chunks: Buffer[]) => void;
  rejectBody?: (error: unknown) => void;
  onAbort: () => void;
}

class Connection {
  readonly socket: net.Socket | tls.TLSSocket;
  exchange: Exchange | undefined;
  /** Exchanges completed on this socket; a reused socket may have been closed while idle. */
  completed = 0;
  idleSince = 0;

  constructor(
    readonly pool: Pool,
    readonly key: string,
    origin: Origin,
  ) {
    const host = origin.hostname.startsWith("[") ? origin.hostname.slice(1, -1) : origin.hostname;
    if (origin.secure) {
      this.socket = tlsModule!.connect({
        host,
        port: origin.port,
        servername: net.isIP(host) ? undefined : host,
        ALPNProtocols: ["http/1.1"],
      });
      this.socket.on("data", (data: Buffer) => this.onData(data));
    } else {
      // `onread` hands each read over in one shared buffer, without the Readable stream machinery;
      // the bytes are copied out before the next read can land there.
      this.socket = net.connect({
        host,
        port: origin.port,
        onread: {
          buffer: readBuffer,
          callback: (size: number, buffer: Uint8Array) => {
            this.onData(Buffer.from(buffer.subarray(0, size)));
            return true; // keep reading
          },
        },
      });
    }
    this.socket.setNoDelay(true);
    this.socket.on("end", () => this.onEnd());
    this.socket.on("error", (error) => this.onClose(error));
    this.socket.on("close", () => this.onClose(new Error("the connection closed")));
  }

  send(exchange: Exchange): void {
    this.exchange = exchange;
    this.socket.ref();
    const { request } = exchange;
    let head = `${request.method} ${request.target} HTTP/1.1\r\nhost: ${request.host}\r\n${request.headerLines}`;
    const body = request.body;
    if (body !== undefined) {
      head += `content-length: ${typeof body === "string" ? Buffer.byteLength(body) : body.byteLength}\r\n`;
    }
    head += "\r\n";
    if (typeof body === "string" && !NON_ASCII.test(head)) {
      this.socket.write(head + body);
    } else if (body === undefined || typeof body === "string" || body.byteLength > COPY_BODY_BYTES) {
      // Headers are bytes (latin1); one writev for head and body, as node:http does.
      this.socket.cork();
      this.socket.write(head, "latin1");
      if (body !== undefined && body.length > 0) this.socket.write(body);
      this.socket.uncork();
    } else {
      // A small binary body (a protobuf call) is copied behind the head: one buffer, one plain
      // write, where cork/uncork would queue two chunks and gather them through writev.
      // Not from Node's shared pool (allocUnsafe's, for small sizes): the head holds the API key,
      // and pooled slabs are what other Buffers, answers' bodies among them, are views into.
      const bytes = Buffer.allocUnsafeSlow(head.length + body.byteLength);
      bytes.write(head, 0, "latin1");
      bytes.set(body, head.length);
      this.socket.write(bytes);
    }
  }

  private onData(data: Buffer): void {
    const exchange = this.exchange;
    if (!exchange) {
      // Bytes nobody asked for (a server's parting 408, say): this socket cannot be trusted again.
      this.socket.destroy();
      return;
    }
    exchange.receivedAny = true;
    try {
      this.consume(exchange, data);
    } catch (error) {
      this.fail(exchange, error);
    }
  }

  private consume(exchange: Exchange, data: Buffer): void {
    let rest: Buffer | undefined = data;
    while (rest && rest.length > 0 && this.exchange === exchange) {
      rest = exchange.framing ? this.consumeBody(exchange, rest) : this.consumeHead(exchange, rest);
    }
    if (rest && rest.length > 0) {
      // Bytes after a complete answer: the server does not frame as we think; never reuse it.
      this.socket.destroy();
    }
  }

  /** Reads head bytes; returns what follows the head, or undefined when it needs more. */
  private consumeHead(exchange: Exchange, data: Buffer): Buffer | undefined {
    exchange.headBytes.push(data);
    exchange.headLength += data.length;
    const joined = exchange.headBytes.length === 1 ? data : Buffer.concat(exchange.headBytes);
    // The blank line may straddle two reads: search from just before the new bytes.
    const from = Math.max(0, joined.length - data.length - 3);
    const end = joined.indexOf(CRLFCRLF, from);
    if (end < 0) {
      if (exchange.headLength > MAX_HEAD_BYTES) throw new ProtocolError("the answer's headers are too large");
      exchange.headBytes = [joined];
      return undefined;
    }
    exchange.headBytes = [];
    exchange.headLength = 0;
    const rest = joined.subarray(end + 4);
    const lines = joined.toString("latin1", 0, end).split("\r\n");
    const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]!);
    if (!status)
      throw new ProtocolError(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const code = Number(status[2]);
    const headers: Record<string, string> = Object.create(null);
    let length: string | undefined;
    let chunked = false;
    let connection = "";
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0)
        throw new ProtocolError(`a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      // What a Headers object would refuse (fetch fails such an answer too). Named, not quoted: the
      // value may be a cookie, and this message reaches logs.
      if (!isHeaderName(name)) throw new ProtocolError("a malformed header name");
      if (!isHeaderValue(value)) throw new ProtocolError(`a malformed value of header ${name}`);
      const lower = name.toLowerCase();
      const earlier = headers[lower];
      headers[lower] = earlier === undefined ? value : `${earlier}, ${value}`;
      if (lower === "content-length") {
        if (length !== undefined && length !== value)
          throw new ProtocolError("two different Content-Length values");
        length = value;
        headers[lower] = value;
      } else if (lower === "transfer-encoding") {
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
        if (!chunked) throw new ProtocolError(`unsupported Transfer-Encoding ${value}`);
      } else if (lower === "connection") connection += `${value.toLowerCase()},`;
    }
    // 1xx answers (100 Continue, 103 Early Hints) precede the real one.
    if (code >= 100 && code < 200) {
      if (code === 101) throw new ProtocolError("the server switched protocols");
      return rest;
    }
    exchange.keepAlive =
      status[1] === "1"
        ? !/(?:^|,)\s*close\s*,/.test(connection)
        : /(?:^|,)\s*keep-alive\s*,/.test(connection);
    const bodiless = exchange.request.method === "HEAD" || code === 204 || code === 304;
    if (bodiless) exchange.framing = { kind: "length", remaining: 0 };
    else if (chunked) exchange.framing = { kind: "chunked", state: "size", remaining: 0, line: "" };
    else if (length !== undefined) {
      if (!/^\d+$/.test(length)) throw new ProtocolError(`a malformed Content-Length ${length}`);
      exchange.framing = { kind: "length", remaining: Number(length) };
    } else {
      exchange.framing = { kind: "close" };
      exchange.keepAlive = false;
    }
    const body = new Promise<Buffer[]>((resolve, reject) => {
      exchange.resolveBody = resolve;
      exchange.rejectBody = reject;
    });
    body.catch(() => {}); // read or not, a failed body must not become an unhandled rejection
    const cancel = (reason: unknown) => this.fail(exchange, reason);
    exchange.onHead({ status: code, statusText: status[3] ?? "", headers, body, cancel });
    if (exchange.framing.kind === "length" && exchange.framing.remaining === 0) this.finish(exchange);
    return rest;
  }

  /** Reads body bytes by the answer's framing; returns bytes past the body's end. */
  private consumeBody(exchange: Exchange, data: Buffer): Buffer | undefined {
    const framing = exchange.framing!;
    if (framing.kind === "close") {
      this.keep(exchange, data);
      return undefined;
    }
    if (framing.kind === "length") {
      const take = Math.min(framing.remaining, data.length);
      this.keep(exchange, take === data.length ? data : data.subarray(0, take));
      framing.remaining -= take;
      if (framing.remaining === 0) this.finish(exchange);
      return data.subarray(take);
    }
    let offset = 0;
    while (offset < data.length && this.exchange === exchange) {
      if (framing.state === "data") {
        const take = Math.min(framing.remaining, data.length - offset);
        this.keep(exchange, data.subarray(offset, offset + take));
        offset += take;
        framing.remaining -= take;
        if (framing.remaining === 0) framing.state = "data-end";
        continue;
      }
      // Line-based states: the chunk size, the CRLF after a chunk's data, the trailers.
      const newline = data.indexOf(10, offset);
      const piece = data.toString("latin1", offset, newline < 0 ? data.length : newline + 1);
      offset = newline < 0 ? data.length : newline + 1;
      framing.line += piece;
      if (framing.line.length > MAX_HEAD_BYTES) throw new ProtocolError("a chunk line is too long");
      if (newline < 0) break;
      const line = framing.line.replace(/\r?\n$/, "");
      framing.line = "";
      if (framing.state === "data-end") {
        if (line !== "") throw new ProtocolError("a chunk did not end with CRLF");
        framing.state = "size";
      } else if (framing.state === "size") {
        const size = /^([0-9a-fA-F]+)\s*(?:;.*)?$/.exec(line);
        if (!size) throw new ProtocolError(`a malformed chunk size ${JSON.stringify(line.slice(0, 40))}`);
        framing.remaining = Number.parseInt(size[1]!, 16);
        framing.state = framing.remaining === 0 ? "trailers" : "data";
      } else if (line === "") {
        this.finish(exchange);
      }
    }
    return data.subarray(offset);
  }

  private keep(exchange: Exchange, bytes: Buffer): void {
    exchange.bodyLength += bytes.length;
    if (exchange.bodyLength > exchange.request.maxBodyBytes) throw exchange.request.tooLarge();
    exchange.chunks.push(bytes);
  }

  private finish(exchange: Exchange): void {
    this.exchange = undefined;
    exchange.request.signal.removeEventListener("abort", exchange.onAbort);
    exchange.resolveBody!(exchange.chunks);
    this.completed++;
    if (exchange.keepAlive && !this.socket.destroyed) this.pool.release(this);
    else this.socket.destroy();
  }

  private onEnd(): void {
    const exchange = this.exchange;
    if (exchange?.framing?.kind === "close") this.finish(exchange);
  }

  private onClose(error: Error): void {
    this.pool.forget(this);
    // A clean end of a body framed by the connection's close came through onEnd first.
    const exchange = this.exchange;
    if (exchange) this.fail(exchange, error, true);
  }

  /**
   * Ends the exchange with `error` (the signal's reason once it fired): before the head through
   * onFailure, after it through the body. `lost` marks the connection's own failure.
   */
  fail(exchange: Exchange, error: unknown, lost = false): void {
    if (this.exchange !== exchange) return;
    this.exchange = undefined;
    exchange.request.signal.removeEventListener("abort", exchange.onAbort);
    this.socket.destroy();
    const reason = exchange.request.signal.aborted ? exchange.request.signal.reason : error;
    if (exchange.rejectBody) {
      exchange.rejectBody(
        lost && reason === error
          ? new Error("the connection closed before the whole body arrived", { cause: error })
          : reason,
      );
    } else {
      // Nothing came back on a socket that served earlier requests: the server closed it while idle,
      // so the request never reached it.
      const repeatable = this.completed > 0 && !exchange.receivedAny && !exchange.request.signal.aborted;
      exchange.onFailure(reason, repeatable);
    }
  }
}

/**
 * node:tls, loaded with the first https request: it brings OpenSSL's setup (~3 MB of memory, a few
 * ms) that a process talking only to a local http backend never needs.
 */
let tlsModule: typeof tls | undefined;
const loadTls = lazyImport(async () => {
  tlsModule = (await import("node:tls")).default;
});

/** Kept-alive connections by origin, most recently used last. */
class Pool {
  private readonly idle = new Map<string, Connection[]>();

  checkout(origin: Origin, fresh: boolean): Connection {
    const key = `${origin.secure ? "s" : ""}${origin.hostname}:${origin.port}`;
    const list = fresh ? undefined : this.idle.get(key);
    const now = performance.now();
    while (list && list.length > 0) {
      const connection = list.pop()!;
      if (!connection.socket.destroyed && now - connection.idleSince < IDLE_REUSE_MS) return connection;
      connection.socket.destroy();
    }
    return new Connection(this, key, origin);
  }

  release(connection: Connection): void {
    connection.idleSince = performance.now();
    // An idle socket never keeps the process alive.
    connection.socket.unref();
    const list = this.idle.get(connection.key);
    if (!list) this.idle.set(connection.key, [connection]);
    else if (list.length < MAX_IDLE_PER_ORIGIN) list.push(connection);
    else connection.socket.destroy();
  }

  forget(connection: Connection): void {
    const list = this.idle.get(connection.key);
    const at = list?.indexOf(connection) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }
}

const pool = new Pool();

/**
 * Sends one request and resolves with the answer's head once it is in. Rejects before the head with
 * the socket's error or the signal's reason; a request whose kept-alive socket turns out closed is
 * sent again once on a new connection.
 */
export function exchange(origin: Origin, request: Http1Request, fresh = false): Promise<Http1Head> {
  if (request.signal.aborted) return Promise.reject(request.signal.reason);
  if (origin.secure && !tlsModule) return loadTls().then(() => exchange(origin, request, fresh));
  return new Promise<Http1Head>((resolve, reject) => {
    const connection = pool.checkout(origin, fresh);
    const current: Exchange = {
      request,
      onHead: resolve,
      onFailure: (error, repeatable) => {
        if (repeatable && !fresh) exchange(origin, request, true).then(resolve, reject);
        else reject(error);
      },
      headBytes: [],
      headLength: 0,
      receivedAny: false,
      keepAlive: false,
      chunks: [],
      bodyLength: 0,
      onAbort: () => connection.fail(current, request.signal.reason),
    };
    request.signal.addEventListener("abort", current.onAbort, { once: true });
    connection.send(current);
  });
}
