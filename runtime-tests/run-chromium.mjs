// Headless Debian Chromium through playwright-core. A page on a plain-http origin (so not a secure
// context: no crypto.randomUUID) runs the scenario, loading the SDK one of two ways:
//   bundle <bundle.js>  the single-file ES bundle (SDK + local backend + toolkit + scenario);
//   esm <app dir>       the installed package's own dist/*.js, unbundled, through an import map
//                       (tinker-ts, tinker-ts/local, tinker-ts/toolkit, ky, valibot,
//                       @huggingface/tokenizers; not the optional peer @huggingface/jinja).
// Files are served by request interception, so no server is started. A fresh user-data-dir is made
// and removed. Usage: node runtime-tests/run-chromium.mjs <runtime name> bundle|esm <path>
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const [runtime = "chromium", mode = "bundle", target] = process.argv.slice(2);
const origin = "http://tinker-ts.test";
const types = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".json": "application/json",
};

/** The import map for the unbundled mode: each package's ESM entry, as its package.json says. */
function importMap(app) {
  const modules = (name) => join(app, "node_modules", name);
  const esmEntry = (name, subpath = ".") => {
    const pkg = JSON.parse(readFileSync(join(modules(name), "package.json"), "utf8"));
    let entry = pkg.exports?.[subpath] ?? (subpath === "." ? pkg.exports : undefined);
    // Conditions in browser order; stop at the first string.
    while (entry && typeof entry === "object") {
      entry = entry.browser ?? entry.import ?? entry.module ?? entry.default;
    }
    entry ??= pkg.module ?? pkg.main;
    const file = join(modules(name), entry);
    if (!existsSync(file)) throw new Error(`no ESM entry for ${name} ${subpath}: ${file}`);
    return `/node_modules/${name}/${normalize(entry)}`;
  };
  return {
    imports: {
      "tinker-ts": esmEntry("tinker-ts"),
      "tinker-ts/local": esmEntry("tinker-ts", "./local"),
      "tinker-ts/toolkit": esmEntry("tinker-ts", "./toolkit"),
      ky: esmEntry("ky"),
      valibot: esmEntry("valibot"),
      "@huggingface/tokenizers": esmEntry("@huggingface/tokenizers"),
    },
  };
}

const head =
  mode === "esm"
    ? `<script type="importmap">${JSON.stringify(importMap(target))}</script>`
    : "<!-- bundle -->";
const script = mode === "esm" ? "./global.mjs" : "./runtime.js";
const page = `<!doctype html><meta charset="utf-8"><title>tinker-ts runtime test</title>
${head}
<script type="module">
  import "${script}";
  window.__result = await window.runScenario(${JSON.stringify(runtime)});
</script>`;

function serve(path) {
  if (path === "/") return { contentType: "text/html", body: page };
  if (mode === "bundle" && path === "/runtime.js") {
    return { contentType: "text/javascript", body: readFileSync(target, "utf8") };
  }
  if (mode === "esm") {
    const file = join(target, normalize(decodeURIComponent(path)));
    if (file.startsWith(target) && existsSync(file)) {
      return { contentType: types[extname(file)] ?? "application/octet-stream", body: readFileSync(file) };
    }
  }
  return { status: 404, body: "not found" };
}

const profile = mkdtempSync(join(tmpdir(), "tinker-ts-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const pageErrors = [];
try {
  await context.route(`${origin}/**`, (route) =>
    route.fulfill(serve(new URL(route.request().url()).pathname)),
  );
  const tab = context.pages()[0] ?? (await context.newPage());
  tab.on("pageerror", (error) => pageErrors.push(`pageerror: ${error}`));
  tab.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(`console.error: ${message.text()}`);
  });
  await tab.goto(`${origin}/`);
  const handle = await tab.waitForFunction(() => window.__result, undefined, { timeout: 60_000 });
  const result = JSON.parse(await handle.jsonValue());
  if (pageErrors.length) {
    result.ok = false;
    result.problems = [...(result.problems ?? []), ...pageErrors];
  }
  console.log(JSON.stringify(result));
} catch (error) {
  console.log(JSON.stringify({ runtime, ok: false, problems: [String(error), ...pageErrors] }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
