/**
 * The Node transport over TLS (src/node/http1.ts on `node:tls`): Node's defaults decide trust, as
 * they do for undici — a self-signed certificate is refused, `NODE_TLS_REJECT_UNAUTHORIZED=0` (read
 * at each connection) lets it through — the server name goes out as SNI for a host name and not for
 * an IP address, and a kept-alive TLS connection serves the next request.
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { directBody } from "../src/core/transport.js";
import { nodeTransport } from "../src/node/transport.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url));

let server: https.Server;
let port: number;
const seen: { servername: string | false | null; socket: Socket }[] = [];

beforeAll(async () => {
  server = https.createServer({ cert: fixture("cert.pem"), key: fixture("key.pem") }, (req, res) => {
    seen.push({ servername: (req.socket as TLSSocket).servername, socket: req.socket });
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"tls":true}');
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});
afterAll(() => server.close());

const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
afterEach(() => {
  if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
  seen.length = 0;
});

async function get(url: string) {
  const response = await nodeTransport(url, {
    method: "GET",
    headers: new Headers(),
    body: undefined,
    signal: new AbortController().signal,
    maxBytes: 1 << 20,
    tooLarge: () => new RangeError("too large"),
  });
  return { status: response.status, text: new TextDecoder().decode(await directBody(response)!) };
}

describe("the Node transport over TLS", () => {
  it("refuses a certificate nothing trusts, with fetch's words and the TLS reason as cause", async () => {
    delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    const error = await get(`https://localhost:${port}/`).catch((e: unknown) => e as TypeError);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toBe("fetch failed");
    expect(((error as TypeError).cause as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED/);
    expect(seen).toHaveLength(0);
  });

  it("with NODE_TLS_REJECT_UNAUTHORIZED=0: answered, SNI for a host name, none for an IP, connection kept", async () => {
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
    const quiet = process.emitWarning;
    process.emitWarning = () => {}; // Node warns once that verification is off: expected here
    try {
      expect(await get(`https://localhost:${port}/a`)).toEqual({ status: 200, text: '{"tls":true}' });
      expect(await get(`https://localhost:${port}/b`)).toEqual({ status: 200, text: '{"tls":true}' });
      expect(await get(`https://127.0.0.1:${port}/c`)).toEqual({ status: 200, text: '{"tls":true}' });
    } finally {
      process.emitWarning = quiet;
    }
    expect(seen.map((s) => s.servername)).toEqual(["localhost", "localhost", false]);
    expect(seen[1]!.socket).toBe(seen[0]!.socket); // the same origin reuses its TLS connection
    expect(seen[2]!.socket).not.toBe(seen[0]!.socket); // another origin does not
  });
});
