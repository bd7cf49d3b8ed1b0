/**
 * valibot schemas of the REST responses (PROTOCOL.md §2.7, §3.9). Like every response schema they
 * are `looseObject`s: unknown fields pass, missing required ones fail. Datetimes become `Date`s.
 */
import * as v from "valibot";
import { CHECKPOINT_TYPES, CheckpointSearchCursorSchema } from "./checkpoint-kinds.js";

export {
  CHECKPOINT_PATH_SEGMENTS,
  CHECKPOINT_TYPES,
  type CheckpointPathSegment,
  type CheckpointSearchCursor,
  CheckpointSearchCursorSchema,
  type CheckpointType,
  checkpointTypeOfSegment,
} from "./checkpoint-kinds.js";

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * An ISO 8601 string or a number of Unix seconds, as pydantic accepts them. A string without a zone
 * is read as UTC (what the service means by it), not as the local time JavaScript would assume.
 */
export const DateTimeSchema = v.pipe(
  v.union([v.string(), v.number()]),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const date = toDate(dataset.value);
    if (date === undefined) {
      addIssue({ message: `Invalid datetime: ${JSON.stringify(dataset.value)}` });
      return NEVER;
    }
    return date;
  }),
);

function toDate(value: string | number): Date | undefined {
  if (typeof value === "number") {
    const date = new Date(value * 1000);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  const match = ISO_DATETIME.exec(value.trim());
  if (!match) return undefined;
  let text = value.trim().toUpperCase().replace(" ", "T");
  // A date-only string is already UTC in JavaScript; a date-time without a zone is not.
  if (match[1] === undefined && text.includes("T")) text += "Z";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const optionalString = v.optional(v.nullable(v.string()));

export const CursorSchema = v.looseObject({
  offset: v.number(),
  limit: v.number(),
  total_count: v.number(),
});
export type Cursor = v.InferOutput<typeof CursorSchema>;

export const CheckpointSchema = v.looseObject({
  /** `weights/<name>`, `sampler_weights/<name>` or `external_weights/<name>`. */
  checkpoint_id: v.string(),
  checkpoint_type: v.union([v.picklist(CHECKPOINT_TYPES), v.string()]),
  time: DateTimeSchema,
  tinker_path: v.string(),
  size_bytes: v.optional(v.nullable(v.number())),
  public: v.optional(v.boolean(), false),
  /** null: never expires. */
  expires_at: v.optional(v.nullable(DateTimeSchema), null),
  /** §W1/§W3: the metadata given when it was saved. */
  user_metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
  /** §W6 (0.39): the base model of the run that wrote it. */
  base_model: optionalString,
});
export type Checkpoint = v.InferOutput<typeof CheckpointSchema>;

export const TrainingRunSchema = v.looseObject({
  /** The model id, e.g. `<session>:train:0`. */
  training_run_id: v.string(),
  base_model: v.string(),
  model_owner: v.string(),
  is_lora: v.boolean(),
  /** The model is in a corrupted state. Absent on older servers, hence the default. */
  corrupted: v.optional(v.boolean(), false),
  lora_rank: v.optional(v.nullable(v.number())),
  last_request_time: DateTimeSchema,
  last_checkpoint: v.optional(v.nullable(CheckpointSchema)),
  last_sampler_checkpoint: v.optional(v.nullable(CheckpointSchema)),
  /** String values only, as the official client requires. */
  user_metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
});
export type TrainingRun = v.InferOutput<typeof TrainingRunSchema>;

export const TrainingRunsResponseSchema = v.looseObject({
  training_runs: v.array(TrainingRunSchema),
  cursor: CursorSchema,
});
export type TrainingRunsResponse = v.InferOutput<typeof TrainingRunsResponseSchema>;

export const CheckpointsListResponseSchema = v.looseObject({
  checkpoints: v.array(CheckpointSchema),
  cursor: v.optional(v.nullable(CursorSchema)),
});
export type CheckpointsListResponse = v.InferOutput<typeof CheckpointsListResponseSchema>;

export const CheckpointArchiveUrlResponseSchema = v.looseObject({
  /** A signed URL of the checkpoint's archive. */
  url: v.string(),
  expires: DateTimeSchema,
});
export type CheckpointArchiveUrlResponse = v.InferOutput<typeof CheckpointArchiveUrlResponseSchema>;

export const GetSessionResponseSchema = v.looseObject({
  training_run_ids: v.array(v.string()),
  sampler_ids: v.array(v.string()),
  /** §R4: the session's `user_metadata`. */
  user_metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
  /**
   * How the session was finished (§S1), null while it runs. Sent by the local backend; the
   * service's answer is not known to carry it.
   */
  finished: v.optional(
    v.nullable(
      v.looseObject({
        reason: v.looseObject({ type: v.string() }),
        detail: optionalString,
        finished_at: v.optional(v.nullable(DateTimeSchema)),
      }),
    ),
  ),
});
export type GetSessionResponse = v.InferOutput<typeof GetSessionResponseSchema>;

export const ListSessionsResponseSchema = v.looseObject({
  sessions: v.array(v.string()),
});
export type ListSessionsResponse = v.InferOutput<typeof ListSessionsResponseSchema>;

export const TraceExportResponseSchema = v.looseObject({
  status: v.picklist(["pending", "ready", "failed"]),
  url: optionalString,
  error: optionalString,
});

/** §R2: the event types `get_audit_log` filters on (0.25 had only all and checkpoints). */
export const AUDIT_EVENT_TYPES = ["all", "checkpoints", "projects", "teams", "organizations"] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export const AuditLogEntrySchema = v.looseObject({
  timestamp: DateTimeSchema,
  /** `<resource>_<action>`, e.g. `checkpoint_created`. */
  event: v.string(),
  /** §R2: who did what, and event-specific extras. */
  event_details: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  /** @deprecated checkpoint events only; read `event_details`. */
  model_id: optionalString,
  /** @deprecated checkpoint events only; read `event_details`. */
  tinker_path: optionalString,
  /** @deprecated checkpoint events only; read `event_details`. */
  purpose: optionalString,
});
export type AuditLogEntry = v.InferOutput<typeof AuditLogEntrySchema>;

export const AuditLogResponseSchema = v.looseObject({
  entries: v.array(AuditLogEntrySchema),
});
export type AuditLogResponse = v.InferOutput<typeof AuditLogResponseSchema>;

/** What a usage bucket counts, discriminated by `type`. */
export const BillingEventInfoSchema = v.variant("type", [
  v.looseObject({ type: v.literal("training"), token_count: v.number() }),
  v.looseObject({ type: v.literal("sampling_prefill"), cached: v.boolean(), token_count: v.number() }),
  v.looseObject({ type: v.literal("sampling_sample"), token_count: v.number() }),
  v.looseObject({ type: v.literal("checkpoint"), count: v.number() }),
  v.looseObject({ type: v.literal("storage"), gigabyte_hours: v.number() }),
]);
export type BillingEventInfo = v.InferOutput<typeof BillingEventInfoSchema>;

export const BillingUsageEventSchema = v.looseObject({
  bucket_start: DateTimeSchema,
  bucket_end: DateTimeSchema,
  base_model: optionalString,
  user_id: optionalString,
  user_name: optionalString,
  session_id: optionalString,
  project_id: optionalString,
  event_info: BillingEventInfoSchema,
  /** §R3: the bucket's cost estimate in USD, when the server computes one. */
  estimated_cost_usd: v.optional(v.nullable(v.number())),
});
export type BillingUsageEvent = v.InferOutput<typeof BillingUsageEventSchema>;

export const BillingUsageResponseSchema = v.looseObject({
  data: v.array(BillingUsageEventSchema),
  /** Per session id, the session's `user_metadata`. */
  sessions: v.optional(
    v.record(
      v.string(),
      v.looseObject({ user_metadata: v.optional(v.nullable(v.record(v.string(), v.string()))) }),
    ),
    {},
  ),
  /** §R3: up to this time costs come from invoices, after it from published rates. */
  cost_data_through: v.optional(v.nullable(DateTimeSchema)),
});
export type BillingUsageResponse = v.InferOutput<typeof BillingUsageResponseSchema>;

/** The caller's identity, read from the JWT claims (`sub`, `email`). */
export interface WhoamiResponse {
  user_urn: string;
  email: string | null;
}

/** §R1: stored checkpoints now, grouped by project and session owner. */
export const CheckpointStorageUsageSchema = v.looseObject({
  effective_rate_usd_per_gigabyte_month: v.optional(v.nullable(v.number())),
  data: v.array(
    v.looseObject({
      project_id: optionalString,
      org_user_urn: optionalString,
      user_email: optionalString,
      user_name: optionalString,
      checkpoint_count: v.number(),
      size_bytes: v.number(),
      size_gigabytes: v.number(),
      estimated_monthly_cost_usd: v.optional(v.nullable(v.number())),
    }),
  ),
});
export type CheckpointStorageUsage = v.InferOutput<typeof CheckpointStorageUsageSchema>;

/** §W2: signed download URLs of an external-weights checkpoint's files. */
export const ExternalWeightsUrlsResponseSchema = v.looseObject({
  urls: v.record(v.string(), v.string()),
  expires: DateTimeSchema,
});
export type ExternalWeightsUrlsResponse = v.InferOutput<typeof ExternalWeightsUrlsResponseSchema>;

/** §W5 (0.39, experimental): checkpoints newest first, and the cursor of the next page. */
export const CheckpointSearchResponseSchema = v.looseObject({
  checkpoints: v.array(CheckpointSchema),
  next_cursor: v.optional(v.nullable(CheckpointSearchCursorSchema)),
});
export type CheckpointSearchResponse = v.InferOutput<typeof CheckpointSearchResponseSchema>;

/**
 * §W4/§W7: one upload URL. 0.39 servers give a plain URL; 0.40 ones `{url, headers}` whose headers
 * the PUT must carry. Both are read as the second form.
 */
export const UploadUrlSchema = v.union([
  v.pipe(
    v.string(),
    v.transform((url) => ({ url, headers: {} as Record<string, string> })),
  ),
  v.looseObject({ url: v.string(), headers: v.optional(v.record(v.string(), v.string()), {}) }),
]);

/** §W4 (0.39, experimental): where to PUT each adapter file. */
export const ExternalWeightsUploadStartSchema = v.looseObject({
  upload_id: v.string(),
  urls: v.record(v.string(), UploadUrlSchema),
  expires: DateTimeSchema,
});
export type ExternalWeightsUploadStart = v.InferOutput<typeof ExternalWeightsUploadStartSchema>;

export const ExternalWeightsUploadFinishSchema = v.looseObject({ tinker_path: v.string() });
