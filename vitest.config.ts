import { defineConfig } from "vitest/config";

export default defineConfig({
  // `tinker-ts`, `tinker-ts/local`, `tinker-ts/toolkit` in examples/ → src/ (tsconfig.json `paths`).
  resolve: { tsconfigPaths: true },
  test: {
    include: ["test/**/*.test.ts"],
    // Node's transport for every client, as a Node application gets it (TINKER_TS_TRANSPORT=fetch:
    // the runtime's fetch, as in Deno, Bun, browsers and workers).
    setupFiles: ["test/setup-transport.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Fail the run if a test leaves timers or sockets behind (acceptance: no open handles).
    teardownTimeout: 10_000,
  },
});
