/**
 * The local backend's HTTP surface: a web-standard `fetch(request)` handler that speaks the Tinker
 * protocol (PROTOCOL.md §2) so that this SDK and the unmodified official Python client can both use
 * it. Routes match on the part of the path after `/api/v1/`, so any base-URL prefix works.
 */
import { decodeForwardBackwardRequest } from "../wire/protobuf/index.js";
import type { Datum, ModelInput } from "../wire/types.js";
import { createLocalAuth, type LocalAuthOptions } from "./auth.js";
import { authKeyRoutes, serveUnauthed } from "./auth-keys.js";
import type { LocalBackend } from "./backend.js";
import type { FutureOutcome } from "./future-store.js";
import { errorResponse, HttpError, jsonResponse, protobufResponse } from "./responses.js";

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
}

type Route = (request: Request, params: string[]) => Promise<Response> | Response;

export function createHandler(backend: LocalBackend, options: HandlerOptions = {}) {
  const longPollMs = options.longPollMs ?? 5_000;
  const metadataThreshold = options.metadataOnlyThresholdBytes ?? 1024 * 1024;
  const auth = createLocalAuth(options);

  /** forward_backward and forward: one body format; `/forward` always runs forward only. */
  const forwardBackwardRoute =
    (legacyJsonKey: string, forwardOnly: boolean): Route =>
    async (request) => {
      const input = await readForwardBackward(request, legacyJsonKey);
      return futureAccepted(
        backend.forwardBackward(
          input.modelId,
          input.seqId,
          input.data,
          input.lossFn,
          input.lossFnConfig,
          forwardOnly || input.forwardOnly,
        ),
        input.modelId,
      );
    };

  const routes: [string, RegExp, Route][] = [
    ["GET", /^healthz$/, () => jsonResponse({ status: "ok" })],
    ["POST", /^auth\/token$/, (request) => auth.issueToken(request)],
    ...authKeyRoutes(auth),
    [
      "POST",
      /^client\/config$/,
      () =>
        jsonResponse({
          pjwt_auth_enabled: auth.jwtEnabled,
          // The official client's Rust transport works too, but plain httpx avoids surprises.
          use_pyqwest_transport: false,
          proto_compress_fwdbwd: false,
          parallel_fwdbwd_chunks: true,
          ...options.clientConfig,
        }),
    ],
    ["POST", /^client\/dynamic_config$/, () => jsonResponse({ refresh_interval_sec: 300 })],
    ["GET", /^get_server_capabilities$/, () => jsonResponse(backend.capabilities())],
    ["POST", /^telemetry$/, () => jsonResponse({ status: "accepted" })],
    [
      "POST",
      /^create_session$/,
      async (request) => {
        const body = await readJson(request);
        const sessionId = backend.createSession({
          projectId: typeof body.project_id === "string" ? body.project_id : undefined,
          userMetadata: optionalMetadata(body),
        });
        return jsonResponse({ type: "create_session", session_id: sessionId });
      },
    ],
    [
      "POST",
      /^session_heartbeat$/,
      async (request) => {
        const body = await readJson(request);
        backend.heartbeat(requireString(body, "session_id"));
        return jsonResponse({ type: "session_heartbeat" });
      },
    ],
    [
      "POST",
      /^create_model$/,
      async (request) => {
        const body = await readJson(request);
        const lora = (body.lora_config ?? { rank: 32 }) as Record<string, unknown>;
        const requestId = backend.createModel(
          requireString(body, "session_id"),
          requireInteger(body, "model_seq_id"),
          requireString(body, "base_model"),
          {
            rank: requireInteger(lora, "rank"),
            seed: optionalInteger(lora, "seed"),
            train_attn: lora.train_attn as boolean | undefined,
            train_mlp: lora.train_mlp as boolean | undefined,
            train_unembed: lora.train_unembed as boolean | undefined,
          },
          optionalMetadata(body),
        );
        return jsonResponse({ request_id: requestId, model_id: null });
      },
    ],
    [
      "POST",
      /^get_info$/,
      async (request) => jsonResponse(backend.getInfo(requireString(await readJson(request), "model_id"))),
    ],
    ["POST", /^forward_backward$/, forwardBackwardRoute("forward_backward_input", false)],
    ["POST", /^forward$/, forwardBackwardRoute("forward_input", true)],
    [
      "POST",
      /^optim_step$/,
      async (request) => {
        const body = await readJson(request);
        const modelId = requireString(body, "model_id");
        const adam = (body.adam_params ?? {}) as Record<string, number>;
        return futureAccepted(backend.optimStep(modelId, requireInteger(body, "seq_id"), adam), modelId);
      },
    ],
    [
      "POST",
      /^save_weights_for_sampler$/,
      async (request) => {
        const body = await readJson(request);
        const modelId = requireString(body, "model_id");
        const path = typeof body.path === "string" ? body.path : undefined;
        return futureAccepted(
          backend.saveWeightsForSampler(
            modelId,
            requireInteger(body, "seq_id"),
            path,
            optionalInteger(body, "sampling_session_seq_id"),
            optionalInteger(body, "ttl_seconds"),
          ),
          modelId,
        );
      },
    ],
    [
      "POST",
      /^save_weights$/,
      async (request) => {
        const body = await readJson(request);
        const modelId = requireString(body, "model_id");
        const requestId = backend.saveWeights(
          modelId,
          requireInteger(body, "seq_id"),
          requireString(body, "path"),
          optionalInteger(body, "ttl_seconds"),
          body.overwrite === true,
        );
        return futureAccepted(requestId, modelId);
      },
    ],
    [
      "POST",
      /^load_weights$/,
      async (request) => {
        const body = await readJson(request);
        const path = requireString(body, "path");
        const withOptimizer = body.optimizer === true;
        if (typeof body.model_id === "string") {
          const requestId = backend.loadWeights(
            body.model_id,
            requireInteger(body, "seq_id"),
            path,
            withOptimizer,
          );
          return futureAccepted(requestId, body.model_id);
        }
        // Create-via-load: the load is the new model's request 0.
        const requestId = backend.createModelFromCheckpoint(
          requireString(body, "session_id"),
          requireInteger(body, "model_seq_id"),
          path,
          withOptimizer,
          typeof body.base_model === "string" ? body.base_model : undefined,
          optionalMetadata(body),
        );
        return jsonResponse({ request_id: requestId });
      },
    ],
    [
      "POST",
      /^weights_info$/,
      async (request) =>
        jsonResponse(backend.weightsInfo(requireString(await readJson(request), "tinker_path"))),
    ],
    [
      "POST",
      /^unload_model$/,
      async (request) => {
        const modelId = requireString(await readJson(request), "model_id");
        return futureAccepted(backend.unloadModel(modelId), modelId);
      },
    ],
    [
      "POST",
      /^create_sampling_session$/,
      async (request) => {
        const body = await readJson(request);
        const id = backend.createSamplingSession(
          requireString(body, "session_id"),
          requireInteger(body, "sampling_session_seq_id"),
          typeof body.base_model === "string" ? body.base_model : undefined,
          typeof body.model_path === "string" ? body.model_path : undefined,
        );
        return jsonResponse({ sampling_session_id: id, type: "create_sampling_session" });
      },
    ],
    [
      "GET",
      /^samplers\/(.+)$/,
      (_request, [id]) => jsonResponse(backend.getSampler(decodeURIComponent(id!))),
    ],
    [
      "POST",
      /^asample$/,
      async (request) => {
        const body = await readJson(request);
        const requestId = backend.sample({
          sampling_session_id:
            typeof body.sampling_session_id === "string" ? body.sampling_session_id : undefined,
          base_model: typeof body.base_model === "string" ? body.base_model : undefined,
          num_samples: optionalInteger(body, "num_samples") ?? 1,
          prompt: normalizeModelInput(body.prompt, "prompt"),
          sampling_params: (body.sampling_params ?? {}) as Record<string, unknown>,
          prompt_logprobs: body.prompt_logprobs === true,
          topk_prompt_logprobs: optionalInteger(body, "topk_prompt_logprobs") ?? 0,
        });
        return jsonResponse({ request_id: requestId });
      },
    ],
    [
      "POST",
      /^retrieve_future$/,
      async (request) => {
        const body = await readJson(request);
        const requestId = requireString(body, "request_id");
        if (!backend.futures.has(requestId)) throw new HttpError(404, `unknown request_id ${requestId}`);
        // close() wakes every held poll through releaseAll(), so no per-poll abort listener is needed.
        const outcome = await backend.futures.wait(requestId, longPollMs);
        if (!outcome)
          return jsonResponse({ type: "try_again", request_id: requestId, queue_state: "active" });
        const wantsProtobuf = (request.headers.get("accept") ?? "").includes("application/x-protobuf");
        return answerOutcome(outcome, wantsProtobuf, body.allow_metadata_only === true, metadataThreshold);
      },
    ],
    // REST endpoints (PROTOCOL.md §2.7). Answers the client ignores are `{}`.
    [
      "GET",
      /^training_runs$/,
      (request) => {
        const query = new URL(request.url).searchParams;
        const projectId = query.get("project_id") ?? undefined;
        return jsonResponse(backend.listTrainingRuns(pageQuery(query, 20), scopeQuery(query), projectId));
      },
    ],
    [
      "GET",
      /^training_runs\/([^/]+)$/,
      (request, [runId]) =>
        jsonResponse(backend.getTrainingRun(pathParam(runId), scopeQuery(new URL(request.url).searchParams))),
    ],
    [
      "GET",
      /^training_runs\/([^/]+)\/checkpoints$/,
      (_request, [runId]) => jsonResponse(backend.listRunCheckpoints(pathParam(runId))),
    ],
    [
      "DELETE",
      checkpointRoute(""),
      (_request, [runId, checkpointId]) => {
        backend.deleteCheckpoint(pathParam(runId), pathParam(checkpointId));
        return jsonResponse({});
      },
    ],
    [
      "POST",
      checkpointRoute("/publish"),
      (_request, [runId, checkpointId]) => {
        backend.setCheckpointPublic(pathParam(runId), pathParam(checkpointId), true);
        return jsonResponse({});
      },
    ],
    [
      "DELETE",
      checkpointRoute("/publish"),
      (_request, [runId, checkpointId]) => {
        backend.setCheckpointPublic(pathParam(runId), pathParam(checkpointId), false);
        return jsonResponse({});
      },
    ],
    [
      "PUT",
      checkpointRoute("/ttl"),
      async (request, [runId, checkpointId]) => {
        const body = await readJson(request);
        const ttl = body.ttl_seconds;
        // An explicit null removes the expiry, so a missing key is not the same as null.
        if (!("ttl_seconds" in body) || (ttl !== null && typeof ttl !== "number")) {
          throw new HttpError(422, "ttl_seconds must be an integer or null");
        }
        backend.setCheckpointTtl(pathParam(runId), pathParam(checkpointId), ttl as number | null);
        return jsonResponse({});
      },
    ],
    [
      "GET",
      checkpointRoute("/archive"),
      async (request, [runId, checkpointId]) => {
        const archive = await backend.checkpointArchive(
          pathParam(runId),
          pathParam(checkpointId),
          baseUrlOf(request),
        );
        // Clients before 0.22.2 ask `accept: application/gzip` and take only a 302 (Location, and
        // Expires as an HTTP-date); a 200 makes them fail (PROTOCOL.md §2.7.5, §12.2).
        if ((request.headers.get("accept") ?? "").includes("application/gzip")) {
          const { url, expires } = archive as { url: string; expires: string };
          return jsonResponse(archive, 302, { location: url, expires: new Date(expires).toUTCString() });
        }
        return jsonResponse(archive);
      },
    ],
    [
      "GET",
      /^checkpoints$/,
      (request) =>
        jsonResponse(backend.listUserCheckpoints(pageQuery(new URL(request.url).searchParams, 100))),
    ],
    [
      "GET",
      /^sessions$/,
      (request) => {
        const query = new URL(request.url).searchParams;
        return jsonResponse(backend.listSessions(pageQuery(query, 20), scopeQuery(query)));
      },
    ],
    [
      "GET",
      /^sessions\/([^/]+)$/,
      (request, [sessionId]) =>
        jsonResponse(
          backend.getSessionInfo(pathParam(sessionId), scopeQuery(new URL(request.url).searchParams)),
        ),
    ],
    [
      "PUT",
      /^sessions\/([^/]+)\/project$/,
      async (request, [sessionId]) => {
        const projectId = (await readJson(request)).project_id;
        if (typeof projectId !== "string" || projectId === "") {
          throw new HttpError(400, "project_id must be a non-empty string");
        }
        backend.assignSessionProject(pathParam(sessionId), projectId);
        return jsonResponse({});
      },
    ],
    [
      "GET",
      /^sessions\/([^/]+)\/trace_export$/,
      async (request, [sessionId]) =>
        jsonResponse(await backend.traceExport(pathParam(sessionId), baseUrlOf(request))),
    ],
    [
      "GET",
      /^sessions\/([^/]+)\/trace$/,
      (_request, [sessionId]) => jsonResponse(backend.sessionTrace(pathParam(sessionId))),
    ],
    [
      "GET",
      /^audit$/,
      (request) => {
        const query = new URL(request.url).searchParams;
        const eventType = query.get("event_type") ?? "all";
        if (eventType !== "all" && eventType !== "checkpoints") {
          throw new HttpError(400, `event_type must be "all" or "checkpoints", got "${eventType}"`);
        }
        return jsonResponse(backend.auditLog(eventType, dayQuery(query)));
      },
    ],
    [
      "GET",
      /^billing\/usage\/events$/,
      (request) => {
        const query = new URL(request.url).searchParams;
        const [start, end] = billingWindowQuery(query);
        return jsonResponse(backend.billingUsage(start, end));
      },
    ],
  ];

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const marker = url.pathname.indexOf("/api/v1/");
    // Signed archive URLs live outside /api/v1/: the token is the credential, no API key needed.
    const archive = marker < 0 ? /\/archives\/([^/]+)$/.exec(url.pathname) : null;
    if (archive) return serveArchive(backend, request, archive[1]);
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
      for (const [method, pattern, route] of routes) {
        const match = pattern.exec(path);
        if (match && method === request.method) return await route(request, match.slice(1));
      }
      throw new HttpError(404, `no route for ${request.method} /api/v1/${path}`);
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

function futureAccepted(requestId: string, modelId: string): Response {
  return jsonResponse({ request_id: requestId, model_id: modelId });
}

function answerOutcome(
  outcome: FutureOutcome,
  wantsProtobuf: boolean,
  allowMetadataOnly: boolean,
  metadataThreshold: number,
): Response {
  switch (outcome.kind) {
    case "failed":
      return jsonResponse({ error: outcome.error, category: outcome.category });
    case "json":
      return jsonResponse(outcome.body);
    case "dual": {
      if (!wantsProtobuf) return jsonResponse(outcome.json);
      const bytes = outcome.protobuf();
      if (allowMetadataOnly && bytes.length > metadataThreshold) {
        return jsonResponse({ status: "complete_metadata", response_payload_size: bytes.length });
      }
      return protobufResponse(bytes);
    }
  }
}

interface ForwardBackwardInput {
  modelId: string;
  seqId: number;
  data: Datum[];
  lossFn: string;
  lossFnConfig: Record<string, number> | undefined;
  forwardOnly: boolean;
}

/** Protobuf (0.22.3+ clients) or the legacy JSON form (older clients). */
async function readForwardBackward(request: Request, jsonKey: string): Promise<ForwardBackwardInput> {
  const contentType = request.headers.get("content-type") ?? "";
  if (contentType.includes("application/x-protobuf")) {
    if (request.headers.get("content-encoding")) {
      throw new HttpError(415, "compressed forward_backward bodies are not supported by the local backend");
    }
    let decoded: ReturnType<typeof decodeForwardBackwardRequest>;
    try {
      decoded = decodeForwardBackwardRequest(new Uint8Array(await request.arrayBuffer()));
    } catch (error) {
      throw new HttpError(400, `invalid ForwardBackwardRequest protobuf: ${(error as Error).message}`);
    }
    return {
      modelId: decoded.model_id,
      seqId: decoded.seq_id,
      data: decoded.data,
      lossFn: decoded.loss_fn,
      lossFnConfig: decoded.loss_fn_config,
      forwardOnly: decoded.forward_only ?? false,
    };
  }
  const body = await readJson(request);
  const input = (body[jsonKey] ?? {}) as Record<string, unknown>;
  const data = Array.isArray(input.data) ? input.data : [];
  return {
    modelId: requireString(body, "model_id"),
    seqId: requireInteger(body, "seq_id"),
    data: data.map((datum: Record<string, unknown>, i) => ({
      model_input: normalizeModelInput(datum.model_input, `data[${i}].model_input`),
      loss_fn_inputs: (datum.loss_fn_inputs ?? {}) as Datum["loss_fn_inputs"],
    })),
    lossFn: typeof input.loss_fn === "string" ? input.loss_fn : "cross_entropy",
    lossFnConfig: (input.loss_fn_config ?? undefined) as Record<string, number> | undefined,
    forwardOnly: false,
  };
}

/** Clients before 0.18 omit the chunk `type`; a chunk with `tokens` is text. */
function normalizeModelInput(value: unknown, path: string): ModelInput {
  const chunks = (value as { chunks?: unknown })?.chunks;
  if (!Array.isArray(chunks)) throw new HttpError(400, `${path}.chunks must be an array`);
  return {
    chunks: chunks.map((chunk: Record<string, unknown>) =>
      chunk.type === undefined && Array.isArray(chunk.tokens)
        ? { type: "encoded_text", tokens: chunk.tokens as number[] }
        : (chunk as unknown as ModelInput["chunks"][number]),
    ),
  };
}

async function readJson(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.trim() === "") return {};
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw new HttpError(400, "request body must be a JSON object");
  }
}

function requireString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== "string" || value === "")
    throw new HttpError(422, `${key} must be a non-empty string`);
  return value;
}

function requireInteger(body: Record<string, unknown>, key: string): number {
  const value = body[key];
  if (typeof value !== "number" || !Number.isInteger(value))
    throw new HttpError(422, `${key} must be an integer`);
  return value;
}

function optionalInteger(body: Record<string, unknown>, key: string): number | undefined {
  return body[key] === undefined || body[key] === null ? undefined : requireInteger(body, key);
}

/** `user_metadata` must map strings to strings (the official TrainingRun schema requires it). */
function optionalMetadata(body: Record<string, unknown>): Record<string, string> | undefined {
  const value = body.user_metadata;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value))
    throw new HttpError(422, "user_metadata must be an object");
  const metadata: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") throw new HttpError(422, `user_metadata.${key} must be a string`);
    metadata[key] = entry;
  }
  return metadata;
}

/**
 * A route under `training_runs/{run_id}/checkpoints/{checkpoint_id}`. Checkpoint ids contain a `/`
 * (`weights/<name>`), sent unencoded by the official client; a client that encodes it as `%2F`
 * is understood too. Segment counts keep the routes apart (`…/weights/publish` is a checkpoint).
 */
function checkpointRoute(suffix: "" | "/publish" | "/ttl" | "/archive"): RegExp {
  return new RegExp(`^training_runs/([^/]+)/checkpoints/([^/]+/[^/]+|[^/]*%2[Ff][^/]*)${suffix}$`);
}

/** A captured path segment, percent-decoded (clients may encode the `:` of run ids). */
function pathParam(value: string | undefined): string {
  try {
    return decodeURIComponent(value ?? "");
  } catch {
    throw new HttpError(400, `invalid percent-encoding in ${JSON.stringify(value)}`);
  }
}

/** The URL this backend is served under (origin and any prefix before `/api/v1/`), for links. */
function baseUrlOf(request: Request): string {
  const url = new URL(request.url);
  return url.origin + url.pathname.slice(0, url.pathname.indexOf("/api/v1/"));
}

function pageQuery(query: URLSearchParams, defaultLimit: number): { limit: number; offset: number } {
  const limit = integerQuery(query, "limit", defaultLimit);
  if (limit < 1) throw new HttpError(400, "limit must be at least 1");
  return { limit, offset: integerQuery(query, "offset", 0) };
}

function integerQuery(query: URLSearchParams, name: string, fallback: number): number {
  const text = query.get(name);
  if (text === null) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < 0) {
    throw new HttpError(400, `${name} must be a non-negative integer, got "${text}"`);
  }
  return value;
}

function scopeQuery(query: URLSearchParams): "owned" | "accessible" {
  const scope = query.get("access_scope") ?? "owned";
  if (scope !== "owned" && scope !== "accessible") {
    throw new HttpError(400, `access_scope must be "owned" or "accessible", got "${scope}"`);
  }
  return scope;
}

/** The audit log's `day` (`YYYY-MM-DD`); today (UTC) when absent. */
function dayQuery(query: URLSearchParams): string {
  const day = query.get("day");
  if (day === null) return new Date().toISOString().slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(day))) {
    throw new HttpError(400, `day must be YYYY-MM-DD, got "${day}"`);
  }
  return day;
}

const HOUR_MS = 3_600_000;

/** `starting_on` and `ending_before`: required, whole UTC hours, in order, at most 14 days apart. */
function billingWindowQuery(query: URLSearchParams): [Date, Date] {
  const instant = (name: string): Date => {
    const text = query.get(name);
    const date = text === null ? undefined : new Date(text);
    if (!date || Number.isNaN(date.getTime())) {
      throw new HttpError(400, `${name} must be an RFC 3339 timestamp`);
    }
    if (date.getTime() % HOUR_MS !== 0) throw new HttpError(400, `${name} must be a whole UTC hour`);
    return date;
  };
  const start = instant("starting_on");
  const end = instant("ending_before");
  if (end.getTime() <= start.getTime()) throw new HttpError(400, "ending_before must be after starting_on");
  if (end.getTime() - start.getTime() > 14 * 24 * HOUR_MS) {
    throw new HttpError(400, "the window must not exceed 14 days");
  }
  return [start, end];
}
