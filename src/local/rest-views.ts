/**
 * The REST endpoints of the local backend (PROTOCOL.md §2.7): JSON views of the state, checkpoint
 * visibility, TTL and deletion, signed archive and trace URLs, the audit log and billing usage.
 * One local user owns everything, so both access scopes see the same runs and sessions. Lists are
 * in creation order (stable offsets while new items arrive), except user checkpoints, which the
 * protocol lists newest first.
 */
import { checkpointTypeOfSegment } from "../wire/rest-schemas.js";
import { ArchiveUrlSigner, buildCheckpointArchive } from "./archive.js";
import { LocalBackendError } from "./errors.js";
import type { Persistence } from "./persistence.js";
import {
  type BackendState,
  type Checkpoint,
  holdsEngineState,
  knownRun,
  knownSession,
  type TrainingRun,
} from "./state.js";

export type AccessScope = "owned" | "accessible";

/** A page of a REST list: where it starts and how long it may be. */
export interface PageRequest {
  limit: number;
  offset: number;
}

/** One audit log entry (PROTOCOL.md §2.7.8); `event` reads `<resource>_<action>` (§R2). */
interface AuditEvent {
  timestamp: Date;
  event: string;
  modelId: string;
  tinkerPath?: string;
}

/** The audit event types that select checkpoint events (§R2); the others list nothing here. */
export type AuditEventType = "all" | "checkpoints" | "projects" | "teams" | "organizations";

/** A checkpoint search (§W5) as the route hands it over: defaults applied, cursor parsed. */
export interface CheckpointSearch {
  /** null: every project (one local user may list them all). */
  projectIds: string[] | null;
  /** Every pair must match exactly; `{}` matches everything. */
  userMetadata: Record<string, string>;
  /** The `checkpoint_type` the listings show (`training`, `sampler`, …), or null for any. */
  checkpointType: string | null;
  /** null: any base model; `[]` matches nothing. */
  baseModels: string[] | null;
  limit: number;
  /** Continue after this checkpoint (its creation time and unique id, the tinker path). */
  after: { time: Date; id: string } | null;
}

/** Who owns everything in this single-user backend (`TrainingRun.model_owner`, billing `user_id`). */
const LOCAL_USER = "local-user";
/** How long an archive URL stays valid, as the service's default. */
const ARCHIVE_URL_LIFETIME_MS = 15 * 60_000;
/** Signed trace-export URLs: grant kind (never a checkpoint id) and lifetime (SDK: "about 1 h"). */
const TRACE_GRANT = "trace";
const TRACE_URL_LIFETIME_MS = 60 * 60_000;
const HOUR_MS = 3_600_000;

export class RestViews {
  readonly #state: BackendState;
  readonly #persistence: Persistence;
  /** Audit events that leave no trace in the state itself: deletes, visibility and TTL changes. */
  readonly #auditEvents: AuditEvent[] = [];
  /** Sessions whose trace export was started: the next poll finds it ready. */
  readonly #traceExports = new Set<string>();
  readonly #archiveSigner = new ArchiveUrlSigner();

  constructor(state: BackendState, persistence: Persistence) {
    this.#state = state;
    this.#persistence = persistence;
  }

  /** `GET training_runs`: runs, optionally of one project (the project of the run's session). */
  listTrainingRuns(page: PageRequest, _scope: AccessScope, projectId: string | undefined): unknown {
    const runs = [...this.#state.runs.values()].filter(
      (run) => projectId === undefined || this.#state.sessionProjects.get(run.sessionId) === projectId,
    );
    return {
      training_runs: runs
        .slice(page.offset, page.offset + page.limit)
        .map((run) => this.#trainingRunJson(run)),
      cursor: { offset: page.offset, limit: page.limit, total_count: runs.length },
    };
  }

  /** `GET training_runs/{id}`. Unloaded runs are still runs: their history stays readable. */
  getTrainingRun(runId: string, _scope: AccessScope): unknown {
    return this.#trainingRunJson(knownRun(this.#state, runId));
  }

  /** `GET training_runs/{id}/checkpoints`: every live checkpoint of the run, oldest first. */
  listRunCheckpoints(runId: string): unknown {
    knownRun(this.#state, runId);
    return { checkpoints: this.#liveCheckpoints(runId).map(checkpointJson), cursor: null };
  }

  /** `GET checkpoints`: every live checkpoint of every run, newest first. */
  listUserCheckpoints(page: PageRequest): unknown {
    // Reversed first, so checkpoints saved within the same millisecond still come newest first.
    const all = this.#liveCheckpoints()
      .reverse()
      .sort((a, b) => b.time.getTime() - a.time.getTime());
    return {
      checkpoints: all.slice(page.offset, page.offset + page.limit).map(checkpointJson),
      cursor: { offset: page.offset, limit: page.limit, total_count: all.length },
    };
  }

  /**
   * `POST checkpoints/search` (§W5): live checkpoints matching every filter, newest first, ties by
   * tinker path (the unique id `last_checkpoint_uuid` holds here), `limit` per page. `next_cursor`
   * points at the page's last checkpoint while more match. The owner filter needs no work: one
   * local user owns everything, so `me` and `any` find the same.
   */
  searchCheckpoints(search: CheckpointSearch): unknown {
    const inProjects = (checkpoint: Checkpoint) => {
      if (search.projectIds === null) return true;
      const project = this.#projectOf(checkpoint);
      return project !== undefined && search.projectIds.includes(project);
    };
    const wanted = (checkpoint: Checkpoint, json: { checkpoint_type?: unknown }) =>
      inProjects(checkpoint) &&
      (search.checkpointType === null || json.checkpoint_type === search.checkpointType) &&
      (search.baseModels === null || search.baseModels.includes(checkpoint.baseModel)) &&
      Object.entries(search.userMetadata).every(
        ([key, value]) =>
          checkpoint.userMetadata !== undefined &&
          Object.hasOwn(checkpoint.userMetadata, key) &&
          checkpoint.userMetadata[key] === value,
      );
    const after = search.after;
    const matches = this.#liveCheckpoints()
      .sort(newestFirst)
      .filter((c) => after === null || newestFirst(c, { time: after.time, tinkerPath: after.id }) > 0)
      .map((checkpoint) => ({
        checkpoint,
        json: checkpointJson(checkpoint) as { checkpoint_type?: unknown },
      }))
      .filter(({ checkpoint, json }) => wanted(checkpoint, json));
    const page = matches.slice(0, search.limit);
    const last = page.at(-1)?.checkpoint;
    return {
      checkpoints: page.map(({ json }) => json),
      next_cursor:
        matches.length > page.length && last
          ? { last_created_at: last.time.toISOString(), last_checkpoint_uuid: last.tinkerPath }
          : null,
    };
  }

  /**
   * `GET billing/usage/checkpoints/current` (§R1): the live checkpoints now, one row per project
   * (no project included) and owner — here always the one local user — optionally of one project.
   * No prices are known locally, so the rate and the costs are null.
   */
  checkpointStorageUsage(projectId: string | undefined): unknown {
    const rows = new Map<string | null, { count: number; bytes: number }>();
    for (const checkpoint of this.#liveCheckpoints()) {
      const project = this.#projectOf(checkpoint) ?? null;
      if (projectId !== undefined && project !== projectId) continue;
      const row = rows.get(project) ?? { count: 0, bytes: 0 };
      row.count++;
      row.bytes += checkpoint.state.length;
      rows.set(project, row);
    }
    const projects = [...rows.keys()].sort((a, b) => (a ?? "").localeCompare(b ?? ""));
    return {
      effective_rate_usd_per_gigabyte_month: null,
      data: projects.map((project) => {
        const { count, bytes } = rows.get(project)!;
        return {
          project_id: project,
          user_name: LOCAL_USER,
          checkpoint_count: count,
          size_bytes: bytes,
          size_gigabytes: bytes / 1e9,
          estimated_monthly_cost_usd: null,
        };
      }),
    };
  }

  /** `DELETE training_runs/{id}/checkpoints/{checkpoint_id}`. */
  deleteCheckpoint(runId: string, checkpointId: string): void {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    this.#state.checkpoints.delete(checkpoint.tinkerPath);
    this.#persistence.forgetCheckpoint(checkpoint);
    this.#audit("checkpoint_deleted", checkpoint);
  }

  /** `POST` / `DELETE …/publish`: a conflict when the checkpoint already has the requested visibility. */
  setCheckpointPublic(runId: string, checkpointId: string, visible: boolean): void {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    if (checkpoint.public === visible) {
      throw new LocalBackendError(
        "conflict",
        `checkpoint ${checkpoint.tinkerPath} is already ${visible ? "public" : "private"}`,
      );
    }
    checkpoint.public = visible;
    this.#persistence.persistCheckpoint(checkpoint);
    this.#audit(visible ? "checkpoint_published" : "checkpoint_unpublished", checkpoint);
  }

  /** `PUT …/ttl`: expire `ttlSeconds` from now, or never (`null`). */
  setCheckpointTtl(runId: string, checkpointId: string, ttlSeconds: number | null): void {
    if (ttlSeconds !== null && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) {
      throw new LocalBackendError(
        "invalid",
        `ttl_seconds must be a positive integer or null, got ${ttlSeconds}`,
      );
    }
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    checkpoint.expiresAt = ttlSeconds === null ? null : new Date(Date.now() + ttlSeconds * 1000);
    this.#persistence.persistCheckpoint(checkpoint);
    this.#audit("checkpoint_ttl_set", checkpoint);
  }

  /**
   * `GET …/archive`, answered in the 200 JSON form (`{url, expires}`), which every client and every
   * runtime can read (a 302 is invisible to browser scripts). The URL is `<baseUrl>/archives/<token>`,
   * outside `/api/v1/`: the HMAC-signed, expiring token is the credential, as in a cloud storage
   * signed URL, so it is fetched without an API key (see archive.ts and `checkpointArchiveDownload`).
   */
  async checkpointArchive(runId: string, checkpointId: string, baseUrl: string): Promise<unknown> {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    const expiresAt = Date.now() + ARCHIVE_URL_LIFETIME_MS;
    const token = await this.#archiveSigner.sign({
      runId: checkpoint.runId,
      checkpointId: `${checkpoint.kind}/${checkpoint.name}`,
      expiresAt,
    });
    return { url: `${baseUrl}/archives/${token}`, expires: new Date(expiresAt).toISOString() };
  }

  /**
   * `GET <base>/archives/<token>`: the checkpoint's tar archive (PEFT adapter, see archive.ts).
   * Forbidden for a token this backend did not sign, gone once it expired, not found if the
   * checkpoint is gone.
   */
  async checkpointArchiveDownload(token: string): Promise<{ bytes: Uint8Array; filename: string }> {
    const check = await this.#archiveSigner.verify(token);
    if (!check.ok) {
      throw check.reason === "expired"
        ? new LocalBackendError("gone", "this archive URL has expired; request a new one")
        : new LocalBackendError("forbidden", "invalid archive URL signature");
    }
    const checkpoint = this.#restCheckpoint(check.grant.runId, check.grant.checkpointId);
    return {
      // An external adapter is stored as exactly such an archive (external-weights.ts).
      bytes: holdsEngineState(checkpoint) ? buildCheckpointArchive(checkpoint) : checkpoint.state,
      filename: `${checkpoint.runId}_${checkpoint.kind}_${checkpoint.name}.tar`.replace(/[^\w.-]/g, "_"),
    };
  }

  /** `GET sessions`: ids of every session ever created. */
  listSessions(page: PageRequest, _scope: AccessScope): unknown {
    const ids = [...this.#state.sessions.keys()];
    return { sessions: ids.slice(page.offset, page.offset + page.limit) };
  }

  /**
   * `GET sessions/{id}`: the runs and samplers the session created, its `user_metadata` (§R4) and,
   * once finished (§S1), how: `finished` mirrors the finish request's body plus its time (a field
   * of this backend; the service's answer has no such field that we know of).
   */
  getSessionInfo(sessionId: string, _scope: AccessScope): unknown {
    const session = knownSession(this.#state, sessionId);
    const samplerPrefix = `${sessionId}:sample:`;
    const finished = session.finished;
    return {
      training_run_ids: [...this.#state.runs.values()]
        .filter((r) => r.sessionId === sessionId)
        .map((r) => r.modelId),
      sampler_ids: [...this.#state.samplers.keys()].filter((id) => id.startsWith(samplerPrefix)),
      user_metadata: session.userMetadata,
      finished: finished
        ? {
            reason: { type: finished.reason },
            detail: finished.detail,
            finished_at: finished.at.toISOString(),
          }
        : null,
    };
  }

  /** `PUT sessions/{id}/project`. */
  assignSessionProject(sessionId: string, projectId: string): void {
    const session = knownSession(this.#state, sessionId);
    this.#state.sessionProjects.set(sessionId, projectId);
    this.#persistence.persistSession(session);
  }

  /**
   * `GET sessions/{id}/trace_export`: the first poll starts the export ("pending"), later polls find
   * it ready, with a URL of the trace under `baseUrl` (served by `sessionTrace`).
   */
  async traceExport(sessionId: string, baseUrl: string): Promise<unknown> {
    knownSession(this.#state, sessionId);
    if (!this.#traceExports.has(sessionId)) {
      this.#traceExports.add(sessionId);
      return { status: "pending" };
    }
    // A signed URL (SDK: "signed URL, about 1 h"): the HMAC token is the credential, so a plain GET
    // without the API key can fetch it, like the archive URLs. Grant kind "trace" never names a checkpoint.
    const token = await this.#archiveSigner.sign({
      runId: sessionId,
      checkpointId: TRACE_GRANT,
      expiresAt: Date.now() + TRACE_URL_LIFETIME_MS,
    });
    return {
      status: "ready",
      url: `${baseUrl}/api/v1/sessions/${encodeURIComponent(sessionId)}/trace?token=${token}`,
    };
  }

  /** True when `token` is an unexpired trace grant this backend signed for `sessionId`. */
  async traceTokenValid(sessionId: string, token: string): Promise<boolean> {
    const check = await this.#archiveSigner.verify(token);
    return check.ok && check.grant.checkpointId === TRACE_GRANT && check.grant.runId === sessionId;
  }

  /**
   * The exported trace: the session's run creations and checkpoint saves as instant events of the
   * Chrome trace format, which Perfetto opens.
   */
  sessionTrace(sessionId: string): unknown {
    knownSession(this.#state, sessionId);
    const events = this.#derivedAuditEvents().filter(
      (event) => this.#state.runs.get(event.modelId)?.sessionId === sessionId,
    );
    return {
      traceEvents: events.map((event) => ({
        name: event.event,
        ph: "i",
        s: "p",
        ts: event.timestamp.getTime() * 1000,
        pid: 1,
        tid: 1,
        args: { model_id: event.modelId, tinker_path: event.tinkerPath },
      })),
    };
  }

  /**
   * `GET audit`: one UTC day (`YYYY-MM-DD`) of run creations and checkpoint saves (read from the
   * state) plus the recorded deletes, visibility and TTL changes. Each entry says who did what in
   * `event_details` (§R2); the deprecated `model_id` and `tinker_path` are kept on checkpoint
   * events only. There are no project, team or organization events here, so those types list none.
   */
  auditLog(eventType: AuditEventType, day: string): unknown {
    if (eventType !== "all" && eventType !== "checkpoints") return { entries: [] };
    const entries = [...this.#derivedAuditEvents(), ...this.#auditEvents]
      .filter((event) => event.timestamp.toISOString().slice(0, 10) === day)
      .filter((event) => eventType === "all" || isCheckpointEvent(event))
      .sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
    return {
      entries: entries.map((event) => ({
        timestamp: event.timestamp.toISOString(),
        event: event.event,
        event_details: { who: LOCAL_USER, what: event.tinkerPath ?? event.modelId },
        ...(isCheckpointEvent(event)
          ? { model_id: event.modelId, tinker_path: event.tinkerPath ?? null }
          : {}),
      })),
    };
  }

  /**
   * `GET billing/usage/events`: hourly buckets of checkpoint saves per session and base model in
   * [start, end). Training and sampling tokens are not metered by this backend.
   */
  billingUsage(start: Date, end: Date): unknown {
    const buckets = new Map<string, { bucketStart: number; run: TrainingRun; count: number }>();
    for (const checkpoint of this.#state.checkpoints.values()) {
      const time = checkpoint.time.getTime();
      const run = this.#state.runs.get(checkpoint.runId);
      if (!run || time < start.getTime() || time >= end.getTime()) continue;
      const bucketStart = Math.floor(time / HOUR_MS) * HOUR_MS;
      const key = `${bucketStart}|${run.sessionId}|${run.baseModel}`;
      const bucket = buckets.get(key) ?? { bucketStart, run, count: 0 };
      bucket.count++;
      buckets.set(key, bucket);
    }
    const data = [...buckets.values()]
      .sort((a, b) => a.bucketStart - b.bucketStart)
      .map(({ bucketStart, run, count }) => ({
        bucket_start: new Date(bucketStart).toISOString(),
        bucket_end: new Date(bucketStart + HOUR_MS).toISOString(),
        base_model: run.baseModel,
        user_id: LOCAL_USER,
        user_name: LOCAL_USER,
        session_id: run.sessionId,
        project_id: this.#state.sessionProjects.get(run.sessionId) ?? null,
        event_info: { type: "checkpoint", count },
        // §R3: no prices are known locally.
        estimated_cost_usd: null,
      }));
    const sessions = Object.fromEntries(
      data.map((event) => [
        event.session_id,
        { user_metadata: this.#state.sessions.get(event.session_id)?.userMetadata ?? {} },
      ]),
    );
    return { data, sessions, cost_data_through: null };
  }

  #trainingRunJson(run: TrainingRun): unknown {
    const checkpoints = this.#liveCheckpoints(run.modelId);
    const last = (kind: Checkpoint["kind"]) => checkpoints.filter((c) => c.kind === kind).at(-1);
    const lastTraining = last("weights");
    const lastSampler = last("sampler_weights");
    return {
      training_run_id: run.modelId,
      base_model: run.baseModel,
      model_owner: LOCAL_USER,
      is_lora: true,
      corrupted: run.corrupted,
      lora_rank: run.lora.rank,
      last_request_time: run.lastRequestAt.toISOString(),
      last_checkpoint: lastTraining ? checkpointJson(lastTraining) : null,
      last_sampler_checkpoint: lastSampler ? checkpointJson(lastSampler) : null,
      user_metadata: run.userMetadata ?? {},
    };
  }

  /** The project of the session whose run wrote the checkpoint, if it has one. */
  #projectOf(checkpoint: Checkpoint): string | undefined {
    const run = this.#state.runs.get(checkpoint.runId);
    return run === undefined ? undefined : this.#state.sessionProjects.get(run.sessionId);
  }

  /** Checkpoints that have not expired (of one run, or all), oldest first. */
  #liveCheckpoints(runId?: string): Checkpoint[] {
    const now = Date.now();
    return [...this.#state.checkpoints.values()]
      .filter((c) => runId === undefined || c.runId === runId)
      .filter((c) => c.expiresAt === null || c.expiresAt.getTime() > now)
      .sort((a, b) => a.time.getTime() - b.time.getTime());
  }

  /** A checkpoint addressed as the REST endpoints do: run id and `weights/<name>` or `sampler_weights/<name>`. */
  #restCheckpoint(runId: string, checkpointId: string): Checkpoint {
    const [kind, name, ...rest] = checkpointId.split("/");
    if (
      (kind !== "weights" && kind !== "sampler_weights" && kind !== "external_weights") ||
      !name ||
      rest.length > 0
    ) {
      throw new LocalBackendError(
        "invalid",
        `invalid checkpoint id "${checkpointId}": expected weights/<name>, sampler_weights/<name> or external_weights/<name>`,
      );
    }
    const path = `tinker://${runId}/${checkpointId}`;
    const checkpoint = this.#state.checkpoints.get(path);
    if (!checkpoint || (checkpoint.expiresAt !== null && checkpoint.expiresAt.getTime() <= Date.now())) {
      throw new LocalBackendError("not_found", `checkpoint not found: ${path}`);
    }
    return checkpoint;
  }

  #audit(event: string, checkpoint: Checkpoint): void {
    this.#auditEvents.push({
      timestamp: new Date(),
      event,
      modelId: checkpoint.runId,
      tinkerPath: checkpoint.tinkerPath,
    });
  }

  /** Events the state itself records: run creations and the saves of the checkpoints that exist. */
  #derivedAuditEvents(): AuditEvent[] {
    const created = [...this.#state.runs.values()].map((run) => ({
      timestamp: run.createdAt,
      event: "training_run_created",
      modelId: run.modelId,
    }));
    const saved = [...this.#state.checkpoints.values()].map((c) => ({
      timestamp: c.time,
      event: "checkpoint_saved",
      modelId: c.runId,
      tinkerPath: c.tinkerPath,
    }));
    return [...created, ...saved];
  }
}

function isCheckpointEvent(event: AuditEvent): boolean {
  return event.event.startsWith("checkpoint_");
}

/** Search order (§W5): creation time descending, ties by tinker path descending. */
function newestFirst(
  a: Pick<Checkpoint, "time" | "tinkerPath">,
  b: Pick<Checkpoint, "time" | "tinkerPath">,
): number {
  const byTime = b.time.getTime() - a.time.getTime();
  if (byTime !== 0) return byTime;
  return a.tinkerPath < b.tinkerPath ? 1 : a.tinkerPath > b.tinkerPath ? -1 : 0;
}

/** The protocol's Checkpoint (PROTOCOL.md §3.9, §W3, §W6). */
export function checkpointJson(checkpoint: Checkpoint): unknown {
  return {
    checkpoint_id: `${checkpoint.kind}/${checkpoint.name}`,
    // "external" is tinker-ts's literal for the external kind (PROTOCOL.md §W3).
    checkpoint_type: checkpointTypeOfSegment(checkpoint.kind),
    time: checkpoint.time.toISOString(),
    tinker_path: checkpoint.tinkerPath,
    size_bytes: checkpoint.state.length,
    public: checkpoint.public,
    expires_at: checkpoint.expiresAt?.toISOString() ?? null,
    user_metadata: checkpoint.userMetadata ?? null,
    base_model: checkpoint.baseModel,
  };
}
