import { defineConfig } from "tsup";

const entry = {
  index: "src/index.ts",
  local: "src/local/index.ts",
  toolkit: "src/toolkit/index.ts",
  openai: "src/openai/index.ts",
};
// `tinker-ts` under the `node` export condition: the same entry plus Node's keep-alive transport
// (src/node). Its own file, so browsers and workers never see a `node:` import.
const nodeEntry = { node: "src/node/index.ts" };

// Declarations are not bundled here: scripts/build-types.mjs (run after tsup by `npm run build`)
// emits one .d.ts per module with declaration maps, for ESM (dist/types) and CommonJS
// (dist/types-cjs). tsup's dts bundling put every shared type in one hashed chunk.

export default defineConfig([
  // ESM for every runtime: web standards only, dependencies left to the consumer's resolver.
  {
    entry: { ...entry, ...nodeEntry },
    format: ["esm"],
    platform: "neutral",
    target: "es2022",
    sourcemap: true,
    clean: true,
    external: [/^node:/],
    removeNodeProtocol: false,
  },
  // The same modules as ES modules one file each, for bundlers (browsers, workers, edge runtimes:
  // the `browser`, `worker`, `workerd`, `edge-light` and `default` conditions). A bundle above merges
  // modules into shared chunks, and an app's bundler keeps a whole chunk when it needs any part of
  // it: a sample-only app built from it carried the training client that the SDK loads on first use
  // (docs/PERFORMANCE.md (e)). Node, Bun and Deno keep the bundles, which load faster.
  {
    entry: ["src/**/*.ts", "!src/cli/**", "!src/node/**"],
    outDir: "dist/esm",
    bundle: false,
    format: ["esm"],
    platform: "neutral",
    target: "es2022",
    sourcemap: true,
  },
  // CommonJS: ky is ESM-only and esbuild's interop breaks `require("ky")`, so it is inlined
  // (TOOLCHAIN.md §1.4). valibot ships CJS and stays external.
  {
    entry: { ...entry, ...nodeEntry },
    format: ["cjs"],
    platform: "neutral",
    target: "es2022",
    sourcemap: true,
    noExternal: ["ky"],
    external: [/^node:/],
    removeNodeProtocol: false,
  },
  // The CLI (Node, Bun, Deno): `tinker-ts serve`.
  {
    entry: { cli: "src/cli/main.ts" },
    format: ["esm"],
    platform: "node",
    target: "node22",
    banner: { js: "#!/usr/bin/env node" },
  },
]);
