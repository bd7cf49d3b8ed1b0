/**
 * The stored-credentials file of `tinker auth login` (UPSTREAM.md A1), `~/.tinker/credentials.json`:
 *
 *   {"version": 1, "default": key_id | null,
 *    "keys": {key_id: {"type": "manual" | "generated", "key", "name", "note"?, "details"?}}}
 *
 * The directory is created 0700 and the file written 0600, always as a whole: a temporary file in
 * the same directory, renamed over the old one, so a reader never sees half a file.
 * `TINKER_CREDENTIALS_FILE` overrides the path (tests, several identities).
 *
 * A file system is not a web-standard capability, so the runtime's own API is loaded only when the
 * file is first touched: Deno's on Deno, `node:fs/promises` on Node and Bun (through a dynamic
 * import that bundlers leave alone). Where there is none (browsers, Workers, edge), or Deno denies
 * access, the file counts as absent. Nothing happens at import time.
 *
 * No error message quotes the file's content: it holds secrets.
 */
import * as v from "valibot";
import { lazyImport } from "../../internal/lazy-import.js";
import { KeyDetailsSchema } from "../../wire/endpoints/auth.js";
import { readEnv } from "../env.js";
import { TinkerError, ValidationError } from "../errors.js";

export const CREDENTIALS_FILE_ENV = "TINKER_CREDENTIALS_FILE";
export const CREDENTIALS_FILE_VERSION = 1;

// Who a key belongs to is stored as `GET /api/v1/auth/apikey/me` describes it (declared there).
export { KeyDetailsSchema };

const KeyFields = {
  key: v.pipe(v.string(), v.minLength(1)),
  name: v.string(),
  details: v.optional(v.nullable(KeyDetailsSchema)),
};

/** Loose objects: fields a newer writer adds survive our rewrite of the file. */
const StoredKeySchema = v.variant("type", [
  /** Pasted by the user (`login --api-key`); logout only forgets it. */
  v.looseObject({ type: v.literal("manual"), ...KeyFields, note: v.optional(v.nullable(v.string())) }),
  /** Created by the browser login; logout also deletes it on the server. */
  v.looseObject({ type: v.literal("generated"), ...KeyFields }),
]);

const CredentialsFileSchema = v.looseObject({
  version: v.literal(CREDENTIALS_FILE_VERSION),
  default: v.nullable(v.string()),
  keys: v.record(v.string(), StoredKeySchema),
});

export type KeyDetails = v.InferOutput<typeof KeyDetailsSchema>;
export type StoredKey = v.InferOutput<typeof StoredKeySchema>;
export type StoredCredentials = v.InferOutput<typeof CredentialsFileSchema>;

/** A file with no keys, the starting point of the first login. */
export function emptyCredentials(): StoredCredentials {
  return { version: CREDENTIALS_FILE_VERSION, default: null, keys: {} };
}

/**
 * `TINKER_CREDENTIALS_FILE`, else `<home>/.tinker/credentials.json`; undefined without a home
 * directory (or any environment, as in a browser). `env` defaults to the process environment.
 */
export function credentialsFilePath(env: (name: string) => string | undefined = readEnv): string | undefined {
  const override = env(CREDENTIALS_FILE_ENV);
  if (override !== undefined) return override;
  const home = env("HOME") ?? env("USERPROFILE");
  return home === undefined ? undefined : `${home.replace(/[\\/]+$/, "")}/.tinker/credentials.json`;
}

/** The parsed file; undefined when it does not exist or cannot exist here. */
export async function readCredentialsFile(
  path = credentialsFilePath(),
): Promise<StoredCredentials | undefined> {
  if (path === undefined) return undefined;
  const fs = await fileSystem();
  const text = await fs?.read(path);
  return text === undefined ? undefined : parseCredentials(text, path);
}

/** Replaces the file atomically (directory 0700, file 0600). */
export async function writeCredentialsFile(
  credentials: StoredCredentials,
  path = credentialsFilePath(),
): Promise<void> {
  if (path === undefined) {
    throw new TinkerError(`No home directory to keep credentials in: set HOME or ${CREDENTIALS_FILE_ENV}.`);
  }
  const checked = parseCredentials(JSON.stringify(credentials), path);
  const fs = await fileSystem();
  if (!fs) throw new TinkerError("This runtime has no file system to keep credentials in.");
  await fs.replace(path, `${JSON.stringify(checked, null, 2)}\n`);
}

/** The default key and its id, if the file names one. */
export function defaultStoredKey(
  credentials: StoredCredentials | undefined,
): { id: string; key: StoredKey } | undefined {
  const id = credentials?.default;
  if (id === null || id === undefined) return undefined;
  const key = credentials?.keys[id];
  return key === undefined ? undefined : { id, key };
}

/** The default key's secret, read at call time (the last credential source, after env and command). */
export async function readStoredApiKey(path = credentialsFilePath()): Promise<string | undefined> {
  return defaultStoredKey(await readCredentialsFile(path))?.key.key;
}

/** Parses and checks the file; the errors name the field at fault, never a value from the file. */
export function parseCredentials(text: string, path: string): StoredCredentials {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's own message quotes the text around the error, which may be a key.
    throw corrupted(path, "it is not valid JSON");
  }
  const result = v.safeParse(CredentialsFileSchema, json);
  if (!result.success) {
    const issue = result.issues[0];
    const where = v.getDotPath(issue) ?? "(root)";
    throw corrupted(path, `${where}: expected ${issue.expected ?? "a different value"}`);
  }
  const { output } = result;
  if (output.default !== null && !Object.hasOwn(output.keys, output.default)) {
    throw corrupted(path, `"default" names ${JSON.stringify(output.default)}, which is not in "keys"`);
  }
  return output;
}

function corrupted(path: string, why: string): ValidationError {
  return new ValidationError(
    `The credentials file ${path} is not valid (${why}). Repair it, or delete it and log in again ` +
      "with `tinker-ts auth login --api-key -`.",
  );
}

/** The two operations the file needs from the runtime. */
interface PrivateFileSystem {
  /** The file's text; undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /** Writes a temporary 0600 file beside `path` and renames it over `path`; creates the directory 0700. */
  replace(path: string, text: string): Promise<void>;
}

function fileSystem(): Promise<PrivateFileSystem | undefined> {
  const g = globalThis as { Deno?: Partial<DenoFs>; process?: { versions?: { node?: string } } };
  if (typeof g.Deno?.readTextFile === "function") return Promise.resolve(denoFileSystem(g.Deno as DenoFs));
  if (g.process?.versions?.node) return loadNodeFileSystem();
  return Promise.resolve(undefined);
}

function directoryOf(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut <= 0 ? (cut === 0 ? path.slice(0, 1) : ".") : path.slice(0, cut);
}

/** Unique beside `path`, so two writers never share a temporary file. */
function temporaryPath(path: string): string {
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) =>
    b.toString(16).padStart(2, "0"),
  );
  return `${path}.${suffix.join("")}.tmp`;
}

function fileError(action: string, path: string, error: unknown): TinkerError {
  const code = (error as { code?: unknown; name?: unknown })?.code ?? (error as { name?: unknown })?.name;
  return new TinkerError(
    `Cannot ${action} the credentials file ${path}${code ? ` (${String(code)})` : ""}.`,
    {
      cause: error,
    },
  );
}

interface NodeFileHandle {
  writeFile(data: string, encoding: "utf8"): Promise<void>;
  chmod(mode: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

interface NodeFsPromises {
  readFile(path: string, encoding: "utf8"): Promise<string>;
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<unknown>;
  open(path: string, flags: string, mode: number): Promise<NodeFileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
}

const loadNodeFs = /* @__PURE__ */ lazyImport(async () => {
  // A variable specifier keeps bundlers for browsers and Workers from trying to resolve it.
  const specifier = "node:fs/promises";
  return (await import(/* @vite-ignore */ specifier)) as NodeFsPromises;
});

async function loadNodeFileSystem(): Promise<PrivateFileSystem | undefined> {
  let fs: NodeFsPromises;
  try {
    fs = await loadNodeFs();
  } catch {
    // A runtime that looks like Node but has no node:fs (an edge runtime's shim).
    return undefined;
  }
  return {
    async read(path) {
      try {
        return await fs.readFile(path, "utf8");
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") return undefined;
        throw fileError("read", path, error);
      }
    },
    async replace(path, text) {
      const temp = temporaryPath(path);
      try {
        await fs.mkdir(directoryOf(path), { recursive: true, mode: 0o700 });
        const handle = await fs.open(temp, "wx", 0o600);
        try {
          await handle.writeFile(text, "utf8");
          // The umask can only narrow the mode; this also covers file systems that ignore it.
          await handle.chmod(0o600);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fs.rename(temp, path);
      } catch (error) {
        await fs.rm(temp, { force: true }).catch(() => {});
        throw fileError("write", path, error);
      }
    },
  };
}

interface DenoFs {
  readTextFile(path: string): Promise<string>;
  writeTextFile(path: string, text: string, options: { createNew: boolean; mode: number }): Promise<void>;
  mkdir(path: string, options: { recursive: boolean; mode: number }): Promise<void>;
  chmod?(path: string, mode: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  errors: { NotFound: new () => Error; PermissionDenied: new () => Error; NotCapable?: new () => Error };
  build: { os: string };
}

function denoFileSystem(deno: DenoFs): PrivateFileSystem {
  const denied = (error: unknown) =>
    error instanceof deno.errors.PermissionDenied ||
    (deno.errors.NotCapable !== undefined && error instanceof deno.errors.NotCapable);
  return {
    async read(path) {
      try {
        return await deno.readTextFile(path);
      } catch (error) {
        // Without --allow-read the file is out of reach, as in a browser.
        if (error instanceof deno.errors.NotFound || denied(error)) return undefined;
        throw fileError("read", path, error);
      }
    },
    async replace(path, text) {
      const temp = temporaryPath(path);
      try {
        await deno.mkdir(directoryOf(path), { recursive: true, mode: 0o700 });
        await deno.writeTextFile(temp, text, { createNew: true, mode: 0o600 });
        if (deno.build.os !== "windows") await deno.chmod?.(temp, 0o600);
        await deno.rename(temp, path);
      } catch (error) {
        await deno.remove(temp).catch(() => {});
        throw fileError("write", path, error);
      }
    },
  };
}
