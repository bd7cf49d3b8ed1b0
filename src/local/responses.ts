/** Small helpers to build the backend's HTTP answers, and where domain errors become statuses. */
import type { LocalBackendError, LocalBackendErrorKind } from "./errors.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Headers the answer needs, such as a 405's `Allow`. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The one mapping from the backend's error kinds to HTTP statuses. */
const STATUS_OF_KIND: Readonly<Record<LocalBackendErrorKind, number>> = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
};

/** The HTTP status that answers an error kind (or a domain error, or an HttpError as it is). */
export function httpStatusOf(error: LocalBackendErrorKind | LocalBackendError | HttpError): number {
  if (typeof error === "string") return STATUS_OF_KIND[error];
  return "kind" in error ? STATUS_OF_KIND[error.kind] : error.status;
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function protobufResponse(bytes: Uint8Array, status = 200): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status,
    headers: { "content-type": "application/x-protobuf" },
  });
}

/** FastAPI-style error body, which is what Tinker-compatible servers commonly send. */
export function errorResponse(error: HttpError | LocalBackendError): Response {
  const headers = error instanceof HttpError ? error.headers : {};
  return jsonResponse({ detail: error.message }, httpStatusOf(error), headers);
}
