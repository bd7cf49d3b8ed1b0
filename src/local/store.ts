/**
 * Where the local backend keeps what must outlive a process (DESIGN.md §5): sessions, training
 * runs, checkpoints, samplers and futures, each as one self-checking record. This module is web-standard;
 * the directory implementation (directory-store.ts, node:fs) is imported only when a data
 * directory is given, so browsers and Workers never load node modules.
 *
 * Record layout (integers little-endian):
 *   bytes 0..7    magic "TTSTORE1"
 *   bytes 8..11   u32 byte length M of the UTF-8 JSON part ({ key, meta })
 *   bytes 12..15  u32 byte length D of the binary part (engine state; may be 0)
 *   bytes 16..19  u32 CRC-32 of the JSON part followed by the binary part
 *   20..20+M      JSON part
 *   then D bytes  binary part
 * A torn write (short file), trailing garbage or any flipped bit fails the lengths or the checksum.
 */

export type StoreCollection = "sessions" | "runs" | "checkpoints" | "samplers" | "futures";

export const STORE_COLLECTIONS: readonly StoreCollection[] = [
  "sessions",
  "runs",
  "checkpoints",
  "samplers",
  "futures",
];

export interface StoredRecord {
  /** Unique within its collection (a session id, model id, tinker:// path, sampler or request id). */
  key: string;
  /** JSON-serializable metadata. */
  meta: unknown;
  /** Binary payload (engine state bytes), if any. */
  data?: Uint8Array;
}

/**
 * Durable storage of records. `put` resolves once the record is durable (for the directory store:
 * written to a temp file, fsynced, renamed over the old one); `load` returns every intact record
 * and reports damaged ones through the store's warning callback instead of returning them.
 */
export interface Store {
  load(collection: StoreCollection): Promise<StoredRecord[]>;
  put(collection: StoreCollection, record: StoredRecord): Promise<void>;
  delete(collection: StoreCollection, key: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Records in memory, encoded exactly as on disk. Useful to keep state across backend instances in
 * one process (e.g. a "restart" in a test, or a Worker that re-creates its backend).
 */
export class MemoryStore implements Store {
  readonly #collections = new Map<StoreCollection, Map<string, Uint8Array>>();
  readonly #onWarning: (message: string) => void;

  constructor(options: { onWarning?: (message: string) => void } = {}) {
    this.#onWarning = options.onWarning ?? defaultWarning;
  }

  async load(collection: StoreCollection): Promise<StoredRecord[]> {
    const records: StoredRecord[] = [];
    for (const [key, bytes] of this.#collection(collection)) {
      try {
        records.push(decodeRecord(bytes));
      } catch (error) {
        this.#onWarning(`skipping damaged ${collection} record ${key}: ${messageOf(error)}`);
      }
    }
    return records;
  }

  async put(collection: StoreCollection, record: StoredRecord): Promise<void> {
    this.#collection(collection).set(record.key, encodeRecord(record));
  }

  async delete(collection: StoreCollection, key: string): Promise<void> {
    this.#collection(collection).delete(key);
  }

  async close(): Promise<void> {}

  /** Test hook: the raw bytes of a record (to damage them). */
  raw(collection: StoreCollection): Map<string, Uint8Array> {
    return this.#collection(collection);
  }

  #collection(collection: StoreCollection): Map<string, Uint8Array> {
    let map = this.#collections.get(collection);
    if (!map) {
      map = new Map();
      this.#collections.set(collection, map);
    }
    return map;
  }
}

const MAGIC = new TextEncoder().encode("TTSTORE1");
const HEADER_BYTES = 20;

export function encodeRecord(record: StoredRecord): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ key: record.key, meta: record.meta }));
  const data = record.data ?? new Uint8Array(0);
  const bytes = new Uint8Array(HEADER_BYTES + json.length + data.length);
  bytes.set(MAGIC, 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, json.length, true);
  view.setUint32(12, data.length, true);
  bytes.set(json, HEADER_BYTES);
  bytes.set(data, HEADER_BYTES + json.length);
  view.setUint32(16, crc32(bytes.subarray(HEADER_BYTES)), true);
  return bytes;
}

/** Decodes a record; throws on any damage (wrong magic, lengths, checksum or JSON). */
export function decodeRecord(bytes: Uint8Array): StoredRecord {
  if (bytes.length < HEADER_BYTES) throw new Error(`truncated record (${bytes.length} bytes)`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new Error("not a tinker-ts store record (bad magic)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.getUint32(8, true);
  const dataLength = view.getUint32(12, true);
  const expected = HEADER_BYTES + jsonLength + dataLength;
  if (bytes.length !== expected) {
    throw new Error(`record is ${bytes.length} bytes, its header says ${expected} (torn write?)`);
  }
  if (crc32(bytes.subarray(HEADER_BYTES)) !== view.getUint32(16, true)) {
    throw new Error("record checksum mismatch");
  }
  const parsed = JSON.parse(
    new TextDecoder().decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + jsonLength)),
  ) as { key?: unknown; meta?: unknown };
  if (typeof parsed.key !== "string") throw new Error("record has no key");
  const data = bytes.slice(HEADER_BYTES + jsonLength);
  return { key: parsed.key, meta: parsed.meta, ...(data.length > 0 ? { data } : {}) };
}

let crcTable: Uint32Array | undefined;

export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function defaultWarning(message: string): void {
  console.warn(`[tinker-ts local] ${message}`);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
