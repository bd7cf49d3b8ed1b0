/**
 * The stored-credentials file (UPSTREAM.md A1) and its place in credential resolution: the file
 * module on a real file system (modes, atomic replace, round trip, clear errors that quote nothing
 * from the file), and the SDK against the real local backend with the key taken from the file only
 * when neither TINKER_API_KEY nor a dynamic credential is there, read at the first call.
 */
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CREDENTIALS_FILE_ENV,
  credentialsFilePath,
  emptyCredentials,
  readCredentialsFile,
  readStoredApiKey,
  type StoredCredentials,
  writeCredentialsFile,
} from "../src/core/auth/credentials-file.js";
import { AuthenticationError, ServiceClient, ValidationError } from "../src/index.js";
import { createLocalTinker, type LocalTinkerOptions } from "../src/local/index.js";
import { closeAfterEach, recordingFetch } from "./helpers.js";

const STORED_KEY = "tml-stored-secret-0123456789";
const ENV_KEY = "tml-env-secret-0123456789";
const COMMAND_KEY = "tml-command-secret-0123456789";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tinker-ts-credentials-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let counter = 0;
/** A fresh path in a directory that does not exist yet. */
function freshPath(): string {
  return join(work, `case-${++counter}`, ".tinker", "credentials.json");
}

function withKey(id: string, key: string, type: "manual" | "generated" = "manual"): StoredCredentials {
  return { version: 1, default: id, keys: { [id]: { type, key, name: `name of ${id}` } } };
}

/** Whatever an error shows: message, string form and stack. */
function errorText(error: unknown): string {
  return error instanceof Error ? `${error.message}\n${String(error)}\n${error.stack}` : String(error);
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("the credentials file", () => {
  it("round-trips, keeping fields it does not know", async () => {
    const path = freshPath();
    const credentials = {
      version: 1,
      default: "key-a",
      keys: {
        "key-a": {
          type: "manual",
          key: STORED_KEY,
          name: "laptop",
          note: "for tests",
          details: { org_details: { name: "Org" }, user_details: { email: "a@b.c" }, extra: 1 },
        },
        "key-b": { type: "generated", key: "tml-other", name: "ci", details: null, created: "today" },
      },
      written_by: "a newer client",
    } as StoredCredentials;
    await writeCredentialsFile(credentials, path);
    expect(await readCredentialsFile(path)).toEqual(credentials);
    expect(JSON.parse(await readFile(path, "utf8"))).toEqual(credentials);
    expect(await readStoredApiKey(path)).toBe(STORED_KEY);
  });

  it("creates the directory 0700 and the file 0600, also over a wider existing file", async () => {
    const path = freshPath();
    const previousUmask = process.umask(0);
    try {
      await writeCredentialsFile(emptyCredentials(), path);
    } finally {
      process.umask(previousUmask);
    }
    expect((await stat(join(path, ".."))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const wide = join(work, "wide.json");
    await writeFile(wide, "{}", { mode: 0o644 });
    await writeCredentialsFile(withKey("k", STORED_KEY), wide);
    expect((await stat(wide)).mode & 0o777).toBe(0o600);
  });

  it("replaces the file by rename: concurrent readers never see half a file, no temporary file stays", async () => {
    const path = freshPath();
    const big = (n: number): StoredCredentials => ({
      version: 1,
      default: "key-0",
      keys: Object.fromEntries(
        Array.from({ length: 200 + n }, (_, i) => [
          `key-${i}`,
          { type: "manual", key: `tml-${n}-${i}`, name: "x".repeat(200) },
        ]),
      ),
    });
    await writeCredentialsFile(big(0), path);
    const original = await readFile(path, "utf8");
    // Held open, the first file keeps its content if it is replaced, but not if it is rewritten.
    const firstFile = await open(path, "r");
    let reads = 0;
    const writes = (async () => {
      for (let n = 1; n <= 30; n++) await writeCredentialsFile(big(n), path);
    })();
    let writing = true;
    void writes.finally(() => {
      writing = false;
    });
    while (writing) {
      // Throws (a ValidationError) if a read ever caught a partly written file.
      const read = await readCredentialsFile(path);
      expect(read?.keys["key-0"]).toBeDefined();
      reads++;
    }
    await writes;
    expect(reads).toBeGreaterThan(0);
    expect(await firstFile.readFile("utf8")).toBe(original);
    await firstFile.close();
    expect(Object.keys((await readCredentialsFile(path))!.keys)).toHaveLength(230);
    expect(await readdir(join(path, ".."))).toEqual(["credentials.json"]);
  });

  it("reports a failed write clearly and leaves no temporary file", async () => {
    const path = freshPath();
    // A directory where the file should be: the final rename fails.
    await mkdir(path, { recursive: true });
    const error = await caught(writeCredentialsFile(withKey("k", STORED_KEY), path));
    expect(errorText(error)).toMatch(/Cannot write the credentials file .*credentials\.json/);
    expect(errorText(error)).not.toContain(STORED_KEY);
    expect(await readdir(join(path, ".."))).toEqual(["credentials.json"]);
  });

  it("counts a missing file, or a missing home, as no stored key", async () => {
    expect(await readCredentialsFile(freshPath())).toBeUndefined();
    expect(await readStoredApiKey(freshPath())).toBeUndefined();
    expect(await readCredentialsFile(undefined)).toBeUndefined();
    const noDefault = freshPath();
    await writeCredentialsFile({ ...withKey("k", STORED_KEY), default: null }, noDefault);
    expect(await readStoredApiKey(noDefault)).toBeUndefined();
  });

  it("refuses a corrupted file with an error naming the file and the field, never its content", async () => {
    const path = freshPath();
    await mkdir(join(path, ".."), { recursive: true });
    const cases: [string, RegExp][] = [
      [
        `{"version": 1, "default": "k", "keys": {"k": {"type": "manual", "key": ${STORED_KEY}`,
        /not valid JSON/,
      ],
      [JSON.stringify({ version: 2, default: null, keys: {} }), /version: expected 1/],
      [
        JSON.stringify({
          version: 1,
          default: "k",
          keys: { k: { type: "stolen", key: STORED_KEY, name: "n" } },
        }),
        /keys\.k\.type: expected/,
      ],
      [
        JSON.stringify({ version: 1, default: "k", keys: { k: { type: "manual", name: "n" } } }),
        /keys\.k\.key/,
      ],
      [
        JSON.stringify({ ...withKey("k", STORED_KEY), default: "missing" }),
        /"missing", which is not in "keys"/,
      ],
    ];
    for (const [text, why] of cases) {
      await writeFile(path, text);
      const error = await caught(readCredentialsFile(path));
      expect(error).toBeInstanceOf(ValidationError);
      expect(errorText(error)).toContain(path);
      expect(errorText(error)).toMatch(why);
      expect(errorText(error)).toMatch(/tinker-ts auth login/);
      expect(errorText(error)).not.toContain(STORED_KEY.slice(4));
    }
  });

  it("lives at TINKER_CREDENTIALS_FILE, else under the home directory", () => {
    const env = (values: Record<string, string>) => (name: string) => values[name];
    expect(credentialsFilePath(env({ HOME: "/home/u" }))).toBe("/home/u/.tinker/credentials.json");
    expect(credentialsFilePath(env({ HOME: "/home/u/" }))).toBe("/home/u/.tinker/credentials.json");
    expect(credentialsFilePath(env({ USERPROFILE: "C:\\Users\\u" }))).toBe(
      "C:\\Users\\u/.tinker/credentials.json",
    );
    expect(credentialsFilePath(env({ HOME: "/home/u", [CREDENTIALS_FILE_ENV]: "/etc/x.json" }))).toBe(
      "/etc/x.json",
    );
    expect(credentialsFilePath(env({}))).toBeUndefined();
  });
});

describe("credential resolution with a stored key", () => {
  const cleanup = closeAfterEach();
  let file: string;

  beforeEach(async () => {
    file = freshPath();
    await writeCredentialsFile(withKey("key-stored", STORED_KEY), file);
    vi.stubEnv(CREDENTIALS_FILE_ENV, file);
    vi.stubEnv("TINKER_API_KEY", undefined);
    vi.stubEnv("TINKER_CREDENTIAL_CMD", undefined);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  /** A client of a backend that accepts only the test's keys; every X-API-Key sent is recorded. */
  function setup(
    local: LocalTinkerOptions = {},
    client: ConstructorParameters<typeof ServiceClient>[0] = {},
  ) {
    const backend = createLocalTinker({ apiKeys: [STORED_KEY, ENV_KEY, COMMAND_KEY], ...local });
    const recorder = recordingFetch(backend.fetch);
    const service = new ServiceClient({ baseURL: "http://local.tinker", fetch: recorder.fetch, ...client });
    cleanup.add(async () => {
      await service.close();
      await backend.close();
    });
    const keysSent = () => [...new Set(recorder.requests.map((r) => r.headers.get("x-api-key")))];
    return { service, requests: recorder.requests, keysSent };
  }

  it("uses the stored default key when nothing else is configured", async () => {
    const t = setup();
    await t.service.getServerCapabilities();
    expect(t.keysSent()).toEqual([STORED_KEY]);
  });

  it("exchanges the stored key for a JWT on a JWT server", async () => {
    const t = setup({ jwt: {} });
    await t.service.getServerCapabilities();
    const exchange = t.requests.find((r) => r.path.endsWith("/auth/token"))!;
    expect(exchange.headers.get("x-api-key")).toBe(STORED_KEY);
    expect(t.requests.at(-1)!.headers.get("x-api-key")).toMatch(/^eyJ/);
  });

  it("prefers TINKER_API_KEY and the apiKey option, without reading the file", async () => {
    // A corrupted file would fail the call if it were read.
    await writeFile(file, "not json");
    vi.stubEnv("TINKER_API_KEY", ENV_KEY);
    const fromEnv = setup();
    await fromEnv.service.getServerCapabilities();
    expect(fromEnv.keysSent()).toEqual([ENV_KEY]);
    vi.stubEnv("TINKER_API_KEY", undefined);
    const fromOption = setup({}, { apiKey: COMMAND_KEY });
    await fromOption.service.getServerCapabilities();
    expect(fromOption.keysSent()).toEqual([COMMAND_KEY]);
  });

  it("prefers TINKER_CREDENTIAL_CMD and credentialProvider, without reading the file", async () => {
    await writeFile(file, "not json");
    vi.stubEnv("TINKER_CREDENTIAL_CMD", `echo ${COMMAND_KEY}`);
    const fromCommand = setup({ jwt: {} });
    await fromCommand.service.getServerCapabilities();
    expect(fromCommand.keysSent()[0]).toBe(COMMAND_KEY);
    expect(fromCommand.keysSent()).not.toContain(STORED_KEY);
    vi.stubEnv("TINKER_CREDENTIAL_CMD", undefined);
    const fromProvider = setup({ jwt: {} }, { credentialProvider: () => ENV_KEY });
    await fromProvider.service.getServerCapabilities();
    expect(fromProvider.keysSent()[0]).toBe(ENV_KEY);
  });

  it("reads the file at the first call, not at construction, and again after a failure", async () => {
    await rm(file);
    const t = setup();
    // Nothing stored yet: a clear error, and nothing sent.
    const missing = await caught(t.service.getServerCapabilities());
    expect(missing).toBeInstanceOf(ValidationError);
    expect(errorText(missing)).toMatch(/TINKER_API_KEY.*TINKER_CREDENTIAL_CMD.*tinker-ts auth login/s);
    expect(t.requests).toHaveLength(0);
    // A login in between is picked up by the same client.
    await writeCredentialsFile(withKey("key-stored", STORED_KEY), file);
    await t.service.getServerCapabilities();
    expect(t.keysSent()).toEqual([STORED_KEY]);
  });

  it("constructs with a corrupted file and reports it at the first call, quoting nothing from it", async () => {
    await writeFile(file, `{"version": 1, "default": "k", "keys": {"k": ${STORED_KEY}}}`);
    const t = setup();
    const error = await caught(t.service.getServerCapabilities());
    expect(error).toBeInstanceOf(ValidationError);
    expect(errorText(error)).toContain(file);
    expect(errorText(error)).not.toContain(STORED_KEY);
    expect(t.requests).toHaveLength(0);
  });

  it("holds a stored key to the API key form, without echoing it", async () => {
    await writeCredentialsFile(withKey("k", "sk-stored-secret-value"), file);
    const t = setup();
    const error = await caught(t.service.getServerCapabilities());
    expect(error).toBeInstanceOf(ValidationError);
    expect(errorText(error)).toMatch(/credentials file must start with the 'tml-' prefix/);
    expect(errorText(error)).not.toContain("sk-stored-secret-value");
  });

  it("sends a stored key the server refuses, and the refusal does not echo it", async () => {
    await writeCredentialsFile(withKey("k", "tml-revoked-secret-value"), file);
    const t = setup({}, { maxRetries: 0 });
    const error = await caught(t.service.getServerCapabilities());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(errorText(error)).not.toContain("tml-revoked-secret-value");
  });
});
