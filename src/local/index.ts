/**
 * tinker-ts/local: an embedded Tinker-compatible backend with a small real model, as a web-standard
 * fetch handler. Use it in-process on any runtime:
 *
 *   const local = createLocalTinker();
 *   const service = new ServiceClient({ fetch: local.fetch, baseURL: "http://local.tinker", apiKey: "tml-local" });
 *
 * or serve it over HTTP with `tinker-ts serve --port 8000`.
 */
import { LocalBackend, type LocalBackendOptions } from "./backend.js";
import { type ChaosRule, withChaos } from "./chaos.js";
import { createHandler, type HandlerOptions } from "./handler.js";

export { LOCAL_JWT_ISSUER, type LocalAuthOptions } from "./auth.js";
export { BUILTIN_BASE_MODEL } from "./backend.js";
export type { ChaosRule } from "./chaos.js";
export { BOS_TOKEN, decodeTokens, EOS_TOKEN, encodeText, TOKENIZER_ID } from "./engine/index.js";

/**
 * Also the access rules (from HandlerOptions): `apiKeys` restricts the accepted API keys, `jwt`
 * turns on the JWT exchange of PROTOCOL.md §1.4 (`{ ttlSeconds?, secret? }`).
 */
export interface LocalTinkerOptions extends LocalBackendOptions, HandlerOptions {
  /** Faults to inject before the real backend answers (for testing retry logic). */
  chaos?: ChaosRule[];
}

export interface LocalTinker {
  /** Handles one request of the Tinker protocol. */
  fetch(request: Request): Promise<Response>;
  /** Answers every held poll and stops accepting work; no timer of the backend outlives it. */
  close(): void;
}

export function createLocalTinker(options: LocalTinkerOptions = {}): LocalTinker {
  const handler = createHandler(new LocalBackend(options), options);
  const fetch = options.chaos?.length ? withChaos(handler.fetch, options.chaos) : handler.fetch;
  return { fetch, close: handler.close };
}
