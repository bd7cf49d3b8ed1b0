/**
 * The same behaviour on every transport (src/core/transport.ts): Node's keep-alive node:http
 * transport, which the vitest setup registers as the package's `node` condition does, and the
 * runtime's fetch (TINKER_TS_TRANSPORT=fetch, or a proxy variable). Redirects, the response size
 * limit, content decoding and aborts against a real HTTP server; the runtime matrix
 * (scripts/runtime-matrix.mjs) covers the other runtimes' fetch.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APIError, APIUserAbortError } from "../src/core/errors.js";
import { HttpClient } from "../src/core/http.js";

interface Seen {
  method: string;
  url: string;
  apiKey: string | undefined;
  body: string;
  socket: number;
}

let server: http.Server;
let other: http.Server;
let base: string;
let otherBase: string;
const seen: Seen[] = [];
const sockets = new WeakMap<object, number>();
let socketCount = 0;

function listen(s: http.Server): Promise<string> {
  s.listen(0, "127.0.0.1");
  return once(s, "listening").then(() => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
}

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    if (!sockets.has(req.socket)) sockets.set(req.socket, ++socketCount);
    seen.push({
      method: req.method!,
      url: req.url!,
      apiKey: req.headers["x-api-key"] as string | undefined,
      body: Buffer.concat(chunks).toString(),
      socket: sockets.get(req.socket)!,
    });
    const path = req.url!.split("?")[0];
    if (path === "/echo") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString() }));
    } else if (path === "/redirect-307") {
      res.writeHead(307, { location: "/echo" });
      res.end();
    } else if (path === "/redirect-away") {
      res.writeHead(302, { location: `${otherBase}/echo` });
      res.end();
    } else if (path === "/gzip") {
      const body = gzipSync(JSON.stringify({ ok: "gzip" }));
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      res.end(body);
    } else if (path === "/big-chunked") {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("x".repeat(600));
      setTimeout(() => res.end("x".repeat(600)), 5);
    } else if (path === "/big-declared") {
      res.writeHead(200, { "content-type": "application/json", "content-length": "5000" });
      res.end("x".repeat(5000));
    } else if (path === "/stall") {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
}

beforeAll(async () => {
  server = http.createServer(handler);
  other = http.createServer(handler);
  base = await listen(server);
  otherBase = await listen(other);
});

afterAll(async () => {
  server.closeAllConnections();
  other.closeAllConnections();
  await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => other.close(r))]);
});

function client(maxResponseBytes = 1024): HttpClient {
  return new HttpClient({
    baseURL: base,
    defaultHeaders: {},
    credential: () => "tml-transport-test",
    maxRetries: 0,
    timeoutMs: 5_000,
    maxResponseBytes,
  });
}

for (const transport of ["node", "fetch"] as const) {
  describe(`transport: ${transport}`, () => {
    const make = (maxResponseBytes?: number) => {
      const previous = process.env.TINKER_TS_TRANSPORT;
      if (transport === "fetch") process.env.TINKER_TS_TRANSPORT = "fetch";
      else delete process.env.TINKER_TS_TRANSPORT;
      try {
        const http = client(maxResponseBytes);
        expect(http.transport).toBe(transport);
        return http;
      } finally {
        if (previous === undefined) delete process.env.TINKER_TS_TRANSPORT;
        else process.env.TINKER_TS_TRANSPORT = previous;
      }
    };

    it("sends the body and reads a JSON answer (Node's transport: over one kept-alive connection)", async () => {
      const http = make();
      seen.length = 0;
      const first = await http.request({ method: "POST", path: "echo", json: { a: 1 } });
      const second = await http.request({ method: "POST", path: "echo", json: { b: 2 } });
      expect(first.json()).toEqual({ method: "POST", body: '{"a":1}' });
      expect(second.json()).toEqual({ method: "POST", body: '{"b":2}' });
      expect(seen.map((s) => s.apiKey)).toEqual(["tml-transport-test", "tml-transport-test"]);
      if (transport === "node") expect(seen[1]!.socket).toBe(seen[0]!.socket);
    });

    it("follows a 307 with the body resent; drops the credential on a cross-origin hop", async () => {
      const http = make();
      seen.length = 0;
      const moved = await http.request({ method: "POST", path: "redirect-307", json: { c: 3 } });
      expect(moved.json()).toEqual({ method: "POST", body: '{"c":3}' });
      seen.length = 0;
      const away = await http.request({ method: "POST", path: "redirect-away", json: { d: 4 } });
      expect(away.json()).toEqual({ method: "GET", body: "" });
      expect(seen.map((s) => s.apiKey)).toEqual(["tml-transport-test", undefined]);
    });

    it("returns an unfollowed redirect when asked to", async () => {
      const response = await make().request({ method: "GET", path: "redirect-away", redirect: "manual" });
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe(`${otherBase}/echo`);
    });

    it("decodes a gzip answer", async () => {
      expect((await make().request({ method: "GET", path: "gzip" })).json()).toEqual({ ok: "gzip" });
    });

    it("refuses a body over the limit, declared or counted as it arrives", async () => {
      await expect(make(1024).request({ method: "GET", path: "big-declared" })).rejects.toThrow(
        /exceeds the limit of 1024 bytes/,
      );
      const counted = make(1024).request({ method: "GET", path: "big-chunked" });
      await expect(counted).rejects.toThrow(/exceeds the limit of 1024 bytes/);
      await expect(counted).rejects.toBeInstanceOf(APIError);
      expect((await make(2048).request({ method: "GET", path: "big-chunked" })).body.length).toBe(1200);
    });

    it("aborts a body that stalls when the caller's signal fires", async () => {
      const controller = new AbortController();
      const pending = make().request({ method: "GET", path: "stall", signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await expect(pending).rejects.toBeInstanceOf(APIUserAbortError);
    });
  });
}

describe("transport choice", () => {
  it("a proxy variable keeps the runtime's fetch (the Node transport speaks to the server directly)", () => {
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = "http://proxy.invalid:3128";
    try {
      expect(client().transport).toBe("fetch");
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
    }
    if (process.env.TINKER_TS_TRANSPORT !== "fetch") expect(client().transport).toBe("node");
  });

  it("a caller's fetch is used as given", () => {
    const http = new HttpClient({
      baseURL: base,
      defaultHeaders: {},
      credential: () => "k",
      maxRetries: 0,
      timeoutMs: 1_000,
      fetch: (request) => globalThis.fetch(request),
    });
    expect(http.transport).toBe("custom");
  });
});
