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
import { type ChaosRule, type FaultPlan, withChaos, withFaultPlan } from "./chaos.js";
import { createHandler, type HandlerOptions } from "./handler.js";
import type { Store } from "./store.js";

export { LOCAL_JWT_ISSUER, type LocalAuthOptions } from "./auth.js";
export { BUILTIN_BASE_MODEL, DEFAULT_SESSION_TTL_MS } from "./backend.js";
export type { ChaosRule, FaultKind, FaultPlan } from "./chaos.js";
export { BOS_TOKEN, decodeTokens, EOS_TOKEN, encodeText, TOKENIZER_ID } from "./engine/index.js";

/**
 * Also the access rules (from HandlerOptions): `apiKeys` restricts the accepted API keys, `jwt`
 * turns on the JWT exchange of PROTOCOL.md §1.4 (`{ ttlSeconds?, secret? }`).
 */
export interface LocalTinkerOptions extends LocalBackendOptions, HandlerOptions {
  /** Faults to inject before the real backend answers (for testing retry logic). */
  chaos?: ChaosRule[];
  /** A seeded random fault plan (see FaultPlan), applied after the `chaos` rules. */
  faultPlan?: FaultPlan;
  /**
   * Keep sessions, training runs, checkpoints and samplers in this directory, so they survive a
   * restart (Node, Bun, Deno; node:fs is imported only when this is set). See docs/LOCAL_BACKEND.md.
   */
  dataDir?: string;
  /** Or any other Store (e.g. a MemoryStore shared by successive backends). Ignored with dataDir. */
  store?: Store;
}

export interface LocalTinker {
  /** Handles one request of the Tinker protocol. */
  fetch(request: Request): Promise<Response>;
  /**
   * Answers every held poll and stops accepting work; no timer of the backend outlives it. The
   * promise resolves when every store write is durable.
   */
  close(): Promise<void>;
  /**
   * Resolves once the stored state is loaded (at once without a store); rejects if the store
   * cannot be opened. Requests wait for it.
   */
  ready: Promise<void>;
}

export function createLocalTinker(options: LocalTinkerOptions = {}): LocalTinker {
  const backend = new LocalBackend(options);
  const handler = createHandler(backend, options);
  const ready = openStore(options).then((store) => (store ? backend.attachStore(store) : undefined));
  // Unobserved until the first request; keep a failure from being an unhandled rejection.
  ready.catch(() => {});
  const durable = async (request: Request): Promise<Response> => {
    await ready;
    const response = await handler.fetch(request);
    // What this answer reports (a created session, a deleted checkpoint…) is on disk before it is sent.
    await backend.flushWrites();
    return response;
  };
  let fetch = options.chaos?.length ? withChaos(durable, options.chaos) : durable;
  if (options.faultPlan) fetch = withFaultPlan(fetch, options.faultPlan).fetch;
  return {
    fetch,
    ready,
    close: async () => {
      handler.close();
      await ready.catch(() => {});
      await backend.close();
    },
  };
}

async function openStore(options: LocalTinkerOptions): Promise<Store | undefined> {
  if (options.dataDir !== undefined) {
    // Behind a runtime check, so bundles for browsers and Workers never execute a node import.
    const { openDirectoryStore } = await import("./directory-store.js");
    return openDirectoryStore(options.dataDir, { onWarning: options.onWarning });
  }
  return options.store;
}

export { MemoryStore, type Store, type StoreCollection, type StoredRecord } from "./store.js";
