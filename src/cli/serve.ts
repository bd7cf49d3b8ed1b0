/**
 * `tinker-ts serve`: the local backend over HTTP, on loopback unless told otherwise. Uses node:http,
 * which Node, Bun and Deno all provide; the backend itself is a plain fetch handler.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createLocalTinker, type LocalTinkerOptions } from "../local/index.js";

export interface ServeOptions extends LocalTinkerOptions {
  port: number;
  host: string;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

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
    handleNodeRequest(local.fetch, req, res).catch((error) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  // Keep-alive sockets of finished clients must not hold a shutdown open.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
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
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const method = req.method ?? "GET";
  const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method,
    headers,
    body: method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks),
  });
  const response = await handler(request);
  res.statusCode = response.status;
  response.headers.forEach((value, name) => {
    res.setHeader(name, value);
  });
  res.end(Buffer.from(await response.arrayBuffer()));
}
