/** This package's own version (sent as `X-Stainless-Package-Version` and in the User-Agent). */
export const VERSION = "0.1.0";

/**
 * The official SDK version whose wire protocol this package speaks. It is what `sdk_version` says in
 * request bodies, because a server may gate protocol features (protobuf results, metadata-only polls)
 * on it; our own version would mean nothing to the service.
 */
export const PROTOCOL_SDK_VERSION = "0.25.0";
