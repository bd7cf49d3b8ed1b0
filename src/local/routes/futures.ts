/**
 * Futures: the long-poll of one request id (PROTOCOL.md §4), of a sampling session's completions
 * (§F1), and cancelling a sample (§F2).
 */
import { futures } from "../../wire/endpoints/index.js";
import { encodeForwardBackwardOutput, encodeSampleResponse } from "../../wire/protobuf/index.js";
import type { LocalBackend } from "../backend.js";
import type { FutureOutcome, ResultMessage } from "../future-store.js";
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
      // close() wakes every held poll through releaseAll(); a client that goes away, through its
      // signal, so thousands of abandoned polls hold nothing until their hold time ends.
      const outcome = await backend.futures.wait(requestId, options.longPollMs, request.signal);
      if (!outcome) return { type: "try_again", request_id: requestId, queue_state: "active" };
      const wantsProtobuf = (request.headers.get("accept") ?? "").includes("application/x-protobuf");
      return answerOutcome(outcome, wantsProtobuf, body.allow_metadata_only, options.metadataThreshold);
    }),
    route(futures.retrieveFutures, async ({ body, request }) => {
      const { target } = body;
      const cap = futures.RETRIEVE_FUTURES_MAX_HOLD_SECONDS;
      const holdSeconds = Math.min(body.timeout ?? cap, cap);
      // close() releases held polls through releaseAll(); a client that goes away, through its signal.
      const page = await backend.retrieveFutures(
        target.sampling_session_id,
        target.cloned_sampler_id,
        body.prev_cursor,
        holdSeconds * 1000,
        request.signal,
      );
      // Each finished result's size is that of the protobuf payload the client will fetch.
      return {
        ...page,
        completions: page.completions.map((completion) => {
          if (completion.state !== "finished") return completion;
          const outcome = backend.futures.outcome(completion.request_id);
          const bytes = outcome?.kind === "json" ? protobufPayload(outcome) : undefined;
          return { ...completion, response_payload_uncompressed_size: bytes?.length ?? null };
        }),
      };
    }),
    route(futures.cancelFuture, ({ body }) => {
      backend.cancelFuture(body.request_id);
      return new Response(null, { status: 204 });
    }),
  ];
}

/**
 * The results that have a protobuf form (PROTOCOL.md §3.6, §3.8): a client that asks for
 * `application/x-protobuf` gets them so; every other result is JSON.
 */
const PROTOBUF_ENCODERS: Record<ResultMessage, (value: never) => Uint8Array> = {
  ForwardBackwardOutput: encodeForwardBackwardOutput,
  SampleResponse: encodeSampleResponse,
};

/** Encodings already made, so a poll and a completion-log size share one encode per result. */
const encoded = new WeakMap<object, Uint8Array>();

/** The protobuf payload of a result, or undefined when it has no protobuf form. */
function protobufPayload(outcome: { body: unknown; message?: ResultMessage }): Uint8Array | undefined {
  const value = outcome.body;
  if (outcome.message === undefined || typeof value !== "object" || value === null) return undefined;
  const encode = PROTOBUF_ENCODERS[outcome.message];
  let bytes = encoded.get(value);
  if (bytes === undefined) {
    bytes = encode(value as never);
    encoded.set(value, bytes);
  }
  return bytes;
}

/** A finished future's answer: failure, JSON, or protobuf (metadata-only when large and allowed). */
function answerOutcome(
  outcome: FutureOutcome,
  wantsProtobuf: boolean,
  allowMetadataOnly: boolean,
  metadataThreshold: number,
): Response {
  if (outcome.kind === "failed") return jsonResponse({ error: outcome.error, category: outcome.category });
  // A broken promise (work lost in a restart): 410, which makes the SDKs re-submit a sample (§4.3).
  if (outcome.kind === "expired") throw new HttpError(410, outcome.error);
  const bytes = wantsProtobuf ? protobufPayload(outcome) : undefined;
  if (bytes === undefined) return jsonResponse(outcome.body);
  if (allowMetadataOnly && bytes.length > metadataThreshold) {
    return jsonResponse({ status: "complete_metadata", response_payload_size: bytes.length });
  }
  return protobufResponse(bytes);
}
