/**
 * The Node transport's HTTP/1.1 client (src/node/http1.ts) against a raw TCP server that writes the
 * answer's bytes exactly as each case needs them: framing (Content-Length, chunked, until close),
 * answers split at awkward places, 1xx answers, keep-alive rules, a kept-alive socket that the
 * server closed while idle, malformed answers. test/transport.test.ts covers the behaviour shared
 * with the runtime's fetch (redirects, encodings, limits, aborts) against node:http.
 */
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../src/core/errors.js";
import { answerHeader, directBody } from "../src/core/transport.js";
import { nodeTransport } from "../src/node/transport.js";

type Reply = (socket: net.Socket, request: string) => void;

let server: net.Server;
let base: string;
let reply: Reply;
let connections = 0;
let open = 0;
const requests: string[] = [];

beforeAll(async () => {
  server = net.createServer((socket) => {
    connections++;
    open++;
    socket.on("close", () => open--);
    let pending = "";
    socket.on("data", (data) => {
      pending += data.toString("latin1");
      // One request per read is enough here: heads end with a blank line, bodies are declared.
      const end = pending.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(pending.slice(0, end))?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      const request = pending.slice(0, end + 4 + length);
      pending = pending.slice(end + 4 + length);
      requests.push(request);
      reply(socket, request);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(() => server.close());
afterEach(() => {
  requests.length = 0;
});

async function send(
  path: string,
  init: { method?: string; body?: string; maxBytes?: number; signal?: AbortSignal } = {},
) {
  const response = await nodeTransport(`${base}${path}`, {
    method: init.method ?? "GET",
    headers: new Headers({ "x-test": "1" }),
    body: init.body,
    signal: init.signal ?? new AbortController().signal,
    maxBytes: init.maxBytes ?? 1 << 20,
    tooLarge: () => new RangeError("too large"),
  });
  const bytes = await directBody(response)!;
  return { response, text: new TextDecoder().decode(bytes) };
}

describe("the Node transport's HTTP/1.1 client", () => {
  it("writes one well-formed request: method, target, Host, headers, the body's length", async () => {
    reply = (socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    const { response, text } = await send("/a/b?c=1", { method: "POST", body: '{"é":1}' });
    expect([response.status, response.statusText, text]).toEqual([200, "OK", "ok"]);
    const [head, body] = requests[0]!.split("\r\n\r\n");
    const lines = head!.split("\r\n");
    expect(lines[0]).toBe("POST /a/b?c=1 HTTP/1.1");
    expect(lines).toContain(`host: ${base.slice("http://".length)}`);
    expect(lines).toContain("x-test: 1");
    expect(lines).toContain("content-length: 8"); // bytes (é is two), not characters
    expect(Buffer.from(body!, "latin1").toString("utf8")).toBe('{"é":1}');
  });

  it("reads a chunked body split at every byte, with extensions and trailers", async () => {
    const answer =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
    reply = (socket) => {
      let i = 0;
      const drip = () => {
        if (i < answer.length) socket.write(answer[i++]!, () => setImmediate(drip));
      };
      drip();
    };
    const { text } = await send("/chunked");
    expect(text).toBe("hello 0123456789");
    // The connection is kept and reused.
    reply = (socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    const before = connections;
    await send("/again");
    expect(connections).toBe(before);
  });

  it("skips 1xx answers and reads the final one from the same read", async () => {
    reply = (socket) =>
      socket.write(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nyes",
      );
    const { response, text } = await send("/info");
    expect([response.status, text]).toEqual([201, "yes"]);
  });

  it("reads a body framed by the connection's close, and does not reuse that connection", async () => {
    reply = (socket) => socket.end("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end");
    expect((await send("/close")).text).toBe("until the end");
    const before = connections;
    reply = (socket) => socket.write("HTTP/1.1 204 No Content\r\n\r\n");
    const { response, text } = await send("/next");
    expect([response.status, text]).toEqual([204, ""]);
    expect(connections).toBe(before + 1);
  });

  it("honours Connection: close and HTTP/1.0's default", async () => {
    for (const head of ["HTTP/1.1 200 OK\r\nconnection: close", "HTTP/1.0 200 OK"]) {
      reply = (socket) => socket.write(`${head}\r\ncontent-length: 1\r\n\r\nx`);
      await send("/one");
      const before = connections;
      await send("/two");
      expect(connections).toBe(before + 1);
    }
  });

  it("sends a request again, once, when the kept-alive socket was closed by the server while idle", async () => {
    reply = (socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst");
    await send("/first");
    // The next request lands on the old socket, which the server closes without answering.
    let closing = true;
    reply = (socket) => {
      if (closing) {
        closing = false;
        socket.destroy();
      } else socket.write("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond");
    };
    const { text } = await send("/second", { method: "POST", body: "x" });
    expect(text).toBe("second");
    expect(requests.filter((r) => r.startsWith("POST /second"))).toHaveLength(2);
  });

  it("fails a body cut short with a typed reason, and a new connection serves the next call", async () => {
    reply = (socket) => socket.end("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort");
    await expect(send("/short")).rejects.toThrow(/closed before the whole body arrived/);
    reply = (socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    expect((await send("/after")).text).toBe("ok");
  });

  it("refuses a chunked body past the limit as it arrives", async () => {
    reply = (socket) =>
      socket.write(
        `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${"400\r\n" + "x".repeat(1024) + "\r\n"}`,
      );
    await expect(send("/big", { maxBytes: 1000 })).rejects.toThrow("too large");
  });

  it("refuses what is not HTTP/1.x, with fetch's words and the reason as cause", async () => {
    reply = (socket) => socket.write("SSH-2.0-OpenSSH\r\n\r\n");
    const error = await send("/ssh").catch((e: unknown) => e as TypeError);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toBe("fetch failed");
    expect(String((error as TypeError).cause)).toMatch(/not an HTTP\/1\.x status line/);
  });

  it("refuses, as fetch does, a header a Headers object would not take and a status no Response has", async () => {
    for (const [answer, why] of [
      ["HTTP/1.1 200 OK\r\nbad name: 1\r\ncontent-length: 0\r\n\r\n", /^[^1]*malformed header name[^1]*$/],
      // The value is not quoted (it may be a cookie): only the header's name.
      [
        "HTTP/1.1 200 OK\r\nx-nul: secret\u0000b\r\ncontent-length: 0\r\n\r\n",
        /^(?!.*secret).*malformed value of header x-nul/,
      ],
      ["HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n", /status 600 is outside 200–599/],
    ] as const) {
      reply = (socket) => socket.write(answer, "latin1");
      const error = await send("/odd").catch((e: unknown) => e as TypeError);
      expect((error as TypeError).message).toBe("fetch failed");
      expect(String((error as TypeError).cause)).toMatch(why);
    }
  });

  it("refuses a header a Headers object would refuse as a ValidationError, sending nothing", async () => {
    reply = (socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    const sendWith = (headers: Record<string, string>) =>
      nodeTransport(`${base}/h`, {
        method: "GET",
        headers,
        body: undefined,
        signal: new AbortController().signal,
        maxBytes: 1 << 20,
        tooLarge: () => new RangeError("too large"),
      });
    // The same name with a good value first: a value is checked on its own, whatever came before.
    expect((await sendWith({ "x-api-key": "tml-good", "x-tag": "a" })).status).toBe(200);
    const bad: Record<string, string>[] = [
      { "x-api-key": "tml-\nbad" },
      { "x-tag": "a\u0000" },
      { "bad name": "1" },
    ];
    for (const headers of bad) {
      await expect(sendWith(headers)).rejects.toBeInstanceOf(ValidationError);
    }
    expect(requests).toHaveLength(1);
  });

  it("answers with a stand-in Response that ky accepts, building Headers only when asked", async () => {
    reply = (socket) =>
      socket.write(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nx-b: 1\r\nx-b: 2\r\ncontent-length: 2\r\n\r\n{}",
      );
    const { response, text } = await send("/lite");
    expect(Object.prototype.toString.call(response)).toBe("[object Response]");
    expect([response.ok, response.status, response.statusText, text]).toEqual([true, 201, "Created", "{}"]);
    expect(answerHeader(response, "content-type")).toBe("application/json");
    expect(response.headers).toBeInstanceOf(Headers);
    expect(response.headers.get("x-b")).toBe("1, 2");
    expect(await response.clone().json()).toEqual({});
  });

  it("an abort while waiting for the head rejects with the signal's reason and frees nothing twice", async () => {
    reply = () => {}; // never answers
    const controller = new AbortController();
    const pending = send("/silent", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop waiting")), 20);
    await expect(pending).rejects.toThrow("stop waiting");
    reply = (socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    expect((await send("/later")).text).toBe("ok");
  });

  it("keeps at most 256 idle sockets per origin after a burst of calls", async () => {
    let waiting: net.Socket[] = [];
    // Answer only once all 300 requests are in, so that each holds a connection of its own.
    reply = (socket) => {
      waiting.push(socket);
      if (waiting.length < 300) return;
      for (const s of waiting) s.write("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx");
      waiting = [];
    };
    await Promise.all(Array.from({ length: 300 }, () => send("/burst")));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(open).toBeLessThanOrEqual(256);
    expect(open).toBeGreaterThan(200);
  });

  it("a refused connection fails with fetch's words", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await nodeTransport(`http://127.0.0.1:${port}/`, {
      method: "GET",
      headers: new Headers(),
      body: undefined,
      signal: new AbortController().signal,
      maxBytes: 100,
      tooLarge: () => new RangeError("too large"),
    }).catch((e: unknown) => e as TypeError);
    expect((error as TypeError).message).toBe("fetch failed");
    expect(((error as TypeError).cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });
});
