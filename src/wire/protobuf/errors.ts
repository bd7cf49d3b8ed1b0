/**
 * Errors raised by the protobuf codec. Encode and decode failures are separate classes so the SDK
 * can map them differently: an encode error means the caller's input cannot be represented on the
 * wire (a validation error before anything is sent), a decode error means the peer sent bytes that
 * do not form a valid message (a response validation error on the client, a 400 on the backend).
 */

/** Common base, so callers can catch every codec failure at once. */
export class ProtobufError extends Error {
  override readonly name: string = "ProtobufError";
}

/** The value handed to an encoder cannot be represented in the protobuf message. */
export class ProtobufEncodeError extends ProtobufError {
  override readonly name: string = "ProtobufEncodeError";
}

/** The bytes handed to a decoder are not a valid message (truncated, malformed, unknown enum...). */
export class ProtobufDecodeError extends ProtobufError {
  override readonly name: string = "ProtobufDecodeError";
}
