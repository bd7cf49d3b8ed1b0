/**
 * `tinker-ts auth login|logout|status` end to end: the CLI's `main` in-process (and once as a child
 * process reading the key from a pipe) against the local backend served over HTTP on loopback, with
 * a home directory of its own. The backend accepts only the test's keys, so a wrong key is really
 * refused and a revoked one really stops working. No key may appear in any output.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type CliIO, main } from "../src/cli/app.js";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { CREDENTIALS_FILE_ENV, writeCredentialsFile } from "../src/core/auth/credentials-file.js";
import { ServiceClient } from "../src/index.js";

const GOOD_KEY = "tml-auth-cli-good-0123456789";
const ENV_KEY = "tml-auth-cli-env-0123456789";
const GENERATED_KEY = "tml-auth-cli-generated-0123456789";
const WRONG_KEY = "tml-auth-cli-wrong-0123456789";
const SECRETS = [GOOD_KEY, ENV_KEY, GENERATED_KEY, WRONG_KEY];
const ACCEPTED = [GOOD_KEY, ENV_KEY, GENERATED_KEY];

let server: RunningServer;
let jwtServer: RunningServer;
let work: string;
let home: string;
/** Every byte the CLI printed, checked for keys at the end. */
const printed: string[] = [];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(
  args: string[],
  options: { env?: Record<string, string | undefined>; secret?: string; stdinIsTTY?: boolean } = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text), isTTY: false },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    env: { HOME: home, TINKER_BASE_URL: server.url, ...options.env },
    cwd: work,
    stdinIsTTY: options.stdinIsTTY ?? false,
    readSecret: async (prompt) => {
      stderr += prompt;
      if (options.secret === undefined) throw new Error("the test gave no stdin");
      return options.secret;
    },
  };
  const code = await main(args, io);
  printed.push(stdout, stderr);
  for (const secret of SECRETS) {
    expect(stdout).not.toContain(secret);
    expect(stderr).not.toContain(secret);
  }
  return { code, stdout, stderr };
}

const credentialsFile = () => join(home, ".tinker", "credentials.json");
const stored = async () => JSON.parse(await readFile(credentialsFile(), "utf8"));

/** `GET /api/v1/auth/apikey/me` as the official CLI sends it. */
async function keyInfo(key: string, base = server.url): Promise<Response> {
  return fetch(`${base}/api/v1/auth/apikey/me`, { headers: { "X-API-Key": key } });
}

/** A loopback URL where nothing listens (a port just released). */
async function closedPortUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  server = await serve({ port: 0, host: "127.0.0.1", apiKeys: ACCEPTED, longPollMs: 1_000 });
  jwtServer = await serve({ port: 0, host: "127.0.0.1", apiKeys: ACCEPTED, jwt: {}, longPollMs: 1_000 });
  work = await mkdtemp(join(tmpdir(), "tinker-ts-auth-cli-"));
});

beforeEach(async () => {
  home = await mkdtemp(join(work, "home-"));
});

afterAll(async () => {
  await server?.close();
  await jwtServer?.close();
  if (work) await rm(work, { recursive: true, force: true });
  const all = printed.join("\n");
  for (const secret of SECRETS) expect(all).not.toContain(secret);
});

describe("the local backend's key endpoints", () => {
  it("describes an accepted key, refuses others, and offers no browser login", async () => {
    const me = await keyInfo(GOOD_KEY);
    expect(me.status).toBe(200);
    const body = (await me.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      key_id: expect.stringMatching(/^key-[0-9a-f]{16}$/),
      name: expect.any(String),
    });
    expect(JSON.stringify(body)).not.toContain(GOOD_KEY);
    expect(((await (await keyInfo(GOOD_KEY)).json()) as { key_id: string }).key_id).toBe(body.key_id);
    expect(((await (await keyInfo(ENV_KEY)).json()) as { key_id: string }).key_id).not.toBe(body.key_id);
    // The key itself, not a JWT, even on a JWT server.
    expect((await keyInfo(GOOD_KEY, jwtServer.url)).status).toBe(200);
    const wrong = await keyInfo(WRONG_KEY);
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain(WRONG_KEY);
    const config = await fetch(`${server.url}/api/unauthed/auth-config`);
    expect(await config.json()).toEqual({ clientId: null });
  });
});

describe("auth login", () => {
  it("checks the key with the server, stores it as the default (0600 in a 0700 directory)", async () => {
    const login = await cli(["auth", "login", "--api-key", GOOD_KEY]);
    expect(login.code, login.stderr).toBe(0);
    const { key_id: keyId, name } = (await (await keyInfo(GOOD_KEY)).json()) as {
      key_id: string;
      name: string;
    };
    expect(login.stdout).toContain(keyId);
    expect(login.stdout).toContain(credentialsFile());
    expect(await stored()).toMatchObject({
      version: 1,
      default: keyId,
      keys: {
        [keyId]: { type: "manual", key: GOOD_KEY, name, details: { user_details: expect.any(Object) } },
      },
    });
    expect((await stat(credentialsFile())).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, ".tinker"))).mode & 0o777).toBe(0o700);
  });

  it("reads the key from stdin with --api-key -, as JSON output too", async () => {
    const login = await cli(["auth", "login", "--api-key", "-", "--format", "json"], {
      secret: `${GOOD_KEY}\n`,
    });
    expect(login.code, login.stderr).toBe(0);
    const output = JSON.parse(login.stdout);
    expect(output).toMatchObject({
      key_id: expect.any(String),
      key: "tml-…6789",
      credentials_file: credentialsFile(),
    });
    expect((await stored()).keys[output.key_id].key).toBe(GOOD_KEY);
  });

  it("refuses a key the server refuses, storing nothing", async () => {
    const login = await cli(["auth", "login", "--api-key", WRONG_KEY]);
    expect(login.code).toBe(1);
    expect(login.stderr).toMatch(/^Error: the server refused this API key \(HTTP 401: invalid API key\)/);
    expect(existsSync(credentialsFile())).toBe(false);
    const fromStdin = await cli(["auth", "login", "--api-key", "-"], { secret: WRONG_KEY });
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stderr).toMatch(/refused/);
    expect(existsSync(credentialsFile())).toBe(false);
  });

  it("refuses what is not an API key, or nothing, before asking the server", async () => {
    const notAKey = await cli(["auth", "login", "--api-key", "-"], { secret: "sk-auth-cli-secret" });
    expect(notAKey.code).toBe(1);
    expect(notAKey.stderr).toMatch(/API keys start with 'tml-'/);
    expect(notAKey.stderr).not.toContain("sk-auth-cli-secret");
    const empty = await cli(["auth", "login", "--api-key", "-"], { secret: "  \n" });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/no API key given/);
    const down = await closedPortUrl();
    const unreachable = await cli(["auth", "login", "--api-key", GOOD_KEY, "--base-url", down]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot reach ${down}: connect ECONNREFUSED`);
    expect(existsSync(credentialsFile())).toBe(false);
  });

  it("explains that the browser login is not available, and how to give a key", async () => {
    const login = await cli(["auth", "login"]);
    expect(login.code).toBe(1);
    expect(login.stderr).toMatch(/browser login is not available/);
    expect(login.stderr).toMatch(/tinker-ts auth login --api-key -/);
    expect(existsSync(credentialsFile())).toBe(false);
  });

  it("refuses while a default key is stored, and says how to log out", async () => {
    expect((await cli(["auth", "login", "--api-key", GOOD_KEY])).code).toBe(0);
    const before = await readFile(credentialsFile(), "utf8");
    const again = await cli(["auth", "login", "--api-key", ENV_KEY]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already logged in/);
    expect(again.stderr).toMatch(/tinker-ts auth logout/);
    expect(await readFile(credentialsFile(), "utf8")).toBe(before);
  });

  it("notes when TINKER_API_KEY will be used before the stored key", async () => {
    const login = await cli(["auth", "login", "--api-key", GOOD_KEY], { env: { TINKER_API_KEY: ENV_KEY } });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toMatch(/TINKER_API_KEY is set and is used before the stored key/);
  });
});

describe("auth status", () => {
  it("shows the stored key masked and checks access once", async () => {
    await cli(["auth", "login", "--api-key", GOOD_KEY]);
    const status = await cli(["auth", "status"]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/Credential: stored key/);
    expect(status.stdout).toMatch(/tml-…6789/);
    expect(status.stdout).toMatch(/Access\s+ok \(HTTP 200\)/);
    const json = JSON.parse((await cli(["auth", "status", "-f", "json"])).stdout);
    expect(json).toMatchObject({
      source: "stored",
      key: "tml-…6789",
      type: "manual",
      credentials_file: credentialsFile(),
      access: { ok: true, status: 200 },
    });
  });

  it("honours a JWT server's exchange", async () => {
    await cli(["auth", "login", "--api-key", GOOD_KEY]);
    const status = await cli(["auth", "status", "-f", "json"], { env: { TINKER_BASE_URL: jwtServer.url } });
    expect(JSON.parse(status.stdout).access).toEqual({ ok: true, status: 200, detail: expect.any(String) });
  });

  it("names TINKER_API_KEY, --api-key or the credential command when they come first", async () => {
    await cli(["auth", "login", "--api-key", GOOD_KEY]);
    const fromEnv = JSON.parse(
      (await cli(["auth", "status", "-f", "json"], { env: { TINKER_API_KEY: ENV_KEY } })).stdout,
    );
    expect(fromEnv).toMatchObject({ source: "env", key: "tml-…6789", access: { ok: true } });
    expect(fromEnv.key_id).toBeUndefined();
    const fromOption = await cli(["auth", "status", "-f", "json", "--api-key", WRONG_KEY]);
    expect(fromOption.code).toBe(1);
    expect(JSON.parse(fromOption.stdout)).toMatchObject({
      source: "option",
      access: { ok: false, status: 401 },
    });
    const fromCommand = await cli(["auth", "status", "-f", "json"], {
      env: { TINKER_CREDENTIAL_CMD: `echo ${ENV_KEY}`, TINKER_BASE_URL: jwtServer.url },
    });
    expect(JSON.parse(fromCommand.stdout)).toMatchObject({
      source: "command",
      key: null,
      access: { ok: true },
    });
  });

  it("reports no credential, and an unreachable server after one attempt", async () => {
    const none = await cli(["auth", "status"]);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/Not logged in/);
    expect(none.stdout).toMatch(/not checked/);
    await cli(["auth", "login", "--api-key", GOOD_KEY]);
    const started = Date.now();
    const down = await cli(["auth", "status", "-f", "json"], {
      env: { TINKER_BASE_URL: await closedPortUrl() },
    });
    // The SDK's retry loop would wait for minutes.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout).access).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/cannot reach/),
    });
  });

  it("reports a corrupted file clearly, without its content", async () => {
    await cli(["auth", "login", "--api-key", GOOD_KEY]);
    await writeFile(credentialsFile(), `{"version": 1, "keys": ${GOOD_KEY}`);
    const status = await cli(["auth", "status"]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/credentials file .* is not valid \(it is not valid JSON\)/);
  });
});

describe("auth logout", () => {
  it("removes the stored key; the key stays valid on the server", async () => {
    await cli(["auth", "login", "--api-key", GOOD_KEY]);
    const logout = await cli(["auth", "logout"]);
    expect(logout.code, logout.stderr).toBe(0);
    expect(logout.stdout).toMatch(/Logged out: removed the stored key key-/);
    expect(logout.stdout).not.toMatch(/deleted it on the server/);
    expect(await stored()).toEqual({ version: 1, default: null, keys: {} });
    expect((await keyInfo(GOOD_KEY)).status).toBe(200);
    expect((await cli(["auth", "status", "-f", "json"])).stdout).toMatch(/"source": "none"/);
    const again = await cli(["auth", "logout"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/Not logged in/);
  });

  it("deletes a key made by a browser login on the server too, unless --local-only", async () => {
    const revocable = await serve({ port: 0, host: "127.0.0.1", apiKeys: ACCEPTED });
    try {
      const env = { TINKER_BASE_URL: revocable.url };
      const generated = {
        version: 1 as const,
        default: "key-gen",
        keys: { "key-gen": { type: "generated" as const, key: GENERATED_KEY, name: "browser login" } },
      };
      await writeCredentialsFile(generated, credentialsFile());
      const localOnly = await cli(["auth", "logout", "--local-only"], { env });
      expect(localOnly.code, localOnly.stderr).toBe(0);
      expect((await keyInfo(GENERATED_KEY, revocable.url)).status).toBe(200);

      await writeCredentialsFile(generated, credentialsFile());
      const logout = await cli(["auth", "logout", "-f", "json"], { env });
      expect(logout.code, logout.stderr).toBe(0);
      expect(JSON.parse(logout.stdout)).toMatchObject({
        logged_out: true,
        key_id: "key-gen",
        deleted_on_server: true,
      });
      expect((await keyInfo(GENERATED_KEY, revocable.url)).status).toBe(401);
      expect((await stored()).keys).toEqual({});
    } finally {
      await revocable.close();
    }
  });
});

describe("the stored key in use", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("serves the other commands and a ServiceClient without TINKER_API_KEY", async () => {
    expect((await cli(["auth", "login", "--api-key", GOOD_KEY])).code).toBe(0);
    const runs = await cli(["run", "list", "-f", "json"]);
    expect(runs.code, runs.stderr).toBe(0);
    expect(JSON.parse(runs.stdout)).toHaveProperty("runs");

    vi.stubEnv("TINKER_API_KEY", undefined);
    vi.stubEnv("TINKER_CREDENTIAL_CMD", undefined);
    vi.stubEnv(CREDENTIALS_FILE_ENV, credentialsFile());
    const sent: (string | null)[] = [];
    const service = new ServiceClient({
      baseURL: server.url,
      telemetry: false,
      fetch: (request: Request) => {
        sent.push(request.headers.get("x-api-key"));
        return fetch(request);
      },
    });
    try {
      const capabilities = await service.getServerCapabilities();
      expect(capabilities.supported_models.length).toBeGreaterThan(0);
      expect(new Set(sent)).toEqual(new Set([GOOD_KEY]));
    } finally {
      await service.close();
    }

    await cli(["auth", "logout"]);
    const noKey = await cli(["run", "list"]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/no API key/);
    expect(noKey.stderr).toMatch(/tinker-ts auth login/);
  });

  it("as a child process, takes the key from a pipe", async () => {
    const output = await new Promise<CliResult>((resolve) => {
      const child = execFile(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "auth", "login", "--api-key", "-"],
        {
          env: { ...process.env, HOME: home, TINKER_BASE_URL: server.url, TINKER_API_KEY: "", NO_COLOR: "1" },
        },
        (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
      child.stdin?.end(`${GOOD_KEY}\n`);
    });
    printed.push(output.stdout, output.stderr);
    expect(output.code, output.stderr).toBe(0);
    expect(output.stdout).toMatch(/Logged in: stored the key key-/);
    expect(Object.values((await stored()).keys).map((k) => (k as { key: string }).key)).toEqual([GOOD_KEY]);
  });
});
