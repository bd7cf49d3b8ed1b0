/**
 * The local backend's router, built from the endpoint declarations (src/wire/endpoints): each route
 * is a declaration plus the code that gives it meaning here. Bodies and queries are parsed,
 * defaulted and validated by the declared schemas — the same ones the SDK sends with — so a bad
 * request is a 400 naming every failing field, and client and backend cannot drift.
 */
import {
  type Endpoint,
  parseBody,
  parseQuery,
  pathParamNames,
  pathPattern,
} from "../../wire/endpoints/define.js";
import { jsonDeeperThan, LOCAL_LIMITS } from "../limits.js";
import { HttpError, jsonResponse } from "../responses.js";

export interface RouteInput<Body> {
  /** The body after the declaration's defaults (protobuf routes read `request` themselves). */
  body: Body;
  /** Path parameters, percent-decoded, by placeholder name. */
  params: Record<string, string>;
  /** The query after the declaration's defaults. */
  query: Record<string, unknown>;
  request: Request;
}

/** A route answers with a Response, or with a value sent as JSON. */
export type RouteHandler<Body> = (input: RouteInput<Body>) => unknown | Promise<unknown>;

export interface Route {
  endpoint: Endpoint;
  pattern: RegExp;
  handle(request: Request, captures: string[]): Promise<Response>;
}

/** A route for a declared endpoint. */
export function route<Body>(e: Endpoint<Body, unknown>, handler: RouteHandler<Body>): Route {
  const names = pathParamNames(e);
  return {
    endpoint: e,
    pattern: pathPattern(e),
    async handle(request, captures) {
      const params = Object.fromEntries(names.map((name, i) => [name, pathParam(captures[i])]));
      const query = readQuery(e, new URL(request.url).searchParams);
      const body = e.protobufBody || request.method === "GET" ? undefined : await readBody(e, request);
      const answer = await handler({ body: body as Body, params, query, request });
      return answer instanceof Response ? answer : jsonResponse(answer ?? {});
    },
  };
}

/** Finds the route of `method path` (path after `api/v1/`). */
export function matchRoute(routes: readonly Route[], method: string, path: string) {
  for (const r of routes) {
    if (r.endpoint.method !== method) continue;
    const match = r.pattern.exec(path);
    if (match) return { route: r, captures: match.slice(1) };
  }
  return undefined;
}

/** The methods that have a route for `path` (after `api/v1/`). */
export function allowedMethods(routes: readonly Route[], path: string): string[] {
  return [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.endpoint.method))];
}

async function readBody(e: Endpoint, request: Request): Promise<unknown> {
  const parsed = parseBody(e, await readJson(request));
  if (!parsed.ok) throw invalid(e, parsed.issues);
  return parsed.value;
}

function readQuery(e: Endpoint, search: URLSearchParams): Record<string, unknown> {
  const raw = Object.fromEntries(search.entries());
  const parsed = parseQuery(e, raw);
  if (!parsed.ok) throw invalid(e, parsed.issues);
  return parsed.value;
}

function invalid(e: Endpoint, issues: { path: string; message: string }[]): HttpError {
  const text = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  return new HttpError(400, `invalid ${e.name} request: ${text}`);
}

/**
 * The body as a JSON object; an empty body is `{}` (some clients send none). Nesting deeper than
 * LOCAL_LIMITS.maxJsonDepth is refused before parsing, so no later walk over the value (a retry's
 * fingerprint, a schema) can overflow the stack.
 */
export async function readJson(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.trim() === "") return {};
  if (jsonDeeperThan(text, LOCAL_LIMITS.maxJsonDepth)) {
    throw new HttpError(400, `request body nests deeper than ${LOCAL_LIMITS.maxJsonDepth} levels`);
  }
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw new HttpError(400, "request body must be a JSON object");
  }
}

/** A captured path segment, percent-decoded (clients may encode the `:` of run ids). */
export function pathParam(value: string | undefined): string {
  try {
    return decodeURIComponent(value ?? "");
  } catch {
    throw new HttpError(400, `invalid percent-encoding in ${JSON.stringify(value)}`);
  }
}

/** The URL this backend is served under (origin and any prefix before `/api/v1/`), for links. */
export function baseUrlOf(request: Request): string {
  const url = new URL(request.url);
  return url.origin + url.pathname.slice(0, url.pathname.indexOf("/api/v1/"));
}

/** The immediate answer of a future endpoint. */
export function futureAccepted(requestId: string, modelId?: string | null, extra: object = {}) {
  return { request_id: requestId, model_id: modelId ?? null, ...extra };
}
