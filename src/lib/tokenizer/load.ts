/**
 * `loadTokenizer(id, options)`: the built-in byte-level tokenizer, or a Hugging Face tokenizer whose
 * files come from the Hub, from a base URL, or from a caller's `loadFile` — over `fetch` only, so it
 * runs in browsers, Deno, Workers, Bun and Node. Loaded tokenizers are kept in a small LRU cache.
 */

import { readEnv } from "../../core/env.js";
import { ByteLevelTokenizer } from "./byte-level.js";
import { errorMessage, tokenizerFromJSON } from "./huggingface.js";
import {
  BYTE_LEVEL_TOKENIZER_ID,
  canonicalTokenizerId,
  isPrivateTokenizerId,
  pinnedTokenizerRevision,
} from "./resolve.js";
import type { Tokenizer } from "./types.js";
import { TokenizerError } from "./types.js";

export const DEFAULT_HUB_URL = "https://huggingface.co";

/** Number of tokenizers kept in memory, as Python's `lru_cache(maxsize=32)`. */
export const TOKENIZER_CACHE_SIZE = 32;

/** The files read for a Hugging Face tokenizer; only `tokenizer.json` must exist. */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] as const;
export type TokenizerFileName = (typeof TOKENIZER_FILES)[number];

/** Any fetch that takes a `Request`: the runtime's, a proxy's, a test double. */
export type TokenizerFetch = (request: Request) => Promise<Response>;

/**
 * Reads one file of the tokenizer (`tokenizer.json`, …). Return null or undefined, or throw an error
 * whose `code` is `"ENOENT"`, for a file that does not exist. Node example:
 * `(name) => readFile(join(dir, name), "utf8")`.
 */
export type TokenizerFileLoader = (
  name: TokenizerFileName,
) => Promise<string | Uint8Array | ArrayBuffer | null | undefined>;

export interface LoadTokenizerOptions {
  /**
   * Hub revision (branch, tag or commit). Default: the revision Python pins for the id (the Kimi
   * tokenizers, see `PINNED_TOKENIZER_REVISIONS`), else `main`.
   */
  revision?: string;
  /** Hugging Face access token, for gated or private repos. Default: `HF_TOKEN` (where there is an environment). */
  hfToken?: string;
  /** The Hub. Default: `HF_ENDPOINT`, else https://huggingface.co. */
  hubUrl?: string;
  /** Read the files from `<baseUrl>/tokenizer.json` … instead of the Hub (a directory served over HTTP). */
  baseUrl?: string | URL;
  /** Read the files with this function instead of the Hub (local files, a bundle, a cache). */
  loadFile?: TokenizerFileLoader;
  /** The fetch for the Hub and `baseUrl`. Default: `globalThis.fetch`. Not the Tinker client's fetch. */
  fetch?: TokenizerFetch;
  /** Extra headers for the Hub or `baseUrl` requests. */
  headers?: Record<string, string>;
  /** Aborts the download. A load shared through the cache is aborted for every caller waiting on it. */
  signal?: AbortSignal;
  /** Keep the tokenizer in (and take it from) the in-memory LRU cache. Default true. */
  cache?: boolean;
}

const BYTE_LEVEL = new ByteLevelTokenizer();

/**
 * Loads the tokenizer `id` (as returned by `resolveTokenizerId`).
 *
 * `tinker-ts/byte-level` is built in (no I/O). Any other id is a Hugging Face tokenizer: its
 * `tokenizer.json`, `tokenizer_config.json` (optional) and `chat_template.jinja` (optional, read only
 * when the config has no chat template) are read from `loadFile` if given, else from `baseUrl` if
 * given, else from the Hub at `<hubUrl>/<id>/resolve/<revision>/<file>`.
 */
export function loadTokenizer(id: string, options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  const tokenizerId = canonicalTokenizerId(id);
  if (tokenizerId === BYTE_LEVEL_TOKENIZER_ID) return Promise.resolve(BYTE_LEVEL);
  if (tokenizerId === "") return Promise.reject(new TokenizerError("loadTokenizer needs a tokenizer id"));
  const source = fileSource(tokenizerId, options);
  if (options.cache === false) return loadFromSource(tokenizerId, source);
  const key = `${source.key}\u0000${tokenizerId}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const loading = loadFromSource(tokenizerId, source);
  cache.set(key, loading);
  // A failed load is not kept: the next call tries again.
  loading.catch(() => cache.deleteIf(key, loading));
  return loading;
}

/** Empties the tokenizer cache. */
export function clearTokenizerCache(): void {
  cache.clear();
}

interface FileSource {
  /** Identifies the source in the cache key. */
  key: string;
  /** The Hub revision, when the files come from the Hub. */
  revision: string | undefined;
  /** A file's text, or null when it does not exist. */
  read(name: TokenizerFileName): Promise<string | null>;
  /** Says where tokenizer.json was looked for, for the error when it is missing. */
  describe(): string;
  /** The HTTP status that means "missing" (404), when the files come over HTTP. */
  missingStatus: number | undefined;
}

async function loadFromSource(id: string, source: FileSource): Promise<Tokenizer> {
  const [tokenizerText, configText] = await Promise.all([
    source.read("tokenizer.json"),
    source.read("tokenizer_config.json"),
  ]);
  if (tokenizerText === null) {
    throw new TokenizerError(
      `tokenizer ${id} has no tokenizer.json (${source.describe()})${missingHint(id)}`,
      { tokenizerId: id, status: source.missingStatus },
    );
  }
  const tokenizerJson = parseJsonObject(tokenizerText, id, "tokenizer.json");
  const tokenizerConfig =
    configText === null ? null : parseJsonObject(configText, id, "tokenizer_config.json");
  const chatTemplateJinja =
    tokenizerConfig?.chat_template === undefined ? await source.read("chat_template.jinja") : null;
  return tokenizerFromJSON(
    { tokenizerJson, tokenizerConfig, chatTemplateJinja },
    { id, revision: source.revision },
  );
}

function parseJsonObject(text: string, id: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(`${name} of tokenizer ${id} is not valid JSON: ${errorMessage(error)}`, {
      tokenizerId: id,
      cause: error,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenizerError(`${name} of tokenizer ${id} is not a JSON object`, { tokenizerId: id });
  }
  return value as Record<string, unknown>;
}

function missingHint(id: string): string {
  if (isPrivateTokenizerId(id)) {
    return (
      `; the Python SDK loads ${id} from Thinking Machines' private tml_tokenizers package: ` +
      "supply its files with the loadFile or baseUrl option"
    );
  }
  if (id.startsWith("moonshotai/Kimi-K2")) {
    return "; the Kimi K2 tokenizers are tiktoken-based (remote code) and are not supported by tinker-ts";
  }
  return "";
}

// --- where the files come from ---

const loaderIds = new WeakMap<TokenizerFileLoader, number>();
let nextLoaderId = 0;

function fileSource(id: string, options: LoadTokenizerOptions): FileSource {
  if (options.loadFile) {
    const loadFile = options.loadFile;
    let loaderId = loaderIds.get(loadFile);
    if (loaderId === undefined) {
      loaderId = nextLoaderId++;
      loaderIds.set(loadFile, loaderId);
    }
    return {
      key: `loadFile#${loaderId}`,
      revision: undefined,
      read: (name) => readWithLoader(loadFile, name, id),
      describe: () => "loadFile returned nothing for it",
      missingStatus: undefined,
    };
  }
  const doFetch: TokenizerFetch = options.fetch ?? ((request) => globalThis.fetch(request));
  if (options.baseUrl !== undefined) {
    const base = String(options.baseUrl);
    const dir = base.endsWith("/") ? base : `${base}/`;
    return {
      key: `url:${dir}`,
      revision: undefined,
      read: (name) => fetchText(doFetch, new URL(name, dir).href, options.headers ?? {}, options.signal, id),
      describe: () => `not found under ${dir}`,
      missingStatus: 404,
    };
  }
  const hubUrl = (options.hubUrl ?? readEnv("HF_ENDPOINT") ?? DEFAULT_HUB_URL).replace(/\/+$/, "");
  const revision = options.revision ?? pinnedTokenizerRevision(id) ?? "main";
  const token = options.hfToken ?? readEnv("HF_TOKEN") ?? readEnv("HUGGING_FACE_HUB_TOKEN");
  const headers: Record<string, string> = { ...options.headers };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  return {
    key: `hub:${hubUrl}@${revision}`,
    revision,
    read: (name) => fetchText(doFetch, hubFileUrl(hubUrl, id, revision, name), headers, options.signal, id),
    describe: () => `not found on the Hub at revision ${revision}`,
    missingStatus: 404,
  };
}

/** `<hub>/<id>/resolve/<revision>/<file>`, the revision quoted whole as huggingface_hub does (`refs%2Fpr%2F1`). */
export function hubFileUrl(hubUrl: string, id: string, revision: string, name: string): string {
  const repo = id
    .split("/")
    .map((part) => encodeURIComponent(part))
    .join("/");
  return `${hubUrl.replace(/\/+$/, "")}/${repo}/resolve/${encodeURIComponent(revision)}/${name}`;
}

async function fetchText(
  doFetch: TokenizerFetch,
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  id: string,
): Promise<string | null> {
  let response: Response;
  try {
    response = await doFetch(new Request(url, { headers, signal }));
  } catch (error) {
    throw new TokenizerError(`cannot download ${url} for tokenizer ${id}: ${errorMessage(error)}`, {
      tokenizerId: id,
      cause: error,
    });
  }
  if (response.ok) {
    try {
      return await response.text();
    } catch (error) {
      throw new TokenizerError(`cannot download ${url} for tokenizer ${id}: ${errorMessage(error)}`, {
        tokenizerId: id,
        cause: error,
      });
    }
  }
  await response.body?.cancel().catch(() => {});
  if (response.status === 404) return null;
  let message = `cannot download ${url} for tokenizer ${id}: HTTP ${response.status}`;
  if (response.status === 401 || response.status === 403) {
    message +=
      "Authorization" in headers
        ? "; the token given has no access to this repo (gated repos need their terms accepted on the Hub)"
        : "; the repo may be gated or private: pass hfToken (or set HF_TOKEN) with access to it";
    message += missingHint(id);
  }
  throw new TokenizerError(message, { tokenizerId: id, status: response.status });
}

async function readWithLoader(loadFile: TokenizerFileLoader, name: TokenizerFileName, id: string) {
  let content: Awaited<ReturnType<TokenizerFileLoader>>;
  try {
    content = await loadFile(name);
  } catch (error) {
    if (typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ENOENT")
      return null;
    throw new TokenizerError(`loadFile("${name}") failed for tokenizer ${id}: ${errorMessage(error)}`, {
      tokenizerId: id,
      cause: error,
    });
  }
  if (content === null || content === undefined) return null;
  return typeof content === "string" ? content : new TextDecoder().decode(content);
}

// --- the cache ---

/** A least-recently-used map of loads in progress or done. */
class LruCache<V> {
  readonly #entries = new Map<string, V>();
  constructor(readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  /** Deletes `key` only while it still maps to `value`. */
  deleteIf(key: string, value: V): void {
    if (this.#entries.get(key) === value) this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

const cache = new LruCache<Promise<Tokenizer>>(TOKENIZER_CACHE_SIZE);

/** @internal For tests: the number of cached tokenizers. */
export function tokenizerCacheSize(): number {
  return cache.size;
}
