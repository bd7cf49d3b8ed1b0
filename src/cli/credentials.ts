/**
 * Which credential the CLI uses, in the SDK's order (UPSTREAM.md A1): `--api-key` or
 * `TINKER_API_KEY`, then `TINKER_CREDENTIAL_CMD`, then the default key stored by
 * `tinker-ts auth login`. Resolved from the CLI's own environment (`CliIO.env`), so that tests and
 * embedders decide what the CLI sees.
 */
import {
  credentialsFilePath,
  defaultStoredKey,
  readCredentialsFile,
  type StoredKey,
} from "../core/auth/credentials-file.js";
import { credentialCommand } from "../core/credential-command.js";
import type { ClientOptions } from "../index.js";
import type { CliIO } from "./output.js";

export type CliCredential =
  | { source: "option" | "env"; apiKey: string }
  | { source: "command"; command: string }
  | { source: "stored"; apiKey: string; keyId: string; key: StoredKey; file: string }
  | { source: "none" };

/** What each source is called in `auth status` and in JSON output. */
export const SOURCE_LABELS: Record<CliCredential["source"], string> = {
  option: "--api-key",
  env: "TINKER_API_KEY",
  command: "TINKER_CREDENTIAL_CMD",
  stored: "stored key",
  none: "none",
};

/** The process environment as the SDK reads it: an empty value counts as unset. */
export function envReader(env: CliIO["env"]): (name: string) => string | undefined {
  return (name) => {
    const value = env[name];
    return value === undefined || value.trim() === "" ? undefined : value;
  };
}

/** The credentials file the CLI reads and writes, undefined without a home directory. */
export function cliCredentialsPath(env: CliIO["env"]): string | undefined {
  return credentialsFilePath(envReader(env));
}

/** The first available source; the file is read only when the two before it are absent. */
export async function resolveCliCredential(
  apiKeyOption: string | undefined,
  env: CliIO["env"],
): Promise<CliCredential> {
  const read = envReader(env);
  if (apiKeyOption !== undefined) return { source: "option", apiKey: apiKeyOption };
  const envKey = read("TINKER_API_KEY");
  if (envKey !== undefined) return { source: "env", apiKey: envKey };
  const command = read("TINKER_CREDENTIAL_CMD");
  if (command !== undefined) return { source: "command", command };
  const file = cliCredentialsPath(env);
  const stored = defaultStoredKey(await readCredentialsFile(file));
  if (stored && file !== undefined) {
    return { source: "stored", apiKey: stored.key.key, keyId: stored.id, key: stored.key, file };
  }
  return { source: "none" };
}

/** The ServiceClient options that make the SDK use exactly this credential. */
export function clientCredentialOptions(
  credential: CliCredential,
): Pick<ClientOptions, "apiKey" | "credentialProvider"> {
  switch (credential.source) {
    case "command":
      return { credentialProvider: credentialCommand(credential.command) };
    case "none":
      return {};
    default:
      return { apiKey: credential.apiKey };
  }
}

/** Enough of a key to tell two apart, never enough to use: `tml-…wxyz`. */
export function maskKey(key: string): string {
  return key.length >= 16 ? `${key.slice(0, 4)}…${key.slice(-4)}` : "****";
}
