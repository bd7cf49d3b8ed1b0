/**
 * The error tree (DESIGN.md §3):
 *
 *   TinkerError
 *   ├─ APIError (status?, headers?, body?, requestId?)
 *   │   ├─ APIStatusError → BadRequestError 400, AuthenticationError 401, PermissionDeniedError 403,
 *   │   │                   NotFoundError 404, ConflictError 409, UnprocessableEntityError 422,
 *   │   │                   RateLimitError 429, InternalServerError ≥500
 *   │   │   └─ SdkVersionUnsupportedError (the service refuses this client's sdk_version)
 *   │   ├─ APIConnectionError → APITimeoutError
 *   │   ├─ APIUserAbortError
 *   │   └─ UnexpectedResponseError (an answer that cannot be the server's, retried until it persisted)
 *   │       └─ ResponseValidationError (the server answered with something the schema does not accept)
 *   ├─ RequestFailedError (a future finished with {error, category})
 *   ├─ FutureRetrieveError (a poll answered with a status that ends the future)
 *   └─ ValidationError (bad input caught before anything was sent)
 *
 * Every error masks the credentials the SDK's clients send (src/core/redact.ts) in its message,
 * stack, body, headers and cause: a server page that echoes the request headers must not put the
 * API key into logs or telemetry.
 *
 * `instanceof` must hold even when a program ends up with two copies of this module (the ESM and
 * the CJS build, or two versions), so each class checks a brand registered under a global symbol
 * instead of its own prototype chain.
 */

import { bodyExcerpt, redactCause, redactHeaders, redactText, redactValue } from "./redact.js";

const BRANDS = Symbol.for("tinker-ts.error.brands");

type Branded = { [BRANDS]?: readonly string[] };

function brandOf(value: unknown): readonly string[] | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return (value as Branded)[BRANDS];
}

export class TinkerError extends Error {
  /** The brand name checked by `instanceof`; each subclass sets its own. */
  protected static readonly brand: string = "TinkerError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(
      redactText(message),
      options && "cause" in options ? { cause: redactCause(options.cause) } : undefined,
    );
    const chain: string[] = [];
    for (let ctor = new.target as unknown as { brand?: string }; ctor; ctor = Object.getPrototypeOf(ctor)) {
      if (Object.hasOwn(ctor, "brand") && ctor.brand) chain.push(ctor.brand);
      if ((ctor as unknown) === TinkerError) break;
    }
    Object.defineProperty(this, BRANDS, { value: chain, enumerable: false });
    this.name = new.target.name;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    const brands = brandOf(value);
    if (!brands) return false;
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class being tested (a subclass too).
    return brands.includes((this as unknown as { brand: string }).brand);
  }
}

export interface APIErrorDetails {
  status?: number;
  headers?: Headers;
  body?: unknown;
  requestId?: string;
  cause?: unknown;
}

export class APIError extends TinkerError {
  protected static override readonly brand: string = "APIError";
  /** HTTP status, when a response was received. */
  readonly status: number | undefined;
  /** Response headers, when a response was received. */
  readonly headers: Headers | undefined;
  /** Parsed JSON body if it was JSON, else its text. */
  readonly body: unknown;
  /** The future's request id, when the error concerns a future. */
  readonly requestId: string | undefined;

  constructor(message: string, details: APIErrorDetails = {}) {
    super(message, "cause" in details ? { cause: details.cause } : undefined);
    this.status = details.status;
    this.headers = redactHeaders(details.headers);
    this.body = redactValue(details.body);
    this.requestId = details.requestId;
  }

  /** Picks the subclass for a status, with the official client's message format. */
  static fromResponse(status: number, body: unknown, headers: Headers, requestId?: string): APIStatusError {
    const message = statusMessage(status, body);
    // A text body (an HTML page) is kept as its excerpt; a JSON one whole, for its fields.
    const kept = typeof body === "string" ? bodyExcerpt(body) : body;
    const details = { status, headers, body: kept, requestId };
    const ErrorClass = STATUS_CLASSES[status] ?? (status >= 500 ? InternalServerError : APIStatusError);
    return new ErrorClass(message, details as APIErrorDetails & { status: number });
  }
}

/** The official format, with a bounded excerpt of the body (an HTML error page can be long). */
function statusMessage(status: number, body: unknown): string {
  if (body === undefined || body === null || body === "") return `Error code: ${status}`;
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return `Error code: ${status} - ${bodyExcerpt(text)}`;
}

/** Any non-2xx answer that survived the retries. */
export class APIStatusError extends APIError {
  protected static override readonly brand: string = "APIStatusError";
  declare readonly status: number;
  declare readonly headers: Headers;
}

export class BadRequestError extends APIStatusError {
  protected static override readonly brand: string = "BadRequestError";
}
/**
 * The service refused the `sdk_version` this client reports (PROTOCOL.md §G1). Not retried: upgrade
 * tinker-ts, or override the reported version (`sdkVersion` option, `TINKER_SDK_VERSION`).
 */
export class SdkVersionUnsupportedError extends BadRequestError {
  protected static override readonly brand = "SdkVersionUnsupportedError";
  /** The `sdk_version` the refused request carried. */
  readonly sdkVersion: string;

  constructor(message: string, details: APIErrorDetails & { status: number }, sdkVersion: string) {
    super(message, details);
    this.sdkVersion = sdkVersion;
  }
}
export class AuthenticationError extends APIStatusError {
  protected static override readonly brand = "AuthenticationError";
}
export class PermissionDeniedError extends APIStatusError {
  protected static override readonly brand = "PermissionDeniedError";
}
export class NotFoundError extends APIStatusError {
  protected static override readonly brand = "NotFoundError";
}
export class ConflictError extends APIStatusError {
  protected static override readonly brand = "ConflictError";
}
export class UnprocessableEntityError extends APIStatusError {
  protected static override readonly brand = "UnprocessableEntityError";
}
export class RateLimitError extends APIStatusError {
  protected static override readonly brand = "RateLimitError";
}
export class InternalServerError extends APIStatusError {
  protected static override readonly brand = "InternalServerError";
}

const STATUS_CLASSES: Record<number, new (message: string, details: APIErrorDetails) => APIStatusError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  422: UnprocessableEntityError,
  429: RateLimitError,
};

/** No HTTP response was received (refused, reset, DNS...). */
export class APIConnectionError extends APIError {
  protected static override readonly brand: string = "APIConnectionError";
  constructor(message = "Connection error.", details: APIErrorDetails = {}) {
    super(message, details);
  }
}

/** No response within the per-attempt or total time allowed. */
export class APITimeoutError extends APIConnectionError {
  protected static override readonly brand = "APITimeoutError";
  constructor(message = "Request timed out.", details: APIErrorDetails = {}) {
    super(message, details);
  }
}

/** The caller's AbortSignal fired. */
export class APIUserAbortError extends APIError {
  protected static override readonly brand = "APIUserAbortError";
  constructor(message = "Request was aborted.", details: APIErrorDetails = {}) {
    super(message, details);
  }
}

export type RequestFailureCategory = "user" | "server" | "unknown";

/** A future finished with `{error, category}`: the server ran the request and it failed. */
export class RequestFailedError extends TinkerError {
  protected static override readonly brand = "RequestFailedError";
  readonly requestId: string;
  readonly category: RequestFailureCategory;

  constructor(message: string, requestId: string, category: RequestFailureCategory) {
    super(message);
    this.requestId = requestId;
    this.category = category;
  }
}

/**
 * Polling a future was answered with a status that ends it (401, 403, 404, 410 for training, ...).
 * `status` says which; a 410 means the server dropped the promise ("expired").
 */
export class FutureRetrieveError extends APIError {
  protected static override readonly brand = "FutureRetrieveError";
}

export interface ValidationIssue {
  /** Dotted path of the offending value, e.g. `data[3].loss_fn_inputs.weights`. */
  path: string;
  message: string;
}

/** Bad input caught before any request was sent. */
export class ValidationError extends TinkerError {
  protected static override readonly brand = "ValidationError";
  readonly issues: ValidationIssue[];

  constructor(issues: ValidationIssue[] | string) {
    const list = typeof issues === "string" ? [{ path: "", message: issues }] : issues;
    super(list.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; "));
    this.issues = list;
  }
}

/** Why an answer cannot be the server's (`UnexpectedResponseError.kind`). */
export type UnexpectedResponseKind =
  /** An HTML page (a captive portal, a load balancer's page) where JSON or protobuf was expected. */
  | "html"
  /** A content type the route never answers with. */
  | "content_type"
  /** A JSON content type whose body does not parse. */
  | "malformed"
  /** A body that breaks the expected schema, or protobuf bytes that do not decode. */
  | "schema"
  /** A submission answered with a request id this client already holds (a replayed answer). */
  | "stale_request_id"
  /** A poll answered about another request. */
  | "foreign_request_id";

export interface UnexpectedResponseDetails extends APIErrorDetails {
  kind: UnexpectedResponseKind;
}

/**
 * An answer that cannot be the server's: an HTML page with status 200, a wrong content type for
 * the route, a body that breaks the schema, a replayed answer carrying a request id this client
 * already holds. The SDK treats it as a transient transport fault — the request is sent again,
 * unchanged (same `seq_id`), within a bounded budget — and throws this only when it persisted.
 * `body` holds a bounded, redacted excerpt.
 */
export class UnexpectedResponseError extends APIError {
  protected static override readonly brand: string = "UnexpectedResponseError";
  readonly kind: UnexpectedResponseKind;

  constructor(message: string, details: UnexpectedResponseDetails) {
    super(message, details);
    this.kind = details.kind;
  }
}

/** The server's answer does not match the schema of the expected response. */
export class ResponseValidationError extends UnexpectedResponseError {
  protected static override readonly brand = "ResponseValidationError";
  readonly issues: ValidationIssue[];

  constructor(what: string, body: unknown, issues: ValidationIssue[]) {
    super(
      `Unexpected ${what} response: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`,
      { kind: "schema", body: typeof body === "string" ? bodyExcerpt(body) : body },
    );
    this.issues = issues.map((issue) => ({ path: issue.path, message: redactText(issue.message) }));
  }
}
