/** Start-up, sessions and capabilities (PROTOCOL.md §1.4, §2.2, §6.1, §G1, §S1). */
import { futures, session } from "../../wire/endpoints/index.js";
import type { LocalAuth } from "../auth.js";
import type { LocalBackend } from "../backend.js";
import { checkVersionFloor } from "../version-floor.js";
import { type Route, route } from "./router.js";

export interface SessionRouteOptions {
  /** Extra `client/config` fields (flags and limits); they override the advertised ones. */
  clientConfig?: Record<string, unknown>;
  /** Extra `client/dynamic_config` fields; they override the advertised ones. */
  dynamicConfig?: Record<string, unknown>;
  /** Refuse sessions below this sdk_version, as the service does (§G1). */
  minSdkVersion?: string;
}

export function sessionRoutes(backend: LocalBackend, auth: LocalAuth, options: SessionRouteOptions): Route[] {
  return [
    route(session.healthz, () => ({ status: "ok" })),
    route(session.authToken, ({ request }) => auth.issueToken(request)),
    route(session.clientConfig, () => ({
      pjwt_auth_enabled: auth.jwtEnabled,
      // The official client's Rust transport works too, but plain httpx avoids surprises.
      use_pyqwest_transport: false,
      proto_compress_fwdbwd: false,
      parallel_fwdbwd_chunks: true,
      // Implemented here, so advertised (§16.11): batched completions (§F1), clone join (§P3).
      sample_use_retrieve_futures: true,
      sample_join_sampling_session: true,
      ...options.clientConfig,
    })),
    route(session.dynamicConfig, () => ({
      refresh_interval_sec: 300,
      // Implemented here, so advertised (§16.11): sample cancellation (§F2).
      sample_cancel_enabled: true,
      sample_cancel_max_batch_size: futures.DEFAULT_SAMPLE_CANCEL_MAX_BATCH_SIZE,
      ...options.dynamicConfig,
    })),
    route(session.getServerCapabilities, () => backend.capabilities()),
    route(session.telemetry, () => ({ status: "accepted" })),
    route(session.createSession, ({ body }) => {
      checkVersionFloor(body.sdk_version, options.minSdkVersion);
      const sessionId = backend.createSession({
        projectId: body.project_id ?? undefined,
        userMetadata: body.user_metadata ?? undefined,
      });
      return { type: "create_session", session_id: sessionId };
    }),
    route(session.sessionHeartbeat, ({ body }) => {
      backend.heartbeat(body.session_id);
      return { type: "session_heartbeat" };
    }),
    route(session.finishSession, ({ params, body }) => {
      backend.finishSession(params.session_id!, body.reason.type, body.detail ?? null);
      return {};
    }),
  ];
}
