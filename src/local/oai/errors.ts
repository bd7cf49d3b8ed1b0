/** Errors of the OpenAI-compatible routes, answered in OpenAI's form. */

/** An answer in OpenAI's error form: status, message, the field concerned and a code. */
export class OaiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** OpenAI's `type` for the status. */
  get type(): string {
    if (this.status === 401) return "authentication_error";
    if (this.status === 404) return "not_found_error";
    return this.status >= 500 ? "server_error" : "invalid_request_error";
  }
}
