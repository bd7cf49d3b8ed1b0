/**
 * The host's byte order, checked once. Every binary array on the wire is little-endian, so on a
 * little-endian host a typed array's bytes are the wire bytes and can be copied whole; a
 * big-endian host (none of the supported runtimes, but the check is free) takes the per-value
 * DataView path instead.
 */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a typed array, as a view (no copy). */
export function bytesOf(values: ArrayBufferView): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
