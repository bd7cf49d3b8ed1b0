/**
 * The error types of the engine. Callers (the local server) map them to a client error
 * (HTTP 4xx) because every `EngineError` is caused by a bad request, never by an engine bug.
 */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
  }
}

/**
 * An optimizer step, or an optimizer state being loaded, belongs to another optimizer family
 * than the training run, whose family is fixed when it is created.
 */
export class OptimizerMismatchError extends EngineError {
  constructor(
    /** The run's family. */
    readonly expected: string,
    /** The family of the rejected params or state. */
    readonly actual: string,
    message: string,
  ) {
    super(message);
    this.name = "OptimizerMismatchError";
  }
}
