// workerd through the Miniflare API: one request to a worker made of the single-file ES bundle.
// The module is listed explicitly (as wrangler does): with `modules: true` + `script`, Miniflare
// scans the code for imports and refuses the SDK's non-literal `import(specifier)` of
// node:child_process (ERR_MODULE_DYNAMIC_SPEC), although workerd itself only fails if it runs.
// Usage: node runtime-tests/run-workerd.mjs <bundle.js>
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";

const mf = new Miniflare({
  modules: [{ type: "ESModule", path: "worker.js", contents: readFileSync(process.argv[2], "utf8") }],
  compatibilityDate: "2025-01-01",
});
try {
  const response = await mf.dispatchFetch("http://localhost/");
  console.log(JSON.stringify(await response.json()));
} finally {
  await mf.dispose();
}
