/**
 * The API-key endpoints behind `tinker-ts auth` (PROTOCOL.md §A1). The CLI calls them with plain
 * HTTP and the key in `X-API-Key`, as the official CLI does, not through an SDK session.
 */
import * as v from "valibot";
import { endpoint } from "./define.js";

/** Who a key belongs to (also how the credentials file stores it, §A1). */
export const KeyDetailsSchema = v.looseObject({
  org_details: v.optional(v.nullable(v.looseObject({ name: v.optional(v.nullable(v.string())) }))),
  user_details: v.optional(v.nullable(v.looseObject({ email: v.optional(v.nullable(v.string())) }))),
});

/** `GET auth/apikey/me`: what the key in `X-API-Key` is. */
export const apiKeyMe = endpoint({
  name: "auth/apikey/me",
  method: "GET",
  path: "auth/apikey/me",
  result: {
    schema: v.looseObject({
      key_id: v.string(),
      name: v.optional(v.nullable(v.string())),
      note: v.optional(v.nullable(v.string())),
      details: v.optional(v.nullable(KeyDetailsSchema)),
    }),
  },
  retry: "transport",
  since: "0.26.2",
});

/** `DELETE auth/apikey/me`: revokes the key in `X-API-Key` (generated keys, at logout). */
export const deleteApiKeyMe = endpoint({
  name: "delete auth/apikey/me",
  method: "DELETE",
  path: "auth/apikey/me",
  result: { schema: v.unknown() },
  retry: "transport",
  since: "0.26.2",
});

/** `GET /api/unauthed/auth-config` (outside `api/v1/`): the browser login's client id, if any. */
export const AUTH_CONFIG_PATH = "api/unauthed/auth-config";
