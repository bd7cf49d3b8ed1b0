/**
 * Clone ids of sampling clients rebuilt from a handle (PROTOCOL.md §P3). A clone's seq_ids live in
 * their own block, `clone id × 1e9 + n`, so that its samples and the original's never share one.
 * The server hands out the id (`join_sampling_session`) when it sets
 * `sample_join_sampling_session`; otherwise the clone draws one at random, as clients up to 0.31 do.
 */
import { TinkerError } from "../core/errors.js";
import * as sampling from "../wire/endpoints/sampling.js";
import { call } from "./call.js";
import type { Connection } from "./connection.js";

/** Asks the server for this clone's id, or draws one when the server has no join. */
export async function acquireCloneId(connection: Connection, samplingSessionId: string): Promise<number> {
  const flags = await connection.clientConfig();
  if (flags.sample_join_sampling_session !== true) return drawCloneId();
  const answer = await call(connection, sampling.joinSamplingSession, {
    body: { sampling_session_id: samplingSessionId },
  });
  if (answer.client_counter > sampling.MAX_EXACT_CLONE_ID) {
    throw new TinkerError(
      `join_sampling_session gave clone id ${answer.client_counter}; ids above ${sampling.MAX_EXACT_CLONE_ID} make seq_ids JavaScript cannot send exactly`,
    );
  }
  return answer.client_counter;
}

/**
 * A random clone id in [1, MAX_EXACT_CLONE_ID]. Upstream draws from [1, 1e9], but seq_ids of ids
 * above MAX_EXACT_CLONE_ID are not exact as JSON numbers written from JavaScript (see there).
 */
export function drawCloneId(random: () => number = Math.random): number {
  return 1 + Math.floor(random() * sampling.MAX_EXACT_CLONE_ID);
}
