/**
 * The implementation of RestClient's promise-returning methods (see ../rest.ts for the class and
 * why its methods live here): loaded with a RestClient's first such call, so an app that never
 * calls one does not download them, the REST-only helpers, or the declarations they use.
 *
 * Ids are inserted into paths without URL-encoding, as the official client does: run ids contain
 * `:` and checkpoint ids contain `/` (`weights/<name>`), and servers route on exactly that.
 */

// For the bundle's layout only: see the same import in ../service-training.ts.
import "../../index.js";

import { APIError, ResponseValidationError, ValidationError } from "../../core/errors.js";
import { withGenericRetries } from "../../core/generic-retry.js";
import { describeValue } from "../../internal/describe.js";
import { sleep, untilAborted } from "../../internal/sleep.js";
import { CALL_OPTION_SHAPE, optionShape } from "../../lib/strict-options.js";
import { parseTinkerPath } from "../../lib/tinker-path.js";
import { type Endpoint, pathOf } from "../../wire/endpoints/define.js";
import * as rest from "../../wire/endpoints/rest.js";
import * as sampling from "../../wire/endpoints/sampling.js";
import * as training from "../../wire/endpoints/training.js";
import {
  AUDIT_EVENT_TYPES,
  type AuditLogResponse,
  type BillingUsageResponse,
  type CheckpointArchiveUrlResponse,
  type CheckpointStorageUsage,
  type CheckpointsListResponse,
  type ExternalWeightsUploadStart,
  type ExternalWeightsUrlsResponse,
  type GetSessionResponse,
  type TrainingRun,
  type WhoamiResponse,
} from "../../wire/rest-schemas.js";
import type { GetSamplerResponse, WeightsInfoResponse } from "../../wire/schemas.js";
import type { LoraConfig } from "../../wire/types.js";
import type { CallInput } from "../call.js";
import { type CallOptions, checkCall, withTimeout } from "../call-options.js";
import type { Connection } from "../connection.js";
import {
  type AccessScopeOptions,
  type ArchiveUrlOptions,
  type AuditLogOptions,
  type BillingUsageOptions,
  type CheckpointStorageUsageOptions,
  type ExportSessionTraceOptions,
  type ExternalWeightsUploadOptions,
  restCall,
  scope,
} from "../rest.js";
import { DEFAULT_BUILDING_RETRY_DELAY_MS, requestArchiveUrl } from "./archive.js";
import { auditDay, billingWindow } from "./time-params.js";
import { whoamiFromClaims } from "./whoami.js";

/** The REST declarations, for RestClient's paged lists (their pages are requested from there). */
export { rest };

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const ACCESS_SCOPE_OPTIONS_SHAPE = optionShape<AccessScopeOptions>({
  ...CALL_OPTION_SHAPE,
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
const EXTERNAL_WEIGHTS_UPLOAD_OPTIONS_SHAPE = optionShape<ExternalWeightsUploadOptions>({
  ...CALL_OPTION_SHAPE,
  destinationProjectId: "string",
});

const DEFAULT_TRACE_POLL_MS = 5_000;

export class RestCalls {
  readonly #connection: Connection;
  /**
   * Whose methods the composite calls (`*FromTinkerPath`, `uploadExternalWeights`) go through: the
   * RestClient, so that what a caller wraps or spies on there is what they call, as when these
   * methods were the RestClient's own.
   */
  readonly #client: Pick<RestCalls, keyof RestCalls>;

  constructor(connection: Connection, client?: Pick<RestCalls, keyof RestCalls>) {
    this.#connection = connection;
    this.#client = client ?? this;
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
    return this.#client.getTrainingRun(parseTinkerPath(tinkerPath).trainingRunId, options);
  }

  // Checkpoints ------------------------------------------------------------------------------------

  /** The training and sampler checkpoints of one run. */
  async listCheckpoints(trainingRunId: string, options: CallOptions = {}): Promise<CheckpointsListResponse> {
    checkCall(this.#connection, "listCheckpoints", options);
    requireId(trainingRunId, "trainingRunId");
    return this.#call(rest.listRunCheckpoints, { params: { run_id: trainingRunId } }, options);
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
    return this.#client.getCheckpointArchiveUrl(trainingRunId, checkpointId, options);
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
    await this.#client.deleteCheckpoint(trainingRunId, checkpointId, options);
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
    await this.#client.publishCheckpoint(trainingRunId, checkpointId, options);
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
    await this.#client.unpublishCheckpoint(trainingRunId, checkpointId, options);
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
    await this.#client.setCheckpointTtl(trainingRunId, checkpointId, ttlSeconds, options);
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
    const started = await this.#client.externalWeightsUploadStart(baseModel, loraConfig, {
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
    return this.#client.externalWeightsUploadFinish(started.upload_id, { signal });
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

  #call<Body, Result>(
    e: Endpoint<Body, Result>,
    input: CallInput<Body>,
    options: CallOptions,
  ): Promise<Result> {
    return restCall(this.#connection, e, input, options);
  }
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
