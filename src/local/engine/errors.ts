/**
 * The single error type of the engine. Callers (the local server) map it to a client error
 * (HTTP 4xx) because every `EngineError` is caused by a bad request, never by an engine bug.
 */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
  }
}
