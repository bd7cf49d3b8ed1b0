/**
 * RestClient: training runs, checkpoints, sessions, samplers, audit log and billing usage
 * (PROTOCOL.md §2.7, FEATURES.md §1.4). Using it creates no session: the connection only performs
 * the client-config handshake. Every call goes through the generic retry loop (§5.2), as the
 * official client's do, and accepts `{ signal, timeout }`.
 *
 * Ids are inserted into paths without URL-encoding, as the official client does: run ids contain
 * `:` and checkpoint ids contain `/` (`weights/<name>`), and servers route on exactly that.
 */

import { APIError, NotFoundError, ResponseValidationError, ValidationError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import { describeValue } from "../internal/describe.js";
import { sleep, untilAborted } from "../internal/sleep.js";
import { nextOffsetByPageSize, nextOffsetFromCursor, PagePromise } from "../lib/pagination.js";
import { CALL_OPTION_SHAPE, optionShape } from "../lib/strict-options.js";
import { parseTinkerPath } from "../lib/tinker-path.js";
import { type Endpoint, parseBody, pathOf, routeName } from "../wire/endpoints/define.js";
import { rest, sampling, training } from "../wire/endpoints/index.js";
import { SEARCH_LIMIT, type SearchOwner } from "../wire/endpoints/rest.js";
import {
  AUDIT_EVENT_TYPES,
  type AuditEventType,
  type AuditLogResponse,
  type BillingUsageResponse,
  type Checkpoint,
  type CheckpointArchiveUrlResponse,
  type CheckpointSearchCursor,
  type CheckpointSearchResponse,
  type CheckpointStorageUsage,
  type CheckpointsListResponse,
  type CheckpointType,
  type ExternalWeightsUploadStart,
  type ExternalWeightsUrlsResponse,
  type GetSessionResponse,
  type ListSessionsResponse,
  type TrainingRun,
  type TrainingRunsResponse,
  type WhoamiResponse,
} from "../wire/rest-schemas.js";
import type { GetSamplerResponse, WeightsInfoResponse } from "../wire/schemas.js";
import type { LoraConfig } from "../wire/types.js";
import { type CallInput, call } from "./call.js";
import { type CallOptions, checkCall, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import { DEFAULT_BUILDING_RETRY_DELAY_MS, requestArchiveUrl } from "./rest/archive.js";
import { auditDay, billingWindow } from "./rest/time-params.js";
import { whoamiFromClaims } from "./rest/whoami.js";

/** `owned`: your own runs and sessions; `accessible`: also those shared with you. */
export type AccessScope = "owned" | "accessible";

export interface AccessScopeOptions extends CallOptions {
  /** Default `owned`. */
  accessScope?: AccessScope;
}

/**
 * Options of the paged list calls. `timeout` applies to each page request; `signal` to the whole
 * walk.
 */
export interface ListOptions extends CallOptions {
  /** Page size. */
  limit?: number;
  /** Where the (first) page starts. Default 0. */
  offset?: number;
}

export interface ListTrainingRunsOptions extends ListOptions {
  /** Default `owned`. */
  accessScope?: AccessScope;
  /** Only runs of this project. */
  projectId?: string;
}

export interface ListSessionsOptions extends ListOptions {
  /** Default `owned`. */
  accessScope?: AccessScope;
}

export interface ArchiveUrlOptions extends CallOptions {
  /** Wait between attempts while the server answers 503 (archive still being built). Default 30 000. */
  buildingRetryDelayMs?: number;
}

export interface ExportSessionTraceOptions extends CallOptions {
  /** Interval between status polls while the export runs. Default 5 000. */
  pollIntervalMs?: number;
}

export interface AuditLogOptions extends CallOptions {
  /** Which events: `all` (default), `checkpoints`, `projects`, `teams` or `organizations` (§R2). */
  eventType?: AuditEventType;
  /** The UTC day to list (a Date, or `YYYY-MM-DD`). Default: today, decided by the server. */
  day?: Date | string;
}

export interface BillingUsageOptions extends CallOptions {
  /** Start of the window: a whole UTC hour, as a Date or an RFC 3339 timestamp. */
  startingOn: Date | string;
  /** End of the window (exclusive): a whole UTC hour at most 14 days after `startingOn`. */
  endingBefore: Date | string;
}

export interface CheckpointStorageUsageOptions extends CallOptions {
  /** Only the checkpoints of this project. Default: every project. */
  projectId?: string;
}

/**
 * A checkpoint search (§W5, experimental since 0.39). Every filter given must hold. `timeout`
 * applies to each page request; `signal` to the whole walk.
 */
export interface SearchCheckpointsOptions extends CallOptions {
  /** Only checkpoints of these projects. Default (or null): every project you can list. */
  projectIds?: readonly string[] | null;
  /** Only checkpoints saved with all of these `user_metadata` pairs, values equal. */
  userMetadata?: Record<string, string>;
  /** Only this kind. Default (or null): any kind. */
  checkpointType?: CheckpointType | null;
  /** `me` (default): your own checkpoints; `any`: every checkpoint you may list. */
  owner?: SearchOwner;
  /** Only checkpoints of runs on these base models; `[]` matches none. Default (or null): any. */
  baseModels?: readonly string[] | null;
  /** Page size, 1–200. Default 100. */
  limit?: number;
  /** Start after this point: a page's `next_cursor`, as received. Default: the newest checkpoint. */
  cursor?: CheckpointSearchCursor | null;
}

export interface ExternalWeightsUploadOptions extends CallOptions {
  /** The project the new checkpoint goes to (default: the server's choice). */
  destinationProjectId?: string;
}

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const ACCESS_SCOPE_OPTIONS_SHAPE = optionShape<AccessScopeOptions>({
  ...CALL_OPTION_SHAPE,
  accessScope: "string",
});
const LIST_OPTIONS_SHAPE = optionShape<ListOptions>({
  ...CALL_OPTION_SHAPE,
  limit: "number",
  offset: "number",
});
const LIST_TRAINING_RUNS_OPTIONS_SHAPE = optionShape<ListTrainingRunsOptions>({
  ...LIST_OPTIONS_SHAPE,
  accessScope: "string",
  projectId: "string",
});
const LIST_SESSIONS_OPTIONS_SHAPE = optionShape<ListSessionsOptions>({
  ...LIST_OPTIONS_SHAPE,
  accessScope: "string",
});
const ARCHIVE_URL_OPTIONS_SHAPE = optionShape<ArchiveUrlOptions>({
  ...CALL_OPTION_SHAPE,
  buildingRetryDelayMs: "number",
});
const EXPORT_SESSION_TRACE_OPTIONS_SHAPE = optionShape<ExportSessionTraceOptions>({
  ...CALL_OPTION_SHAPE,
  pollIntervalMs: "number",
});
const AUDIT_LOG_OPTIONS_SHAPE = optionShape<AuditLogOptions>({
  ...CALL_OPTION_SHAPE,
  eventType: "string",
  day: ["date", "string"],
});
const BILLING_USAGE_OPTIONS_SHAPE = optionShape<BillingUsageOptions>({
  ...CALL_OPTION_SHAPE,
  startingOn: ["date", "string"],
  endingBefore: ["date", "string"],
});
const CHECKPOINT_STORAGE_USAGE_OPTIONS_SHAPE = optionShape<CheckpointStorageUsageOptions>({
  ...CALL_OPTION_SHAPE,
  projectId: "string",
});
// Its values are checked by the search body's declaration (searchBody), with the option names.
const SEARCH_CHECKPOINTS_OPTIONS_SHAPE = optionShape<SearchCheckpointsOptions>({
  ...CALL_OPTION_SHAPE,
  projectIds: "any",
  userMetadata: "any",
  checkpointType: "any",
  owner: "any",
  baseModels: "any",
  limit: "any",
  cursor: "any",
});
const EXTERNAL_WEIGHTS_UPLOAD_OPTIONS_SHAPE = optionShape<ExternalWeightsUploadOptions>({
  ...CALL_OPTION_SHAPE,
  destinationProjectId: "string",
});

const DEFAULT_TRACE_POLL_MS = 5_000;

export class RestClient {
  readonly #connection: Connection;

  /** @internal Use `ServiceClient.createRestClient`. */
  constructor(connection: Connection) {
    this.#connection = connection;
  }

  // Training runs ----------------------------------------------------------------------------------

  /** One training run: its model, LoRA rank, last checkpoints, metadata and `corrupted` flag. */
  async getTrainingRun(trainingRunId: string, options: AccessScopeOptions = {}): Promise<TrainingRun> {
    checkCall(this.#connection, "getTrainingRun", options, ACCESS_SCOPE_OPTIONS_SHAPE);
    requireId(trainingRunId, "trainingRunId");
    return this.#call(
      rest.getTrainingRun,
      { params: { run_id: trainingRunId }, query: { access_scope: scope(options) } },
      options,
    );
  }

  /** The training run that saved the checkpoint at `tinkerPath`. */
  async getTrainingRunByTinkerPath(
    tinkerPath: string,
    options: AccessScopeOptions = {},
  ): Promise<TrainingRun> {
    checkCall(this.#connection, "getTrainingRunByTinkerPath", options, ACCESS_SCOPE_OPTIONS_SHAPE);
    return this.getTrainingRun(parseTinkerPath(tinkerPath).trainingRunId, options);
  }

  /**
   * Training runs, 20 per page by default: await it for one page (with its cursor), or iterate it
   * with `for await` for every run from `offset` on.
   */
  listTrainingRuns(options: ListTrainingRunsOptions = {}): PagePromise<TrainingRunsResponse, TrainingRun> {
    checkCall(this.#connection, "listTrainingRuns", options, LIST_TRAINING_RUNS_OPTIONS_SHAPE);
    const { limit, offset } = pageWindow(options, 20);
    const accessScope = scope(options);
    return new PagePromise(
      {
        fetchPage: (pageOffset) =>
          this.#call(
            rest.listTrainingRuns,
            {
              query: { limit, offset: pageOffset, access_scope: accessScope, project_id: options.projectId },
            },
            options,
          ),
        items: (page) => page.training_runs,
        nextOffset: (page) => nextOffsetFromCursor(page.cursor, page.training_runs.length),
      },
      offset,
    );
  }

  // Checkpoints ------------------------------------------------------------------------------------

  /** The training and sampler checkpoints of one run. */
  async listCheckpoints(trainingRunId: string, options: CallOptions = {}): Promise<CheckpointsListResponse> {
    checkCall(this.#connection, "listCheckpoints", options);
    requireId(trainingRunId, "trainingRunId");
    return this.#call(rest.listRunCheckpoints, { params: { run_id: trainingRunId } }, options);
  }

  /**
   * All your checkpoints across runs, newest first, 100 per page by default: await it for one page,
   * or iterate it with `for await` for every checkpoint from `offset` on.
   */
  listUserCheckpoints(options: ListOptions = {}): PagePromise<CheckpointsListResponse, Checkpoint> {
    checkCall(this.#connection, "listUserCheckpoints", options, LIST_OPTIONS_SHAPE);
    const { limit, offset } = pageWindow(options, 100);
    return new PagePromise(
      {
        fetchPage: (pageOffset) =>
          this.#call(rest.listUserCheckpoints, { query: { limit, offset: pageOffset } }, options),
        items: (page) => page.checkpoints,
        nextOffset: (page) => nextOffsetFromCursor(page.cursor, page.checkpoints.length),
      },
      offset,
    );
  }

  /**
   * Searches checkpoints by project, metadata, kind and base model (§W5; experimental upstream),
   * newest first: await it for one page (with its `next_cursor`), or iterate it with `for await`
   * for every match, each page requested after the previous one is consumed. Bad options are a
   * ValidationError at once, before anything is sent.
   */
  searchCheckpoints(
    options: SearchCheckpointsOptions = {},
  ): PagePromise<CheckpointSearchResponse, Checkpoint, CheckpointSearchCursor | null> {
    checkCall(this.#connection, "searchCheckpoints", options, SEARCH_CHECKPOINTS_OPTIONS_SHAPE);
    const body = searchBody(options);
    return new PagePromise(
      {
        fetchPage: (cursor) =>
          this.#call(rest.searchCheckpoints, { body: { ...body, cursor: cursor ?? undefined } }, options),
        items: (page) => page.checkpoints,
        // An empty page ends the walk whatever its cursor says, so a confused server cannot loop it.
        nextOffset: (page) => (page.checkpoints.length === 0 ? undefined : (page.next_cursor ?? undefined)),
      },
      options.cursor ?? null,
    );
  }

  /**
   * A signed download URL of the checkpoint's archive and when it expires. The server may take a
   * while to build the archive; the call waits for it (see ArchiveUrlOptions).
   */
  async getCheckpointArchiveUrl(
    trainingRunId: string,
    checkpointId: string,
    options: ArchiveUrlOptions = {},
  ): Promise<CheckpointArchiveUrlResponse> {
    checkCall(this.#connection, "getCheckpointArchiveUrl", options, ARCHIVE_URL_OPTIONS_SHAPE);
    // The archive answer is a redirect to read, not to follow: its own request code, the declared path.
    const path = pathOf(rest.checkpointArchive, checkpointParams(trainingRunId, checkpointId));
    const signal = withTimeout(options);
    await this.#connection.clientConfig(signal);
    const buildingRetryDelayMs = options.buildingRetryDelayMs ?? DEFAULT_BUILDING_RETRY_DELAY_MS;
    return withGenericRetries(
      () => requestArchiveUrl(this.#connection.http, path, { signal, buildingRetryDelayMs }),
      { signal, billingPauseMs: this.#connection.billingPauseMs },
    );
  }

  async getCheckpointArchiveUrlFromTinkerPath(
    tinkerPath: string,
    options: ArchiveUrlOptions = {},
  ): Promise<CheckpointArchiveUrlResponse> {
    checkCall(this.#connection, "getCheckpointArchiveUrlFromTinkerPath", options, ARCHIVE_URL_OPTIONS_SHAPE);
    const { trainingRunId, checkpointId } = parseTinkerPath(tinkerPath);
    return this.getCheckpointArchiveUrl(trainingRunId, checkpointId, options);
  }

  async deleteCheckpoint(
    trainingRunId: string,
    checkpointId: string,
    options: CallOptions = {},
  ): Promise<void> {
    checkCall(this.#connection, "deleteCheckpoint", options);
    await this.#call(
      rest.deleteCheckpoint,
      { params: checkpointParams(trainingRunId, checkpointId) },
      options,
    );
  }

  async deleteCheckpointFromTinkerPath(tinkerPath: string, options: CallOptions = {}): Promise<void> {
    checkCall(this.#connection, "deleteCheckpointFromTinkerPath", options);
    const { trainingRunId, checkpointId } = parseTinkerPath(tinkerPath);
    await this.deleteCheckpoint(trainingRunId, checkpointId, options);
  }

  /**
   * Makes a checkpoint public (owner only). Note: the server answers 409 if it already is, and 409
   * is retried by the generic loop like the official client does, so that case fails only after
   * the retry window (5 minutes) or your `timeout`.
   */
  async publishCheckpoint(
    trainingRunId: string,
    checkpointId: string,
    options: CallOptions = {},
  ): Promise<void> {
    checkCall(this.#connection, "publishCheckpoint", options);
    await this.#call(
      rest.publishCheckpoint,
      { params: checkpointParams(trainingRunId, checkpointId) },
      options,
    );
  }

  async publishCheckpointFromTinkerPath(tinkerPath: string, options: CallOptions = {}): Promise<void> {
    checkCall(this.#connection, "publishCheckpointFromTinkerPath", options);
    const { trainingRunId, checkpointId } = parseTinkerPath(tinkerPath);
    await this.publishCheckpoint(trainingRunId, checkpointId, options);
  }

  /** Makes a checkpoint private again (the server answers 409 if it already is; see publish). */
  async unpublishCheckpoint(
    trainingRunId: string,
    checkpointId: string,
    options: CallOptions = {},
  ): Promise<void> {
    checkCall(this.#connection, "unpublishCheckpoint", options);
    await this.#call(
      rest.unpublishCheckpoint,
      { params: checkpointParams(trainingRunId, checkpointId) },
      options,
    );
  }

  async unpublishCheckpointFromTinkerPath(tinkerPath: string, options: CallOptions = {}): Promise<void> {
    checkCall(this.#connection, "unpublishCheckpointFromTinkerPath", options);
    const { trainingRunId, checkpointId } = parseTinkerPath(tinkerPath);
    await this.unpublishCheckpoint(trainingRunId, checkpointId, options);
  }

  /** Expires the checkpoint `ttlSeconds` from now, or never with `null`. */
  async setCheckpointTtl(
    trainingRunId: string,
    checkpointId: string,
    ttlSeconds: number | null,
    options: CallOptions = {},
  ): Promise<void> {
    checkCall(this.#connection, "setCheckpointTtl", options);
    // An explicit null is how the protocol says "remove the expiry".
    await this.#call(
      rest.setCheckpointTtl,
      { params: checkpointParams(trainingRunId, checkpointId), body: { ttl_seconds: ttlSeconds } },
      options,
    );
  }

  async setCheckpointTtlFromTinkerPath(
    tinkerPath: string,
    ttlSeconds: number | null,
    options: CallOptions = {},
  ): Promise<void> {
    checkCall(this.#connection, "setCheckpointTtlFromTinkerPath", options);
    const { trainingRunId, checkpointId } = parseTinkerPath(tinkerPath);
    await this.setCheckpointTtl(trainingRunId, checkpointId, ttlSeconds, options);
  }

  // External weights (PROTOCOL.md §W2, §W4) ----------------------------------------------------

  /**
   * Signed download URLs of the files of an external-weights checkpoint (a Hugging Face PEFT adapter
   * written by `TrainingClient.saveWeightsExternal`, or uploaded), by relative file path, and when
   * they expire. Fetch them without credentials: the URL is its own. Only
   * `tinker://<run>/external_weights/<name>` paths; any other → ValidationError.
   */
  async getExternalWeightsUrls(
    tinkerPath: string,
    options: CallOptions = {},
  ): Promise<ExternalWeightsUrlsResponse> {
    checkCall(this.#connection, "getExternalWeightsUrls", options);
    const { trainingRunId, checkpointId, checkpointType } = parseTinkerPath(tinkerPath);
    if (checkpointType !== "external") {
      throw new ValidationError([
        {
          path: "tinkerPath",
          message: `must be an external-weights checkpoint tinker://<run>/external_weights/<name>, got ${JSON.stringify(tinkerPath)}`,
        },
      ]);
    }
    return this.#call(
      rest.externalWeightsUrls,
      { params: checkpointParams(trainingRunId, checkpointId) },
      options,
    );
  }

  /**
   * Starts an upload of a PEFT adapter for `baseModel` and `loraConfig` (experimental, 0.39): an
   * upload id, and where to PUT each file (`url` plus the `headers` to send with it; servers before
   * 0.40 give no headers). The files must be what `saveWeightsExternal` writes for that base model
   * and LoRA config. `uploadExternalWeights` does the whole upload.
   */
  async externalWeightsUploadStart(
    baseModel: string,
    loraConfig: LoraConfig,
    options: ExternalWeightsUploadOptions = {},
  ): Promise<ExternalWeightsUploadStart> {
    checkCall(this.#connection, "externalWeightsUploadStart", options, EXTERNAL_WEIGHTS_UPLOAD_OPTIONS_SHAPE);
    requireId(baseModel, "baseModel");
    return this.#call(
      rest.externalWeightsUploadStart,
      {
        body: {
          base_model: baseModel,
          lora_config: loraConfig,
          destination_project_id: options.destinationProjectId ?? null,
        },
      },
      options,
    );
  }

  /** Finishes an upload once every file is in; answers the new external-weights checkpoint's path. */
  async externalWeightsUploadFinish(uploadId: string, options: CallOptions = {}): Promise<string> {
    checkCall(this.#connection, "externalWeightsUploadFinish", options);
    requireId(uploadId, "uploadId");
    const answer = await this.#call(
      rest.externalWeightsUploadFinish,
      { body: { upload_id: uploadId } },
      options,
    );
    return answer.tinker_path;
  }

  /**
   * Uploads a PEFT adapter (`files`: file name → bytes, e.g. `adapter_config.json` and
   * `adapter_model.safetensors`) as a new external-weights checkpoint and returns its path: starts
   * the upload, PUTs every file the server lists to its signed URL (with that entry's headers and
   * no credentials of this client), then finishes. A file the server lists but `files` lacks, or
   * the other way round, is a ValidationError before anything is uploaded.
   */
  async uploadExternalWeights(
    baseModel: string,
    loraConfig: LoraConfig,
    files: Record<string, Uint8Array>,
    options: ExternalWeightsUploadOptions = {},
  ): Promise<string> {
    checkCall(this.#connection, "uploadExternalWeights", options, EXTERNAL_WEIGHTS_UPLOAD_OPTIONS_SHAPE);
    if (typeof files !== "object" || files === null) {
      throw new ValidationError([{ path: "files", message: "must map file names to bytes" }]);
    }
    const signal = withTimeout(options);
    const started = await this.externalWeightsUploadStart(baseModel, loraConfig, {
      destinationProjectId: options.destinationProjectId,
      signal,
    });
    const listed = Object.keys(started.urls);
    const issues = [
      ...listed
        .filter((name) => !(files[name] instanceof Uint8Array))
        .map((name) => ({ path: `files.${name}`, message: "is required by the server (as a Uint8Array)" })),
      ...Object.keys(files)
        .filter((name) => !listed.includes(name))
        .map((name) => ({
          path: `files.${name}`,
          message: `is not one of the files to upload (${listed.join(", ")})`,
        })),
    ];
    if (issues.length > 0) throw new ValidationError(issues);
    for (const [name, target] of Object.entries(started.urls)) {
      await this.#connection.http.sendSigned({
        method: "PUT",
        url: target.url,
        body: files[name],
        headers: target.headers,
        signal,
      });
    }
    return this.externalWeightsUploadFinish(started.upload_id, { signal });
  }

  /** The base model and LoRA settings of a checkpoint; works for other users' public checkpoints. */
  async getWeightsInfoByTinkerPath(
    tinkerPath: string,
    options: CallOptions = {},
  ): Promise<WeightsInfoResponse> {
    checkCall(this.#connection, "getWeightsInfoByTinkerPath", options);
    // Sent as given, not parsed: other Tinker-compatible servers use other path shapes.
    requireId(tinkerPath, "tinkerPath");
    return this.#call(training.weightsInfo, { body: { tinker_path: tinkerPath } }, options);
  }

  // Sessions ---------------------------------------------------------------------------------------

  /** The training runs and samplers a session created. */
  async getSession(sessionId: string, options: AccessScopeOptions = {}): Promise<GetSessionResponse> {
    checkCall(this.#connection, "getSession", options, ACCESS_SCOPE_OPTIONS_SHAPE);
    requireId(sessionId, "sessionId");
    return this.#call(
      rest.getSession,
      { params: { session_id: sessionId }, query: { access_scope: scope(options) } },
      options,
    );
  }

  /**
   * Ids of every session you created (not only active ones), 20 per page by default: await it for
   * one page, or iterate it with `for await` for every id from `offset` on. There is no cursor: a
   * page shorter than `limit` is the last.
   */
  listSessions(options: ListSessionsOptions = {}): PagePromise<ListSessionsResponse, string> {
    checkCall(this.#connection, "listSessions", options, LIST_SESSIONS_OPTIONS_SHAPE);
    const { limit, offset } = pageWindow(options, 20);
    const accessScope = scope(options);
    return new PagePromise(
      {
        fetchPage: (pageOffset) =>
          this.#call(
            rest.listSessions,
            { query: { limit, offset: pageOffset, access_scope: accessScope } },
            options,
          ),
        items: (page) => page.sessions,
        nextOffset: (page, pageOffset) => nextOffsetByPageSize(pageOffset, page.sessions.length, limit),
      },
      offset,
    );
  }

  /** Moves a session and all its runs into a project (one way). */
  async assignSessionProject(sessionId: string, projectId: string, options: CallOptions = {}): Promise<void> {
    checkCall(this.#connection, "assignSessionProject", options);
    requireId(sessionId, "sessionId");
    requireId(projectId, "projectId");
    await this.#call(
      rest.assignSessionProject,
      { params: { session_id: sessionId }, body: { project_id: projectId } },
      options,
    );
  }

  /**
   * Exports a timeline (Perfetto) of the session's requests and returns its signed URL. The first
   * request starts the export; the call then polls until it is ready or has failed.
   */
  async exportSessionTrace(sessionId: string, options: ExportSessionTraceOptions = {}): Promise<string> {
    checkCall(this.#connection, "exportSessionTrace", options, EXPORT_SESSION_TRACE_OPTIONS_SHAPE);
    requireId(sessionId, "sessionId");
    const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_TRACE_POLL_MS;
    // One signal for the whole export, so `timeout` bounds the wait, not each poll.
    const signal = withTimeout(options);
    for (;;) {
      const answer = await this.#call(
        rest.exportSessionTrace,
        { params: { session_id: sessionId } },
        { signal },
      );
      if (answer.status === "ready") {
        if (answer.url) return answer.url;
        throw new ResponseValidationError("trace export", answer, [
          { path: "url", message: 'required when status is "ready"' },
        ]);
      }
      if (answer.status === "failed") {
        throw new APIError(`Session trace export failed: ${answer.error ?? "no reason given"}`, {
          body: answer,
        });
      }
      await sleep(pollIntervalMs, signal);
    }
  }

  // Identity, samplers, audit, billing ------------------------------------------------------------

  /**
   * Who the caller is, read from the claims (`sub`, `email`) of the identity JWT: the token of the
   * JWT exchange when the server uses JWT auth, or an identity token given as the API key. Sends
   * nothing beyond the start-up handshake. Fails with a ValidationError when the client
   * authenticates with a plain `tml-` API key, which carries no identity.
   */
  async whoami(options: CallOptions = {}): Promise<WhoamiResponse> {
    checkCall(this.#connection, "whoami", options);
    const signal = withTimeout(options);
    return whoamiFromClaims(await untilAborted(this.#connection.identity(), signal));
  }

  /** A sampler's base model and checkpoint path. */
  async getSampler(samplerId: string, options: CallOptions = {}): Promise<GetSamplerResponse> {
    checkCall(this.#connection, "getSampler", options);
    requireId(samplerId, "samplerId");
    return this.#call(sampling.getSampler, { params: { sampler_id: samplerId } }, options);
  }

  /** The organisation's audit log for one UTC day (needs an admin role). */
  async getAuditLog(options: AuditLogOptions = {}): Promise<AuditLogResponse> {
    checkCall(this.#connection, "getAuditLog", options, AUDIT_LOG_OPTIONS_SHAPE);
    const eventType = options.eventType ?? "all";
    if (!AUDIT_EVENT_TYPES.includes(eventType)) {
      throw new ValidationError([
        {
          path: "eventType",
          message: `must be one of ${AUDIT_EVENT_TYPES.map((t) => `"${t}"`).join(", ")}, got ${describeValue(eventType)}`,
        },
      ]);
    }
    const day = options.day === undefined ? undefined : auditDay(options.day);
    return this.#call(rest.auditLog, { query: { event_type: eventType, day } }, options);
  }

  /**
   * Hourly usage buckets (tokens, checkpoints, storage) of a window of at most 14 days, with cost
   * estimates where the server gives them (§R3: `estimated_cost_usd`, `cost_data_through`).
   */
  async getBillingUsage(options: BillingUsageOptions): Promise<BillingUsageResponse> {
    checkCall(this.#connection, "getBillingUsage", options, BILLING_USAGE_OPTIONS_SHAPE);
    const window = billingWindow(options.startingOn, options.endingBefore);
    return this.#call(rest.billingUsage, { query: window }, options);
  }

  /**
   * The checkpoints stored now (§R1): count, bytes and gigabytes (10⁹ bytes) per project and
   * owner, with the monthly cost estimate where the server knows the rate. The service's figures
   * may lag an hour or two.
   */
  async getCurrentCheckpointStorageUsage(
    options: CheckpointStorageUsageOptions = {},
  ): Promise<CheckpointStorageUsage> {
    checkCall(
      this.#connection,
      "getCurrentCheckpointStorageUsage",
      options,
      CHECKPOINT_STORAGE_USAGE_OPTIONS_SHAPE,
    );
    if (options.projectId !== undefined) requireId(options.projectId, "projectId");
    return this.#call(rest.checkpointStorageUsage, { query: { project_id: options.projectId } }, options);
  }

  // Plumbing ---------------------------------------------------------------------------------------

  /** One declared call, after the start-up handshake; `timeout` bounds it, `signal` cancels it. */
  async #call<Body, Result>(
    e: Endpoint<Body, Result>,
    input: CallInput<Body>,
    options: CallOptions,
  ): Promise<Result> {
    const signal = withTimeout(options);
    await this.#connection.clientConfig(signal);
    try {
      return await call(this.#connection, e, { ...input, signal });
    } catch (error) {
      throw withRouteHint(error, e);
    }
  }
}

/**
 * A 404 from a route newer than 0.25 may mean the server predates it: the same NotFoundError (status,
 * body, headers kept) with a message that says so, rather than a bare "Not Found".
 */
function withRouteHint(error: unknown, e: Endpoint): unknown {
  if (!(error instanceof NotFoundError) || e.since === undefined) return error;
  return new NotFoundError(
    `${error.message} (${routeName(e)} was added in tinker ${e.since}; this server may not offer it)`,
    {
      status: error.status,
      headers: error.headers,
      body: error.body,
      requestId: error.requestId,
      cause: error,
    },
  );
}

function scope(options: { accessScope?: AccessScope }): AccessScope {
  const accessScope = options.accessScope ?? "owned";
  if (accessScope !== "owned" && accessScope !== "accessible") {
    throw new ValidationError([{ path: "accessScope", message: `must be "owned" or "accessible"` }]);
  }
  return accessScope;
}

function pageWindow(options: ListOptions, defaultLimit: number): { limit: number; offset: number } {
  const limit = options.limit ?? defaultLimit;
  const offset = options.offset ?? 0;
  const issues = [];
  if (!Number.isInteger(limit) || limit < 1) {
    issues.push({ path: "limit", message: `must be a positive integer, got ${describeValue(limit)}` });
  }
  if (!Number.isInteger(offset) || offset < 0) {
    issues.push({ path: "offset", message: `must be a non-negative integer, got ${describeValue(offset)}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { limit, offset };
}

/** Option names of the search request's wire fields, for error messages. */
const SEARCH_OPTION_NAMES: Record<string, string> = {
  project_ids: "projectIds",
  user_metadata: "userMetadata",
  checkpoint_type: "checkpointType",
  base_models: "baseModels",
};

/**
 * The search body without its cursor, checked now against the declaration (so bad options fail the
 * call itself, not its first await). Null filters are left out, as the protocol wants.
 */
function searchBody(options: SearchCheckpointsOptions): Record<string, unknown> {
  const limit = options.limit ?? SEARCH_LIMIT.default;
  if (!Number.isInteger(limit) || limit < SEARCH_LIMIT.min || limit > SEARCH_LIMIT.max) {
    throw new ValidationError([
      {
        path: "limit",
        message: `must be an integer from ${SEARCH_LIMIT.min} to ${SEARCH_LIMIT.max}, got ${describeValue(limit)}`,
      },
    ]);
  }
  const body = {
    project_ids: listOrOmitted(options.projectIds),
    user_metadata: options.userMetadata,
    checkpoint_type: options.checkpointType ?? undefined,
    owner: options.owner,
    base_models: listOrOmitted(options.baseModels),
    limit,
  };
  const parsed = parseBody(rest.searchCheckpoints, body);
  if (!parsed.ok) {
    throw new ValidationError(
      parsed.issues.map((issue) => {
        const [head = "", ...tail] = issue.path.split(".");
        return { path: [SEARCH_OPTION_NAMES[head] ?? head, ...tail].join("."), message: issue.message };
      }),
    );
  }
  return body;
}

/** A list filter for the body: null left out, an array copied, anything else kept for the check. */
function listOrOmitted(value: readonly string[] | null | undefined): unknown {
  if (value == null) return undefined;
  return Array.isArray(value) ? [...value] : value;
}

function requireId(value: string, path: string): void {
  if (typeof value !== "string" || value === "") {
    throw new ValidationError([{ path, message: "must be a non-empty string" }]);
  }
}

/** The path parameters of `training_runs/<run>/checkpoints/<kind>/<name>` routes. */
function checkpointParams(
  trainingRunId: string,
  checkpointId: string,
): { run_id: string; checkpoint_id: string } {
  requireId(trainingRunId, "trainingRunId");
  requireId(checkpointId, "checkpointId");
  return { run_id: trainingRunId, checkpoint_id: checkpointId };
}
