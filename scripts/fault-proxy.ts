/**
 * A fault proxy (issue 14): a node:http server in front of a Tinker server (`tinker-ts serve`) that
 * disturbs a seeded share of the `/api/v1/` requests the way real paths do — proxies, captive
 * portals, load balancers, flaky links. Every fault is logged with its kind, route and what the
 * backend saw (forwarded or not), so a run can say what it survived.
 *
 *   npx tsx scripts/fault-proxy.ts --target http://127.0.0.1:8000 [--port 8100] [--rate 0.15] [--seed 7]
 *
 * Kinds:
 * - `html_500`: a 5xx HTML error page (not forwarded); every other one echoes the request headers,
 *   as debug pages do, to test that no credential reaches an error message.
 * - `html_200`: a captive-portal page with status 200 (not forwarded); some echo the headers too.
 * - `close_after_headers`: forwarded; the real status and headers, then the connection is closed.
 * - `stall_body`: forwarded; the real headers, then silence until the client gives up (or
 *   `stallMs`).
 * - `duplicate`: delivered twice to the backend; the client gets the first answer.
 * - `late`: forwarded; the answer is held `lateMs` before it is sent.
 * - `retry_after`: a 503 whose Retry-After is an HTTP date a moment ahead, or absurd (negative,
 *   1e9, garbage, a date in the past) (not forwarded).
 * - `corrupt_gzip`: forwarded; the real status with `Content-Encoding: gzip` and bytes that are not gzip.
 * - `stale`: an earlier answer of the same route, replayed (not forwarded). On `retrieve_future`
 *   only answers that belong to another request can be told apart by any client (a result carries no
 *   request id), so the replay is chosen among those: results of another request type, and
 *   `try_again`s about another request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mulberry32 } from "../src/internal/random.js";

export const FAULT_KINDS = [
  "html_500",
  "html_200",
  "close_after_headers",
  "stall_body",
  "duplicate",
  "late",
  "retry_after",
  "corrupt_gzip",
  "stale",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultProxyOptions {
  /** The server behind the proxy, e.g. `http://127.0.0.1:8000`. */
  target: string;
  port?: number;
  host?: string;
  /** Share of `/api/v1/` requests to disturb (default 0.15). */
  rate?: number;
  seed?: number;
  /** The kinds to draw from (default all). */
  kinds?: readonly FaultKind[];
  /** Longest stall before the proxy closes the connection itself (default 120 s). */
  stallMs?: number;
  /** Delay of a `late` answer (default 1 s). */
  lateMs?: number;
  /**
   * Decides instead of the seeded draw (tests): the kind for this request, or undefined to pass
   * it through. A kind that cannot apply (a `stale` with nothing to replay) passes it through.
   */
  choose?: (request: { route: string; index: number }) => FaultKind | undefined;
  /** Sees every request's route and body (e.g. to keep the telemetry batches a client sent). */
  tap?: (route: string, body: Buffer) => void;
}

export interface InjectedFault {
  kind: FaultKind;
  route: string;
  /** Whether the backend saw the request (and how often). */
  forwarded: number;
  detail?: string;
}

export interface FaultProxy {
  url: string;
  /** Every fault injected so far, in order. */
  readonly log: InjectedFault[];
  /** Requests seen, faulted or not. */
  readonly requests: number;
  /** Faults per kind. */
  counts(): Record<FaultKind, number>;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  headers: [string, string][];
  body: Buffer;
  /** The X-Tinker-Request-Type of the poll it answered (retrieve_future). */
  requestType?: string;
  /** The request id a poll asked about (retrieve_future). */
  requestId?: string;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "content-encoding",
  "host",
  "upgrade",
]);

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = options.target.replace(/\/+$/, "");
  const rate = options.rate ?? 0.15;
  const kinds = options.kinds ?? FAULT_KINDS;
  const random = mulberry32(options.seed ?? 7);
  const stallMs = options.stallMs ?? 120_000;
  const lateMs = options.lateMs ?? 1_000;
  const log: InjectedFault[] = [];
  /** Earlier 2xx answers per route (the last few), for stale replays. */
  const history = new Map<string, Answer[]>();
  const open = new Set<ServerResponse>();
  let requests = 0;
  let echoes = 0;

  const forward = async (req: IncomingMessage, body: Buffer): Promise<Answer> => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const method = req.method ?? "GET";
    const response = await fetch(`${target}${req.url ?? "/"}`, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? undefined : new Uint8Array(body),
      redirect: "manual",
    });
    const answer: Answer = {
      status: response.status,
      headers: [...response.headers].filter(([name]) => !HOP_BY_HOP.has(name)),
      body: Buffer.from(await response.arrayBuffer()),
    };
    const requestType = req.headers["x-tinker-request-type"];
    if (typeof requestType === "string") answer.requestType = requestType;
    const requestId = requestIdOf(body);
    if (requestId !== undefined) answer.requestId = requestId;
    return answer;
  };

  const remember = (route: string, answer: Answer) => {
    if (answer.status < 200 || answer.status >= 300) return;
    const list = history.get(route) ?? [];
    list.push(answer);
    if (list.length > 8) list.shift();
    history.set(route, list);
  };

  /** An earlier answer of `route` that a client can tell is not the answer to this request. */
  const staleFor = (route: string, req: IncomingMessage, body: Buffer): Answer | undefined => {
    const list = history.get(route);
    if (!list?.length) return undefined;
    if (!route.endsWith("/retrieve_future")) return list[list.length - 1];
    const requestType = req.headers["x-tinker-request-type"];
    const requestId = requestIdOf(body);
    for (let i = list.length - 1; i >= 0; i--) {
      const answer = list[i]!;
      if (answer.requestId === requestId) continue;
      if (answer.requestType !== requestType || isTryAgain(answer)) return answer;
    }
    return undefined;
  };

  const send = (res: ServerResponse, answer: Answer) => {
    res.statusCode = answer.status;
    for (const [name, value] of answer.headers) res.setHeader(name, value);
    res.setHeader("content-length", answer.body.byteLength);
    res.end(answer.body);
  };

  const drawKind = (route: string, index: number): FaultKind | undefined => {
    if (options.choose) return options.choose({ route, index });
    if (random() >= rate) return undefined;
    return kinds[Math.floor(random() * kinds.length)];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const route = new URL(req.url ?? "/", "http://proxy").pathname;
    const index = requests++;
    options.tap?.(route, body);
    const kind = route.startsWith("/api/v1/") ? drawKind(route, index) : undefined;
    const note = (fault: Omit<InjectedFault, "route">) => log.push({ ...fault, route });

    switch (kind) {
      case undefined:
        break;
      case "html_500":
      case "html_200": {
        const status = kind === "html_500" ? [500, 502, 503][index % 3]! : 200;
        // Every other page echoes what the client sent, credentials included, as debug pages do.
        const echo = echoes++ % 2 === 0;
        note({ kind, forwarded: 0, detail: `${status}${echo ? " echoing headers" : ""}` });
        res.statusCode = status;
        res.setHeader("content-type", "text/html; charset=utf-8");
        res.end(htmlPage(status, echo ? req.headers : undefined));
        return;
      }
      case "retry_after": {
        const values = [
          new Date(Date.now() + 2_000).toUTCString(),
          "-5",
          "1e9",
          "soon, maybe",
          "Thu, 01 Jan 1970 00:00:00 GMT",
        ];
        const value = values[Math.floor(random() * values.length)]!;
        note({ kind, forwarded: 0, detail: `Retry-After: ${value}` });
        res.statusCode = 503;
        res.setHeader("content-type", "application/json");
        res.setHeader("retry-after", value);
        res.end(JSON.stringify({ detail: "busy" }));
        return;
      }
      case "stale": {
        const replay = staleFor(route, req, body);
        if (!replay) break;
        note({
          kind,
          forwarded: 0,
          detail: replay.requestType ? `answer of a ${replay.requestType} poll` : undefined,
        });
        send(res, replay);
        return;
      }
      case "duplicate": {
        const first = await forward(req, body);
        const second = await forward(req, body).catch(() => undefined);
        note({ kind, forwarded: 2, detail: `statuses ${first.status}, ${second?.status ?? "failed"}` });
        remember(route, first);
        send(res, first);
        return;
      }
      case "late": {
        const answer = await forward(req, body);
        note({ kind, forwarded: 1, detail: `${lateMs} ms` });
        remember(route, answer);
        await new Promise((resolve) => setTimeout(resolve, lateMs));
        if (!res.destroyed) send(res, answer);
        return;
      }
      case "close_after_headers":
      case "stall_body": {
        const answer = await forward(req, body);
        note({ kind, forwarded: 1 });
        remember(route, answer);
        res.statusCode = answer.status;
        for (const [name, value] of answer.headers) res.setHeader(name, value);
        res.setHeader("content-length", answer.body.byteLength);
        res.flushHeaders();
        if (kind === "close_after_headers") {
          // Let the headers leave first, so the client sees an answer that breaks off.
          setTimeout(() => res.destroy(), 20);
          return;
        }
        const timer = setTimeout(() => res.destroy(), stallMs);
        res.on("close", () => clearTimeout(timer));
        return;
      }
      case "corrupt_gzip": {
        const answer = await forward(req, body);
        note({ kind, forwarded: 1 });
        remember(route, answer);
        const garbage = Buffer.from([
          0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37, 0x42,
        ]);
        send(res, { ...answer, headers: [...answer.headers, ["content-encoding", "gzip"]], body: garbage });
        return;
      }
    }
    const answer = await forward(req, body);
    remember(route, answer);
    send(res, answer);
  };

  const server: Server = createServer((req, res) => {
    open.add(res);
    res.on("close", () => open.delete(res));
    handle(req, res).catch((error) => {
      if (res.headersSent) return void res.destroy();
      res.statusCode = 502;
      res.setHeader("content-type", "text/plain");
      res.end(`fault proxy: ${error instanceof Error ? error.message : String(error)}`);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    log,
    get requests() {
      return requests;
    },
    counts() {
      const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
      for (const fault of log) counts[fault.kind]++;
      return counts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function requestIdOf(body: Buffer): string | undefined {
  if (body.byteLength === 0 || body[0] !== 0x7b) return undefined;
  try {
    const id = (JSON.parse(body.toString("utf8")) as { request_id?: unknown }).request_id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

function isTryAgain(answer: Answer): boolean {
  return answer.body.includes('"try_again"');
}

function htmlPage(status: number, echoed: IncomingMessage["headers"] | undefined): string {
  const title = status === 200 ? "Sign in to continue" : `${status} Bad Gateway`;
  const headers = echoed
    ? `<h2>Request headers</h2><pre>${Object.entries(echoed)
        .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : value}`)
        .join("\n")}</pre>`
    : "";
  return `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><h1>${title}</h1><p>The upstream did not answer.</p>${headers}</body></html>\n`;
}

/** `--name value` options of the command line. */
function argument(args: string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
}

const isMain = typeof process !== "undefined" && process.argv[1]?.endsWith("fault-proxy.ts");
if (isMain) {
  const args = process.argv.slice(2);
  const target = argument(args, "target");
  if (!target) {
    console.error("usage: tsx scripts/fault-proxy.ts --target <url> [--port 8100] [--rate 0.15] [--seed 7]");
    process.exit(2);
  }
  const proxy = await startFaultProxy({
    target,
    port: Number(argument(args, "port") ?? 8100),
    rate: Number(argument(args, "rate") ?? 0.15),
    seed: Number(argument(args, "seed") ?? 7),
  });
  console.log(`fault proxy on ${proxy.url} → ${target}`);
  process.on("SIGINT", () => {
    console.log(JSON.stringify(proxy.counts()));
    void proxy.close().then(() => process.exit(0));
  });
}
