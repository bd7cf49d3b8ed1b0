/** The CLI's own errors, reported without a stack trace. */

/** Wrong command line: exit code 2. */
export class UsageError extends Error {}

/** A failure to report as `Error: message` (and an optional hint line): exit code 1. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}
