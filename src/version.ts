/** This package's own version (sent as `X-Stainless-Package-Version` and in the User-Agent). */
export const VERSION = "0.1.0";

/**
 * The official SDK version whose wire protocol this package speaks (PROTOCOL.md §0). It is what
 * `sdk_version` says in request bodies: the service refuses sessions below a floor it raises from
 * time to time (PROTOCOL.md §G1), and gates protocol features on it; our own version would mean
 * nothing to it. Raise it only together with the protocol changes of that upstream version.
 * `ClientOptions.sdkVersion` and `TINKER_SDK_VERSION` override it.
 */
export const PROTOCOL_SDK_VERSION = "0.39.0";
