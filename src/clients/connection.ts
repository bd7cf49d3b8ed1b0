/**
 * The shared state behind a ServiceClient and every client it creates: the HTTP client, the server's
 * client config (fetched once, PROTOCOL.md §1.4), and the session with its heartbeat (§6.1) and
 * per-session counters (§6.3).
 *
 * Unlike the official client, which builds two "holders" (a session-less one for REST and one with a
 * session), one connection does the config handshake once and creates the session lazily on the
 * first training or sampling use. The wire effect is the same: REST-only use creates no session.
 */

import type * as v from "valibot";
import type { ResolvedConfig } from "../core/config.js";
import { APIStatusError } from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import { platformHeaders } from "../core/headers.js";
import { HttpClient, type HttpRequest } from "../core/http.js";
import { unrefTimer } from "../internal/timers.js";
import { PROTOCOL_SDK_VERSION } from "../version.js";
import {
  type ClientConfigResponse,
  ClientConfigResponseSchema,
  CreateSessionResponseSchema,
  DynamicConfigResponseSchema,
  parseResponse,
} from "../wire/schemas.js";
import { SampleDispatcher } from "./sample-dispatch.js";

/** Official default of `sample_dispatch_bytes_semaphore_size`: 10 MiB. */
const DEFAULT_SAMPLE_DISPATCH_BYTES = 10 * 1024 * 1024;

export class Connection {
  readonly http: HttpClient;
  readonly config: ResolvedConfig;
  #clientConfig: Promise<ClientConfigResponse> | undefined;
  /** The last client config received, for decisions that must be made synchronously. */
  #clientConfigValue: ClientConfigResponse = {};
  #session: Promise<string> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #modelSeqId = 0;
  #sampleDispatcher: SampleDispatcher | undefined;
  #samplingSessionSeqId = 0;
  #closed = false;
  /** Time of the last successful heartbeat (ms since epoch), for diagnostics. */
  lastHeartbeatAt: number | undefined;

  constructor(config: ResolvedConfig) {
    this.config = config;
    this.http = new HttpClient({
      baseURL: config.baseURL,
      fetch: config.fetch,
      defaultHeaders: { ...platformHeaders(), ...config.defaultHeaders },
      credential: () => config.apiKey,
      maxRetries: config.maxRetries,
      timeoutMs: config.timeoutMs,
    });
  }

  /** The server's client config; the first call performs the start-up handshake. */
  clientConfig(): Promise<ClientConfigResponse> {
    this.#clientConfig ??= this.#handshake();
    // A failed handshake may be retried by the next call.
    this.#clientConfig.catch(() => {
      this.#clientConfig = undefined;
    });
    return this.#clientConfig;
  }

  async #handshake(): Promise<ClientConfigResponse> {
    const body = { sdk_version: PROTOCOL_SDK_VERSION };
    const config = await withGenericRetries(() =>
      this.requestJson(
        { method: "POST", path: "api/v1/client/config", json: body },
        ClientConfigResponseSchema,
        "client config",
      ),
    );
    try {
      await withGenericRetries(() =>
        this.requestJson(
          {
            method: "POST",
            path: "api/v1/client/dynamic_config",
            json: body,
            timeoutMs: 10_000,
            maxRetries: 0,
          },
          DynamicConfigResponseSchema,
          "dynamic config",
        ),
      );
    } catch (error) {
      // A 404 means an older server without dynamic config: defaults apply.
      if (!(error instanceof APIStatusError && error.status === 404)) throw error;
    }
    this.#clientConfigValue = config;
    return config;
  }

  /**
   * The server's flags and limits as last received (empty, i.e. the official defaults, before the
   * handshake). Training clients exist only after it, so they always see the real values.
   */
  get serverFlags(): ClientConfigResponse {
    return this.#clientConfigValue;
  }

  /** The session id; the first call creates the session and starts the heartbeat. */
  session(): Promise<string> {
    this.#session ??= this.#createSession();
    this.#session.catch(() => {
      this.#session = undefined;
    });
    return this.#session;
  }

  async #createSession(): Promise<string> {
    await this.clientConfig();
    const { config } = this;
    const body: Record<string, unknown> = {
      tags: config.tags,
      user_metadata: config.userMetadata,
      sdk_version: PROTOCOL_SDK_VERSION,
    };
    if (config.projectId !== undefined) body.project_id = config.projectId;
    body.type = "create_session";
    // Only transport retries here, as in the official client.
    const response = await this.requestJson(
      { method: "POST", path: "api/v1/create_session", json: body },
      CreateSessionResponseSchema,
      "create_session",
    );
    if (!this.#closed) this.#startHeartbeat(response.session_id);
    return response.session_id;
  }

  #startHeartbeat(sessionId: string): void {
    this.#heartbeat = setInterval(() => {
      this.http
        .request({
          method: "POST",
          path: "api/v1/session_heartbeat",
          json: { session_id: sessionId, type: "session_heartbeat" },
          timeoutMs: 10_000,
          maxRetries: 0,
        })
        .then(
          () => {
            this.lastHeartbeatAt = Date.now();
          },
          // Heartbeats are fire-and-forget; a missed one is not an error for the caller.
          () => {},
        );
    }, this.config.heartbeatIntervalMs);
    // The heartbeat alone must not keep a script running; close() clears it.
    unrefTimer(this.#heartbeat);
  }

  /** Client-wide throttling of sample submissions, sized by the server's byte budget. */
  sampleDispatcher(): SampleDispatcher {
    this.#sampleDispatcher ??= new SampleDispatcher(
      this.serverFlags.sample_dispatch_bytes_semaphore_size ?? DEFAULT_SAMPLE_DISPATCH_BYTES,
    );
    return this.#sampleDispatcher;
  }

  /** How long HTTP 402 ("billing") pauses a call before it becomes an error. */
  get billingPauseMs(): number {
    return (this.serverFlags.billing_exception_max_pause_duration_sec ?? 3600) * 1000;
  }

  nextModelSeqId(): number {
    return this.#modelSeqId++;
  }

  nextSamplingSessionSeqId(): number {
    return this.#samplingSessionSeqId++;
  }

  /** One JSON call, parsed with `schema`. */
  async requestJson<S extends v.GenericSchema>(
    request: HttpRequest,
    schema: S,
    what: string,
  ): Promise<v.InferOutput<S>> {
    const response = await this.http.request(request);
    return parseResponse(schema, response.json(), what);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops the heartbeat. No timer of this client survives it. */
  close(): void {
    this.#closed = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}
