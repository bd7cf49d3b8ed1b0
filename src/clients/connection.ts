/**
 * The shared state behind a ServiceClient and every client it creates: the HTTP client, the server's
 * client config (fetched once, PROTOCOL.md §1.4), and the session with its heartbeat (§6.1) and
 * per-session counters (§6.3).
 *
 * Unlike the official client, which builds two "holders" (a session-less one for REST and one with a
 * session), one connection does the config handshake once and creates the session lazily on the
 * first training or sampling use. The wire effect is the same: REST-only use creates no session.
 */

import { JwtCredentials } from "../core/auth/jwt-credentials.js";
import { type CredentialProvider, credentialFrom } from "../core/auth/provider.js";
import {
  type CredentialSources,
  configCredential,
  exchangeCredential,
  plainApiKey,
  withStoredKey,
} from "../core/auth/sources.js";
import type { ResolvedConfig } from "../core/config.js";
import {
  APIConnectionError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  ValidationError,
} from "../core/errors.js";
import { withGenericRetries } from "../core/generic-retry.js";
import { platformHeaders } from "../core/headers.js";
import { type AttemptInfo, HttpClient, type RetryInfo } from "../core/http.js";
import { decodeJwtClaims, type JwtClaims } from "../core/jwt.js";
import { displayUrl, logServerMessages, maskCredential } from "../core/logger.js";
import { isRetryableStatus } from "../core/retry-policy.js";
import { type TelemetryBatch, TelemetryQueue } from "../core/telemetry.js";
import { asVersionRefusal } from "../core/version-gate.js";
import type { FutureEvent } from "../futures/poller.js";
import { sleep } from "../internal/sleep.js";
import { unrefTimer } from "../internal/timers.js";
import { PROTOCOL_SDK_VERSION } from "../version.js";
import { endpoint } from "../wire/endpoints/define.js";
import * as session from "../wire/endpoints/session.js";
import type {
  ClientConfigResponse,
  DynamicConfigResponse,
  GetServerCapabilitiesResponse,
} from "../wire/schemas.js";
import { type CallContext, call } from "./call.js";
import { SampleDispatcher } from "./sample-dispatch.js";

/** Official default of `sample_dispatch_bytes_semaphore_size`: 10 MiB. */
const DEFAULT_SAMPLE_DISPATCH_BYTES = 10 * 1024 * 1024;
/** The dynamic config refresh interval when the server gives none (PROTOCOL.md §1.5). */
const DEFAULT_DYNAMIC_REFRESH_SEC = 300;

/**
 * `client/config` as one plain HTTP request, for the tries before the server was ever reached: the
 * protocol's retry layers (minutes, for a server that went away mid-run) would make a wrong URL or
 * a stopped server look like a hang. The retrying is `#firstContact`'s, short and logged.
 */
const clientConfigOnce = endpoint({ ...session.clientConfig, retry: "transport", transportRetries: 0 });

/** Wait before first-contact try k + 1: 0.5, 1, 2, 4 s… (tries at 0, 0.5, 1.5, 3.5, 7.5 s in 10 s). */
function firstContactDelayMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 5_000);
}

/**
 * Why a request got no answer, in the runtime's words: the innermost cause of the error (fetch's
 * TypeError wraps the socket's error in Node, Deno and Bun), with its code: `connect ECONNREFUSED
 * 127.0.0.1:8000`, `getaddrinfo ENOTFOUND host`, `CERT_HAS_EXPIRED: certificate has expired`.
 */
export function failureReason(error: unknown): string {
  let reason = error instanceof Error ? "" : String(error);
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const hasCode = typeof code === "string" && !e.message.includes(code);
    const text = hasCode ? (e.message ? `${code}: ${e.message}` : code) : e.message;
    if (text) reason = text;
  }
  return reason || "no response";
}

export class Connection {
  readonly http: HttpClient;
  readonly config: ResolvedConfig;
  #clientConfig: Promise<ClientConfigResponse> | undefined;
  /** The last client config received, for decisions that must be made synchronously. */
  #clientConfigValue: ClientConfigResponse = {};
  /** The last dynamic config received (§F2 flags); empty until the handshake or on older servers. */
  #dynamicConfig: DynamicConfigResponse = {};
  #dynamicRefresh: ReturnType<typeof setTimeout> | undefined;
  #session: Promise<string> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #modelSeqId = 0;
  #sampleDispatcher: SampleDispatcher | undefined;
  #capabilities: GetServerCapabilitiesResponse | undefined;
  #capabilitiesPrefetch: Promise<void> | undefined;
  #samplingSessionSeqId = 0;
  #closed = false;
  /** The session id once created (undefined before, or while it is being created). */
  #sessionId: string | undefined;
  /** The last call's failure, cleared by a later success (for `await using`'s finish status). */
  lastFailure: Error | undefined;
  /** Time of the last successful heartbeat (ms since epoch), for diagnostics. */
  lastHeartbeatAt: number | undefined;
  /**
   * The `X-API-Key` of every request: the raw credential until the handshake has decided (§1.4),
   * then the API key or a refreshing JWT.
   */
  #credentials: CredentialProvider;
  /** The configured credential sources, with the stored key read in at first need. */
  #sources: Promise<CredentialSources> | undefined;
  /** Set in JWT mode: the token whose claims `identity()` reads. */
  #jwt: JwtCredentials | undefined;
  /**
   * Aborted by close(): ends start-up retry waits. Made at first need: workerd refuses to start a
   * Worker whose global scope creates one, and Workers build their clients there.
   */
  #stopController: AbortController | undefined;
  /** Set once any request got an HTTP answer: from then on connection errors get the long budget. */
  #reached = false;
  /** Why the last request got no answer, for messages about a start-up that is still trying. */
  #lastFailure: string | undefined;
  /** Set when `create_session` is sent: from then on close() waits for the session to finish it. */
  #sessionSent = false;
  /** Set by `ServiceClient.close()` at once, before the session is finished: no new calls. */
  #closing = false;
  /** Telemetry of this client (§11); a no-op when disabled. */
  readonly telemetry: TelemetryQueue;

  get #stop(): AbortController {
    this.#stopController ??= new AbortController();
    return this.#stopController;
  }

  constructor(config: ResolvedConfig) {
    this.config = config;
    this.#credentials = credentialFrom(async () => configCredential(await this.#credentialSources())());
    this.http = new HttpClient({
      baseURL: config.baseURL,
      fetch: config.fetch,
      defaultHeaders: { ...platformHeaders(), ...config.defaultHeaders },
      credential: () => this.#credentials.credential(),
      maxRetries: config.maxRetries,
      timeoutMs: config.timeoutMs,
      onResponse: config.onResponse,
      onAttempt: (info) => this.#noteAttempt(info),
      onRetry: (info) => this.#noteRetry(info),
      maxResponseBytes: config.maxResponseBytes,
    });
    this.telemetry = new TelemetryQueue({
      enabled: config.telemetry,
      sdkVersion: config.sdkVersion,
      send: (batch, lastAttempt) => this.#sendTelemetry(batch, lastAttempt),
    });
  }

  /**
   * The server's client config; the first call performs the start-up handshake. `signal` ends this
   * caller's wait (the handshake itself is shared and ends with its own bounds, or with close()).
   */
  clientConfig(signal?: AbortSignal): Promise<ClientConfigResponse> {
    this.#clientConfig ??= this.#handshake();
    // A failed handshake may be retried by the next call.
    this.#clientConfig.catch(() => {
      this.#clientConfig = undefined;
    });
    return this.#waitFor(this.#clientConfig, signal);
  }

  /**
   * `work`, or, as soon as `signal` fires, the SDK's timeout or abort error naming the server and
   * why it has not answered yet, so a deadline on a call whose start-up still waits says so.
   */
  #waitFor<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (!signal) return work;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const url = displayUrl(this.http.baseURL);
        const why = this.#reached ? "" : this.#lastFailure ? ` (not reached yet: ${this.#lastFailure})` : "";
        const reason = signal.reason;
        reject(
          reason instanceof Error && reason.name === "TimeoutError"
            ? new APITimeoutError(`Request timed out waiting for ${url}${why}.`)
            : new APIUserAbortError(`Request was aborted waiting for ${url}${why}.`, { cause: reason }),
        );
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  async #handshake(): Promise<ClientConfigResponse> {
    const body = { sdk_version: this.config.sdkVersion };
    // close() ends the retry waits, so a client closed during start-up keeps no timer.
    const signal = this.#stop.signal;
    this.config.logger.debug(
      `connecting to ${displayUrl(this.http.baseURL)} (credential ${maskCredential(this.config.apiKey)}, sdk_version ${this.config.sdkVersion})`,
    );
    const config = await this.#firstContact(body, signal).catch(this.#versionRefusal);
    await this.#authenticate(config);
    try {
      this.#dynamicConfig = await call(this, session.dynamicConfig, { body, signal });
      this.#scheduleDynamicRefresh();
    } catch (error) {
      // A 404 means an older server without dynamic config: defaults apply.
      if (!(error instanceof APIStatusError && error.status === 404)) throw error;
    }
    this.#clientConfigValue = config;
    return config;
  }

  /**
   * `client/config`. Until the server has answered once, a refused connection, a DNS or TLS failure
   * is retried for `firstConnectRetryMs` only (a few tries, each logged), then fails with the URL and
   * the cause: a wrong URL or a stopped server shows in seconds. A server that answers (a 503 while
   * it starts, say) has been reached: the protocol's retry layers take over.
   */
  async #firstContact(body: Record<string, unknown>, signal: AbortSignal): Promise<ClientConfigResponse> {
    if (this.#reached) return call(this, session.clientConfig, { body, signal });
    const startedAt = Date.now();
    const windowMs = this.config.firstConnectRetryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call(this, clientConfigOnce, { body, signal });
      } catch (error) {
        if (error instanceof APIStatusError && isRetryableStatus(error.status)) {
          return call(this, session.clientConfig, { body, signal });
        }
        if (!(error instanceof APIConnectionError) || signal.aborted) throw error;
        const elapsed = Date.now() - startedAt;
        const delayMs = firstContactDelayMs(attempt);
        const url = displayUrl(this.http.baseURL);
        const reason = failureReason(error.cause ?? error);
        if (elapsed + delayMs > windowMs) {
          throw new APIConnectionError(
            `Could not connect to ${url}: ${reason} (${attempt + 1} ${attempt === 0 ? "try" : "tries"} in ${(elapsed / 1000).toFixed(1)} s). ` +
              "Is the server running and the base URL right? (firstConnectRetryMs sets how long to keep trying.)",
            { cause: error.cause ?? error },
          );
        }
        this.config.logger.debug(`cannot reach ${url} yet (${reason}); try ${attempt + 2} in ${delayMs} ms`);
        await sleep(delayMs, signal);
      }
    }
  }

  /** The debug log's request line, and what later messages need to know about reachability. */
  #noteAttempt(info: AttemptInfo): void {
    if (info.status !== undefined) {
      this.#reached = true;
      this.#lastFailure = undefined;
    } else {
      this.#lastFailure = failureReason(info.error);
    }
    const logger = this.config.logger;
    if (logger.level !== "debug") return;
    const path = displayUrl(info.url).replace(displayUrl(this.http.baseURL).replace(/\/$/, ""), "");
    const outcome = info.status !== undefined ? String(info.status) : `failed (${this.#lastFailure})`;
    const retry = info.retryCount > 0 ? ` [retry ${info.retryCount}]` : "";
    logger.debug(`${info.method} ${path} → ${outcome} in ${info.ms} ms${retry}`);
  }

  /** At debug level, a line per poll event: what a future waits for, and why a poll is repeated. */
  notePollEvent(requestId: string, requestType: string, event: FutureEvent): void {
    const logger = this.config.logger;
    if (logger.level !== "debug") return;
    const what = `${requestType} ${requestId}`;
    if (event.type === "queue_state") {
      logger.debug(`poll ${what}: ${event.queueState}${event.reason ? ` (${event.reason})` : ""}`);
    } else if (event.type === "retry") {
      const status = event.status === undefined ? "" : ` ${event.status}`;
      logger.debug(`poll ${what}: again in ${Math.round(event.delayMs)} ms: ${event.reason}${status}`);
    }
  }

  /**
   * Every retry is told to the user's `onRetry` and logged: at debug level always, and at info
   * level when the server cannot be reached, so that "retrying against nothing" never looks like
   * "slow".
   */
  #noteRetry(info: RetryInfo): void {
    try {
      this.config.onRetry?.(info);
    } catch {
      // An observer's bug must not break the call it observes.
    }
    const logger = this.config.logger;
    const unreachable = info.reason === "connection" || info.reason === "timeout";
    if (logger.level !== "debug" && !(unreachable && logger.level === "info")) return;
    const line = `retry ${info.attempt} of ${info.method} ${displayUrl(info.url)} in ${Math.round(info.delayMs)} ms: ${info.reason} (${info.detail})`;
    if (unreachable) logger.info(line);
    else logger.debug(line);
  }

  /**
   * Re-reads the dynamic config in the background every `max(refresh_interval_sec, 10)` s (§1.4
   * step 4), so flags such as `sample_cancel_enabled` (§F2) follow the server. One attempt each; a
   * failed refresh keeps the last flags. The timer does not keep a script alive; close() clears it.
   */
  #scheduleDynamicRefresh(): void {
    if (this.#closed) return;
    const seconds = Math.max(this.#dynamicConfig.refresh_interval_sec ?? DEFAULT_DYNAMIC_REFRESH_SEC, 10);
    this.#dynamicRefresh = setTimeout(() => {
      const body = { sdk_version: this.config.sdkVersion };
      call(this.#background, session.dynamicConfig, { body, signal: this.#stop.signal })
        .then((flags) => {
          this.#dynamicConfig = flags;
        })
        .catch(() => {})
        .finally(() => this.#scheduleDynamicRefresh());
    }, seconds * 1000);
    unrefTimer(this.#dynamicRefresh);
  }

  /**
   * §1.4 steps 2–3, between client/config and dynamic_config: decide what every later request sends
   * as `X-API-Key`. In JWT mode the first token is fetched here, through the generic retry loop.
   */
  async #authenticate(flags: ClientConfigResponse): Promise<void> {
    const sources = await this.#credentialSources();
    if (!flags.pjwt_auth_enabled) {
      const apiKey = plainApiKey(sources);
      const sendApiKey = () => Promise.resolve(apiKey);
      this.#useCredentials(credentialFrom(sendApiKey), undefined);
      return;
    }
    const credential = exchangeCredential(sources, flags);
    const jwt = new JwtCredentials(async () => this.#exchangeForJwt(await credential()));
    await withGenericRetries(() => jwt.refresh(), { signal: this.#stop.signal });
    this.#useCredentials(jwt, jwt);
  }

  /** The stored-credentials file is read once, when the first request needs a credential. */
  #credentialSources(): Promise<CredentialSources> {
    this.#sources ??= withStoredKey(this.config.credentials);
    // A missing or broken file may be fixed before the next call.
    this.#sources.catch(() => {
      this.#sources = undefined;
    });
    return this.#sources;
  }

  #useCredentials(credentials: CredentialProvider, jwt: JwtCredentials | undefined): void {
    this.#credentials.close();
    this.#credentials = credentials;
    this.#jwt = jwt;
    // Closed while the token was being fetched: its refresh timer must not outlive the client.
    if (this.#closed) credentials.close();
  }

  /** `POST /api/v1/auth/token` (one attempt): the body is `{}`, the credential goes in `X-API-Key`. */
  async #exchangeForJwt(credential: string): Promise<string> {
    const answer = await call(this, session.authToken, { body: {}, credential, signal: this.#stop.signal });
    return answer.jwt;
  }

  /**
   * The JWT that carries the caller's identity (the official `get_identity_jwt`): the exchanged
   * token in JWT mode, refreshed first when close to expiry; else an identity token given as the API
   * key (`iss` starting with `passport-`); else undefined. Performs the handshake if needed.
   */
  async identityJwt(): Promise<string | undefined> {
    await this.clientConfig();
    if (this.#jwt) return this.#jwt.credential();
    const { apiKey } = await this.#credentialSources();
    const issuer = apiKey?.startsWith("eyJ") ? decodeJwtClaims(apiKey)?.iss : undefined;
    return typeof issuer === "string" && issuer.startsWith("passport-") ? apiKey : undefined;
  }

  /** The claims (`sub`, `email`, `iss`, `exp`, …) of `identityJwt()`, for whoami (§2.7.10). */
  async identity(): Promise<JwtClaims | undefined> {
    const token = await this.identityJwt();
    return token === undefined ? undefined : decodeJwtClaims(token);
  }

  /** One telemetry batch; only exactly `{"status": "accepted"}` counts as delivered (§11). */
  async #sendTelemetry(batch: TelemetryBatch, lastAttempt: boolean): Promise<void> {
    // A client that never reached the server does not start its handshake at close for telemetry.
    if (lastAttempt && this.#clientConfig === undefined) return;
    await this.clientConfig();
    await call(this.#background, session.telemetry, { body: batch as unknown as Record<string, unknown> });
  }

  /**
   * The server's flags and limits as last received (empty, i.e. the official defaults, before the
   * handshake). Training clients exist only after it, so they always see the real values.
   */
  get serverFlags(): ClientConfigResponse {
    return this.#clientConfigValue;
  }

  /**
   * The session id; the first call creates the session and starts the heartbeat. `signal` ends
   * this caller's wait, not the shared creation.
   */
  session(signal?: AbortSignal): Promise<string> {
    this.#session ??= this.#createSession();
    this.#session.catch(() => {
      this.#session = undefined;
      this.#sessionSent = false;
    });
    return this.#waitFor(this.#session, signal);
  }

  async #createSession(): Promise<string> {
    await this.clientConfig();
    // Closed while the handshake ran: no session is opened only to be finished.
    this.checkOpen("session");
    this.#sessionSent = true;
    const { config } = this;
    const body = {
      tags: config.tags,
      user_metadata: config.userMetadata,
      sdk_version: config.sdkVersion,
      project_id: config.projectId,
    };
    // Transport retries only, as declared; a version refusal is final.
    const response = await call(this, session.createSession, { body, signal: this.#stop.signal }).catch(
      this.#versionRefusal,
    );
    this.config.logger.debug(`session ${response.session_id} created`);
    logServerMessages(response, config.logger);
    this.#sessionId = response.session_id;
    if (!this.#closed) {
      this.#startHeartbeat(response.session_id);
      this.telemetry.startSession(response.session_id);
    }
    return response.session_id;
  }

  /** Rethrows a version-gate refusal (PROTOCOL.md §G1) as SdkVersionUnsupportedError. */
  readonly #versionRefusal = (error: unknown): never => {
    throw asVersionRefusal(error, this.config.sdkVersion, PROTOCOL_SDK_VERSION);
  };

  /** The session id, if a session exists. */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** The session id once any creation under way has settled; undefined if there is none. */
  async existingSession(): Promise<string | undefined> {
    // Still in the handshake: nothing to finish, and close() stops the handshake.
    if (this.#session === undefined || !this.#sessionSent) return undefined;
    return this.#session.catch(() => undefined);
  }

  noteOutcome(failure: Error | undefined): void {
    this.lastFailure = failure;
  }

  /**
   * The call context of the client's own background traffic (heartbeats, telemetry, config refresh): their
   * outcomes are not the caller's, so they must not clear or set `lastFailure`.
   */
  get #background(): CallContext {
    return { http: this.http, billingPauseMs: this.billingPauseMs };
  }

  #startHeartbeat(sessionId: string): void {
    this.#heartbeat = setInterval(() => {
      call(this.#background, session.sessionHeartbeat, { body: { session_id: sessionId } }).then(
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

  /** `GET get_server_capabilities`, through the generic retry loop; the answer is remembered. */
  async fetchCapabilities(signal?: AbortSignal): Promise<GetServerCapabilitiesResponse> {
    await this.clientConfig(signal);
    const capabilities = await call(this, session.getServerCapabilities, { signal });
    this.#capabilities = capabilities;
    return capabilities;
  }

  /**
   * Reads the capabilities once, in the background, so that inputs can be checked against the
   * model's context length. Failure is fine: servers without the endpoint simply skip that check.
   */
  prefetchCapabilities(): Promise<void> {
    this.#capabilitiesPrefetch ??= this.fetchCapabilities().then(
      () => {},
      () => {},
    );
    return this.#capabilitiesPrefetch;
  }

  /** The context length of `baseModel`, if the capabilities are known and list it. */
  contextLength(baseModel: string | undefined): number | undefined {
    if (baseModel === undefined) return undefined;
    const model = this.#capabilities?.supported_models.find((m) => m.model_name === baseModel);
    return model?.max_context_length ?? undefined;
  }

  nextModelSeqId(): number {
    return this.#modelSeqId++;
  }

  nextSamplingSessionSeqId(): number {
    return this.#samplingSessionSeqId++;
  }

  /** The server's dynamic flags as last received (§1.4, §F2). */
  get dynamicFlags(): DynamicConfigResponse {
    return this.#dynamicConfig;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Called by `ServiceClient.close()` first: from now on every client of it refuses new calls. */
  beginClose(): void {
    this.#closing = true;
  }

  /**
   * Throws at once when the client was closed: a call made after `close()` would otherwise be sent
   * and fail later, on a finished session, with a message that does not say why.
   */
  checkOpen(where: string): void {
    if (this.#closing || this.#closed) {
      throw new ValidationError([
        {
          path: where,
          message:
            "ServiceClient is closed (close() was called, or its `await using` scope ended); nothing was sent. Create a new ServiceClient to continue",
        },
      ]);
    }
  }

  /**
   * Stops the heartbeat, the token refresh and telemetry: no timer of this client survives it. Queued
   * telemetry gets one last, bounded attempt; the promise settles after it and never rejects.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    if (this.#dynamicRefresh !== undefined) clearTimeout(this.#dynamicRefresh);
    this.#heartbeat = undefined;
    this.#credentials.close();
    return this.telemetry.close();
  }
}
