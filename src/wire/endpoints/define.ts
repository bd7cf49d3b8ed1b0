/**
 * One declaration per endpoint (DESIGN.md §4): the protocol facts of a route — method, path, request
 * schema with its defaults, result decoder, future request type, retry layers, the server flag that
 * gates it — stated once. The SDK's `call()` / `submit()` (src/clients/call.ts) and the local
 * backend's router (src/local/routes) are both built from these declarations, so a protocol change
 * is one edit here plus the code that gives it meaning, and client and backend cannot drift.
 */
import * as v from "valibot";

/** `X-Tinker-Request-Type` values of future endpoints (PROTOCOL.md §4.4, §F2). */
export type FutureRequestType =
  | "CreateModel"
  | "ForwardBackward"
  | "Forward"
  | "OptimStep"
  | "SaveWeights"
  | "LoadWeights"
  | "SaveWeightsForSampler"
  | "SaveWeightsExternal"
  | "Sample"
  | "UnloadModel";

/** How a result is read: a JSON schema, and a protobuf decoder for routes that answer in protobuf. */
export interface ResultDecoder<T> {
  /** Schema of a JSON result. Also used for JSON answers to protobuf requests (lenient servers). */
  schema: v.GenericSchema<unknown, T>;
  /** Decoder of a protobuf result; when set, the client asks for `application/x-protobuf`. */
  protobuf?: (bytes: Uint8Array) => T;
}

/**
 * The retry layers of PROTOCOL.md §5 that wrap one call:
 * - `generic`: the generic loop (layer 2, 5 minutes over 408/409/429/5xx/connection errors, 402
 *   pauses) around the transport retries (layer 1);
 * - `transport`: transport retries only (the official client does this for session and model
 *   creation, whose retry would create a second one).
 * `transportRetries` caps layer 1 (0 for requests that must not be sent twice by the transport, such
 * as saves, whose retry is the generic loop's decision).
 */
export type RetryLayers = "generic" | "transport";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface EndpointSpec<Body, Result> {
  /** The protocol's name for it, e.g. `optim_step` (also the `type` literal of most bodies). */
  name: string;
  method: HttpMethod;
  /**
   * Path under `api/v1/`, with `{param}` placeholders (one path segment each) and `{param+}` for a
   * checkpoint id, which holds a `/` (`weights/<name>`). Ids are inserted unencoded, as the
   * official client does.
   */
  path: string;
  /**
   * The JSON body: what the client sends after defaults, and what the backend accepts from any
   * client version (so fields later versions added are optional, with the defaults the server
   * assumes). Absent for bodiless routes and for protobuf bodies, which have their own codec.
   */
  body?: v.GenericSchema<unknown, Body>;
  /** Query parameters, for GET routes; values arrive as strings on the server side. */
  query?: v.GenericSchema<unknown, Record<string, unknown>>;
  /** The body is protobuf (forward_backward); the JSON schema then describes the legacy JSON form. */
  protobufBody?: boolean;
  /** The result: the direct answer, or a future endpoint's polled result. */
  result: ResultDecoder<Result>;
  /** Set for future endpoints: the answer is a request id, the result is polled under this type. */
  future?: FutureRequestType;
  retry: RetryLayers;
  /** Cap on transport retries (layer 1); the client's setting when absent. */
  transportRetries?: number;
  /** Per-attempt timeout in ms; the client's setting when absent. */
  timeoutMs?: number;
  /** Extra request headers the protocol requires on this route. */
  headers?: Record<string, string>;
  /**
   * The `client/config` (or `client/dynamic_config`) flag that must be true before a client uses
   * this route; servers without the flag never see it.
   */
  flag?: string;
  /** The official SDK version that introduced the route, for docs and tests. */
  since?: string;
}

export type Endpoint<Body = unknown, Result = unknown> = Readonly<EndpointSpec<Body, Result>>;

/** Declares an endpoint; the identity function, for inference of `Body` and `Result`. */
export function endpoint<Body, Result>(spec: EndpointSpec<Body, Result>): Endpoint<Body, Result> {
  return Object.freeze(spec);
}

/** The endpoints an area's module declares (its exports that are declarations). */
export function declaredIn(module: Record<string, unknown>): Endpoint[] {
  return Object.values(module).filter(
    (value): value is Endpoint =>
      typeof value === "object" && value !== null && "path" in value && "method" in value && "retry" in value,
  );
}

/** The body type an endpoint accepts before defaults are applied. */
export type BodyInput<E> = E extends Endpoint<infer B, unknown> ? B : never;
/** The result type of an endpoint. */
export type ResultOf<E> = E extends Endpoint<unknown, infer R> ? R : never;

/** The path with its placeholders filled in (ids unencoded, as the official client sends them). */
export function pathOf(e: Endpoint, params: Record<string, string> = {}): string {
  return `api/v1/${e.path.replace(/\{(\w+)\+?\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`${e.name}: missing path parameter ${name}`);
    return value;
  })}`;
}

/** How messages name a route: `GET /api/v1/training_runs/{run_id}`. */
export function routeName(e: Endpoint): string {
  return `${e.method} /api/v1/${e.path}`;
}

/**
 * A matcher for the path after `api/v1/`: one capture per placeholder, in order. A checkpoint id
 * (`{name+}`) is `kind/name` unencoded, or one segment with an encoded `%2F`.
 */
export function pathPattern(e: Endpoint): RegExp {
  const source = e.path
    .split(/(\{\w+\+?\})/)
    .map((part) => {
      if (/^\{\w+\+\}$/.test(part)) return "([^/]+/[^/]+|[^/]*%2[Ff][^/]*)";
      if (/^\{\w+\}$/.test(part)) return "([^/]+)";
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("");
  return new RegExp(`^${source}$`);
}

/** The names of an endpoint's path placeholders, in order. */
export function pathParamNames(e: Endpoint): string[] {
  return [...e.path.matchAll(/\{(\w+)\+?\}/g)].map((m) => m[1]!);
}

export interface BodyIssue {
  path: string;
  message: string;
}

/** Parses `value` with `schema`: its output (defaults applied), or the issues with their dot paths. */
export function parseWith<T>(
  schema: v.GenericSchema<unknown, T>,
  value: unknown,
): { ok: true; value: T } | { ok: false; issues: BodyIssue[] } {
  const result = v.safeParse(schema, value);
  if (result.success) return { ok: true, value: result.output };
  return {
    ok: false,
    issues: result.issues.map((issue) => ({ path: v.getDotPath(issue) ?? "", message: issue.message })),
  };
}

/** Parses a body against an endpoint's schema: the value with defaults, or the issues. */
export function parseBody<Body>(
  e: Endpoint<Body, unknown>,
  value: unknown,
): { ok: true; value: Body } | { ok: false; issues: BodyIssue[] } {
  return e.body ? parseWith(e.body, value) : { ok: true, value: value as Body };
}

/** Parses a query (string values on the server, numbers or strings on the client). */
export function parseQuery(
  e: Endpoint,
  value: Record<string, unknown>,
): { ok: true; value: Record<string, unknown> } | { ok: false; issues: BodyIssue[] } {
  return e.query ? parseWith(e.query, value) : { ok: true, value };
}
