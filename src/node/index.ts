/**
 * `tinker-ts` under the `node` export condition: the main entry, with the keep-alive HTTP/1.1
 * transport registered for every client this process makes (src/core/transport.ts). Browsers,
 * workers, Deno and Bun resolve the plain entry and never load this module.
 */
import { registerRuntimeTransport } from "../core/transport.js";
import { nodeTransport } from "./transport.js";

registerRuntimeTransport(nodeTransport);

export * from "../index.js";
