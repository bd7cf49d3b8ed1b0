/**
 * REST: training runs, checkpoints, sessions, samplers, audit log, billing and storage usage
 * (PROTOCOL.md §2.7, §R1–§R4, §W2–§W5). All through the generic loop, as the official client's are.
 */
import * as v from "valibot";
import {
  AUDIT_EVENT_TYPES,
  AuditLogResponseSchema,
  BillingUsageResponseSchema,
  CheckpointArchiveUrlResponseSchema,
  CheckpointSearchResponseSchema,
  CheckpointStorageUsageSchema,
  CheckpointsListResponseSchema,
  ExternalWeightsUploadFinishSchema,
  ExternalWeightsUploadStartSchema,
  ExternalWeightsUrlsResponseSchema,
  GetSessionResponseSchema,
  ListSessionsResponseSchema,
  TraceExportResponseSchema,
  TrainingRunSchema,
  TrainingRunsResponseSchema,
} from "../rest-schemas.js";
import { IgnoredResponseSchema } from "../schemas.js";
import { endpoint } from "./define.js";
import { LoraConfigSchema, nonEmptyString, queryInteger, TtlSecondsSchema } from "./fields.js";
import { SearchCheckpointsBodySchema } from "./search.js";

export { SEARCH_LIMIT, SEARCH_OWNERS, type SearchOwner } from "./search.js";

export const ACCESS_SCOPES = ["owned", "accessible"] as const;
const accessScope = v.optional(v.picklist(ACCESS_SCOPES), "owned");

/** Page queries: `limit` (at least 1) and `offset`, with the route's default page size. */
function pageQuery(defaultLimit: number) {
  return {
    limit: v.optional(queryInteger(1), defaultLimit),
    offset: v.optional(queryInteger(0), 0),
  };
}

export const listTrainingRuns = endpoint({
  name: "list_training_runs",
  method: "GET",
  path: "training_runs",
  query: v.looseObject({
    ...pageQuery(20),
    access_scope: accessScope,
    project_id: v.optional(v.string()),
  }),
  result: { schema: TrainingRunsResponseSchema },
  retry: "generic",
});

export const getTrainingRun = endpoint({
  name: "get_training_run",
  method: "GET",
  path: "training_runs/{run_id}",
  query: v.looseObject({ access_scope: accessScope }),
  result: { schema: TrainingRunSchema },
  retry: "generic",
});

export const listRunCheckpoints = endpoint({
  name: "list_checkpoints",
  method: "GET",
  path: "training_runs/{run_id}/checkpoints",
  result: { schema: CheckpointsListResponseSchema },
  retry: "generic",
});

export const listUserCheckpoints = endpoint({
  name: "list_user_checkpoints",
  method: "GET",
  path: "checkpoints",
  query: v.looseObject(pageQuery(100)),
  result: { schema: CheckpointsListResponseSchema },
  retry: "generic",
});

export const deleteCheckpoint = endpoint({
  name: "delete_checkpoint",
  method: "DELETE",
  path: "training_runs/{run_id}/checkpoints/{checkpoint_id+}",
  result: { schema: IgnoredResponseSchema },
  retry: "generic",
});

export const publishCheckpoint = endpoint({
  name: "publish_checkpoint",
  method: "POST",
  path: "training_runs/{run_id}/checkpoints/{checkpoint_id+}/publish",
  result: { schema: IgnoredResponseSchema },
  retry: "generic",
});

export const unpublishCheckpoint = endpoint({
  name: "unpublish_checkpoint",
  method: "DELETE",
  path: "training_runs/{run_id}/checkpoints/{checkpoint_id+}/publish",
  result: { schema: IgnoredResponseSchema },
  retry: "generic",
});

/** `PUT …/ttl`: `{ttl_seconds}` within the TTL bounds, or null to never expire (§W1). */
export const setCheckpointTtl = endpoint({
  name: "set_checkpoint_ttl",
  method: "PUT",
  path: "training_runs/{run_id}/checkpoints/{checkpoint_id+}/ttl",
  // The key is required: an explicit null removes the expiry, a missing key means nothing.
  body: v.looseObject({ ttl_seconds: v.nullable(TtlSecondsSchema) }),
  result: { schema: IgnoredResponseSchema },
  retry: "generic",
});

/** `GET …/archive`: a signed URL (302 or 200; 503 while the archive is built) (§2.7.5). */
export const checkpointArchive = endpoint({
  name: "checkpoint_archive",
  method: "GET",
  path: "training_runs/{run_id}/checkpoints/{checkpoint_id+}/archive",
  result: { schema: CheckpointArchiveUrlResponseSchema },
  retry: "generic",
});

/** `GET …/external_weights_urls` (§W2): only for `external_weights/…` checkpoints. */
export const externalWeightsUrls = endpoint({
  name: "external_weights_urls",
  method: "GET",
  path: "training_runs/{run_id}/checkpoints/{checkpoint_id+}/external_weights_urls",
  result: { schema: ExternalWeightsUrlsResponseSchema },
  retry: "generic",
  since: "0.28.0",
});

export const listSessions = endpoint({
  name: "list_sessions",
  method: "GET",
  path: "sessions",
  query: v.looseObject({ ...pageQuery(20), access_scope: accessScope }),
  result: { schema: ListSessionsResponseSchema },
  retry: "generic",
});

export const getSession = endpoint({
  name: "get_session",
  method: "GET",
  path: "sessions/{session_id}",
  query: v.looseObject({ access_scope: accessScope }),
  result: { schema: GetSessionResponseSchema },
  retry: "generic",
});

export const assignSessionProject = endpoint({
  name: "assign_session_project",
  method: "PUT",
  path: "sessions/{session_id}/project",
  body: v.looseObject({ project_id: nonEmptyString }),
  result: { schema: IgnoredResponseSchema },
  retry: "generic",
});

export const exportSessionTrace = endpoint({
  name: "export_session_trace",
  method: "GET",
  path: "sessions/{session_id}/trace_export",
  result: { schema: TraceExportResponseSchema },
  retry: "generic",
});

/**
 * `GET sessions/{session_id}/trace`: the trace itself, behind the signed URL `trace_export` hands
 * out (the local backend's form of that URL; the service's points elsewhere).
 */
export const sessionTrace = endpoint({
  name: "session_trace",
  method: "GET",
  path: "sessions/{session_id}/trace",
  query: v.looseObject({ token: v.optional(v.string()) }),
  result: { schema: v.unknown() },
  retry: "generic",
});

/** `GET audit?event_type=&day=YYYY-MM-DD` (§2.7.9, §R2). */
export const auditLog = endpoint({
  name: "audit",
  method: "GET",
  path: "audit",
  query: v.looseObject({
    event_type: v.optional(v.picklist(AUDIT_EVENT_TYPES), "all"),
    day: v.optional(v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/, "must be YYYY-MM-DD"))),
  }),
  result: { schema: AuditLogResponseSchema },
  retry: "generic",
});

/** The billing usage window (§2.7.11): whole UTC hours, at most 14 days. */
export const BILLING_WINDOW = { unitMs: 3_600_000, maxMs: 14 * 24 * 3_600_000 } as const;

/** `GET billing/usage/events?starting_on=&ending_before=` (§2.7.11, §R3); see BILLING_WINDOW. */
export const billingUsage = endpoint({
  name: "billing_usage",
  method: "GET",
  path: "billing/usage/events",
  query: v.looseObject({ starting_on: v.string(), ending_before: v.string() }),
  result: { schema: BillingUsageResponseSchema },
  retry: "generic",
});

/** `GET billing/usage/checkpoints/current[?project_id=]` (0.32, §R1). */
export const checkpointStorageUsage = endpoint({
  name: "checkpoint_storage_usage",
  method: "GET",
  path: "billing/usage/checkpoints/current",
  query: v.looseObject({ project_id: v.optional(v.string()) }),
  result: { schema: CheckpointStorageUsageSchema },
  retry: "generic",
  since: "0.32.0",
});

/**
 * `POST checkpoints/search` (0.39, experimental, §W5; route chosen here, upstream's unpublished).
 * Its body is declared in ./search.ts.
 */
export const searchCheckpoints = endpoint({
  name: "search_checkpoints",
  method: "POST",
  path: "checkpoints/search",
  body: SearchCheckpointsBodySchema,
  result: { schema: CheckpointSearchResponseSchema },
  retry: "generic",
  since: "0.39.0",
});

/** `POST external_weights_upload_start` (0.39, experimental, §W4). */
export const externalWeightsUploadStart = endpoint({
  name: "external_weights_upload_start",
  method: "POST",
  path: "external_weights_upload_start",
  body: v.looseObject({
    base_model: nonEmptyString,
    lora_config: LoraConfigSchema,
    destination_project_id: v.optional(v.nullable(v.string()), null),
  }),
  result: { schema: ExternalWeightsUploadStartSchema },
  retry: "generic",
  since: "0.39.0",
});

/** `POST external_weights_upload_finish` (0.39, experimental, §W4): the new checkpoint's path. */
export const externalWeightsUploadFinish = endpoint({
  name: "external_weights_upload_finish",
  method: "POST",
  path: "external_weights_upload_finish",
  body: v.looseObject({ upload_id: nonEmptyString }),
  result: { schema: ExternalWeightsUploadFinishSchema },
  retry: "generic",
  since: "0.39.0",
});
