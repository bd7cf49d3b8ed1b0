/**
 * examples/browser: bundle the page script with esbuild, serve the folder on loopback, open it in
 * headless Chromium and check that the page fine-tunes the embedded backend, plots a falling loss
 * step by step and shows the sampled answers. Leaves a screenshot in test-results/.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const exampleDir = join(root, "examples/browser");
const screenshot = join(root, "test-results/browser-demo.png");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// TOOLCHAIN.md §2: the flags verified with Debian's Chromium (plus a fresh --user-data-dir).
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

/** Serves `dir` read-only on 127.0.0.1, like `npx esbuild --servedir` would. */
function serveStatic(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(dir, path.endsWith("/") ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": contentTypes[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server }),
    ),
  );
}

const hasChromium = existsSync(chromiumPath);

describe.skipIf(!hasChromium)(
  hasChromium
    ? "examples/browser"
    : `examples/browser: skipped, no Chromium at ${chromiumPath} (set CHROMIUM_PATH)`,
  () => {
    let server: Server;
    let url: string;
    let context: BrowserContext;
    let profile: string;

    beforeAll(async () => {
      // The same bundle as README.md's esbuild command: one ESM file with the SDK and the backend.
      await build({
        entryPoints: [join(exampleDir, "main.ts")],
        bundle: true,
        format: "esm",
        target: "es2022",
        outdir: join(exampleDir, "dist"),
        logLevel: "warning",
      });
      ({ server, url } = await serveStatic(exampleDir));
      profile = mkdtempSync(join(tmpdir(), "tinker-browser-"));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath,
        args: chromiumArgs,
        viewport: { width: 900, height: 820 },
      });
    });

    afterAll(async () => {
      await context?.close();
      await new Promise((resolve) => server?.close(resolve));
      if (profile) rmSync(profile, { recursive: true, force: true });
    });

    it("fine-tunes in the page, plots a falling loss each step and shows the answers", async () => {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text());
      });
      await page.goto(url);

      // The curve is redrawn during training, not only at the end.
      await page.waitForFunction(() => {
        const n = document.querySelector<SVGElement>("#chart")!.dataset.losses!.split(",").length;
        return n >= 3 && n < 30;
      });
      await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', {
        timeout: 45_000,
      });
      mkdirSync(join(root, "test-results"), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
      console.log(`browser demo screenshot: ${screenshot}`);

      expect(errors).toEqual([]);
      expect(await page.getAttribute("#status", "data-state")).toBe("done");

      const losses = (await page.getAttribute("#chart", "data-losses"))!.split(",").map(Number);
      expect(losses).toHaveLength(30);
      expect(losses.at(-1)!).toBeLessThan(losses[0]! / 10);
      expect(Math.max(...losses.slice(10))).toBeLessThan(losses[0]!);
      // One polyline vertex per plotted value.
      const points = await page.getAttribute("#chart polyline", "points");
      expect(points!.trim().split(/\s+/)).toHaveLength(30);

      // The page says what the untrained base model answered before fine-tuning.
      expect(await page.textContent("#before")).toMatch(/^Before training, the base model is untrained/);
      const answers = await page.locator("#answers li").allTextContents();
      expect(answers).toHaveLength(6);
      expect(answers[0]).toContain("What is the capital of France? → Paris");
      expect(await page.locator("#answers li.ok").count()).toBeGreaterThanOrEqual(4);

      // The chat box streams the fine-tune's reply, piece by piece, through tinker-ts/openai.
      await page.fill("#chat-input", "What is the capital of France?");
      await page.click("#chat-send");
      await page.waitForSelector('#chat-output[data-state="done"], #chat-output[data-state="error"]');
      expect(await page.textContent("#chat-output")).toBe(" Paris");
      expect(Number(await page.getAttribute("#chat-output", "data-pieces"))).toBeGreaterThan(1);
      expect(errors).toEqual([]);
    });
  },
);
