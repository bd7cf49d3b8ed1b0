/**
 * examples/cloudflare: the Worker, bundled into one file as wrangler would, run in workerd through
 * the Miniflare API.
 *
 * - Without a key it samples the embedded backend.
 * - With the secret TINKER_API_KEY it calls a Tinker server. The real service is out of reach
 *   here, so TINKER_BASE_URL points at the local backend over HTTP on loopback, configured to
 *   accept only that key: a sample coming back proves the key went upstream, and a second Worker
 *   whose key the server refuses shows what the page sees on failure.
 * - In every mode, on every route, the key appears in no response body or header. The page is
 *   also loaded in Chromium and used like a person would, with every response it receives checked.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { supervisedExample } from "../examples/qa-dataset.js";
import { datum, ModelInput, ServiceClient } from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const exampleDir = join(root, "examples/cloudflare");
const bundle = join(exampleDir, "dist/worker.js");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SECRET = "tml-secret-test";
// The date in wrangler.toml (wrangler 4.86's workerd supports it; so does this Miniflare).
const COMPATIBILITY_DATE = "2026-04-01";

type Bindings = Record<string, string>;
type TinkerServer = Awaited<ReturnType<typeof tinkerServer>>;

/**
 * Stands in for the Tinker service: the embedded backend over HTTP on loopback, accepting only
 * `apiKeys` and recording every X-API-Key it is sent.
 */
async function tinkerServer(apiKeys: string[]) {
  const local = createLocalTinker({ apiKeys });
  const keysSent = new Set<string>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string") headers.set(name, value);
    }
    keysSent.add(headers.get("x-api-key") ?? "");
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const response = await local.fetch(
      new Request(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        body: hasBody ? Buffer.concat(chunks) : undefined,
      }),
    );
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    keysSent,
    close: () =>
      new Promise<void>((resolve) => {
        local.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A Miniflare running the bundled Worker with `bindings` as its env; `logs` gets its console. */
function startWorker(bindings: Bindings, { listen = false, logs = [] as string[] } = {}): Miniflare {
  return new Miniflare({
    // Listed by hand: Miniflare refuses to trace the bundle's one computed `import()` (the SDK's
    // optional `node:child_process` for TINKER_CREDENTIAL_CMD), which never runs in a Worker.
    modules: [{ type: "ESModule", path: bundle }],
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    structuredWorkerdLogs: true,
    handleStructuredLogs: ({ message }: { message: string }) => {
      logs.push(message);
    },
    ...(listen ? { host: "127.0.0.1", port: 0 } : {}),
  });
}

/** Every response's status, headers and body, as text to search for the key. */
async function exchange(mf: Miniflare, path: string, init?: SimpleRequestInit) {
  const response = await mf.dispatchFetch(`http://worker.test${path}`, init);
  const body = await response.text();
  const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
  return { status: response.status, body, everything: `${headers}\n${body}` };
}

type SimpleRequestInit = { method: string; headers: Record<string, string>; body: string };

const post = (body: string): SimpleRequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body,
});

/** Every route the Worker has, plus wrong ones. */
async function visitAllRoutes(mf: Miniflare) {
  return {
    page: await exchange(mf, "/"),
    sample: await exchange(mf, "/sample", post(JSON.stringify({ prompt: "Q: What is 2 + 2?\nA:" }))),
    badJson: await exchange(mf, "/sample", post("{not json")),
    tooLong: await exchange(mf, "/sample", post(JSON.stringify({ prompt: "x".repeat(501) }))),
    getSample: await exchange(mf, "/sample"),
    missing: await exchange(mf, "/.dev.vars"),
  };
}

describe("examples/cloudflare", () => {
  let upstream: TinkerServer;

  beforeAll(async () => {
    // What wrangler does for `wrangler dev` / `deploy`: one ESM file, `.html` as a text module.
    await build({
      entryPoints: [join(exampleDir, "src/worker.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      target: "es2022",
      loader: { ".html": "text" },
      outfile: bundle,
      logLevel: "warning",
    });
    // Stands in for the Tinker service: accepts the Worker's key and nothing else.
    upstream = await tinkerServer([SECRET]);
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it("samples the embedded backend when no key is configured", async () => {
    const mf = startWorker({});
    try {
      const routes = await visitAllRoutes(mf);
      expect(routes.page.status).toBe(200);
      expect(routes.page.body).toContain('fetch("/sample"');
      expect(routes.sample.status).toBe(200);
      const result = JSON.parse(routes.sample.body);
      expect(result.model).toBe("tinker-ts/byte-lm-tiny");
      expect(typeof result.text).toBe("string");
      // The page is told that this text is random bytes, not an answer.
      expect(result.note).toMatch(/untrained tiny base model/);
      expect([routes.badJson.status, routes.tooLong.status]).toEqual([400, 400]);
      expect([routes.getSample.status, routes.missing.status]).toEqual([404, 404]);
    } finally {
      await mf.dispose();
    }
  });

  it("sends the key upstream and never back to the browser", async () => {
    const mf = startWorker({
      TINKER_API_KEY: SECRET,
      TINKER_BASE_URL: upstream.url,
      TINKER_MODEL: "tinker-ts/byte-lm-tiny",
    });
    try {
      const routes = await visitAllRoutes(mf);
      // The key went to Tinker (which accepts nothing else), and nothing else went there.
      expect(routes.sample.status).toBe(200);
      expect([...upstream.keysSent]).toEqual([SECRET]);
      expect(typeof JSON.parse(routes.sample.body).text).toBe("string");
      for (const [route, { everything }] of Object.entries(routes)) {
        expect(everything, route).not.toContain(SECRET);
      }
    } finally {
      await mf.dispose();
    }
  });

  it("answers a fixed error, without the key or upstream details, when Tinker refuses the key", async () => {
    const rejecting = await tinkerServer(["tml-some-other-key"]);
    const logs: string[] = [];
    const mf = startWorker(
      { TINKER_API_KEY: SECRET, TINKER_BASE_URL: rejecting.url, TINKER_MODEL: "tinker-ts/byte-lm-tiny" },
      { logs },
    );
    try {
      const routes = await visitAllRoutes(mf);
      expect(routes.sample.status).toBe(502);
      expect(JSON.parse(routes.sample.body)).toEqual({ error: "sampling failed" });
      expect([...rejecting.keysSent]).toEqual([SECRET]);
      // The details are for the Worker's logs (`wrangler tail`).
      expect(logs.join("\n")).toMatch(/sampling failed: AuthenticationError: Error code: 401/);
      for (const [route, { everything }] of Object.entries(routes)) {
        expect(everything, route).not.toContain(SECRET);
      }
    } finally {
      await mf.dispose();
      await rejecting.close();
    }
  });

  it("answers with a fine-tune's sampler weights (TINKER_MODEL=tinker://…), stopping at the newline", async () => {
    // The fine-tune flow of README.md, on the upstream server: train one Q/A pair, save sampler weights.
    const service = new ServiceClient({ apiKey: SECRET, baseURL: upstream.url, telemetry: false });
    let path: string;
    try {
      const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 8, seed: 0 });
      const { input, targets, weights } = supervisedExample("What is the capital of France?", "Paris");
      const example = datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
      for (let step = 0; step < 25; step++) {
        await Promise.all([
          training.forwardBackward([example], "cross_entropy"),
          training.optimStep({ learning_rate: 1e-2 }),
        ]);
      }
      path = (await training.saveWeightsForSampler("cloudflare")).path!;
    } finally {
      await service.close();
    }
    const mf = startWorker({ TINKER_API_KEY: SECRET, TINKER_BASE_URL: upstream.url, TINKER_MODEL: path });
    try {
      const answer = await exchange(
        mf,
        "/sample",
        post(JSON.stringify({ prompt: "Q: What is the capital of France?\nA:" })),
      );
      expect(answer.status, answer.body).toBe(200);
      // Trained to " Paris\n": the Worker stops at the newline and leaves it out.
      expect(JSON.parse(answer.body)).toEqual({ text: " Paris", model: path, stop_reason: "stop" });
    } finally {
      await mf.dispose();
    }
  });

  const hasChromium = existsSync(chromiumPath);
  it.skipIf(!hasChromium)(
    hasChromium
      ? "serves a page that samples through the Worker, in Chromium"
      : `serves a page that samples through the Worker: skipped, no Chromium at ${chromiumPath}`,
    async () => {
      const mf = startWorker(
        { TINKER_API_KEY: SECRET, TINKER_BASE_URL: upstream.url, TINKER_MODEL: "tinker-ts/byte-lm-tiny" },
        { listen: true },
      );
      const profile = mkdtempSync(join(tmpdir(), "tinker-worker-page-"));
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
      try {
        // Everything the browser receives: headers and body of each response.
        const seen: Promise<string>[] = [];
        context.on("response", (response) => {
          seen.push(
            Promise.all([response.allHeaders(), response.text()]).then(
              ([headers, body]) => `${JSON.stringify(headers)}\n${body}`,
            ),
          );
        });
        const page = await context.newPage();
        await page.goto((await mf.ready).href);
        await page.click("button[type=submit]");
        await page.waitForFunction(
          () => !["", "…"].includes(document.querySelector("#output")!.textContent!),
        );
        expect(await page.textContent("#model")).toBe("model: tinker-ts/byte-lm-tiny");
        expect(await page.textContent("#note")).toMatch(/untrained tiny base model/);
        expect(await page.textContent("#output")).not.toMatch(/^Error/);
        const received = await Promise.all(seen);
        expect(received.length).toBeGreaterThanOrEqual(2); // the page and the sample
        for (const text of received) expect(text).not.toContain(SECRET);
      } finally {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
        await mf.dispose();
      }
    },
  );
});
