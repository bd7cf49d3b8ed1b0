/**
 * The local backend's HTTP surface: a web-standard `fetch(request)` handler that speaks the Tinker
 * protocol (PROTOCOL.md §2) so that this SDK and the unmodified official Python client can both use
 * it. Routes match on the part of the path after `/api/v1/`, so any base-URL prefix works.
 */
import { createLocalAuth, type LocalAuthOptions } from "./auth.js";
import { authKeyRoutes, serveUnauthed } from "./auth-keys.js";
import type { LocalBackend } from "./backend.js";
import { BodyTooLargeError, LOCAL_LIMITS, limitBody } from "./limits.js";
import { OaiError } from "./oai/errors.js";
import { OAI_PREFIX, oaiErrorResponse, oaiRoutes } from "./oai/routes.js";
import { errorResponse, HttpError } from "./responses.js";
import { externalWeightsRoutes, serveSignedWeightsFile } from "./routes/external-weights.js";
import { futureRoutes } from "./routes/futures.js";
import { restRoutes } from "./routes/rest.js";
import { allowedMethods, matchRoute, pathParam, type Route } from "./routes/router.js";
import { samplingRoutes } from "./routes/sampling.js";
import { sessionRoutes } from "./routes/session.js";
import { trainingRoutes } from "./routes/training.js";

export interface HandlerOptions extends LocalAuthOptions {
  /** How long `retrieve_future` holds a poll open before answering try_again. Default 5 s. */
  longPollMs?: number;
  /** Answer metadata-only (§4.5) for results above this many bytes. Default 1 MiB. */
  metadataOnlyThresholdBytes?: number;
  /**
   * Extra fields for the `client/config` answer (PROTOCOL.md §1.5), e.g. `fwdbwd_max_chunk_len`
   * or `create_model_via_load_weights`, to make clients take the other protocol paths.
   */
  clientConfig?: Record<string, unknown>;
  /**
   * Extra fields for the `client/dynamic_config` answer, e.g. `sample_cancel_enabled: false` to
   * serve clients as a server without sample cancellation would (PROTOCOL.md §F2).
   */
  dynamicConfig?: Record<string, unknown>;
  /**
   * Refuse `create_session` from clients whose `sdk_version` is below this, as the hosted service
   * does (PROTOCOL.md §G1). Off by default.
   */
  minSdkVersion?: string;
  /**
   * Largest request body in bytes; a larger one is answered 413 (a declared Content-Length before
   * the credential is even checked, a streamed one as soon as it passes the limit). Default
   * LOCAL_LIMITS.maxBodyBytes (64 MiB).
   */
  maxBodyBytes?: number;
}

export function createHandler(backend: LocalBackend, options: HandlerOptions = {}) {
  const auth = createLocalAuth(options);
  const routes: Route[] = [
    ...sessionRoutes(backend, auth, options),
    ...authKeyRoutes(auth),
    ...trainingRoutes(backend),
    ...samplingRoutes(backend),
    ...futureRoutes(backend, {
      longPollMs: options.longPollMs ?? 5_000,
      metadataThreshold: options.metadataOnlyThresholdBytes ?? 1024 * 1024,
    }),
    ...restRoutes(backend),
    ...externalWeightsRoutes(backend),
  ];

  const maxBodyBytes = options.maxBodyBytes ?? LOCAL_LIMITS.maxBodyBytes;
  const handleOai = oaiRoutes(backend);

  /**
   * `<base>/oai/api/v1/<route>`: the OpenAI-compatible routes, authenticated with the same API keys
   * as the native ones, sent as OpenAI clients do (`Authorization: Bearer`) or as `X-API-Key`; in
   * JWT mode too the raw key is accepted, as OpenAI clients cannot do the exchange.
   */
  async function dispatchOai(request: Request, route: string): Promise<Response> {
    const bearer = /^bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
    const credential = request.headers.get("x-api-key") ?? bearer;
    const probe = new Headers(credential ? { "x-api-key": credential } : {});
    try {
      await auth.check(new Request(request.url, { headers: probe }), `oai/${route}`);
    } catch (error) {
      const message = error instanceof HttpError ? error.message : "invalid API key";
      return oaiErrorResponse(new OaiError(401, message, null, "invalid_api_key"));
    }
    return handleOai(request, route);
  }

  /**
   * Every request, with its body counted as it streams (413 past the limit, whoever was reading).
   * Nothing reads a body before its credential (API key, JWT or signed-URL token) is checked.
   */
  async function handle(incoming: Request): Promise<Response> {
    let limited: ReturnType<typeof limitBody>;
    try {
      limited = limitBody(incoming, maxBodyBytes);
    } catch (error) {
      return errorResponse(error as HttpError);
    }
    try {
      const response = await dispatch(limited.request);
      return limited.exceeded() ? errorResponse(new BodyTooLargeError(maxBodyBytes)) : response;
    } catch (error) {
      if (limited.exceeded()) return errorResponse(new BodyTooLargeError(maxBodyBytes));
      throw error;
    }
  }

  async function dispatch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const oai = url.pathname.indexOf(OAI_PREFIX);
    if (oai >= 0) return dispatchOai(request, url.pathname.slice(oai + OAI_PREFIX.length));
    const marker = url.pathname.indexOf("/api/v1/");
    // Signed archive URLs live outside /api/v1/: the token is the credential, no API key needed.
    const archive = marker < 0 ? /\/archives\/([^/]+)$/.exec(url.pathname) : null;
    if (archive) return serveArchive(backend, request, archive[1]!);
    // So are the signed file URLs of external weights (§W2) and their uploads (§W4).
    const weightsFile = marker < 0 ? serveSignedWeightsFile(backend, request, url.pathname) : undefined;
    if (weightsFile) return weightsFile;
    const unauthed = marker < 0 ? serveUnauthed(request, url.pathname) : undefined;
    if (unauthed) return unauthed;
    if (marker < 0) return errorResponse(new HttpError(404, `not found: ${url.pathname}`));
    const path = url.pathname.slice(marker + "/api/v1/".length);
    try {
      // A signed trace URL (`…/trace?token=`, from trace_export) carries its own credential.
      const trace = /^sessions\/([^/]+)\/trace$/.exec(path);
      const traceToken = trace && request.method === "GET" ? url.searchParams.get("token") : null;
      if (!(traceToken && (await backend.traceTokenValid(pathParam(trace![1]), traceToken)))) {
        await auth.check(request, path);
      }
      const found = matchRoute(routes, request.method, path);
      if (!found) throw noRoute(routes, request.method, path);
      return await found.route.handle(request, found.captures);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error);
      return errorResponse(new HttpError(500, error instanceof Error ? error.message : String(error)));
    }
  }

  return {
    fetch: handle,
    /** Releases every held poll, so nothing keeps a timer after shutdown. */
    close: () => {
      backend.futures.releaseAll();
    },
  };
}

/** 405 (with Allow) when the path has routes for other methods, else 404. */
function noRoute(routes: readonly Route[], method: string, path: string): HttpError {
  const allowed = allowedMethods(routes, path);
  if (allowed.length === 0) return new HttpError(404, `no route for ${method} /api/v1/${path}`);
  return new HttpError(
    405,
    `method ${method} not allowed on /api/v1/${path} (allowed: ${allowed.join(", ")})`,
    { allow: allowed.join(", ") },
  );
}

/** `GET|HEAD <base>/archives/<token>`: a checkpoint archive behind a signed, expiring URL. */
async function serveArchive(backend: LocalBackend, request: Request, token: string): Promise<Response> {
  try {
    if (request.method !== "GET" && request.method !== "HEAD") {
      throw new HttpError(405, `method ${request.method} not allowed on archive URLs`);
    }
    const { bytes, filename } = await backend.checkpointArchiveDownload(token);
    return new Response(request.method === "HEAD" ? null : (bytes as Uint8Array<ArrayBuffer>), {
      headers: {
        "content-type": "application/x-tar",
        "content-length": String(bytes.length),
        "content-disposition": `attachment; filename="${filename}"`,
        "cache-control": "private, no-store",
      },
    });
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error);
    return errorResponse(new HttpError(500, error instanceof Error ? error.message : String(error)));
  }
}
