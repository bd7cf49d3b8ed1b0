/**
 * Vitest setup: the tests send with the transport a Node application of the package gets (its `node`
 * export condition registers src/node/transport.ts). `TINKER_TS_TRANSPORT=fetch npx vitest run …`
 * runs them on the runtime's fetch instead, the transport of Deno, Bun, browsers and workers.
 */
import { registerRuntimeTransport } from "../src/core/transport.js";
import { nodeTransport } from "../src/node/transport.js";

// TINKER_TS_TRANSPORT=fetch is honoured by the SDK itself (src/core/transport.ts).
registerRuntimeTransport(nodeTransport);
