/**
 * Which credential is used for what (PROTOCOL.md §1.3–§1.4), following the official client:
 *
 * - `client/config` is authenticated with the API key, else with a dynamic credential
 *   (`ClientOptions.credentialProvider` or `TINKER_CREDENTIAL_CMD`).
 * - With `pjwt_auth_enabled`, the credential exchanged for a JWT is the dynamic one when the server
 *   says `credential_default_source: "credential_cmd"`, unless the API key is itself a JWT (`eyJ…`),
 *   which is then exchanged as is; otherwise the API key first, the dynamic credential second.
 * - Without JWT auth only the API key is accepted.
 * - With neither an API key nor a dynamic credential, the default key of the stored-credentials file
 *   (`tinker-ts auth login`, UPSTREAM.md A1) stands in as the API key. Reading a file is async, so
 *   that happens at the handshake (`withStoredKey`), not when the client is built.
 */
import { TinkerError, ValidationError } from "../errors.js";

/** Yields a credential; dynamic sources give a fresh one on every call. */
export type CredentialSource = () => Promise<string>;

export interface CredentialSources {
  /** A usable API key (`tml-…` or a JWT), when one was configured. */
  apiKey: string | undefined;
  /** A fresh credential per call: `ClientOptions.credentialProvider` or `TINKER_CREDENTIAL_CMD`. */
  dynamic: CredentialSource | undefined;
  /** The stored default key, read at first need; set only when the two above are absent. */
  stored?: () => Promise<string | undefined>;
}

/** The client config fields (§1.5) that decide the authentication mode. */
export interface AuthFlags {
  pjwt_auth_enabled?: boolean | undefined;
  credential_default_source?: string | null | undefined;
}

/** Wraps a user's `credentialProvider`: trimmed, and an empty answer is an error. */
export function userCredentialSource(provider: () => Promise<string> | string): CredentialSource {
  return async () => {
    const value = await provider();
    const credential = typeof value === "string" ? value.trim() : "";
    if (credential === "") throw new TinkerError("credentialProvider returned an empty credential.");
    return credential;
  };
}

/** The sources with the stored key, if needed, read into `apiKey`; an error when there is none. */
export async function withStoredKey(sources: CredentialSources): Promise<CredentialSources> {
  if (sources.apiKey !== undefined || sources.dynamic !== undefined || !sources.stored) return sources;
  const apiKey = await sources.stored();
  if (apiKey === undefined) throw missingCredentialError();
  return { apiKey, dynamic: undefined };
}

/** §1.4 step 1: the credential that authenticates `client/config`. */
export function configCredential(sources: CredentialSources): CredentialSource {
  const { apiKey, dynamic } = sources;
  if (apiKey !== undefined) return () => Promise.resolve(apiKey);
  if (dynamic) return dynamic;
  throw missingCredentialError();
}

/** §1.4 step 2: the credential exchanged for a JWT at `/api/v1/auth/token`. */
export function exchangeCredential(sources: CredentialSources, flags: AuthFlags): CredentialSource {
  const { apiKey, dynamic } = sources;
  // A JWT passed as the API key is already a dynamic credential.
  if (apiKey?.startsWith("eyJ")) return () => Promise.resolve(apiKey);
  if (flags.credential_default_source === "credential_cmd") {
    if (dynamic) return dynamic;
    throw new TinkerError(
      "Your organization requires dynamic credentials: set TINKER_CREDENTIAL_CMD to a command that " +
        "prints a valid credential, or pass ClientOptions.credentialProvider.",
    );
  }
  return configCredential(sources);
}

/** §1.4 step 3: without JWT auth the server accepts API keys only. */
export function plainApiKey(sources: CredentialSources): string {
  if (sources.apiKey !== undefined) return sources.apiKey;
  throw new TinkerError(
    "The server does not use JWT authentication, so TINKER_CREDENTIAL_CMD and credentialProvider " +
      "cannot be used: an API key is required (the apiKey client option or TINKER_API_KEY).",
  );
}

export function missingCredentialError(): ValidationError {
  return new ValidationError([
    {
      path: "apiKey",
      message:
        "No credential found: pass apiKey to the client or set the TINKER_API_KEY environment variable " +
        "(or TINKER_CREDENTIAL_CMD, or the credentialProvider option), or store a key with " +
        "`tinker-ts auth login --api-key -`",
    },
  ]);
}
