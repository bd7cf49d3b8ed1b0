/**
 * Where the SDK tells the user something that is neither a result nor an error: the server's
 * `info_message` / `warning_message` / `error_message` on `create_session` (PROTOCOL.md §2.2.3), such
 * as the warning the service gives to versions near its floor (§G1).
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Messages already printed by the console logger: a long script does not repeat the same warning. */
const printed = new Set<string>();
/** Distinct messages remembered at most; messages naming request ids are all distinct. */
const MAX_REMEMBERED = 1_000;

/** The default logger: the console, each distinct message once per process. */
export function consoleLogger(): Logger {
  const once = (print: (message: string) => void) => (message: string) => {
    if (printed.has(message)) return;
    if (printed.size >= MAX_REMEMBERED) printed.clear();
    printed.add(message);
    print(`[tinker-ts] ${message}`);
  };
  return {
    info: once((m) => console.info(m)),
    warn: once((m) => console.warn(m)),
    error: once((m) => console.error(m)),
  };
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
