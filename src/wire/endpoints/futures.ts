/**
 * Futures: polling one, long-polling a sampling session's completions, cancelling (PROTOCOL.md §4,
 * §F1, §F2).
 */
import * as v from "valibot";
import { FuturesRetrieveResponseSchema, IgnoredResponseSchema } from "../schemas.js";
import { endpoint } from "./define.js";
import { integer, nonEmptyString } from "./fields.js";

/**
 * `POST retrieve_future`: one long-poll of a request id. Its result depends on the request type;
 * the poller (src/futures/poller.ts) gives each answer its meaning and retries on its own rules, so
 * the transport makes one attempt.
 */
export const retrieveFuture = endpoint({
  name: "retrieve_future",
  method: "POST",
  path: "retrieve_future",
  body: v.looseObject({
    request_id: nonEmptyString,
    allow_metadata_only: v.optional(v.boolean(), false),
  }),
  result: { schema: v.unknown() },
  retry: "transport",
  transportRetries: 0,
  timeoutMs: 45_000,
});

/** The server holds a `retrieve_futures` poll at most this long (§F1). */
export const RETRIEVE_FUTURES_MAX_HOLD_SECONDS = 30;

/**
 * `POST retrieve_futures` (§F1): the completions of a sampling session (one clone of it) newer than
 * `prev_cursor`, held up to `timeout` seconds. Used only when `sample_use_retrieve_futures` is set.
 */
export const retrieveFutures = endpoint({
  name: "retrieve_futures",
  method: "POST",
  path: "retrieve_futures",
  body: v.looseObject({
    target: v.looseObject({
      type: v.literal("sampling_session"),
      sampling_session_id: nonEmptyString,
      cloned_sampler_id: v.optional(integer, 0),
    }),
    prev_cursor: v.optional(integer, 0),
    timeout: v.optional(v.nullable(v.pipe(v.number(), v.minValue(0))), null),
  }),
  result: { schema: FuturesRetrieveResponseSchema },
  retry: "transport",
  transportRetries: 0,
  timeoutMs: 45_000,
  flag: "sample_use_retrieve_futures",
  since: "0.26.2",
});

/** `sample_cancel_max_batch_size` when the dynamic config does not say: cancels sent at once (§F2). */
export const DEFAULT_SAMPLE_CANCEL_MAX_BATCH_SIZE = 64;

/**
 * `POST cancel_future` (§F2): stop an abandoned sample on the server. 204 when cancelled, 404 for an
 * unknown id, a no-op when already finished. Used only when `sample_cancel_enabled` is set.
 */
export const cancelFuture = endpoint({
  name: "cancel_future",
  method: "POST",
  path: "cancel_future",
  body: v.looseObject({ request_id: nonEmptyString }),
  result: { schema: IgnoredResponseSchema },
  retry: "transport",
  flag: "sample_cancel_enabled",
  since: "0.32.0",
});
