/**
 * `tinker-ts auth login|logout|status` (official `tinker auth`, UPSTREAM.md A1): keep an API key in
 * the stored-credentials file, the SDK's last credential source.
 *
 * The key endpoints are called over plain HTTP, as the official CLI does, with redirects refused so
 * the key goes to the configured server only. The browser login (a WorkOS device flow) is not
 * available here; `login --api-key` stores a key made in the Tinker console after checking it.
 *
 * No output and no error repeats a key: keys are shown masked, and anything a server says is
 * scrubbed of the key before it is printed.
 */
import * as v from "valibot";
import {
  defaultStoredKey,
  emptyCredentials,
  readCredentialsFile,
  type StoredCredentials,
  writeCredentialsFile,
} from "../../core/auth/credentials-file.js";
import { DEFAULT_BASE_URL } from "../../core/config.js";
import { APIStatusError } from "../../core/errors.js";
import { isRetryableStatus } from "../../core/retry-policy.js";
import { ServiceClient } from "../../index.js";
import { type Endpoint, pathOf } from "../../wire/endpoints/define.js";
import { auth as authEndpoints } from "../../wire/endpoints/index.js";
import type { CommandContext, CommandSpec } from "../app.js";
import {
  type CliCredential,
  cliCredentialsPath,
  clientCredentialOptions,
  envReader,
  maskKey,
  resolveCliCredential,
  SOURCE_LABELS,
} from "../credentials.js";
import { CliError } from "../errors.js";
import { printOutput } from "../output.js";
import { plural } from "./common.js";

/** What `GET /api/v1/auth/apikey/me` answers (PROTOCOL.md §A1), as declared. */
const KeyInfoSchema = authEndpoints.apiKeyMe.result.schema;
type KeyInfo = v.InferOutput<typeof KeyInfoSchema>;

/** How long one call of these commands may take without --timeout. */
const DEFAULT_CALL_TIMEOUT_MS = 30_000;

const LOGIN_HINT =
  "Create an API key in the Tinker console, then run `tinker-ts auth login --api-key -` and paste it\n" +
  "(it is read from stdin, without echo on a terminal), or pass it as `--api-key tml-…`.";

export const authCommands: CommandSpec[] = [
  {
    path: ["auth", "login"],
    summary: "Check an API key with the server and store it as the default credential",
    details:
      "--api-key KEY gives the key; --api-key - reads it from stdin (asked without echo on a terminal).\n" +
      "The key is stored in ~/.tinker/credentials.json (or TINKER_CREDENTIALS_FILE), readable only\n" +
      "by you, and used when neither TINKER_API_KEY nor TINKER_CREDENTIAL_CMD is set.\n" +
      "The browser login of the official CLI is not available in tinker-ts.",
    async run(ctx) {
      const file = credentialsFileOf(ctx);
      const credentials = await readCredentialsFile(file);
      const current = defaultStoredKey(credentials);
      if (current) {
        throw new CliError(
          `already logged in with the stored key ${current.id} (${current.key.name})`,
          "Run `tinker-ts auth logout` first to replace it.",
        );
      }
      const option = ctx.values["api-key"] as string | undefined;
      if (option === undefined) {
        throw new CliError(
          "browser login is not available in tinker-ts: give the API key instead",
          LOGIN_HINT,
        );
      }
      const apiKey = option === "-" ? await readKey(ctx) : option.trim();
      // A pasted key is scrubbed from errors here; app.ts only knows the --api-key value.
      try {
        if (!apiKey.startsWith("tml-")) {
          throw new CliError("that is not a Tinker API key: API keys start with 'tml-'", LOGIN_HINT);
        }
        const info = await fetchKeyInfo(ctx, apiKey);
        const updated: StoredCredentials = credentials ?? emptyCredentials();
        updated.keys[info.key_id] = {
          type: "manual",
          key: apiKey,
          name: info.name ?? info.key_id,
          ...(info.note ? { note: info.note } : {}),
          ...(info.details ? { details: info.details } : {}),
        };
        updated.default = info.key_id;
        await writeCredentialsFile(updated, file);
        printOutput(ctx.io, ctx.global.format, {
          json: () => ({
            key_id: info.key_id,
            name: info.name,
            key: maskKey(apiKey),
            credentials_file: file,
          }),
          title: `Logged in: stored the key ${info.key_id} (${info.name}) in ${file}`,
          columns: [],
          rows: [],
        });
        const shadowing = ["TINKER_API_KEY", "TINKER_CREDENTIAL_CMD"].find((name) =>
          envReader(ctx.io.env)(name),
        );
        if (shadowing) ctx.io.stderr.write(`Note: ${shadowing} is set and is used before the stored key.\n`);
        return 0;
      } catch (error) {
        throw scrubbed(error, apiKey);
      }
    },
  },
  {
    path: ["auth", "logout"],
    summary: "Remove the stored default key (and delete it on the server if login created it)",
    options: {
      "local-only": {
        type: "boolean",
        description: "only forget the key here, even if it was created by a browser login",
      },
    },
    async run(ctx) {
      const file = credentialsFileOf(ctx);
      const credentials = await readCredentialsFile(file);
      const current = defaultStoredKey(credentials);
      if (!credentials || !current) {
        printOutput(ctx.io, ctx.global.format, {
          json: () => ({ logged_out: false, credentials_file: file }),
          title: "Not logged in: there is no stored default key.",
          columns: [],
          rows: [],
        });
        return 0;
      }
      let deletedOnServer = false;
      // A key the browser login made exists for this machine only; a pasted one is the user's.
      if (current.key.type === "generated" && !ctx.values["local-only"]) {
        try {
          deletedOnServer = await deleteKey(ctx, current.key.key);
        } catch (error) {
          throw scrubbed(error, current.key.key);
        }
      }
      delete credentials.keys[current.id];
      credentials.default = null;
      await writeCredentialsFile(credentials, file);
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({
          logged_out: true,
          key_id: current.id,
          name: current.key.name,
          deleted_on_server: deletedOnServer,
          credentials_file: file,
        }),
        title: `Logged out: removed the stored key ${current.id} (${current.key.name})${deletedOnServer ? " and deleted it on the server" : ""}.`,
        columns: [],
        rows: [],
      });
      return 0;
    },
  },
  {
    path: ["auth", "status"],
    summary: "Show which credential is used, and check once that the server accepts it",
    async run(ctx) {
      const credential = await resolveCliCredential(ctx.values["api-key"] as string | undefined, ctx.io.env);
      const baseUrl = baseUrlOf(ctx);
      const access = credential.source === "none" ? undefined : await checkAccess(ctx, credential);
      const secret = "apiKey" in credential ? credential.apiKey : undefined;
      const accessText =
        access === undefined
          ? "not checked (no credential)"
          : `${access.ok ? "ok" : "failed"}${access.status === undefined ? "" : ` (HTTP ${access.status})`}${access.detail ? `: ${access.detail}` : ""}`;
      const rows: [string, string][] = [["Source", describeSource(credential)]];
      if (secret !== undefined) rows.push(["API key", maskKey(secret)]);
      rows.push(["Server", baseUrl], ["Access", accessText]);
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({
          source: credential.source,
          key: secret === undefined ? null : maskKey(secret),
          ...(credential.source === "stored"
            ? {
                key_id: credential.keyId,
                name: credential.key.name,
                type: credential.key.type,
                credentials_file: credential.file,
              }
            : {}),
          base_url: baseUrl,
          access: access ?? null,
        }),
        title:
          credential.source === "none"
            ? `Not logged in. ${LOGIN_HINT.split("\n")[0]}`
            : `Credential: ${SOURCE_LABELS[credential.source]}`,
        columns: ["Property", "Value"],
        rows,
      });
      return access?.ok ? 0 : 1;
    },
  },
];

function credentialsFileOf(ctx: CommandContext): string {
  const file = cliCredentialsPath(ctx.io.env);
  if (file === undefined) {
    throw new CliError("no home directory to keep credentials in", "Set HOME or TINKER_CREDENTIALS_FILE.");
  }
  return file;
}

function baseUrlOf(ctx: CommandContext): string {
  return (ctx.global.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
}

async function readKey(ctx: CommandContext): Promise<string> {
  if (!ctx.io.readSecret) throw new CliError("cannot read a key from stdin here", LOGIN_HINT);
  const key = (await ctx.io.readSecret("Tinker API key: ")).trim();
  if (key === "") throw new CliError("no API key given", LOGIN_HINT);
  return key;
}

function describeSource(credential: CliCredential): string {
  switch (credential.source) {
    case "option":
      return "--api-key";
    case "env":
      return "TINKER_API_KEY environment variable";
    case "command":
      return "TINKER_CREDENTIAL_CMD (run on every token request)";
    case "stored":
      return `stored key ${credential.keyId} (${credential.key.name}, ${credential.key.type}) in ${credential.file}`;
    case "none":
      return "none";
  }
}

/** One plain call with the key in X-API-Key; redirects are refused so the key stays with this server. */
async function callWithKey(ctx: CommandContext, e: Endpoint, apiKey: string): Promise<Response> {
  const url = `${baseUrlOf(ctx)}/${pathOf(e)}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: e.method,
      headers: { "X-API-Key": apiKey, Accept: "application/json" },
      redirect: "manual",
      signal: AbortSignal.timeout(ctx.global.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS),
    });
  } catch (error) {
    throw new CliError(`cannot reach ${baseUrlOf(ctx)}: ${networkReason(error)}`, "Check --base-url.");
  }
  if (response.status >= 300 && response.status < 400) {
    throw new CliError(
      `the server answered with a redirect (HTTP ${response.status}); the key is not sent elsewhere`,
      "Check --base-url.",
    );
  }
  return response;
}

/** Checks the key with the server: what it is, or why it was refused. */
async function fetchKeyInfo(ctx: CommandContext, apiKey: string): Promise<KeyInfo> {
  const response = await callWithKey(ctx, authEndpoints.apiKeyMe, apiKey);
  if (response.status === 401 || response.status === 403) {
    throw new CliError(
      `the server refused this API key (HTTP ${response.status}${await detailOf(response)}); nothing was stored`,
      "Check the key, and that --base-url names the server it belongs to.",
    );
  }
  if (!response.ok) {
    throw new CliError(`could not check the key: HTTP ${response.status}${await detailOf(response)}`);
  }
  const result = v.safeParse(KeyInfoSchema, await response.json().catch(() => undefined));
  if (!result.success)
    throw new CliError("could not check the key: the server's answer is not a key description");
  return result.output;
}

/** `DELETE /api/v1/auth/apikey/me`; false when the server no longer knows the key. */
async function deleteKey(ctx: CommandContext, apiKey: string): Promise<boolean> {
  const response = await callWithKey(ctx, authEndpoints.deleteApiKeyMe, apiKey);
  if (response.ok) return true;
  // Already revoked or unknown: nothing is left to delete.
  if (response.status === 401 || response.status === 404) return false;
  throw new CliError(
    `could not delete the key on the server: HTTP ${response.status}${await detailOf(response)}`,
    "Retry, or pass --local-only to only forget it here.",
  );
}

/** `: <detail>` from a FastAPI-style error body, if there is one. */
async function detailOf(response: Response): Promise<string> {
  const body = (await response.json().catch(() => undefined)) as { detail?: unknown } | undefined;
  return typeof body?.detail === "string" ? `: ${body.detail}` : "";
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** `text` with every occurrence of `secret` masked. */
function redact(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join("***") : text;
}

/** An error whose message and hint cannot contain `apiKey`. */
function scrubbed(error: unknown, apiKey: string): unknown {
  if (!(error instanceof Error)) return error;
  const hint = error instanceof CliError ? error.hint : undefined;
  const message = redact(error.message, apiKey);
  if (message === error.message && (hint === undefined || redact(hint, apiKey) === hint)) return error;
  return new CliError(message, hint === undefined ? undefined : redact(hint, apiKey));
}

interface AccessResult {
  ok: boolean;
  /** The HTTP status of the answer that decided, when there was one. */
  status?: number;
  /** What was found (the number of models) or what went wrong. */
  detail?: string;
}

/**
 * `get_server_capabilities` through the SDK, so that the server's authentication mode (JWT exchange
 * or plain keys) is honoured, but as one attempt: the SDK's transport retries are off, and the
 * first failure it would retry (connection error, timeout, 402, 408/409/429/5xx) ends the check.
 */
async function checkAccess(ctx: CommandContext, credential: CliCredential): Promise<AccessResult> {
  let fail: (result: AccessResult) => void = () => {};
  const firstFailure = new Promise<AccessResult>((resolve) => {
    fail = resolve;
  });
  const service = new ServiceClient({
    ...clientCredentialOptions(credential),
    baseURL: baseUrlOf(ctx),
    telemetry: false,
    maxRetries: 0,
    timeout: ctx.global.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
    fetch: async (request) => {
      let response: Response;
      try {
        response = await fetch(request);
      } catch (error) {
        fail({ ok: false, detail: `cannot reach the server: ${networkReason(error)}` });
        throw error;
      }
      if (response.status === 402 || isRetryableStatus(response.status)) {
        fail({ ok: false, status: response.status, detail: (await detailOf(response.clone())).slice(2) });
      }
      return response;
    },
  });
  const secret = "apiKey" in credential ? credential.apiKey : undefined;
  try {
    const capabilities = service.getServerCapabilities().then(
      (answer): AccessResult => ({
        ok: true,
        status: 200,
        detail: plural(answer.supported_models.length, "model"),
      }),
      (error: unknown): AccessResult => ({
        ok: false,
        ...(error instanceof APIStatusError ? { status: error.status } : {}),
        detail: error instanceof Error ? error.message : String(error),
      }),
    );
    const result = await Promise.race([capabilities, firstFailure]);
    if (!result.detail) delete result.detail;
    else result.detail = redact(result.detail, secret);
    return result;
  } finally {
    await service.close();
  }
}
