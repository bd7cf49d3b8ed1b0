/**
 * The endpoint whose results a future of a request type carries, for re-attaching to a saved
 * request id (`ServiceClient.futures.retrieve`). Futures are what training and sampling operations
 * answer (PROTOCOL.md §4.4), so only those two areas are searched (test/future-endpoint.test.ts
 * checks that no other area declares one): re-attaching loads neither the REST declarations nor
 * their schemas.
 */
import { declaredIn, type Endpoint, type FutureRequestType } from "./define.js";
import * as sampling from "./sampling.js";
import * as training from "./training.js";

export function futureEndpoint(type: FutureRequestType): Endpoint {
  const found = [...declaredIn(training), ...declaredIn(sampling)].find((e) => e.future === type);
  if (!found) throw new Error(`no endpoint declares future type ${type}`);
  return found;
}
