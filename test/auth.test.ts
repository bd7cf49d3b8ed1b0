/**
 * Authentication (PROTOCOL.md §1.3–§1.4) against the real local backend: plain API keys, the JWT
 * exchange and its refreshes, dynamic credentials (credentialProvider, TINKER_CREDENTIAL_CMD), and
 * that no secret ever shows up in an error message.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Connection } from "../src/clients/connection.js";
import { backgroundDelayMs } from "../src/core/auth/jwt-credentials.js";
import { resolveConfig } from "../src/core/config.js";
import { decodeJwtClaims } from "../src/core/jwt.js";
import { AuthenticationError, type ClientOptions, PermissionDeniedError, TinkerError } from "../src/index.js";
import { createLocalTinker, LOCAL_JWT_ISSUER, type LocalTinkerOptions } from "../src/local/index.js";
import { localService, qaDatum, type RecordedRequest, recordingFetch } from "./helpers.js";
import { timeouts, trackTimers } from "./timers.js";

const API_KEY = "tml-test-key";

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function setup(local: LocalTinkerOptions, client: ClientOptions = {}) {
  const t = localService({ local, client });
  cleanups.push(t.close);
  return t;
}

/** A bare Connection (what every client shares), for the internals a test wants to see. */
function connectionSetup(local: LocalTinkerOptions, client: ClientOptions = {}) {
  const backend = createLocalTinker({ longPollMs: 2_000, ...local });
  const recorder = recordingFetch(backend.fetch);
  const connection = new Connection(
    resolveConfig({ apiKey: API_KEY, baseURL: "http://local.tinker", fetch: recorder.fetch, ...client }),
  );
  cleanups.push(async () => {
    await connection.close();
    backend.close();
  });
  return { connection, backend, requests: recorder.requests };
}

const endpoint = (r: RecordedRequest) => r.path.replace(/^.*\/api\/v1\//, "");
const keyOf = (r: RecordedRequest) => r.headers.get("x-api-key") ?? "";
const rawBody = (r: RecordedRequest) => new TextDecoder().decode(r.body);

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

describe("plain API keys", () => {
  it("sends the API key on every request when the server does not use JWT auth", async () => {
    const t = setup({});
    await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    expect(t.requests.some((r) => endpoint(r) === "auth/token")).toBe(false);
    expect(t.requests.every((r) => keyOf(r) === API_KEY)).toBe(true);
  });

  it("rejects keys outside the backend's apiKeys list without echoing them", async () => {
    const t = setup({ apiKeys: ["tml-allowed"] }, { apiKey: "tml-not-allowed-secret", maxRetries: 0 });
    const error = await caught(t.service.getServerCapabilities());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(errorText(error)).not.toContain("tml-not-allowed-secret");

    const ok = setup({ apiKeys: ["tml-allowed"] }, { apiKey: "tml-allowed" });
    await expect(ok.service.getServerCapabilities()).resolves.toBeDefined();
  });
});

describe("JWT exchange", () => {
  it("exchanges the API key during the handshake; every later request carries the JWT", async () => {
    const t = setup({ jwt: {} });
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    await training.forwardBackward([qaDatum("Q", "A")], "cross_entropy");
    const order = t.requests.map(endpoint);
    expect(order.slice(0, 3)).toEqual(["client/config", "auth/token", "client/dynamic_config"]);

    const [config, exchange, ...rest] = t.requests;
    expect(keyOf(config!)).toBe(API_KEY);
    expect(keyOf(exchange!)).toBe(API_KEY);
    expect(rawBody(exchange!)).toBe("{}");
    expect(exchange!.headers.get("content-type")).toBe("application/json");

    const jwt = keyOf(rest[0]!);
    expect(jwt).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(rest.length).toBeGreaterThan(3);
    for (const request of rest) expect(keyOf(request), endpoint(request)).toBe(jwt);

    const claims = decodeJwtClaims(jwt)!;
    expect(claims.iss).toBe(LOCAL_JWT_ISSUER);
    expect(claims.sub).toMatch(/^tinker-ts-local:user:[0-9a-f]{12}$/);
    expect(claims.email).toMatch(/@/);
    expect(claims.exp! - Date.now() / 1000).toBeGreaterThan(3500);
    // The token identifies the user without carrying the key.
    expect(
      new TextDecoder().decode(Uint8Array.from(atob(jwt.split(".")[1]!), (c) => c.charCodeAt(0))),
    ).not.toContain(API_KEY);
  });

  it("answers 401 in JWT mode to requests without a valid JWT", async () => {
    const local = createLocalTinker({ jwt: {} });
    cleanups.push(() => local.close());
    const post = (path: string, key?: string) =>
      local.fetch(
        new Request(`http://local.tinker/api/v1/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
          body: "{}",
        }),
      );
    expect((await post("create_session")).status).toBe(401);
    const withKey = await post("create_session", "tml-secret-raw-key");
    expect(withKey.status).toBe(401);
    expect(await withKey.text()).not.toContain("tml-secret-raw-key");

    const { jwt } = (await (await post("auth/token", "tml-secret-raw-key")).json()) as { jwt: string };
    expect((await post("create_session", jwt)).status).toBe(200);
    // A token with a changed payload, or one signed with another secret, is refused.
    const [header, , signature] = jwt.split(".");
    const forgedPayload = btoa(JSON.stringify({ ...decodeJwtClaims(jwt), sub: "someone-else" })).replace(
      /=+$/,
      "",
    );
    expect((await post("create_session", `${header}.${forgedPayload}.${signature}`)).status).toBe(401);
    const other = createLocalTinker({ jwt: { secret: "another-secret" } });
    cleanups.push(() => other.close());
    const foreign = (await (
      await other.fetch(
        new Request("http://local.tinker/api/v1/auth/token", {
          method: "POST",
          headers: { "x-api-key": "tml-k" },
          body: "{}",
        }),
      )
    ).json()) as { jwt: string };
    expect((await post("create_session", foreign.jwt)).status).toBe(401);
    // An expired or forged token of ours is not an API key either.
    expect((await post("auth/token", `${header}.${forgedPayload}.${signature}`)).status).toBe(401);
  });

  it("refuses expired tokens", async () => {
    const local = createLocalTinker({ jwt: { ttlSeconds: 1, secret: "s" } });
    cleanups.push(() => local.close());
    const send = (path: string, key: string) =>
      local.fetch(
        new Request(`http://local.tinker/api/v1/${path}`, {
          method: "POST",
          headers: { "x-api-key": key },
          body: "{}",
        }),
      );
    const { jwt } = (await (await send("auth/token", API_KEY)).json()) as { jwt: string };
    expect((await send("create_session", jwt)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expired = await send("create_session", jwt);
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({ detail: "Invalid JWT" });
  });

  it("refreshes on demand when the token has 60 s or less left", async () => {
    // A 2 s token is always inside the on-demand window: each request first gets a fresh token.
    const t = setup({ jwt: { ttlSeconds: 2 } });
    await t.service.getServerCapabilities();
    await t.service.getServerCapabilities();
    const order = t.requests.map(endpoint);
    expect(order.slice(0, 2)).toEqual(["client/config", "auth/token"]);
    const authenticated = order.flatMap((name, i) => (i >= 2 && name !== "auth/token" ? [i] : []));
    expect(authenticated.map((i) => order[i])).toEqual([
      "client/dynamic_config",
      "get_server_capabilities",
      "get_server_capabilities",
    ]);
    for (const i of authenticated) {
      expect(order[i - 1]).toBe("auth/token");
      expect(keyOf(t.requests[i]!)).toMatch(/^eyJ/);
    }
  });

  it("refreshes in the background before expiry, and close() stops it", async () => {
    const before = timeouts();
    const timers = trackTimers();
    try {
      const { connection, requests } = connectionSetup({ jwt: { ttlSeconds: 2 } });
      await connection.clientConfig();
      const exchanges = () => requests.filter((r) => endpoint(r) === "auth/token").length;
      const afterHandshake = exchanges();
      // The token's refresh, and the dynamic config's (§1.4 step 4).
      expect(timers.pending()).toBe(2);
      // Halfway through the token's remaining life (≥ 1 s), without any request from the caller.
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      expect(exchanges()).toBeGreaterThan(afterHandshake);
      await connection.close();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(timers.pending()).toBe(0);
      expect(timeouts()).toBeLessThanOrEqual(before);
    } finally {
      timers.restore();
    }
  });

  it("sends the stale token when an on-demand refresh fails", async () => {
    const t = setup(
      { jwt: { ttlSeconds: 30 }, chaos: [{ endpoint: "auth/token", after: 1, times: 100, status: 403 }] },
      { maxRetries: 0 },
    );
    await t.service.getServerCapabilities();
    const tokens = t.requests.filter((r) => endpoint(r) !== "auth/token" && endpoint(r) !== "client/config");
    const first = keyOf(tokens[0]!);
    expect(first).toMatch(/^eyJ/);
    // Every refresh after the first exchange was refused; the requests went out with the first token.
    expect(t.requests.filter((r) => endpoint(r) === "auth/token").length).toBeGreaterThan(1);
    for (const request of tokens) expect(keyOf(request)).toBe(first);
  });

  it("fails the handshake when the key or the exchange is refused, without leaking the credential", async () => {
    const refusedKey = setup(
      { jwt: {}, apiKeys: ["tml-only-this-one"] },
      { apiKey: "tml-wrong-secret-key", maxRetries: 0 },
    );
    const keyError = await caught(refusedKey.service.getServerCapabilities());
    expect(keyError).toBeInstanceOf(AuthenticationError);
    expect(errorText(keyError)).not.toContain("tml-wrong-secret-key");

    const refusedExchange = setup(
      { jwt: {}, chaos: [{ endpoint: "auth/token", status: 401, body: { detail: "bad credential" } }] },
      { maxRetries: 0 },
    );
    const exchangeError = await caught(refusedExchange.service.getServerCapabilities());
    expect(exchangeError).toBeInstanceOf(AuthenticationError);
    expect(errorText(exchangeError)).not.toContain(API_KEY);
    expect(refusedExchange.requests.map(endpoint)).toEqual(["client/config", "auth/token"]);
  });

  it("exposes the JWT claims as the identity, undefined with a plain API key", async () => {
    const jwtMode = connectionSetup({ jwt: {} });
    const identity = await jwtMode.connection.identity();
    expect(identity?.iss).toBe(LOCAL_JWT_ISSUER);
    expect(identity?.sub).toMatch(/^tinker-ts-local:user:/);
    expect(typeof identity?.exp).toBe("number");

    const plain = connectionSetup({});
    expect(await plain.connection.identity()).toBeUndefined();
  });

  it("keeps the refresh delays sane", () => {
    const now = 1_000_000_000_000;
    const token = (exp: number) => `eyJhbGciOiJub25lIn0.${btoa(JSON.stringify({ exp }))}.x`;
    const nowS = now / 1000;
    expect(backgroundDelayMs(token(nowS + 3600), now)).toBe(3300_000);
    expect(backgroundDelayMs(token(nowS + 400), now)).toBe(200_000);
    expect(backgroundDelayMs(token(nowS + 2), now)).toBe(1_000);
    expect(backgroundDelayMs(token(nowS - 5), now)).toBe(60_000);
    expect(backgroundDelayMs("not-a-jwt", now)).toBe(60_000);
    expect(backgroundDelayMs(token(nowS + 10 ** 9), now)).toBe(2_147_483_647);
  });
});

describe("dynamic credentials", () => {
  let savedEnv: Record<string, string | undefined>;
  beforeEach(() => {
    savedEnv = {
      TINKER_API_KEY: process.env.TINKER_API_KEY,
      TINKER_CREDENTIAL_CMD: process.env.TINKER_CREDENTIAL_CMD,
    };
    delete process.env.TINKER_API_KEY;
    delete process.env.TINKER_CREDENTIAL_CMD;
  });
  afterEach(() => {
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it("uses credentialProvider for the exchange when the server asks for credential_cmd", async () => {
    let calls = 0;
    const t = setup(
      { jwt: {}, clientConfig: { credential_default_source: "credential_cmd" } },
      {
        credentialProvider: async () => {
          calls++;
          return "  tml-from-provider\n";
        },
      },
    );
    await t.service.getServerCapabilities();
    const [config, exchange, next] = t.requests;
    expect(keyOf(config!)).toBe(API_KEY);
    expect(endpoint(exchange!)).toBe("auth/token");
    expect(keyOf(exchange!)).toBe("tml-from-provider");
    expect(keyOf(next!)).toMatch(/^eyJ/);
    expect(calls).toBe(1);
  });

  it("exchanges the API key, not the provider's credential, by default", async () => {
    let calls = 0;
    const t = setup({ jwt: {} }, { credentialProvider: () => `tml-provider-${++calls}` });
    await t.service.getServerCapabilities();
    expect(keyOf(t.requests.find((r) => endpoint(r) === "auth/token")!)).toBe(API_KEY);
    expect(calls).toBe(0);
  });

  it("uses an API key that is itself a JWT directly, even when credential_cmd is asked for", async () => {
    const identityToken = `eyJhbGciOiJub25lIn0.${btoa(JSON.stringify({ iss: "passport-test", sub: "u" }))}.sig`;
    const t = setup(
      { jwt: {}, clientConfig: { credential_default_source: "credential_cmd" } },
      { apiKey: identityToken, credentialProvider: () => "tml-unused" },
    );
    await t.service.getServerCapabilities();
    expect(keyOf(t.requests.find((r) => endpoint(r) === "auth/token")!)).toBe(identityToken);
  });

  it("asks for dynamic credentials when the server wants them and none are configured", async () => {
    const t = setup({ jwt: {}, clientConfig: { credential_default_source: "credential_cmd" } });
    await expect(t.service.getServerCapabilities()).rejects.toThrow(/TINKER_CREDENTIAL_CMD/);
  });

  it("without an API key, authenticates client/config with the provider too", async () => {
    const t = setup({ jwt: {} }, { apiKey: undefined, credentialProvider: () => "tml-only-provider" });
    await t.service.getServerCapabilities();
    expect(keyOf(t.requests[0]!)).toBe("tml-only-provider");
    expect(keyOf(t.requests[1]!)).toBe("tml-only-provider");
  });

  it("refuses a provider-only client when the server does not use JWT auth", async () => {
    const t = setup({}, { apiKey: undefined, credentialProvider: () => "tml-secret-from-provider" });
    const error = await caught(t.service.getServerCapabilities());
    expect(error).toBeInstanceOf(TinkerError);
    expect(errorText(error)).toMatch(/API key/);
    expect(errorText(error)).not.toContain("tml-secret-from-provider");
  });

  it("runs TINKER_CREDENTIAL_CMD through the shell and uses its trimmed output", async () => {
    process.env.TINKER_CREDENTIAL_CMD = "echo tml-from-cmd";
    const t = setup(
      { jwt: {}, clientConfig: { credential_default_source: "credential_cmd" } },
      { apiKey: undefined },
    );
    await t.service.getServerCapabilities();
    expect(keyOf(t.requests[0]!)).toBe("tml-from-cmd");
    const exchange = t.requests.find((r) => endpoint(r) === "auth/token")!;
    expect(keyOf(exchange)).toBe("tml-from-cmd");
  });

  it("reports a failing or silent command without its output or text", async () => {
    process.env.TINKER_CREDENTIAL_CMD = "echo tml-secret-printed; exit 3";
    const failing = setup({ jwt: {} }, { apiKey: undefined });
    const error = await caught(failing.service.getServerCapabilities());
    expect(errorText(error)).toMatch(/TINKER_CREDENTIAL_CMD exited with code 3/);
    expect(errorText(error)).not.toContain("tml-secret-printed");

    process.env.TINKER_CREDENTIAL_CMD = "true";
    const silent = setup({ jwt: {} }, { apiKey: undefined });
    await expect(silent.service.getServerCapabilities()).rejects.toThrow(/empty credential/);
  });

  it("leaves a missing API key to the dynamic credential, else to the stored key (read later)", () => {
    const bare = resolveConfig({ baseURL: "http://x" }).credentials;
    expect(bare.apiKey).toBeUndefined();
    expect(bare.dynamic).toBeUndefined();
    expect(bare.stored).toBeTypeOf("function");
    process.env.TINKER_CREDENTIAL_CMD = "echo tml-x";
    expect(resolveConfig({ baseURL: "http://x" }).credentials.apiKey).toBeUndefined();
    expect(resolveConfig({ baseURL: "http://x" }).credentials.stored).toBeUndefined();
    // A malformed key is set aside (not sent) when a dynamic credential can stand in for it.
    expect(resolveConfig({ baseURL: "http://x", apiKey: "sk-bad" }).credentials.apiKey).toBeUndefined();
  });
});

describe("secrets in errors", () => {
  it("never echoes a key refused by the server", async () => {
    const t = setup({ apiKeys: ["tml-a"] }, { apiKey: "tml-secret-value-123", maxRetries: 0 });
    const error = await caught(t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 }));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(errorText(error)).not.toContain("secret-value");
    expect(JSON.stringify((error as AuthenticationError).body)).not.toContain("secret-value");
  });

  it("never echoes a JWT refused by the server", async () => {
    const t = setup(
      { jwt: {}, chaos: [{ endpoint: "get_server_capabilities", status: 403, body: { detail: "nope" } }] },
      { maxRetries: 0 },
    );
    const error = await caught(t.service.getServerCapabilities());
    expect(error).toBeInstanceOf(PermissionDeniedError);
    const jwt = keyOf(t.requests.find((r) => endpoint(r) === "get_server_capabilities")!);
    expect(errorText(error)).not.toContain(jwt);
    expect(errorText(error)).not.toContain(API_KEY);
  });
});
