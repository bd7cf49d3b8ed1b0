/** REST views: runs, checkpoints, sessions, audit log, billing (PROTOCOL.md §2.7, §R1–§R4). */

import { rest } from "../../wire/endpoints/index.js";
import { BILLING_WINDOW } from "../../wire/endpoints/rest.js";
import type { LocalBackend } from "../backend.js";
import { HttpError, jsonResponse } from "../responses.js";
import type { AuditEventType } from "../rest-views.js";
import { baseUrlOf, type Route, route } from "./router.js";

const HOUR_MS = BILLING_WINDOW.unitMs;
const MAX_BILLING_WINDOW_MS = BILLING_WINDOW.maxMs;

type Page = { limit: number; offset: number };

export function restRoutes(backend: LocalBackend): Route[] {
  const checkpoint = (params: Record<string, string>) => [params.run_id!, params.checkpoint_id!] as const;
  return [
    route(rest.listTrainingRuns, ({ query }) =>
      backend.listTrainingRuns(
        query as Page,
        query.access_scope as "owned" | "accessible",
        query.project_id as string | undefined,
      ),
    ),
    route(rest.getTrainingRun, ({ params, query }) =>
      backend.getTrainingRun(params.run_id!, query.access_scope as "owned" | "accessible"),
    ),
    route(rest.listRunCheckpoints, ({ params }) => backend.listRunCheckpoints(params.run_id!)),
    route(rest.deleteCheckpoint, ({ params }) => {
      backend.deleteCheckpoint(...checkpoint(params));
      return {};
    }),
    route(rest.publishCheckpoint, ({ params }) => {
      backend.setCheckpointPublic(...checkpoint(params), true);
      return {};
    }),
    route(rest.unpublishCheckpoint, ({ params }) => {
      backend.setCheckpointPublic(...checkpoint(params), false);
      return {};
    }),
    route(rest.setCheckpointTtl, ({ params, body }) => {
      backend.setCheckpointTtl(...checkpoint(params), body.ttl_seconds);
      return {};
    }),
    route(rest.checkpointArchive, async ({ params, request }) => {
      const archive = await backend.checkpointArchive(...checkpoint(params), baseUrlOf(request));
      // Clients before 0.22.2 ask `accept: application/gzip` and take only a 302 (Location, and
      // Expires as an HTTP-date); a 200 makes them fail (PROTOCOL.md §2.7.5, §12.2).
      if ((request.headers.get("accept") ?? "").includes("application/gzip")) {
        const { url, expires } = archive as { url: string; expires: string };
        return jsonResponse(archive, 302, { location: url, expires: new Date(expires).toUTCString() });
      }
      return archive;
    }),
    route(rest.listUserCheckpoints, ({ query }) => backend.listUserCheckpoints(query as Page)),
    route(rest.listSessions, ({ query }) =>
      backend.listSessions(query as Page, query.access_scope as "owned" | "accessible"),
    ),
    route(rest.getSession, ({ params, query }) =>
      backend.getSessionInfo(params.session_id!, query.access_scope as "owned" | "accessible"),
    ),
    route(rest.assignSessionProject, ({ params, body }) => {
      backend.assignSessionProject(params.session_id!, body.project_id);
      return {};
    }),
    route(rest.exportSessionTrace, ({ params, request }) =>
      backend.traceExport(params.session_id!, baseUrlOf(request)),
    ),
    route(rest.sessionTrace, ({ params }) => backend.sessionTrace(params.session_id!)),
    route(rest.auditLog, ({ query }) => {
      const day = (query.day as string | undefined) ?? new Date().toISOString().slice(0, 10);
      if (Number.isNaN(Date.parse(day))) throw new HttpError(400, `day must be YYYY-MM-DD, got "${day}"`);
      return backend.auditLog(query.event_type as AuditEventType, day);
    }),
    route(rest.billingUsage, ({ query }) => {
      const [start, end] = billingWindow(query.starting_on as string, query.ending_before as string);
      return backend.billingUsage(start, end);
    }),
    route(rest.checkpointStorageUsage, ({ query }) =>
      backend.rest.checkpointStorageUsage(query.project_id as string | undefined),
    ),
    route(rest.searchCheckpoints, ({ body }) =>
      backend.rest.searchCheckpoints({
        projectIds: body.project_ids ?? null,
        userMetadata: body.user_metadata,
        checkpointType: body.checkpoint_type ?? null,
        baseModels: body.base_models ?? null,
        limit: body.limit,
        after: body.cursor ? searchCursor(body.cursor) : null,
      }),
    ),
  ];
}

/** Where a search continues (§W5): the cursor's time must be a datetime, its id any string. */
function searchCursor(cursor: { last_created_at: string; last_checkpoint_uuid: string }) {
  const time = new Date(cursor.last_created_at);
  if (Number.isNaN(time.getTime())) {
    throw new HttpError(400, `cursor.last_created_at must be a datetime, got "${cursor.last_created_at}"`);
  }
  return { time, id: cursor.last_checkpoint_uuid };
}

/** `starting_on` and `ending_before`: whole UTC hours, in order, at most 14 days apart. */
function billingWindow(startText: string, endText: string): [Date, Date] {
  const instant = (name: string, text: string): Date => {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) throw new HttpError(400, `${name} must be an RFC 3339 timestamp`);
    if (date.getTime() % HOUR_MS !== 0) throw new HttpError(400, `${name} must be a whole UTC hour`);
    return date;
  };
  const start = instant("starting_on", startText);
  const end = instant("ending_before", endText);
  if (end.getTime() <= start.getTime()) throw new HttpError(400, "ending_before must be after starting_on");
  if (end.getTime() - start.getTime() > MAX_BILLING_WINDOW_MS) {
    throw new HttpError(400, "the window must not exceed 14 days");
  }
  return [start, end];
}
