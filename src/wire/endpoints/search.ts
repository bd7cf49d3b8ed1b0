/**
 * The checkpoint search's request (§W5, experimental): its body, declared here rather than inside
 * `searchCheckpoints` (./rest.ts, which uses it) so that RestClient can check a search's options
 * when it is called, without the other REST declarations (src/clients/rest.ts).
 */
import * as v from "valibot";
import { CHECKPOINT_TYPES, CheckpointSearchCursorSchema } from "../checkpoint-kinds.js";
import { UserMetadataSchema } from "./fields.js";

/** §W5 `SearchOwner`: the caller's own checkpoints (default) or every listable one. */
export const SEARCH_OWNERS = ["me", "any"] as const;
export type SearchOwner = (typeof SEARCH_OWNERS)[number];

/** §W5 page sizes: 1–200, 100 unless asked (the client always sends it). */
export const SEARCH_LIMIT = { min: 1, max: 200, default: 100 } as const;

/**
 * The body: the request model as JSON with its null fields left out (nullable filters have no
 * default, so a client omits them); `user_metadata`, `owner` and `limit` are always sent.
 */
export const SearchCheckpointsBodySchema = v.looseObject({
  project_ids: v.optional(v.nullable(v.array(v.string()))),
  user_metadata: v.optional(UserMetadataSchema, {}),
  checkpoint_type: v.optional(v.nullable(v.picklist(CHECKPOINT_TYPES))),
  owner: v.optional(v.picklist(SEARCH_OWNERS), "me"),
  base_models: v.optional(v.nullable(v.array(v.string()))),
  limit: v.optional(
    v.pipe(
      v.number(),
      v.integer("must be an integer"),
      v.minValue(SEARCH_LIMIT.min, `must be ${SEARCH_LIMIT.min}–${SEARCH_LIMIT.max}`),
      v.maxValue(SEARCH_LIMIT.max, `must be ${SEARCH_LIMIT.min}–${SEARCH_LIMIT.max}`),
    ),
    SEARCH_LIMIT.default,
  ),
  cursor: v.optional(v.nullable(CheckpointSearchCursorSchema)),
});
