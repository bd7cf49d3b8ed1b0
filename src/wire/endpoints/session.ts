/**
 * Start-up, sessions and server capabilities (PROTOCOL.md §1.4, §2.2, §6.1, §G1, §S1, §A1).
 */
import * as v from "valibot";
import {
  ClientConfigResponseSchema,
  CreateSessionResponseSchema,
  DynamicConfigResponseSchema,
  GetServerCapabilitiesResponseSchema,
  IgnoredResponseSchema,
} from "../schemas.js";
import { endpoint } from "./define.js";
import { nonEmptyString, UserMetadataSchema } from "./fields.js";

/** Bodies that only report the client's protocol level. */
const SdkVersionBody = v.looseObject({ sdk_version: v.optional(v.string()) });

/** `POST client/config`: the server's flags and limits for this client (§1.5). */
export const clientConfig = endpoint({
  name: "client/config",
  method: "POST",
  path: "client/config",
  body: SdkVersionBody,
  result: { schema: ClientConfigResponseSchema },
  retry: "generic",
});

/** `POST client/dynamic_config`: flags refreshed during a run; a 404 means defaults (§1.4). */
export const dynamicConfig = endpoint({
  name: "client/dynamic_config",
  method: "POST",
  path: "client/dynamic_config",
  body: SdkVersionBody,
  result: { schema: DynamicConfigResponseSchema },
  retry: "generic",
  transportRetries: 0,
  timeoutMs: 10_000,
});

/** `POST auth/token`: exchanges the credential (in `X-API-Key`) for a JWT; the body is `{}` (§2.2.6). */
export const authToken = endpoint({
  name: "auth/token",
  method: "POST",
  path: "auth/token",
  body: v.looseObject({}),
  result: { schema: v.looseObject({ jwt: v.pipe(v.string(), v.minLength(1)) }) },
  retry: "transport",
});

/** `POST telemetry`: one batch; only exactly `{"status": "accepted"}` counts as delivered (§11). */
export const telemetry = endpoint({
  name: "telemetry",
  method: "POST",
  path: "telemetry",
  result: { schema: v.object({ status: v.literal("accepted") }) },
  retry: "transport",
  transportRetries: 0,
  timeoutMs: 5_000,
});

/**
 * `POST create_session`. The service refuses `sdk_version`s below its floor with a 400 (§G1).
 * Transport retries only: a second session would be a second session.
 */
export const createSession = endpoint({
  name: "create_session",
  method: "POST",
  path: "create_session",
  body: v.looseObject({
    tags: v.optional(v.array(v.string()), []),
    user_metadata: v.optional(v.nullable(UserMetadataSchema)),
    sdk_version: v.optional(v.string()),
    project_id: v.optional(v.nullable(v.string())),
    type: v.optional(v.literal("create_session"), "create_session"),
  }),
  result: { schema: CreateSessionResponseSchema },
  retry: "transport",
});

/** `POST session_heartbeat`, every 10 s; a missed one is not an error (§6.1). */
export const sessionHeartbeat = endpoint({
  name: "session_heartbeat",
  method: "POST",
  path: "session_heartbeat",
  body: v.looseObject({
    session_id: nonEmptyString,
    type: v.optional(v.literal("session_heartbeat"), "session_heartbeat"),
  }),
  result: { schema: IgnoredResponseSchema },
  retry: "transport",
  transportRetries: 0,
  timeoutMs: 10_000,
});

/** How a session ended (§S1). The first reason given wins. */
export const SESSION_FINISH_STATUSES = ["success", "errored", "interrupted"] as const;
export type SessionFinishStatus = (typeof SESSION_FINISH_STATUSES)[number];

/** `POST sessions/{session_id}/finish` (§S1): the session becomes terminal; the answer is ignored. */
export const finishSession = endpoint({
  name: "finish_session",
  method: "POST",
  path: "sessions/{session_id}/finish",
  body: v.looseObject({
    reason: v.looseObject({ type: v.picklist(SESSION_FINISH_STATUSES) }),
    detail: v.optional(v.nullable(v.string()), null),
  }),
  result: { schema: IgnoredResponseSchema },
  retry: "generic",
  since: "0.29.1",
});

/** `GET get_server_capabilities`: the base models on offer (§2.2.1, §R4). */
export const getServerCapabilities = endpoint({
  name: "get_server_capabilities",
  method: "GET",
  path: "get_server_capabilities",
  result: { schema: GetServerCapabilitiesResponseSchema },
  retry: "generic",
});

/** `GET healthz`. */
export const healthz = endpoint({
  name: "healthz",
  method: "GET",
  path: "healthz",
  result: { schema: v.looseObject({ status: v.string() }) },
  retry: "generic",
});
