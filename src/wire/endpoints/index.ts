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
export { futureEndpoint } from "./future-endpoint.js";
export { auth, futures, rest, sampling, session, training };

import { declaredIn, type Endpoint } from "./define.js";

/** All declared endpoints. */
export const ENDPOINTS: readonly Endpoint[] = [
  ...declaredIn(session),
  ...declaredIn(training),
  ...declaredIn(sampling),
  ...declaredIn(futures),
  ...declaredIn(rest),
  ...declaredIn(auth),
];
