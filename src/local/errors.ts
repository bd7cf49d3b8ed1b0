/**
 * The local backend's domain error: what went wrong, in the backend's own terms. Which HTTP status
 * each kind becomes is decided in one place, `httpStatusOf` in responses.ts.
 */
import { HttpError, httpStatusOf } from "./responses.js";

export type LocalBackendErrorKind =
  /** The session, run, sampler or checkpoint does not exist (or has expired). */
  | "not_found"
  /** The request is malformed or contradicts earlier requests. */
  | "invalid"
  /** The request asks for the state things are already in. */
  | "conflict"
  /** The thing existed but no longer serves requests (an unloaded run, an expired URL). */
  | "gone"
  /** A credential (a signed URL) this backend did not issue. */
  | "forbidden";

/**
 * Extends HttpError only so that handler.ts, which answers every `instanceof HttpError` with
 * `errorResponse`, serves these unchanged; the status comes from `httpStatusOf`, never from domain
 * code. Once the handler catches LocalBackendError itself this can extend Error.
 */
export class LocalBackendError extends HttpError {
  constructor(
    readonly kind: LocalBackendErrorKind,
    message: string,
  ) {
    super(httpStatusOf(kind), message);
    this.name = "LocalBackendError";
  }
}
