/**
 * valibot schemas of the REST responses (PROTOCOL.md §2.7, §3.9). Like every response schema they
 * are `looseObject`s: unknown fields pass, missing required ones fail. Datetimes become `Date`s.
 */
import * as v from "valibot";

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
  /** `weights/<name>` or `sampler_weights/<name>`. */
  checkpoint_id: v.string(),
  checkpoint_type: v.picklist(["training", "sampler"]),
  time: DateTimeSchema,
  tinker_path: v.string(),
  size_bytes: v.optional(v.nullable(v.number())),
  public: v.optional(v.boolean(), false),
  /** null: never expires. */
  expires_at: v.optional(v.nullable(DateTimeSchema), null),
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

export const AuditLogEntrySchema = v.looseObject({
  timestamp: DateTimeSchema,
  event: v.string(),
  model_id: optionalString,
  tinker_path: optionalString,
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
});
export type BillingUsageResponse = v.InferOutput<typeof BillingUsageResponseSchema>;

/** The caller's identity, read from the JWT claims (`sub`, `email`). */
export interface WhoamiResponse {
  user_urn: string;
  email: string | null;
}
