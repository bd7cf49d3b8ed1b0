/**
 * Every endpoint of the protocol, declared once (see define.ts). Grouped by area; `ENDPOINTS` lists
 * them all for the local backend's router and for tests that check the declarations.
 *
 * The SDK's clients import an area's module (`./sampling.js`) instead of this index: a bundler that
 * splits by file would put every area an index imports into the chunk of whoever uses the index, so
 * the REST and training declarations would load with a sampling-only app (docs/PERFORMANCE.md (e)).
 */
import * as auth from "./auth.js";
import * as futures from "./futures.js";
import * as rest from "./rest.js";
import * as sampling from "./sampling.js";
import * as session from "./session.js";
import * as training from "./training.js";

export * from "./define.js";
export * from "./fields.js";
export { auth, futures, rest, sampling, session, training };

import type { Endpoint, FutureRequestType } from "./define.js";

function declared(module: Record<string, unknown>): Endpoint[] {
  return Object.values(module).filter(
    (value): value is Endpoint =>
      typeof value === "object" && value !== null && "path" in value && "method" in value && "retry" in value,
  );
}

/** All declared endpoints. */
export const ENDPOINTS: readonly Endpoint[] = [
  ...declared(session),
  ...declared(training),
  ...declared(sampling),
  ...declared(futures),
  ...declared(rest),
  ...declared(auth),
];

/** The endpoint whose results a future of `type` carries (for re-attaching to a saved request id). */
export function futureEndpoint(type: FutureRequestType): Endpoint {
  const found = ENDPOINTS.find((e) => e.future === type);
  if (!found) throw new Error(`no endpoint declares future type ${type}`);
  return found;
}
