/**
 * Where the SDK tells the user something that is neither a result nor an error: the server's
 * `info_message` / `warning_message` / `error_message` on `create_session` (PROTOCOL.md §2.2.3), such
 * as the warning the service gives to versions near its floor (§G1); and, at `debug`, every request
 * (method, path, status, time), retry and poll, so a slow or failing start is never silent.
 *
 * The level comes from the `logLevel` option, else `TINKER_LOG`, else `info`. Any object with
 * `info`, `warn` and `error` (and `debug`, to see debug lines) can take the console's place, e.g. a
 * pino or winston logger.
 */
import { readEnv } from "./env.js";

export interface Logger {
  /** Request lines, retries and polls; only called at level `debug`. */
  debug?(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** `off` silences the SDK; each level includes the ones before it (`debug` shows everything). */
export const LOG_LEVELS = ["off", "error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_LOG_LEVEL: LogLevel = "info";

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value);
}

/** `TINKER_LOG` (any case), when set to one of the levels; `invalid` holds a value that is not. */
export function logLevelFromEnv(): { level?: LogLevel; invalid?: string } {
  const raw = readEnv("TINKER_LOG");
  if (raw === undefined) return {};
  const value = raw.trim().toLowerCase();
  return isLogLevel(value) ? { level: value } : { invalid: raw };
}

/** Messages already printed by the console logger: a long script does not repeat the same warning. */
const printed = new Set<string>();
/** Distinct messages remembered at most; messages naming request ids are all distinct. */
const MAX_REMEMBERED = 1_000;

/**
 * The default logger: the console, each distinct info/warning/error message once per process
 * (debug lines, which repeat by nature, every time).
 */
export function consoleLogger(): Required<Logger> {
  const once = (print: (message: string) => void) => (message: string) => {
    if (printed.has(message)) return;
    if (printed.size >= MAX_REMEMBERED) printed.clear();
    printed.add(message);
    print(`[tinker-ts] ${message}`);
  };
  return {
    debug: (m) => console.debug(`[tinker-ts] ${m}`),
    info: once((m) => console.info(m)),
    warn: once((m) => console.warn(m)),
    error: once((m) => console.error(m)),
  };
}

/**
 * `logger` filtered by `level`: calls below the level go nowhere, and so do debug lines when the
 * logger has no `debug`. A logger's own exception never reaches the SDK call that logged.
 */
export function leveledLogger(logger: Logger, level: LogLevel): Required<Logger> & { level: LogLevel } {
  const rank = LOG_LEVELS.indexOf(level);
  const at = (threshold: LogLevel, print: ((message: string) => void) | undefined) => {
    if (print === undefined || rank < LOG_LEVELS.indexOf(threshold)) return () => {};
    return (message: string) => {
      try {
        print.call(logger, message);
      } catch {
        // Logging must not turn a working call into a failing one.
      }
    };
  };
  return {
    level,
    debug: at("debug", logger.debug),
    info: at("info", logger.info),
    warn: at("warn", logger.warn),
    error: at("error", logger.error),
  };
}

/**
 * A URL as logs and error messages show it: without user name and password (a proxy URL may carry
 * them) and without the query's values, which may be signatures.
 */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, "…");
    return parsed.href.replace(/%E2%80%A6/g, "…");
  } catch {
    return "(unparseable URL)";
  }
}

/** A credential as logs show it: its kind, never its value (`tml-…`, `eyJ…` JWT). */
export function maskCredential(credential: string | undefined): string {
  if (credential === undefined || credential === "") return "none";
  if (credential.startsWith("tml-")) return "tml-… (API key)";
  if (credential.startsWith("eyJ")) return "eyJ… (JWT)";
  return "… (hidden)";
}

/** Hands a server answer's user-facing messages to `logger`, each at its own level. */
export function logServerMessages(
  answer: { info_message?: string | null; warning_message?: string | null; error_message?: string | null },
  logger: Logger,
): void {
  if (answer.info_message) logger.info(answer.info_message);
  if (answer.warning_message) logger.warn(answer.warning_message);
  if (answer.error_message) logger.error(answer.error_message);
}
