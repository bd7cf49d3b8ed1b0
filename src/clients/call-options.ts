import { ValidationError } from "../core/errors.js";
import { eitherSignal } from "../internal/abort.js";
import { CALL_OPTION_SHAPE, checkOptions, type OptionShape, optionShape } from "../lib/strict-options.js";
import type { LoadTokenizerOptions } from "../lib/tokenizer/index.js";

/** Options every network call accepts. */
export interface CallOptions {
  /** Cancels the operation (submission and polling). */
  signal?: AbortSignal;
  /** Gives up after this many ms, with a timeout error. */
  timeout?: number;
}

/** `getTokenizer(options)` of the training and sampling clients. */
export const TOKENIZER_CALL_OPTIONS_SHAPE = optionShape<CallOptions & LoadTokenizerOptions>({
  ...CALL_OPTION_SHAPE,
  revision: "string",
  hfToken: "string",
  hubUrl: "string",
  baseUrl: ["string", "object"],
  loadFile: "function",
  fetch: "function",
  headers: "object",
  cache: "boolean",
});

/** The largest delay setTimeout (and AbortSignal.timeout) honours. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/** Folds `timeout` into the caller's signal. */
export function withTimeout(options: CallOptions | undefined): AbortSignal | undefined {
  if (!options) return undefined;
  const { signal, timeout } = options;
  if (timeout === undefined) return signal;
  const timer = AbortSignal.timeout(timeout);
  return signal ? eitherSignal(signal, timer) : timer;
}

/**
 * The checks at the entry of every public client method, before anything is sent: the client is
 * still open, and `options` has only the keys of `shape` (the call options by default), each of
 * its kind. `where` names the method in messages (`optimStep`).
 */
export function checkCall(
  connection: { checkOpen(where: string): void },
  where: string,
  options: unknown,
  shape: OptionShape = CALL_OPTION_SHAPE,
): void {
  connection.checkOpen(where);
  checkOptions(options, shape, `${where}(options)`);
  const timeout = (options as CallOptions | undefined)?.timeout;
  if (timeout !== undefined && !(timeout > 0 && timeout <= MAX_TIMEOUT_MS)) {
    throw new ValidationError([
      { path: `${where}(options).timeout`, message: `must be a positive number of ms, got ${timeout}` },
    ]);
  }
}
