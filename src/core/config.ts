/**
 * Client configuration: explicit options first, then the environment (PROTOCOL.md §1.2), then the
 * official defaults. Also the API key check of §1.3, done before anything is sent.
 */

import { lazyImport } from "../internal/lazy-import.js";
import { optionIssues, optionShape } from "../lib/strict-options.js";
import { PROTOCOL_SDK_VERSION } from "../version.js";
import { type CredentialSources, userCredentialSource } from "./auth/sources.js";
import { credentialCommand } from "./credential-command.js";
import { readEnv } from "./env.js";
import { ValidationError } from "./errors.js";
import { headerIssues } from "./header-check.js";
import type { FetchLike, ResponseInfo, RetryInfo } from "./http.js";
import {
  consoleLogger,
  DEFAULT_LOG_LEVEL,
  isLogLevel,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
  leveledLogger,
  logLevelFromEnv,
} from "./logger.js";
import { telemetryEnabledByEnv } from "./telemetry.js";
import { resolveSdkVersion } from "./version-gate.js";

export const DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod";

export interface ClientOptions {
  /** `tml-…` API key or a Tinker JWT (`eyJ…`). Default: `TINKER_API_KEY`. */
  apiKey?: string;
  /**
   * Returns a fresh credential, called for every token request when the server uses JWT auth: the
   * portable form of `TINKER_CREDENTIAL_CMD` (which it replaces when both are set). It is used when no
   * API key is set, or always when the server asks for dynamic credentials (PROTOCOL.md §1.4).
   */
  credentialProvider?: () => Promise<string> | string;
  /** Send telemetry (PROTOCOL.md §11). Default: on, unless `TINKER_TELEMETRY` says otherwise. */
  telemetry?: boolean;
  /** Default: `TINKER_BASE_URL`, else the Tinker service. */
  baseURL?: string;
  /** Any fetch: the runtime's (default), a proxy's, or the local backend's `local.fetch`. */
  fetch?: FetchLike;
  /** Transport retries per HTTP call (layer 1). Default 10, as the official client. */
  maxRetries?: number;
  /** Per-attempt timeout in ms. Default 60 000. */
  timeout?: number;
  /** Extra headers on every request. */
  defaultHeaders?: Record<string, string>;
  /** Sent with `create_session`. Default: `TINKER_PROJECT_ID`. */
  projectId?: string;
  /** Session tags. Default: `TINKER_TAGS`, comma-separated. */
  tags?: string[];
  /** Session metadata (`create_session.user_metadata`). */
  userMetadata?: Record<string, string>;
  /** Interval of the session heartbeat in ms. Default 10 000. */
  heartbeatIntervalMs?: number;
  /**
   * Called with the status and headers of every HTTP response (retried attempts included), for
   * those who want raw response data such as request-id or rate-limit headers.
   */
  onResponse?: (info: ResponseInfo) => void;
  /**
   * Called before every retry wait of an HTTP call, whatever the reason (a retryable status, a
   * connection failure, a timeout, an answer that cannot be the server's), with the reason, the
   * retry's number and the wait. Masked: no body, no credential.
   */
  onRetry?: (info: RetryInfo) => void;
  /** Largest response body accepted, in bytes. Default 100 MiB. */
  maxResponseBytes?: number;
  /**
   * The `sdk_version` reported to the server. Default: `TINKER_SDK_VERSION`, else the protocol level
   * this package implements (`PROTOCOL_SDK_VERSION`). For a service that raised its version floor
   * before a tinker-ts release did (PROTOCOL.md §G1); it does not change what the client speaks.
   */
  sdkVersion?: string;
  /**
   * Where the server's messages to the user go (`create_session`'s info, warning and error
   * messages), and at `logLevel: "debug"` every request, retry and poll. Default: the console, each
   * distinct message once per process. Any object with `info`, `warn`, `error` (and `debug`) fits.
   */
  logger?: Logger;
  /**
   * How much the SDK logs: `off`, `error`, `warn`, `info` (default) or `debug` (every request with
   * its status and time, every retry and poll; secrets masked). Default: `TINKER_LOG`, else `info`.
   */
  logLevel?: LogLevel;
  /**
   * Before the client has reached the server once, how long a refused connection, a DNS or a TLS
   * failure is retried before the call fails with an APIConnectionError naming the URL. Default
   * 10 000 ms. Once the server answered, connection errors get the protocol's long retry budget
   * (a server restart mid-run does not end a training loop).
   */
  firstConnectRetryMs?: number;
}

/** Default of `firstConnectRetryMs`: a few tries, so a wrong URL or a stopped server shows at once. */
export const DEFAULT_FIRST_CONNECT_RETRY_MS = 10_000;

/** The largest delay setTimeout honours (a larger or infinite one fires at once). */
const MAX_TIMER_MS = 2_147_483_647;

/** Every key of ClientOptions with the kind of its value: unknown keys and wrong types fail at construction. */
const CLIENT_OPTIONS_SHAPE = optionShape<ClientOptions>({
  apiKey: "string",
  credentialProvider: "function",
  telemetry: "boolean",
  baseURL: "string",
  fetch: "function",
  maxRetries: "number",
  timeout: "number",
  defaultHeaders: "object",
  projectId: "string",
  tags: "array",
  userMetadata: "object",
  heartbeatIntervalMs: "number",
  onResponse: "function",
  onRetry: "function",
  maxResponseBytes: "number",
  sdkVersion: "string",
  logger: "object",
  logLevel: "string",
  firstConnectRetryMs: "number",
});

export interface ResolvedConfig {
  /** The API key; `""` when it comes from `credentialProvider`, `TINKER_CREDENTIAL_CMD` or the credentials file. */
  apiKey: string;
  /** Where credentials come from; the handshake decides which is used for what (see core/auth). */
  credentials: CredentialSources;
  telemetry: boolean;
  baseURL: string;
  fetch: FetchLike | undefined;
  maxRetries: number;
  timeoutMs: number;
  defaultHeaders: Record<string, string>;
  projectId: string | undefined;
  tags: string[];
  userMetadata: Record<string, string>;
  heartbeatIntervalMs: number;
  onResponse: ((info: ResponseInfo) => void) | undefined;
  onRetry: ((info: RetryInfo) => void) | undefined;
  maxResponseBytes: number | undefined;
  sdkVersion: string;
  /** The user's logger (or the console's) filtered by the level. */
  logger: Required<Logger> & { level: LogLevel };
  firstConnectRetryMs: number;
}

/**
 * The options checked and completed. Everything is decided here, at construction, so a mistyped
 * option, a base URL without a scheme or a malformed key fails at once with a ValidationError
 * instead of after minutes of retries; nothing is sent, read from disk, timed or drawn at random.
 */
export function resolveConfig(options: ClientOptions): ResolvedConfig {
  const issues = optionIssues(options, CLIENT_OPTIONS_SHAPE, "ServiceClient(options)");
  if (issues.length > 0) throw new ValidationError(issues);
  const credentials = resolveCredentials(options);
  const maxRetries = options.maxRetries ?? 10;
  const timeoutMs = options.timeout ?? 60_000;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new ValidationError([{ path: "maxRetries", message: "must be a non-negative integer" }]);
  }
  checkDelay(timeoutMs, "timeout");
  const firstConnectRetryMs = options.firstConnectRetryMs ?? DEFAULT_FIRST_CONNECT_RETRY_MS;
  if (!(firstConnectRetryMs >= 0) || firstConnectRetryMs > MAX_TIMER_MS) {
    throw new ValidationError([{ path: "firstConnectRetryMs", message: "must be a number of ms ≥ 0" }]);
  }
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
  checkDelay(heartbeatIntervalMs, "heartbeatIntervalMs");
  const defaultHeaders = { ...cloudflareAccessHeaders(), ...options.defaultHeaders };
  const badHeaders = headerIssues(defaultHeaders, "defaultHeaders");
  if (badHeaders.length > 0) throw new ValidationError(badHeaders);
  const logger = resolveLogger(options);
  return {
    apiKey: credentials.apiKey ?? "",
    credentials,
    telemetry: options.telemetry ?? telemetryEnabledByEnv(),
    baseURL: resolveBaseURL(options.baseURL),
    fetch: options.fetch,
    maxRetries,
    timeoutMs,
    defaultHeaders,
    projectId: options.projectId ?? readEnv("TINKER_PROJECT_ID"),
    tags: options.tags ?? parseTags(readEnv("TINKER_TAGS")),
    userMetadata: options.userMetadata ?? {},
    heartbeatIntervalMs,
    onResponse: options.onResponse,
    onRetry: options.onRetry,
    maxResponseBytes: options.maxResponseBytes,
    sdkVersion: resolveSdkVersion(options.sdkVersion, PROTOCOL_SDK_VERSION),
    logger,
    firstConnectRetryMs,
  };
}

/** A positive number of ms within setTimeout's range. */
function checkDelay(ms: number, path: string): void {
  if (typeof ms !== "number" || !(ms > 0) || ms > MAX_TIMER_MS)
    throw new ValidationError([{ path, message: "must be a positive number of ms" }]);
}

/**
 * The base URL (option, else `TINKER_BASE_URL`, else the service): it must parse as an http(s) URL.
 * `localhost:8000` parses as a URL of scheme `localhost:` and `127.0.0.1:8000` not at all; either
 * would otherwise fail only after the full retry budget, having sent nothing.
 */
function resolveBaseURL(option: string | undefined): string {
  const fromEnv = option === undefined ? readEnv("TINKER_BASE_URL") : undefined;
  const baseURL = option ?? fromEnv ?? DEFAULT_BASE_URL;
  const path = fromEnv === undefined ? "baseURL" : "baseURL (from TINKER_BASE_URL)";
  let parsed: URL | undefined;
  try {
    parsed = new URL(baseURL);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    // A URL with a user name and password in it is shown without them.
    const shown = baseURL.replace(/^([a-z][\w+.-]*:\/\/)?[^/@]*@/i, "$1…@");
    const hint = /^[\w.-]+(:\d+)?(\/|$)/.test(baseURL) ? ` (did you mean "http://${shown}"?)` : "";
    throw new ValidationError([
      {
        path,
        message: `must be an http:// or https:// URL, got ${JSON.stringify(shown)}${hint}`,
      },
    ]);
  }
  return baseURL;
}

/** The logger at its level: the `logLevel` option, else `TINKER_LOG`, else `info`. */
function resolveLogger(options: ClientOptions): ResolvedConfig["logger"] {
  const { logger } = options;
  if (logger !== undefined) {
    const missing = (["info", "warn", "error"] as const).filter((m) => typeof logger[m] !== "function");
    if (missing.length > 0 || (logger.debug !== undefined && typeof logger.debug !== "function")) {
      throw new ValidationError([
        {
          path: "logger",
          message: `must have info, warn and error methods (and optionally debug); missing ${missing.join(", ") || "a debug function"}`,
        },
      ]);
    }
  }
  if (options.logLevel !== undefined && !isLogLevel(options.logLevel)) {
    throw new ValidationError([
      {
        path: "logLevel",
        message: `must be one of ${LOG_LEVELS.map((l) => `"${l}"`).join(", ")}, got ${JSON.stringify(options.logLevel)}`,
      },
    ]);
  }
  const env = logLevelFromEnv();
  const leveled = leveledLogger(
    logger ?? consoleLogger(),
    options.logLevel ?? env.level ?? DEFAULT_LOG_LEVEL,
  );
  if (options.logLevel === undefined && env.invalid !== undefined) {
    leveled.warn(
      `TINKER_LOG=${JSON.stringify(env.invalid)} is not a log level (${LOG_LEVELS.join(", ")}); using ${DEFAULT_LOG_LEVEL}`,
    );
  }
  return leveled;
}

/**
 * The API key and the dynamic credential (option, else `TINKER_CREDENTIAL_CMD`). As in the official
 * client, a missing or malformed key is an error only when there is no dynamic credential to use
 * instead.
 */
function resolveCredentials(options: ClientOptions): CredentialSources {
  const apiKey = options.apiKey ?? readEnv("TINKER_API_KEY");
  const command = readEnv("TINKER_CREDENTIAL_CMD");
  const dynamic = options.credentialProvider
    ? userCredentialSource(options.credentialProvider)
    : command !== undefined
      ? credentialCommand(command)
      : undefined;
  if (dynamic === undefined) {
    // Last resort, the key of `tinker-ts auth login`: read at the handshake, since a file read is async.
    if (apiKey === undefined) return { apiKey, dynamic, stored: storedApiKey };
    checkApiKey(apiKey);
    return { apiKey, dynamic };
  }
  return { apiKey: apiKey !== undefined && isWellFormedKey(apiKey) ? apiKey : undefined, dynamic };
}

/** The official client accepts keys that start with `tml-` and JWTs (`eyJ`). */
function isWellFormedKey(apiKey: string): boolean {
  return apiKey.startsWith("tml-") || apiKey.startsWith("eyJ");
}

function checkApiKey(apiKey: string): void {
  if (!isWellFormedKey(apiKey)) {
    // Never echo the key itself: it is a secret even when malformed.
    throw new ValidationError([{ path: "apiKey", message: "The api_key must start with the 'tml-' prefix" }]);
  }
}

/** A separate chunk: only clients with no other credential ever read the file. */
const loadCredentialsFile = /* @__PURE__ */ lazyImport(() => import("./auth/credentials-file.js"));

/** The stored default key, held to the same form as any other API key. */
async function storedApiKey(): Promise<string | undefined> {
  const apiKey = await (await loadCredentialsFile()).readStoredApiKey();
  if (apiKey !== undefined && !isWellFormedKey(apiKey)) {
    throw new ValidationError([
      {
        path: "apiKey",
        message: "The default key of the credentials file must start with the 'tml-' prefix",
      },
    ]);
  }
  return apiKey;
}

/** Comma-separated, de-duplicated (first occurrence wins; order kept, unlike the official set). */
function parseTags(value: string | undefined): string[] {
  if (!value) return [];
  return [
    ...new Set(
      value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== ""),
    ),
  ];
}

function cloudflareAccessHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const id = readEnv("CLOUDFLARE_ACCESS_CLIENT_ID");
  const secret = readEnv("CLOUDFLARE_ACCESS_CLIENT_SECRET");
  if (id) headers["CF-Access-Client-Id"] = id;
  if (secret) headers["CF-Access-Client-Secret"] = secret;
  return headers;
}
