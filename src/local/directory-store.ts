/**
 * The directory store of the local backend (node:fs; Node, Bun and Deno). Loaded by a dynamic
 * import only when `dataDir` is given. Layout:
 *
 *   <dataDir>/v1/<collection>/<name>.rec    one record (store.ts format) per item
 *
 * where <name> is a readable, filesystem-safe prefix of the key plus a hash of the whole key (the
 * exact key is inside the record). Each write goes to a temp file in the same directory, is
 * fsynced, renamed over the old file (atomic on POSIX), and the directory is fsynced; writes of one
 * key are serialized so the last write wins. Damaged records are skipped with a warning on load,
 * and stray temp files of interrupted writes are removed.
 */
import { uuid4 } from "../internal/uuid.js";
import {
  decodeRecord,
  defaultWarning,
  encodeRecord,
  messageOf,
  STORE_COLLECTIONS,
  type Store,
  type StoreCollection,
  type StoredRecord,
} from "./store.js";

/** The part of node:fs/promises this store uses (typed here: the web-standard build has no node types). */
interface FileHandle {
  writeFile(data: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}
interface FsPromises {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  open(path: string, flags: string): Promise<FileHandle>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
}

/**
 * The module specifier is not a literal, so bundlers (for browsers and Workers) never try to
 * resolve a node module; Node, Bun and Deno load it at run time.
 */
const NODE_FS: string = "node:fs/promises";

let fs: FsPromises;
let mkdir: FsPromises["mkdir"];
let open: FsPromises["open"];
let readdir: FsPromises["readdir"];
let readFile: FsPromises["readFile"];
let rename: FsPromises["rename"];
let rm: FsPromises["rm"];

function join(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}

export async function openDirectoryStore(
  dataDir: string,
  options: { onWarning?: (message: string) => void } = {},
): Promise<Store> {
  fs ??= (await import(/* @vite-ignore */ NODE_FS)) as FsPromises;
  ({ mkdir, open, readdir, readFile, rename, rm } = fs);
  const root = join(dataDir, "v1");
  for (const collection of STORE_COLLECTIONS) await mkdir(join(root, collection), { recursive: true });
  return new DirectoryStore(root, options.onWarning ?? defaultWarning);
}

let tempCounter = 0;
const tempTag = uuid4().slice(0, 8);

class DirectoryStore implements Store {
  readonly #root: string;
  readonly #onWarning: (message: string) => void;
  /** The last queued write of each file: the next one waits for it. */
  readonly #chains = new Map<string, Promise<void>>();

  constructor(root: string, onWarning: (message: string) => void) {
    this.#root = root;
    this.#onWarning = onWarning;
  }

  async load(collection: StoreCollection): Promise<StoredRecord[]> {
    const dir = join(this.#root, collection);
    const records: StoredRecord[] = [];
    for (const name of (await readdir(dir)).sort()) {
      const file = join(dir, name);
      if (name.endsWith(".tmp")) {
        await rm(file, { force: true });
        continue;
      }
      if (!name.endsWith(".rec")) continue;
      try {
        const record = decodeRecord(new Uint8Array(await readFile(file)));
        if (fileName(record.key) !== name) throw new Error(`holds key ${record.key}, not this file's`);
        records.push(record);
      } catch (error) {
        this.#onWarning(`skipping damaged ${collection} record ${file}: ${messageOf(error)}`);
      }
    }
    return records;
  }

  put(collection: StoreCollection, record: StoredRecord): Promise<void> {
    const bytes = encodeRecord(record);
    return this.#serialized(collection, record.key, async (dir, name) => {
      const temp = join(dir, `.${name}.${tempTag}.${++tempCounter}.tmp`);
      const handle = await open(temp, "w");
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, join(dir, name));
      await syncDirectory(dir);
    });
  }

  delete(collection: StoreCollection, key: string): Promise<void> {
    return this.#serialized(collection, key, async (dir, name) => {
      await rm(join(dir, name), { force: true });
      await syncDirectory(dir);
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#chains.values()]);
  }

  #serialized(
    collection: StoreCollection,
    key: string,
    write: (dir: string, name: string) => Promise<void>,
  ): Promise<void> {
    const dir = join(this.#root, collection);
    const name = fileName(key);
    const id = `${collection}/${name}`;
    const previous = this.#chains.get(id) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => write(dir, name));
    this.#chains.set(id, next);
    void next.then(
      () => this.#forget(id, next),
      () => this.#forget(id, next),
    );
    return next;
  }

  #forget(id: string, chain: Promise<void>): void {
    if (this.#chains.get(id) === chain) this.#chains.delete(id);
  }
}

/** A readable, filesystem-safe file name for a key: sanitized prefix + FNV-1a 64-bit hash. */
function fileName(key: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(key)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const readable = key
    .replace(/^tinker:\/\//, "")
    .replace(/[^\w.-]+/g, "_")
    .slice(0, 80);
  return `${readable}-${hash.toString(16).padStart(16, "0")}.rec`;
}

/** fsync a directory so a rename in it is durable (not supported everywhere: best effort). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // Windows cannot open directories; the rename itself is still atomic.
  } finally {
    await handle?.close().catch(() => {});
  }
}
