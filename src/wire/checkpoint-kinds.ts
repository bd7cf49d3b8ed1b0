/**
 * The kinds of checkpoint (§W3), their `tinker://` path segments (§3.9, §W2) and the checkpoint
 * search's cursor (§W5): facts that requests and paths use as well as the REST responses
 * (./rest-schemas.ts re-exports them), kept apart so that checking a path or a search request
 * needs none of the response schemas.
 */
import * as v from "valibot";

/**
 * The kinds of checkpoint (§W3). The literal of the external kind was not published; tinker-ts
 * uses "external" (PROTOCOL.md §W3 decision) and accepts any other string from a newer server.
 */
export const CHECKPOINT_TYPES = ["training", "sampler", "external"] as const;
export type CheckpointType = (typeof CHECKPOINT_TYPES)[number];

/** The `tinker://<run>/<segment>/<name>` path segment of each checkpoint type (§3.9, §W2). */
export const CHECKPOINT_PATH_SEGMENTS = {
  training: "weights",
  sampler: "sampler_weights",
  external: "external_weights",
} as const satisfies Record<CheckpointType, string>;
export type CheckpointPathSegment = (typeof CHECKPOINT_PATH_SEGMENTS)[CheckpointType];

/** The checkpoint type a path segment names; undefined for any other segment. */
export function checkpointTypeOfSegment(segment: string): CheckpointType | undefined {
  return CHECKPOINT_TYPES.find((type) => CHECKPOINT_PATH_SEGMENTS[type] === segment);
}

/** §W5: where a search page ends. */
export const CheckpointSearchCursorSchema = v.looseObject({
  last_created_at: v.string(),
  last_checkpoint_uuid: v.string(),
});
export type CheckpointSearchCursor = v.InferOutput<typeof CheckpointSearchCursorSchema>;
