/** loadTokenizer's sources (Hub, baseUrl, loadFile) and cache, with a fetch that serves local files. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  clearTokenizerCache,
  DEFAULT_HUB_URL,
  hubFileUrl,
  loadTokenizer,
  TOKENIZER_CACHE_SIZE,
  TokenizerError,
  type TokenizerFetch,
} from "../src/lib/tokenizer/index.js";
import { tokenizerCacheSize } from "../src/lib/tokenizer/load.js";

const DIR = join(import.meta.dirname, "fixtures", "tokenizers", "tiny-bpe");
const TOKENIZER_JSON = await readFile(join(DIR, "tokenizer.json"), "utf8");
const TOKENIZER_CONFIG = await readFile(join(DIR, "tokenizer_config.json"), "utf8");
const HELLO_WORLD = [0, 283, 281];

interface Served {
  url: string;
  authorization: string | null;
  extra: string | null;
}

/** A fetch serving the tiny-bpe files for any repo, revision or base URL; `status` overrides by file name. */
function fakeHub(status: Record<string, number> = {}) {
  const requests: Served[] = [];
  const fetch: TokenizerFetch = async (request) => {
    requests.push({
      url: request.url,
      authorization: request.headers.get("authorization"),
      extra: request.headers.get("x-extra"),
    });
    if (request.signal.aborted) throw request.signal.reason;
    const file = request.url.slice(request.url.lastIndexOf("/") + 1);
    if (status[file] !== undefined) return new Response("error page", { status: status[file] });
    if (file === "tokenizer.json") return new Response(TOKENIZER_JSON);
    if (file === "tokenizer_config.json") return new Response(TOKENIZER_CONFIG);
    return new Response("Entry not found", { status: 404 });
  };
  return { fetch, requests, urls: () => requests.map((r) => r.url).sort() };
}

/** The TokenizerError a load fails with (fails the test if it does not). */
async function failure(loading: Promise<unknown>): Promise<TokenizerError> {
  const error = await loading.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenizerError);
  return error as TokenizerError;
}

beforeEach(() => {
  clearTokenizerCache();
  // The tests must not depend on the machine's Hugging Face settings.
  vi.stubEnv("HF_TOKEN", "");
  vi.stubEnv("HUGGING_FACE_HUB_TOKEN", "");
  vi.stubEnv("HF_ENDPOINT", "");
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe("hubFileUrl", () => {
  it("builds <hub>/<repo>/resolve/<revision>/<file>, quoting the revision whole", () => {
    expect(DEFAULT_HUB_URL).toBe("https://huggingface.co");
    expect(hubFileUrl(DEFAULT_HUB_URL, "Qwen/Qwen3-8B", "main", "tokenizer.json")).toBe(
      "https://huggingface.co/Qwen/Qwen3-8B/resolve/main/tokenizer.json",
    );
    expect(hubFileUrl("https://hub.example/", "org/m", "refs/pr/1", "tokenizer_config.json")).toBe(
      "https://hub.example/org/m/resolve/refs%2Fpr%2F1/tokenizer_config.json",
    );
    expect(hubFileUrl(DEFAULT_HUB_URL, "gpt2", "v1.0", "tokenizer.json")).toBe(
      "https://huggingface.co/gpt2/resolve/v1.0/tokenizer.json",
    );
  });
});

describe("loadTokenizer from the Hub", () => {
  it("downloads tokenizer.json and tokenizer_config.json at main, with the HF token", async () => {
    const hub = fakeHub();
    const tokenizer = await loadTokenizer("org/tiny", { fetch: hub.fetch, hfToken: "hf_secret" });
    expect(hub.urls()).toEqual([
      "https://huggingface.co/org/tiny/resolve/main/tokenizer.json",
      "https://huggingface.co/org/tiny/resolve/main/tokenizer_config.json",
    ]);
    expect(hub.requests.every((r) => r.authorization === "Bearer hf_secret")).toBe(true);
    expect(tokenizer.id).toBe("org/tiny");
    expect(tokenizer.revision).toBe("main");
    expect(tokenizer.encode("Hello world")).toEqual(HELLO_WORLD);
    expect(tokenizer.eosTokenId).toBe(1);
  });

  it("sends no Authorization header without a token, and reads HF_TOKEN and HF_ENDPOINT", async () => {
    const anonymous = fakeHub();
    await loadTokenizer("org/tiny", { fetch: anonymous.fetch });
    expect(anonymous.requests.every((r) => r.authorization === null)).toBe(true);

    vi.stubEnv("HF_TOKEN", "hf_from_env");
    vi.stubEnv("HF_ENDPOINT", "https://mirror.example/");
    const fromEnv = fakeHub();
    await loadTokenizer("org/tiny", { fetch: fromEnv.fetch });
    expect(fromEnv.urls()[0]).toBe("https://mirror.example/org/tiny/resolve/main/tokenizer.json");
    expect(fromEnv.requests.every((r) => r.authorization === "Bearer hf_from_env")).toBe(true);

    // Options beat the environment
    const explicit = fakeHub();
    await loadTokenizer("org/tiny", {
      fetch: explicit.fetch,
      hubUrl: "https://other.example",
      hfToken: "hf_opt",
      headers: { "X-Extra": "1" },
    });
    expect(explicit.urls()[0]).toBe("https://other.example/org/tiny/resolve/main/tokenizer.json");
    expect(explicit.requests.every((r) => r.authorization === "Bearer hf_opt" && r.extra === "1")).toBe(true);
  });

  it("uses Python's pinned revision for the Kimi ids unless a revision is given", async () => {
    const hub = fakeHub();
    const kimi = await loadTokenizer("moonshotai/Kimi-K2.5-Text-Only", { fetch: hub.fetch });
    expect(kimi.id).toBe("moonshotai/Kimi-K2.5");
    expect(kimi.revision).toBe("4d01dfe0332d63057c186e0b262165819efb6611");
    expect(hub.urls()[0]).toBe(
      "https://huggingface.co/moonshotai/Kimi-K2.5/resolve/4d01dfe0332d63057c186e0b262165819efb6611/tokenizer.json",
    );
    const other = fakeHub();
    await loadTokenizer("moonshotai/Kimi-K2-Thinking", { fetch: other.fetch, revision: "dev" });
    expect(other.urls()[0]).toBe(
      "https://huggingface.co/moonshotai/Kimi-K2-Thinking/resolve/dev/tokenizer.json",
    );
  });

  it("caches per hub, id and revision, and shares a load in progress", async () => {
    const hub = fakeHub();
    const [a, b] = await Promise.all([
      loadTokenizer("org/tiny", { fetch: hub.fetch }),
      loadTokenizer("org/tiny", { fetch: hub.fetch }),
    ]);
    expect(a).toBe(b);
    expect(await loadTokenizer("org/tiny", { fetch: hub.fetch, hfToken: "other token, same files" })).toBe(a);
    expect(hub.requests).toHaveLength(2);

    const v2 = await loadTokenizer("org/tiny", { fetch: hub.fetch, revision: "v2" });
    expect(v2).not.toBe(a);
    const other = await loadTokenizer("org/other", { fetch: hub.fetch });
    expect(other).not.toBe(a);
    const uncached = await loadTokenizer("org/tiny", { fetch: hub.fetch, cache: false });
    expect(uncached).not.toBe(a);
    expect(hub.requests).toHaveLength(8);

    clearTokenizerCache();
    expect(await loadTokenizer("org/tiny", { fetch: hub.fetch })).not.toBe(a);
    expect(hub.requests).toHaveLength(10);
  });

  it(`keeps at most ${TOKENIZER_CACHE_SIZE} tokenizers, evicting the least recently used`, async () => {
    const hub = fakeHub();
    const first = await loadTokenizer("org/t0", { fetch: hub.fetch });
    for (let i = 1; i < TOKENIZER_CACHE_SIZE; i++) await loadTokenizer(`org/t${i}`, { fetch: hub.fetch });
    expect(tokenizerCacheSize()).toBe(TOKENIZER_CACHE_SIZE);
    expect(await loadTokenizer("org/t0", { fetch: hub.fetch })).toBe(first); // now the most recent
    await loadTokenizer("org/one-more", { fetch: hub.fetch }); // evicts org/t1
    expect(tokenizerCacheSize()).toBe(TOKENIZER_CACHE_SIZE);
    expect(await loadTokenizer("org/t0", { fetch: hub.fetch })).toBe(first);
    const before = hub.requests.length;
    await loadTokenizer("org/t1", { fetch: hub.fetch });
    expect(hub.requests.length).toBe(before + 2);
  });

  it("does not cache a failed load", async () => {
    const failing = fakeHub({ "tokenizer.json": 500 });
    const error = await loadTokenizer("org/tiny", { fetch: failing.fetch }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenizerError);
    expect((error as TokenizerError).status).toBe(500);
    expect(tokenizerCacheSize()).toBe(0);
    const working = fakeHub();
    expect((await loadTokenizer("org/tiny", { fetch: working.fetch })).encode("Hello world")).toEqual(
      HELLO_WORLD,
    );
  });

  it("explains a missing tokenizer.json, gated repos and private Thinking Machines ids", async () => {
    const missing = await failure(
      loadTokenizer("org/none", {
        fetch: fakeHub({ "tokenizer.json": 404 }).fetch,
      }),
    );
    expect(missing).toBeInstanceOf(TokenizerError);
    expect(missing.status).toBe(404);
    expect(missing.tokenizerId).toBe("org/none");
    expect(missing.message).toContain("has no tokenizer.json");

    const kimi = await failure(
      loadTokenizer("moonshotai/Kimi-K2-Thinking", {
        fetch: fakeHub({ "tokenizer.json": 404 }).fetch,
      }),
    );
    expect(kimi.message).toContain("tiktoken");

    const gated = await failure(
      loadTokenizer("meta-llama/Llama-3.1-8B", {
        fetch: fakeHub({ "tokenizer.json": 401, "tokenizer_config.json": 401 }).fetch,
      }),
    );
    expect(gated.status).toBe(401);
    expect(gated.message).toContain("hfToken");

    const denied = await failure(
      loadTokenizer("meta-llama/Llama-3.1-8B", {
        fetch: fakeHub({ "tokenizer.json": 403 }).fetch,
        hfToken: "hf_x",
      }),
    );
    expect(denied.message).toContain("no access");

    const tml = await failure(
      loadTokenizer("TML/private", { fetch: fakeHub({ "tokenizer.json": 401 }).fetch }),
    );
    expect(tml.message).toContain("tml_tokenizers");
  });

  it("wraps network errors and aborts", async () => {
    const cause = new TypeError("fetch failed");
    const error = await failure(loadTokenizer("org/tiny", { fetch: () => Promise.reject(cause) }));
    expect(error).toBeInstanceOf(TokenizerError);
    expect(error.cause).toBe(cause);

    const controller = new AbortController();
    controller.abort(new Error("stop"));
    const aborted = await failure(
      loadTokenizer("org/tiny", {
        fetch: fakeHub().fetch,
        signal: controller.signal,
      }),
    );
    expect(aborted).toBeInstanceOf(TokenizerError);
    expect((aborted.cause as Error).message).toBe("stop");
  });

  it("rejects files that are not JSON objects", async () => {
    const fetch: TokenizerFetch = async (request) =>
      new Response(request.url.endsWith("tokenizer.json") ? "[1, 2]" : "{not json");
    const error = await failure(loadTokenizer("org/bad", { fetch }));
    expect(error).toBeInstanceOf(TokenizerError);
  });
});

describe("loadTokenizer from a base URL or loadFile", () => {
  it("reads <baseUrl>/<file> with the given fetch and headers", async () => {
    const hub = fakeHub();
    const tokenizer = await loadTokenizer("my-tokenizer", {
      fetch: hub.fetch,
      baseUrl: "https://files.example/tokenizers/tiny",
      headers: { "X-Extra": "yes" },
      hfToken: "not sent to a base URL",
    });
    expect(hub.urls()).toEqual([
      "https://files.example/tokenizers/tiny/tokenizer.json",
      "https://files.example/tokenizers/tiny/tokenizer_config.json",
    ]);
    expect(hub.requests.every((r) => r.authorization === null && r.extra === "yes")).toBe(true);
    expect(tokenizer.id).toBe("my-tokenizer");
    expect(tokenizer.revision).toBeUndefined();
    expect(tokenizer.encode("Hello world")).toEqual(HELLO_WORLD);
    // cached per base URL
    expect(
      await loadTokenizer("my-tokenizer", {
        fetch: hub.fetch,
        baseUrl: new URL("https://files.example/tokenizers/tiny/"),
      }),
    ).toBe(tokenizer);
    expect(hub.requests).toHaveLength(2);
  });

  it("reads files with loadFile, treating null and ENOENT as missing", async () => {
    const enoent = Object.assign(new Error("no such file"), { code: "ENOENT" });
    const loadFile = async (name: string) => {
      if (name === "tokenizer.json") return TOKENIZER_JSON;
      if (name === "tokenizer_config.json") throw enoent;
      return undefined;
    };
    const tokenizer = await loadTokenizer("local", { loadFile });
    expect(tokenizer.encode("Hello world")).toEqual(HELLO_WORLD);
    expect(tokenizer.chatTemplate).toBeNull();
    expect(await loadTokenizer("local", { loadFile })).toBe(tokenizer); // same function, same id: cached
    expect(await loadTokenizer("local", { loadFile: (name) => loadFile(name) })).not.toBe(tokenizer);

    const failing = await failure(
      loadTokenizer("local", {
        loadFile: async () => {
          throw new Error("permission denied");
        },
      }),
    );
    expect(failing.message).toContain("permission denied");

    const empty = await failure(loadTokenizer("local", { loadFile: async () => null }));
    expect(empty.message).toContain("no tokenizer.json");
  });

  it("rejects an empty id", async () => {
    await expect(loadTokenizer("", { loadFile: async () => TOKENIZER_JSON })).rejects.toThrow(TokenizerError);
  });
});
