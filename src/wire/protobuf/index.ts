/**
 * Protobuf codec for the three binary bodies of the Tinker protocol (PROTOCOL.md §8): the
 * forward_backward request, and the ForwardBackwardOutput / SampleResponse results. Both
 * directions exist because the SDK client and the local backend share this module.
 *
 * Hand-written, dependency-free and web-standard only (Uint8Array, DataView, TextEncoder), so it
 * runs unchanged on every runtime the SDK supports. Test support (proto3-JSON dumps) lives in
 * `./proto-json.ts` and is deliberately not re-exported here.
 */

export { ProtobufDecodeError, ProtobufEncodeError, ProtobufError } from "./errors.js";
export { decodeForwardBackwardOutput, encodeForwardBackwardOutput } from "./forward-backward-output.js";
export { decodeForwardBackwardRequest, encodeForwardBackwardRequest } from "./forward-backward-request.js";
export { decodeSampleResponse, encodeSampleResponse, TOPK_EMPTY_LOGPROB } from "./sample-response.js";
export { PROTOBUF_CONTENT_TYPE } from "./schema.js";
