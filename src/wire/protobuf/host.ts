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

/** Node's (and Bun's) `Buffer`, when the runtime has one: only its `allocUnsafe` is used. */
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafe?: (size: number) => Uint8Array } }).Buffer;

/** Below this size a fresh zeroed buffer costs next to nothing; above, zeroing and page faults show. */
const UNINITIALIZED_MIN = 64 * 1024;

/**
 * A new byte array of `size` bytes that the caller overwrites completely before anyone reads it.
 *
 * Large ones come from `Buffer.allocUnsafe` where there is one: a request of a few MB is then
 * malloc'd memory the allocator recycles, instead of freshly zeroed pages (`new Uint8Array`),
 * which saves a memset or a page fault per 4 KB. Only a plain Uint8Array over a buffer of its own
 * is returned, never a Buffer nor a slice of Node's shared pool; anywhere else, `new Uint8Array`.
 */
export function uninitializedBytes(size: number): Uint8Array {
  if (size >= UNINITIALIZED_MIN && typeof NodeBuffer?.allocUnsafe === "function") {
    const buffer = NodeBuffer.allocUnsafe(size);
    if (buffer.byteOffset === 0 && buffer.buffer.byteLength === size) return new Uint8Array(buffer.buffer);
  }
  return new Uint8Array(size);
}
