/**
 * Who may talk to the local backend (PROTOCOL.md §1.3–§1.4).
 *
 * - By default any non-empty `X-API-Key` is accepted; `apiKeys` restricts that to a list. A key
 *   revoked through `DELETE auth/apikey/me` (./auth-keys.ts) is refused from then on.
 * - In JWT mode (`jwt`), `client/config` answers `pjwt_auth_enabled: true`, `POST auth/token`
 *   exchanges an accepted API key for a JWT signed with HMAC-SHA256 (WebCrypto), and every other
 *   endpoint requires a valid, unexpired JWT of this backend (401 otherwise).
 *
 * Error messages never repeat the credential that was sent.
 */
import { base64UrlToBytes, bytesToBase64Url, decodeJwtClaims, type JwtClaims } from "../core/jwt.js";
import { HttpError, jsonResponse } from "./responses.js";

export interface LocalAuthOptions {
  /** Require the JWT exchange of PROTOCOL.md §1.4. */
  jwt?: {
    /** Lifetime of issued tokens. Default 3600 s. */
    ttlSeconds?: number;
    /** HMAC key; default a random key per backend, so tokens do not survive a restart. */
    secret?: string;
  };
  /** Accept only these API keys. Default: any non-empty key. */
  apiKeys?: string[];
}

export interface LocalAuth {
  /** What `client/config` says in `pjwt_auth_enabled`. */
  readonly jwtEnabled: boolean;
  /** Throws HttpError 401 unless the request may use the endpoint `path` (after `/api/v1/`). */
  check(request: Request, path: string): Promise<void>;
  /** `POST auth/token`: `{ jwt }` for an accepted API key (or a still-valid token of ours). */
  issueToken(request: Request): Promise<Response>;
  /** Refuses `apiKey` from now on (tokens already issued for it stay valid until they expire). */
  revoke(apiKey: string): void;
}

export const LOCAL_JWT_ISSUER = "tinker-ts-local";
const DEFAULT_TTL_SECONDS = 3600;
/** Endpoints that take the raw credential in JWT mode: the start of the handshake (§1.4 step 1–2). */
const RAW_CREDENTIAL_ENDPOINTS = new Set(["client/config", "auth/token", "healthz", "auth/apikey/me"]);

export function createLocalAuth(options: LocalAuthOptions): LocalAuth {
  const accepted = options.apiKeys ? new Set(options.apiKeys) : undefined;
  const revoked = new Set<string>();
  const isAcceptedKey = (key: string) =>
    key !== "" && !revoked.has(key) && (accepted === undefined || accepted.has(key));
  const revoke = (apiKey: string) => {
    revoked.add(apiKey);
  };
  if (!options.jwt) return { ...apiKeyAuth(isAcceptedKey), revoke };
  const ttlSeconds = options.jwt.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!(ttlSeconds > 0)) throw new Error("jwt.ttlSeconds must be a positive number");
  return { ...jwtAuth(isAcceptedKey, new JwtSigner(options.jwt.secret), ttlSeconds), revoke };
}

function apiKeyAuth(isAcceptedKey: (key: string) => boolean): Omit<LocalAuth, "revoke"> {
  return {
    jwtEnabled: false,
    async check(request) {
      const key = requireCredential(request);
      if (!isAcceptedKey(key)) throw new HttpError(401, "invalid API key");
    },
    async issueToken() {
      throw new HttpError(404, "JWT authentication is not enabled on this server");
    },
  };
}

function jwtAuth(
  isAcceptedKey: (key: string) => boolean,
  signer: JwtSigner,
  ttlSeconds: number,
): Omit<LocalAuth, "revoke"> {
  /** The claims of a valid token of ours, else undefined. */
  const verified = async (credential: string) =>
    credential.startsWith("eyJ") ? signer.verify(credential) : undefined;
  /** An API key; an expired or forged token of ours does not count as one. */
  const isRawKey = (credential: string) =>
    isAcceptedKey(credential) && decodeJwtClaims(credential)?.iss !== LOCAL_JWT_ISSUER;

  return {
    jwtEnabled: true,
    async check(request, path) {
      const credential = requireCredential(request);
      if (await verified(credential)) return;
      // The OpenAI-compatible routes take the API key itself, as OpenAI clients send it.
      const raw = RAW_CREDENTIAL_ENDPOINTS.has(path) || path.startsWith("oai/");
      if (raw && isRawKey(credential)) return;
      if (credential.startsWith("eyJ")) throw new HttpError(401, "Invalid JWT");
      throw new HttpError(401, raw ? "invalid API key" : "a JWT from auth/token is required");
    },
    async issueToken(request) {
      const credential = requireCredential(request);
      // A token of ours may be exchanged for a fresh one; it keeps its identity.
      const identity =
        (await verified(credential)) ?? (isRawKey(credential) ? await userFor(credential) : undefined);
      if (!identity)
        throw new HttpError(401, credential.startsWith("eyJ") ? "Invalid JWT" : "invalid API key");
      const now = Math.floor(Date.now() / 1000);
      const jwt = await signer.sign({
        sub: identity.sub,
        email: identity.email,
        iss: LOCAL_JWT_ISSUER,
        iat: now,
        exp: now + ttlSeconds,
      });
      return jsonResponse({ jwt });
    },
  };
}

function requireCredential(request: Request): string {
  const credential = request.headers.get("x-api-key");
  if (!credential) throw new HttpError(401, "missing X-API-Key header");
  return credential;
}

/** A stable pseudonymous user per API key; the key itself never goes into a token. */
export async function userFor(apiKey: string): Promise<{ sub: string; email: string }> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(apiKey)));
  const id = Array.from(digest.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  return { sub: `${LOCAL_JWT_ISSUER}:user:${id}`, email: `user-${id}@tinker-ts.local` };
}

/** HS256 JWTs with WebCrypto: signing, and verifying signature, issuer and expiry. */
class JwtSigner {
  readonly #key: Promise<CryptoKey>;

  constructor(secret: string | undefined) {
    const bytes =
      secret === undefined ? crypto.getRandomValues(new Uint8Array(32)) : new TextEncoder().encode(secret);
    this.#key = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
  }

  async sign(claims: JwtClaims): Promise<string> {
    const signingInput = `${encodeJson({ alg: "HS256", typ: "JWT" })}.${encodeJson(claims)}`;
    const signature = await crypto.subtle.sign(
      "HMAC",
      await this.#key,
      new TextEncoder().encode(signingInput),
    );
    return `${signingInput}.${bytesToBase64Url(new Uint8Array(signature))}`;
  }

  /** The claims when `token` is ours, correctly signed and unexpired; else undefined. */
  async verify(token: string): Promise<JwtClaims | undefined> {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    let signature: Uint8Array;
    try {
      signature = base64UrlToBytes(parts[2]!);
    } catch {
      return undefined;
    }
    const valid = await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      signature as Uint8Array<ArrayBuffer>,
      new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    if (!valid) return undefined;
    const claims = decodeJwtClaims(token);
    if (claims?.iss !== LOCAL_JWT_ISSUER || typeof claims.exp !== "number") return undefined;
    return claims.exp > Date.now() / 1000 ? claims : undefined;
  }
}

function encodeJson(value: unknown): string {
  return bytesToBase64Url(new TextEncoder().encode(JSON.stringify(value)));
}
