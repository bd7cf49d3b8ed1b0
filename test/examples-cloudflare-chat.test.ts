/**
 * examples/cloudflare, its streamed chat (`POST /chat`): the Worker, bundled as wrangler would and
 * run in workerd through Miniflare, asks an OpenAI-compatible route for a streamed reply (the
 * embedded backend without a key; with TINKER_API_KEY, `tinker-ts serve` standing in for Tinker,
 * accepting only that key) and passes the chunks on as server-sent events. The page is used in
 * Chromium on a slow network, so that a partly streamed reply can be seen (and photographed when
 * SCREENSHOT_DIR is set); the key appears in nothing the browser receives.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { ServiceClient } from "../src/index.js";
import { type ChatCompletionChunk, CompletionStream, chunkText } from "../src/openai/index.js";
import { trainChatCheckpoint } from "./openai.helpers.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const exampleDir = join(root, "examples/cloudflare");
const bundle = join(exampleDir, "dist/worker-chat.js");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SECRET = "tml-secret-chat-test";

let upstream: RunningServer;
let checkpoint: string;

function startWorker(bindings: Record<string, string>, listen = false): Miniflare {
  return new Miniflare({
    modules: [{ type: "ESModule", path: bundle }],
    compatibilityDate: "2026-04-01",
    bindings,
    structuredWorkerdLogs: true,
    handleStructuredLogs: () => {},
    ...(listen ? { host: "127.0.0.1", port: 0 } : {}),
  });
}

async function chat(mf: Miniflare, content: string) {
  const response = await mf.dispatchFetch("http://worker.test/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content }] }),
  });
  const raw = await response.text();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(raw));
      controller.close();
    },
  });
  const chunks: ChatCompletionChunk[] = [];
  if (response.ok)
    for await (const chunk of CompletionStream.fromSSE<ChatCompletionChunk>(body)) chunks.push(chunk);
  const headers = [...response.headers].map(([n, v]) => `${n}: ${v}`).join("\n");
  return { status: response.status, type: response.headers.get("content-type"), raw, headers, chunks };
}

beforeAll(async () => {
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
  upstream = await serve({ port: 0, host: "127.0.0.1", apiKeys: [SECRET], longPollMs: 1_000 });
  const service = new ServiceClient({ apiKey: SECRET, baseURL: upstream.url, telemetry: false });
  try {
    checkpoint = await trainChatCheckpoint(service, "cloudflare-chat");
  } finally {
    await service.close();
  }
}, 60_000);

afterAll(async () => {
  await upstream?.close();
  rmSync(bundle, { force: true });
  rmSync(`${bundle}.map`, { force: true });
});

describe("examples/cloudflare: streamed chat", () => {
  it("streams a reply from the embedded backend when no key is set", async () => {
    const mf = startWorker({});
    try {
      const reply = await chat(mf, "Say hi");
      expect(reply.status).toBe(200);
      expect(reply.type).toMatch(/^text\/event-stream/);
      expect(reply.chunks[0]!.choices[0]!.delta.role).toBe("assistant");
      expect(reply.chunks.filter((c) => chunkText(c) !== "").length).toBeGreaterThan(1);
      expect(reply.raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
      const bad = await mf.dispatchFetch("http://worker.test/chat", { method: "POST", body: "{}" });
      expect(bad.status).toBe(400);
    } finally {
      await mf.dispose();
    }
  });

  it("streams a fine-tune's reply through Tinker's route with the key, which never comes back", async () => {
    const mf = startWorker({
      TINKER_API_KEY: SECRET,
      TINKER_BASE_URL: upstream.url,
      TINKER_MODEL: checkpoint,
    });
    try {
      const reply = await chat(mf, "Say hi");
      expect(reply.status, reply.raw).toBe(200);
      expect(reply.chunks.every((c) => c.model === checkpoint)).toBe(true);
      expect(reply.chunks.filter((c) => chunkText(c) !== "").length).toBeGreaterThan(1);
      expect(`${reply.headers}\n${reply.raw}`).not.toContain(SECRET);
    } finally {
      await mf.dispose();
    }
    // Tinker refusing the key: a fixed error for the page, nothing of upstream's.
    const refused = startWorker({ TINKER_API_KEY: "tml-refused-key", TINKER_BASE_URL: upstream.url });
    try {
      const reply = await chat(refused, "Say hi");
      expect(reply.status).toBe(502);
      expect(JSON.parse(reply.raw)).toEqual({ error: "chat failed" });
    } finally {
      await refused.dispose();
    }
  });

  const hasChromium = existsSync(chromiumPath);
  it.skipIf(!hasChromium)("shows the reply as it streams, in Chromium", async () => {
    const mf = startWorker(
      { TINKER_API_KEY: SECRET, TINKER_BASE_URL: upstream.url, TINKER_MODEL: checkpoint },
      true,
    );
    const profile = mkdtempSync(join(tmpdir(), "tinker-worker-chat-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    try {
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
      // A slow network: the chunks arrive a few at a time, as from a far-away model.
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: 1500,
        uploadThroughput: -1,
      });
      await page.click("#chat-send");
      // Partly streamed: some pieces shown, the reply not finished.
      await page.waitForFunction(() =>
        /streaming… ([3-9]|\d\d+) pieces/.test(document.querySelector("#chat-status")!.textContent!),
      );
      const partial = await page.textContent("#chat-log .assistant");
      expect(partial!.length).toBeGreaterThan(0);
      if (process.env.SCREENSHOT_DIR) {
        await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, "cloudflare-chat-streaming.png") });
      }
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: -1,
      });
      await page.waitForFunction(() =>
        document.querySelector("#chat-status")!.textContent!.startsWith("done"),
      );
      const whole = await page.textContent("#chat-log .assistant");
      expect(whole!.startsWith(partial!)).toBe(true);
      if (process.env.SCREENSHOT_DIR) {
        await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, "cloudflare-chat-done.png") });
      }
      const received = await Promise.all(seen);
      expect(received.some((text) => text.includes("chat.completion.chunk"))).toBe(true);
      for (const text of received) expect(text).not.toContain(SECRET);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      await mf.dispose();
    }
  });
});
