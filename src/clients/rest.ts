/**
 * RestClient: training runs, checkpoints, sessions, samplers, audit log and billing usage
 * (PROTOCOL.md §2.7, FEATURES.md §1.4). Using it creates no session: the connection only performs
 * the client-config handshake. Every call goes through the generic retry loop (§5.2), as the
 * official client's do, and accepts `{ signal, timeout }`.
 *
 * `ServiceClient.createRestClient()` is synchronous (as in the official SDK), so this class is in
 * every app that uses `ServiceClient`; most of what it does is not. It is therefore thin: the
 * paged lists, which return a PagePromise and refuse bad options synchronously, are written here;
 * every other method returns a promise anyway and is implemented by `RestCalls` (./rest/calls.ts),
 * which loads with the client's first such call. Their names are listed once below (the compiler
 * checks the list against RestCalls) and installed on the prototype, and their types and docs come
 * from RestCalls, so no method is written twice.
 */

import { NotFoundError, ValidationError } from "../core/errors.js";
import { describeValue } from "../internal/describe.js";
import { nextOffsetByPageSize, nextOffsetFromCursor, PagePromise } from "../lib/pagination.js";
import { CALL_OPTION_SHAPE, optionShape } from "../lib/strict-options.js";
import { type Endpoint, parseWith, routeName } from "../wire/endpoints/define.js";
import type * as restEndpoints from "../wire/endpoints/rest.js";
import { SEARCH_LIMIT, SearchCheckpointsBodySchema, type SearchOwner } from "../wire/endpoints/search.js";
import type {
  AuditEventType,
  Checkpoint,
  CheckpointSearchCursor,
  CheckpointSearchResponse,
  CheckpointsListResponse,
  CheckpointType,
  ListSessionsResponse,
  TrainingRun,
  TrainingRunsResponse,
} from "../wire/rest-schemas.js";
import { type CallInput, call } from "./call.js";
import { type CallOptions, checkCall, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import { loadOnFirstUse } from "./load-on-first-use.js";
import type { RestCalls } from "./rest/calls.js";

/** `owned`: your own runs and sessions; `accessible`: also those shared with you. */
export type AccessScope = "owned" | "accessible";

export interface AccessScopeOptions extends CallOptions {
  /** Default `owned`. */
  accessScope?: AccessScope;
}

/**
 * Options of the paged list calls. `timeout` applies to each page request; `signal` to the whole
 * walk.
 */
export interface ListOptions extends CallOptions {
  /** Page size. */
  limit?: number;
  /** Where the (first) page starts. Default 0. */
  offset?: number;
}

export interface ListTrainingRunsOptions extends ListOptions {
  /** Default `owned`. */
  accessScope?: AccessScope;
  /** Only runs of this project. */
  projectId?: string;
}

export interface ListSessionsOptions extends ListOptions {
  /** Default `owned`. */
  accessScope?: AccessScope;
}

export interface ArchiveUrlOptions extends CallOptions {
  /** Wait between attempts while the server answers 503 (archive still being built). Default 30 000. */
  buildingRetryDelayMs?: number;
}

export interface ExportSessionTraceOptions extends CallOptions {
  /** Interval between status polls while the export runs. Default 5 000. */
  pollIntervalMs?: number;
}

export interface AuditLogOptions extends CallOptions {
  /** Which events: `all` (default), `checkpoints`, `projects`, `teams` or `organizations` (§R2). */
  eventType?: AuditEventType;
  /** The UTC day to list (a Date, or `YYYY-MM-DD`). Default: today, decided by the server. */
  day?: Date | string;
}

export interface BillingUsageOptions extends CallOptions {
  /** Start of the window: a whole UTC hour, as a Date or an RFC 3339 timestamp. */
  startingOn: Date | string;
  /** End of the window (exclusive): a whole UTC hour at most 14 days after `startingOn`. */
  endingBefore: Date | string;
}

export interface CheckpointStorageUsageOptions extends CallOptions {
  /** Only the checkpoints of this project. Default: every project. */
  projectId?: string;
}

/**
 * A checkpoint search (§W5, experimental since 0.39). Every filter given must hold. `timeout`
 * applies to each page request; `signal` to the whole walk.
 */
export interface SearchCheckpointsOptions extends CallOptions {
  /** Only checkpoints of these projects. Default (or null): every project you can list. */
  projectIds?: readonly string[] | null;
  /** Only checkpoints saved with all of these `user_metadata` pairs, values equal. */
  userMetadata?: Record<string, string>;
  /** Only this kind. Default (or null): any kind. */
  checkpointType?: CheckpointType | null;
  /** `me` (default): your own checkpoints; `any`: every checkpoint you may list. */
  owner?: SearchOwner;
  /** Only checkpoints of runs on these base models; `[]` matches none. Default (or null): any. */
  baseModels?: readonly string[] | null;
  /** Page size, 1–200. Default 100. */
  limit?: number;
  /** Start after this point: a page's `next_cursor`, as received. Default: the newest checkpoint. */
  cursor?: CheckpointSearchCursor | null;
}

export interface ExternalWeightsUploadOptions extends CallOptions {
  /** The project the new checkpoint goes to (default: the server's choice). */
  destinationProjectId?: string;
}

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const LIST_OPTIONS_SHAPE = optionShape<ListOptions>({
  ...CALL_OPTION_SHAPE,
  limit: "number",
  offset: "number",
});
const LIST_TRAINING_RUNS_OPTIONS_SHAPE = optionShape<ListTrainingRunsOptions>({
  ...LIST_OPTIONS_SHAPE,
  accessScope: "string",
  projectId: "string",
});
const LIST_SESSIONS_OPTIONS_SHAPE = optionShape<ListSessionsOptions>({
  ...LIST_OPTIONS_SHAPE,
  accessScope: "string",
});
// Its values are checked by the search body's declaration (searchBody), with the option names.
const SEARCH_CHECKPOINTS_OPTIONS_SHAPE = optionShape<SearchCheckpointsOptions>({
  ...CALL_OPTION_SHAPE,
  projectIds: "any",
  userMetadata: "any",
  checkpointType: "any",
  owner: "any",
  baseModels: "any",
  limit: "any",
  cursor: "any",
});

const loadCalls = /* @__PURE__ */ loadOnFirstUse("REST methods", () => import("./rest/calls.js"));

/**
 * The methods RestCalls implements, which RestClient installs: all of them, each named once (a name
 * missing here, or one RestCalls lacks, does not compile).
 */
const LAZY_METHODS = /* @__PURE__ */ Object.keys({
  getTrainingRun: 0,
  getTrainingRunByTinkerPath: 0,
  listCheckpoints: 0,
  getCheckpointArchiveUrl: 0,
  getCheckpointArchiveUrlFromTinkerPath: 0,
  deleteCheckpoint: 0,
  deleteCheckpointFromTinkerPath: 0,
  publishCheckpoint: 0,
  publishCheckpointFromTinkerPath: 0,
  unpublishCheckpoint: 0,
  unpublishCheckpointFromTinkerPath: 0,
  setCheckpointTtl: 0,
  setCheckpointTtlFromTinkerPath: 0,
  getExternalWeightsUrls: 0,
  externalWeightsUploadStart: 0,
  externalWeightsUploadFinish: 0,
  uploadExternalWeights: 0,
  getWeightsInfoByTinkerPath: 0,
  getSession: 0,
  assignSessionProject: 0,
  exportSessionTrace: 0,
  whoami: 0,
  getSampler: 0,
  getAuditLog: 0,
  getBillingUsage: 0,
  getCurrentCheckpointStorageUsage: 0,
} satisfies Record<keyof RestCalls, 0>) as (keyof RestCalls)[];

// The lazily implemented methods, as RestCalls declares them (signatures and docs); the class
// installs them on its prototype (its static block).
export interface RestClient extends Pick<RestCalls, keyof RestCalls> {}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface above.
export class RestClient {
  readonly #connection: Connection;
  #calls: RestCalls | undefined;

  /** @internal Use `ServiceClient.createRestClient`. */
  constructor(connection: Connection) {
    this.#connection = connection;
  }

  static {
    for (const name of LAZY_METHODS) {
      // A method definition, so that the function is named after the method in stack traces.
      const { [name]: method } = {
        async [name](this: RestClient, ...args: unknown[]): Promise<unknown> {
          const calls = await this.#restCalls();
          return (calls[name] as (...args: unknown[]) => Promise<unknown>).apply(calls, args);
        },
      };
      Object.defineProperty(RestClient.prototype, name, {
        value: method,
        writable: true,
        configurable: true,
      });
    }
  }

  /** This client's RestCalls, created with the first call that needs one. */
  async #restCalls(): Promise<RestCalls> {
    const { RestCalls } = await loadCalls();
    this.#calls ??= new RestCalls(this.#connection, this);
    return this.#calls;
  }

  /**
   * One page of a paged list. The REST declarations come with RestCalls' module, loaded with the
   * first page (its options were checked when the list was asked for).
   */
  async #page<Body, Result>(
    endpoint: (rest: typeof restEndpoints) => Endpoint<Body, Result>,
    input: CallInput<Body>,
    options: CallOptions,
  ): Promise<Result> {
    const { rest } = await loadCalls();
    return restCall(this.#connection, endpoint(rest), input, options);
  }

  // Paged lists: their checks throw at once, so they are written here.

  /**
   * Training runs, 20 per page by default: await it for one page (with its cursor), or iterate it
   * with `for await` for every run from `offset` on.
   */
  listTrainingRuns(options: ListTrainingRunsOptions = {}): PagePromise<TrainingRunsResponse, TrainingRun> {
    checkCall(this.#connection, "listTrainingRuns", options, LIST_TRAINING_RUNS_OPTIONS_SHAPE);
    const { limit, offset } = pageWindow(options, 20);
    const accessScope = scope(options);
    return new PagePromise(
      {
        fetchPage: (pageOffset) =>
          this.#page(
            (rest) => rest.listTrainingRuns,
            {
              query: { limit, offset: pageOffset, access_scope: accessScope, project_id: options.projectId },
            },
            options,
          ),
        items: (page) => page.training_runs,
        nextOffset: (page) => nextOffsetFromCursor(page.cursor, page.training_runs.length),
      },
      offset,
    );
  }

  /**
   * All your checkpoints across runs, newest first, 100 per page by default: await it for one page,
   * or iterate it with `for await` for every checkpoint from `offset` on.
   */
  listUserCheckpoints(options: ListOptions = {}): PagePromise<CheckpointsListResponse, Checkpoint> {
    checkCall(this.#connection, "listUserCheckpoints", options, LIST_OPTIONS_SHAPE);
    const { limit, offset } = pageWindow(options, 100);
    return new PagePromise(
      {
        fetchPage: (pageOffset) =>
          this.#page((rest) => rest.listUserCheckpoints, { query: { limit, offset: pageOffset } }, options),
        items: (page) => page.checkpoints,
        nextOffset: (page) => nextOffsetFromCursor(page.cursor, page.checkpoints.length),
      },
      offset,
    );
  }

  /**
   * Searches checkpoints by project, metadata, kind and base model (§W5; experimental upstream),
   * newest first: await it for one page (with its `next_cursor`), or iterate it with `for await`
   * for every match, each page requested after the previous one is consumed. Bad options are a
   * ValidationError at once, before anything is sent.
   */
  searchCheckpoints(
    options: SearchCheckpointsOptions = {},
  ): PagePromise<CheckpointSearchResponse, Checkpoint, CheckpointSearchCursor | null> {
    checkCall(this.#connection, "searchCheckpoints", options, SEARCH_CHECKPOINTS_OPTIONS_SHAPE);
    const body = searchBody(options);
    return new PagePromise(
      {
        fetchPage: (cursor) =>
          this.#page(
            (rest) => rest.searchCheckpoints,
            { body: { ...body, cursor: cursor ?? undefined } },
            options,
          ),
        items: (page) => page.checkpoints,
        // An empty page ends the walk whatever its cursor says, so a confused server cannot loop it.
        nextOffset: (page) => (page.checkpoints.length === 0 ? undefined : (page.next_cursor ?? undefined)),
      },
      options.cursor ?? null,
    );
  }

  /**
   * Ids of every session you created (not only active ones), 20 per page by default: await it for
   * one page, or iterate it with `for await` for every id from `offset` on. There is no cursor: a
   * page shorter than `limit` is the last.
   */
  listSessions(options: ListSessionsOptions = {}): PagePromise<ListSessionsResponse, string> {
    checkCall(this.#connection, "listSessions", options, LIST_SESSIONS_OPTIONS_SHAPE);
    const { limit, offset } = pageWindow(options, 20);
    const accessScope = scope(options);
    return new PagePromise(
      {
        fetchPage: (pageOffset) =>
          this.#page(
            (rest) => rest.listSessions,
            { query: { limit, offset: pageOffset, access_scope: accessScope } },
            options,
          ),
        items: (page) => page.sessions,
        nextOffset: (page, pageOffset) => nextOffsetByPageSize(pageOffset, page.sessions.length, limit),
      },
      offset,
    );
  }
}

/**
 * One declared REST call, after the start-up handshake; `timeout` bounds it, `signal` cancels it.
 * Shared by RestClient's paged lists and RestCalls.
 */
export async function restCall<Body, Result>(
  connection: Connection,
  e: Endpoint<Body, Result>,
  input: CallInput<Body>,
  options: CallOptions,
): Promise<Result> {
  const signal = withTimeout(options);
  await connection.clientConfig(signal);
  try {
    return await call(connection, e, { ...input, signal });
  } catch (error) {
    throw withRouteHint(error, e);
  }
}

/**
 * A 404 from a route newer than 0.25 may mean the server predates it: the same NotFoundError (status,
 * body, headers kept) with a message that says so, rather than a bare "Not Found".
 */
function withRouteHint(error: unknown, e: Endpoint): unknown {
  if (!(error instanceof NotFoundError) || e.since === undefined) return error;
  return new NotFoundError(
    `${error.message} (${routeName(e)} was added in tinker ${e.since}; this server may not offer it)`,
    {
      status: error.status,
      headers: error.headers,
      body: error.body,
      requestId: error.requestId,
      cause: error,
    },
  );
}

/** The `accessScope` option, checked (default `owned`). */
export function scope(options: { accessScope?: AccessScope }): AccessScope {
  const accessScope = options.accessScope ?? "owned";
  if (accessScope !== "owned" && accessScope !== "accessible") {
    throw new ValidationError([{ path: "accessScope", message: `must be "owned" or "accessible"` }]);
  }
  return accessScope;
}

function pageWindow(options: ListOptions, defaultLimit: number): { limit: number; offset: number } {
  const limit = options.limit ?? defaultLimit;
  const offset = options.offset ?? 0;
  const issues = [];
  if (!Number.isInteger(limit) || limit < 1) {
    issues.push({ path: "limit", message: `must be a positive integer, got ${describeValue(limit)}` });
  }
  if (!Number.isInteger(offset) || offset < 0) {
    issues.push({ path: "offset", message: `must be a non-negative integer, got ${describeValue(offset)}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { limit, offset };
}

/** Option names of the search request's wire fields, for error messages. */
const SEARCH_OPTION_NAMES: Record<string, string> = {
  project_ids: "projectIds",
  user_metadata: "userMetadata",
  checkpoint_type: "checkpointType",
  base_models: "baseModels",
};

/**
 * The search body without its cursor, checked now against its declaration (so bad options fail the
 * call itself, not its first await). Null filters are left out, as the protocol wants.
 */
function searchBody(options: SearchCheckpointsOptions): Record<string, unknown> {
  const limit = options.limit ?? SEARCH_LIMIT.default;
  if (!Number.isInteger(limit) || limit < SEARCH_LIMIT.min || limit > SEARCH_LIMIT.max) {
    throw new ValidationError([
      {
        path: "limit",
        message: `must be an integer from ${SEARCH_LIMIT.min} to ${SEARCH_LIMIT.max}, got ${describeValue(limit)}`,
      },
    ]);
  }
  const body = {
    project_ids: listOrOmitted(options.projectIds),
    user_metadata: options.userMetadata,
    checkpoint_type: options.checkpointType ?? undefined,
    owner: options.owner,
    base_models: listOrOmitted(options.baseModels),
    limit,
  };
  const parsed = parseWith(SearchCheckpointsBodySchema, body);
  if (!parsed.ok) {
    throw new ValidationError(
      parsed.issues.map(({ path, message }) => {
        const [head = "", ...tail] = path.split(".");
        return { path: [SEARCH_OPTION_NAMES[head] ?? head, ...tail].join("."), message };
      }),
    );
  }
  return body;
}

/** A list filter for the body: null left out, an array copied, anything else kept for the check. */
function listOrOmitted(value: readonly string[] | null | undefined): unknown {
  if (value == null) return undefined;
  return Array.isArray(value) ? [...value] : value;
}
