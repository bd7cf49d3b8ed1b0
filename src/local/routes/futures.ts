/**
 * Futures: the long-poll of one request id (PROTOCOL.md §4), of a sampling session's completions
 * (§F1), and cancelling a sample (§F2).
 */
import { futures } from "../../wire/endpoints/index.js";
import type { LocalBackend } from "../backend.js";
import type { FutureOutcome } from "../future-store.js";
import { HttpError, jsonResponse, protobufResponse } from "../responses.js";
import { type Route, route } from "./router.js";

export interface FutureRouteOptions {
  /** How long `retrieve_future` holds a poll open before answering try_again. */
  longPollMs: number;
  /** Answer metadata-only (§4.5) for results above this many bytes. */
  metadataThreshold: number;
}

export function futureRoutes(backend: LocalBackend, options: FutureRouteOptions): Route[] {
  return [
    route(futures.retrieveFuture, async ({ body, request }) => {
      const requestId = body.request_id;
      if (!backend.futures.has(requestId)) throw new HttpError(404, `unknown request_id ${requestId}`);
      // close() wakes every held poll through releaseAll(), so no per-poll abort listener is needed.
      const outcome = await backend.futures.wait(requestId, options.longPollMs);
      if (!outcome) return { type: "try_again", request_id: requestId, queue_state: "active" };
      const wantsProtobuf = (request.headers.get("accept") ?? "").includes("application/x-protobuf");
      return answerOutcome(outcome, wantsProtobuf, body.allow_metadata_only, options.metadataThreshold);
    }),
    route(futures.retrieveFutures, ({ body, request }) => {
      const { target } = body;
      const cap = futures.RETRIEVE_FUTURES_MAX_HOLD_SECONDS;
      const holdSeconds = Math.min(body.timeout ?? cap, cap);
      // close() releases held polls through releaseAll(); a client that goes away, through its signal.
      return backend.retrieveFutures(
        target.sampling_session_id,
        target.cloned_sampler_id,
        body.prev_cursor,
        holdSeconds * 1000,
        request.signal,
      );
    }),
    route(futures.cancelFuture, ({ body }) => {
      backend.cancelFuture(body.request_id);
      return new Response(null, { status: 204 });
    }),
  ];
}

/** A finished future's answer: failure, JSON, or protobuf (metadata-only when large and allowed). */
function answerOutcome(
  outcome: FutureOutcome,
  wantsProtobuf: boolean,
  allowMetadataOnly: boolean,
  metadataThreshold: number,
): Response {
  switch (outcome.kind) {
    case "failed":
      return jsonResponse({ error: outcome.error, category: outcome.category });
    case "json":
      return jsonResponse(outcome.body);
    case "dual": {
      if (!wantsProtobuf) return jsonResponse(outcome.json);
      const bytes = outcome.protobuf();
      if (allowMetadataOnly && bytes.length > metadataThreshold) {
        return jsonResponse({ status: "complete_metadata", response_payload_size: bytes.length });
      }
      return protobufResponse(bytes);
    }
  }
}
