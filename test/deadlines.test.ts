/**
 * Deadlines that hold (issue 17): every call, the start-up handshake included, honours `signal` and
 * `timeout`; a server never reached fails after a short, bounded retry with its URL and the cause;
 * once reached, connection errors get the protocol's long budget; `logLevel: "debug"` shows each
 * request with secrets masked; nothing random happens at construction.
 */
import { createServer } from "node:net";
import { describe, expect, test } from "vitest";
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  type Logger,
  type RetryInfo,
  ServiceClient,
  ValidationError,
} from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { closeAfterEach, localServicesClosedAfterEach, QA, qaDatum } from "./helpers.js";

const MODEL = "tinker-ts/byte-lm-tiny";
const KEY = "tml-deadline-secret-0123456789";

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return { lines, debug: push("debug"), info: push("info"), warn: push("warn"), error: push("error") };
}

const closers = closeAfterEach();

function unreachable(port: number, options: Record<string, unknown> = {}) {
  const service = new ServiceClient({
    apiKey: KEY,
    baseURL: `http://127.0.0.1:${port}`,
    telemetry: false,
    ...options,
  });
  closers.add(() => service.close());
  return service;
}

describe("a server never reached", () => {
  test("getServerCapabilities({ timeout }) rejects with a timeout naming the URL and the cause", async () => {
    const port = await closedPort();
    const service = unreachable(port);
    const error = await service.getServerCapabilities({ timeout: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APITimeoutError);
    expect((error as Error).message).toContain(`http://127.0.0.1:${port}/`);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  test("getServerCapabilities({ signal }) honours AbortSignal.timeout and a plain abort", async () => {
    const port = await closedPort();
    const service = unreachable(port);
    const timedOut = await service
      .getServerCapabilities({ signal: AbortSignal.timeout(300) })
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(APITimeoutError);
    expect((timedOut as Error).message).toContain(`127.0.0.1:${port}`);
    const controller = new AbortController();
    const pending = service.createLoraTrainingClient(MODEL, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(APIUserAbortError);
  });

  test("without a deadline, a refused connection fails after firstConnectRetryMs with the URL, no key", async () => {
    const port = await closedPort();
    const logger = capture();
    const service = unreachable(port, { firstConnectRetryMs: 1_000, logger, logLevel: "debug" });
    const error = await service.getServerCapabilities().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(error).not.toBeInstanceOf(APITimeoutError);
    const message = (error as Error).message;
    expect(message).toContain(`Could not connect to http://127.0.0.1:${port}/`);
    expect(message).toMatch(/ECONNREFUSED/);
    expect(message).toContain("firstConnectRetryMs");
    expect(message).not.toContain(KEY);
    // Each try is in the debug log, as a failed request line and the wait before the next.
    expect(logger.lines.some((l) => /POST \/api\/v1\/client\/config → failed \(.*ECONNREFUSED/.test(l))).toBe(
      true,
    );
    expect(logger.lines.some((l) => l.includes("cannot reach") && l.includes("try 2"))).toBe(true);
    expect(logger.lines.join("\n")).not.toContain(KEY);
  });

  test("a DNS failure names the host", async () => {
    const service = new ServiceClient({
      apiKey: KEY,
      baseURL: "http://no-such-host.invalid:8000",
      telemetry: false,
      firstConnectRetryMs: 0,
    });
    closers.add(() => service.close());
    const error = await service.getServerCapabilities().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect((error as Error).message).toContain("http://no-such-host.invalid:8000/");
    expect((error as Error).message).toMatch(/ENOTFOUND|EAI_AGAIN|getaddrinfo/);
  });
});

describe("configuration checked at construction", () => {
  test.each([
    [
      "localhost:8000",
      /must be an http:\/\/ or https:\/\/ URL, got "localhost:8000" \(did you mean "http:\/\/localhost:8000"\?\)/,
    ],
    ["127.0.0.1:8000", /got "127.0.0.1:8000" \(did you mean "http:\/\/127.0.0.1:8000"\?\)/],
    ["ftp://example.com", /must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/example.com"$/],
    ["", /must be an http:\/\/ or https:\/\/ URL, got ""/],
  ])("baseURL %j is refused at once", (baseURL, message) => {
    expect(() => new ServiceClient({ apiKey: KEY, baseURL })).toThrow(ValidationError);
    expect(() => new ServiceClient({ apiKey: KEY, baseURL })).toThrow(message);
  });

  test("a password in a bad URL is not echoed", () => {
    expect(() => new ServiceClient({ apiKey: KEY, baseURL: "user:hunter2@host:80" })).toThrow(
      /got "…@host:80"/,
    );
  });

  test("logLevel and logger are checked", () => {
    expect(() => new ServiceClient({ apiKey: KEY, logLevel: "verbose" as never })).toThrow(
      'logLevel: must be one of "off", "error", "warn", "info", "debug", got "verbose"',
    );
    expect(() => new ServiceClient({ apiKey: KEY, logger: { info() {} } as never })).toThrow(
      "logger: must have info, warn and error methods (and optionally debug); missing warn, error",
    );
  });
});

describe("once reached", () => {
  const { setup } = localServicesClosedAfterEach();

  test("connection errors after the handshake get the long budget: a restart does not end the loop", async () => {
    const local = createLocalTinker({ longPollMs: 2_000 });
    closers.add(() => local.close());
    let down = 0;
    const logger = capture();
    const retries: RetryInfo[] = [];
    const service = new ServiceClient({
      apiKey: KEY,
      baseURL: "http://local.tinker",
      telemetry: false,
      firstConnectRetryMs: 0,
      onRetry: (info) => retries.push(info),
      logger,
      logLevel: "debug",
      fetch: (request) => {
        if (down > 0) {
          down--;
          return Promise.reject(new TypeError("fetch failed"));
        }
        return local.fetch(request);
      },
    });
    closers.add(() => service.close());
    const training = await service.createLoraTrainingClient(MODEL);
    // The server "restarts": three refused connections, more than firstConnectRetryMs (0) allows.
    down = 3;
    const { question, answer } = QA[0]!;
    const output = await training.forwardBackward([qaDatum(question, answer)], "cross_entropy");
    expect(output.metrics["loss:sum"]).toBeGreaterThan(0);
    expect(logger.lines.filter((l) => l.includes("failed (fetch failed) in")).length).toBe(3);
    expect(logger.lines.some((l) => /\[retry 3\]/.test(l))).toBe(true);
    // Each retry is an event (onRetry) and an info line, so retrying against nothing never looks slow.
    expect(retries.map((r) => [r.reason, r.attempt])).toEqual([
      ["connection", 1],
      ["connection", 2],
      ["connection", 3],
    ]);
    expect(
      logger.lines.filter((l) =>
        /^info retry \d of POST http:\/\/local\.tinker\/api\/v1\/forward_backward in \d+ ms: connection/.test(
          l,
        ),
      ),
    ).toHaveLength(3);
  });

  test("logLevel debug: one line per request with method, path, status and time; the key never shows", async () => {
    const logger = capture();
    const t = setup({ client: { logger, logLevel: "debug", apiKey: KEY } });
    await t.service.getServerCapabilities();
    const debug = logger.lines.filter((l) => l.startsWith("debug "));
    expect(debug[0]).toMatch(
      /^debug connecting to http:\/\/local\.tinker\/ \(credential tml-… \(API key\), sdk_version \S+\)$/,
    );
    expect(debug).toContainEqual(
      expect.stringMatching(/^debug POST \/api\/v1\/client\/config → 200 in \d+ ms$/),
    );
    expect(debug).toContainEqual(
      expect.stringMatching(/^debug GET \/api\/v1\/get_server_capabilities → 200 in \d+ ms$/),
    );
    expect(logger.lines.join("\n")).not.toContain(KEY);
  });

  test("logLevel debug: a poll repeated after a failed answer says why", async () => {
    const local = createLocalTinker({ longPollMs: 2_000 });
    closers.add(() => local.close());
    const logger = capture();
    let failPolls = 1;
    const service = new ServiceClient({
      apiKey: KEY,
      baseURL: "http://local.tinker",
      telemetry: false,
      maxRetries: 0,
      logger,
      logLevel: "debug",
      fetch: (request) => {
        if (
          request.url.endsWith("/retrieve_future") &&
          failPolls > 0 &&
          logger.lines.some((l) => l.includes("forward_backward"))
        ) {
          failPolls--;
          return Promise.resolve(new Response("busy", { status: 503 }));
        }
        return local.fetch(request);
      },
    });
    closers.add(() => service.close());
    const training = await service.createLoraTrainingClient(MODEL);
    const { question, answer } = QA[0]!;
    await training.forwardBackward([qaDatum(question, answer)], "cross_entropy");
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/^debug poll ForwardBackward \S+: again in \d+ ms: status 503$/),
    );
  });

  test("the default level logs no debug line", async () => {
    const logger = capture();
    const t = setup({ client: { logger } });
    await t.service.getServerCapabilities();
    expect(logger.lines.filter((l) => l.startsWith("debug "))).toEqual([]);
  });
});

describe("nothing random, timed or abortable at construction", () => {
  test("a ServiceClient with telemetry on draws no random number, makes no timer and no AbortController", () => {
    // What workerd forbids in a Worker's global scope, where Workers build their clients.
    const drawn: string[] = [];
    const saved = {
      randomUUID: globalThis.crypto.randomUUID,
      getRandomValues: globalThis.crypto.getRandomValues,
      AbortController: globalThis.AbortController,
      setTimeout: globalThis.setTimeout,
      setInterval: globalThis.setInterval,
    };
    const g = globalThis as Record<string, unknown>;
    const crypto = globalThis.crypto as unknown as Record<string, unknown>;
    crypto.randomUUID = () => drawn.push("randomUUID");
    crypto.getRandomValues = () => drawn.push("getRandomValues");
    g.setTimeout = () => drawn.push("setTimeout");
    g.setInterval = () => drawn.push("setInterval");
    g.AbortController = class extends saved.AbortController {
      constructor() {
        super();
        drawn.push("AbortController");
      }
    };
    try {
      const service = new ServiceClient({ apiKey: KEY, baseURL: "http://local.tinker", telemetry: true });
      service.createRestClient();
    } finally {
      crypto.randomUUID = saved.randomUUID;
      crypto.getRandomValues = saved.getRandomValues;
      g.AbortController = saved.AbortController;
      g.setTimeout = saved.setTimeout;
      g.setInterval = saved.setInterval;
    }
    expect(drawn).toEqual([]);
  });
});
