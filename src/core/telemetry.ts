/**
 * Client telemetry (PROTOCOL.md §11): events queued in memory and sent in batches of at most 100 to
 * `POST /api/v1/telemetry`, every 10 s and right after an exception is logged. A batch the server
 * does not accept (anything but `{"status": "accepted"}`) is retried every second for as long as
 * the client is open; `close()` gives every remaining batch one last attempt and stops all timers,
 * so a closed client never keeps retrying.
 *
 * On by default; off with `TINKER_TELEMETRY` set to anything but 1/true/yes/on, or
 * `ClientOptions.telemetry: false`. Events describe what happened, never how the client
 * authenticated: no headers, keys or tokens go into them.
 */
import { sleep } from "../internal/sleep.js";
import { unrefTimer } from "../internal/timers.js";
import { uuid4 } from "../internal/uuid.js";
import { PROTOCOL_SDK_VERSION } from "../version.js";
import { readEnv } from "./env.js";
import { APIError, APIStatusError, ResponseValidationError } from "./errors.js";
import { detectPlatform } from "./runtime.js";

export type TelemetrySeverity = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";

interface EventBase {
  event_id: string;
  event_session_index: number;
  severity: TelemetrySeverity;
  /** ISO-8601 with `Z`. */
  timestamp: string;
}

// Key order follows the official client's models, so batches look alike on the wire.
export interface SessionStartEvent extends EventBase {
  event: "SESSION_START";
}
export interface SessionEndEvent extends EventBase {
  /** Python timedelta text, e.g. `0:01:02.345678` (what the official client sends). */
  duration: string;
  event: "SESSION_END";
}
export interface GenericEvent extends EventBase {
  event: "GENERIC_EVENT";
  /** Low-cardinality name, e.g. `user_error`. */
  event_name: string;
  event_data: Record<string, unknown>;
}
export interface UnhandledExceptionEvent extends EventBase {
  error_message: string;
  error_type: string;
  event: "UNHANDLED_EXCEPTION";
  traceback?: string;
}
export type TelemetryEvent = SessionStartEvent | SessionEndEvent | GenericEvent | UnhandledExceptionEvent;

export interface TelemetryBatch {
  events: TelemetryEvent[];
  platform: string;
  sdk_version: string;
  /** The session id, or `sessionless-<uuid4>` while the client has no session. */
  session_id: string;
  /** One id per process (per JavaScript realm here). */
  process_uuid: string;
}

/** What users get from `service.telemetry`: custom events and an explicit flush. */
export interface Telemetry {
  /** False when telemetry is off; every call is then a no-op. */
  readonly enabled: boolean;
  /** Queues a GENERIC_EVENT. Returns false when it was not queued (off, closed, queue full). */
  log(eventName: string, eventData?: Record<string, unknown>, severity?: TelemetrySeverity): boolean;
  /** Queues an UNHANDLED_EXCEPTION event and starts sending at once (without waiting). */
  logException(error: unknown, severity?: TelemetrySeverity): boolean;
  /** Queues the official `user_error` GENERIC_EVENT for an error the caller caused (a 4xx, a failed request). */
  logUserError(error: unknown): boolean;
  /** Sends everything queued now; resolves once the server accepted it (or the client was closed). */
  flush(): Promise<void>;
}

export const MAX_BATCH_SIZE = 100;
export const MAX_QUEUE_SIZE = 10_000;
export const FLUSH_INTERVAL_MS = 10_000;
export const RETRY_DELAY_MS = 1_000;

export interface TelemetryOptions {
  enabled: boolean;
  /** The protocol level the batches report (the client's `sdk_version`). */
  sdkVersion?: string;
  /**
   * Sends one batch and resolves when the server accepted it. `lastAttempt` is true at close: the
   * transport should then not retry on its own.
   */
  send: (batch: TelemetryBatch, lastAttempt: boolean) => Promise<void>;
}

/** TINKER_TELEMETRY: on unless set to something other than 1, true, yes, on (any case). */
export function telemetryEnabledByEnv(): boolean {
  const value = readEnv("TINKER_TELEMETRY");
  return value === undefined || ["1", "true", "yes", "on"].includes(value.trim().toLowerCase());
}

export class TelemetryQueue implements Telemetry {
  readonly enabled: boolean;
  readonly #send: TelemetryOptions["send"];
  readonly #sdkVersion: string;
  /** Drawn at the first batch without a session, never at construction (PROTOCOL.md §11). */
  #sessionlessId: string | undefined;
  #sessionId: string | undefined;
  #sessionStartedAt = 0;
  #nextIndex = 0;
  #queue: TelemetryEvent[] = [];
  /** The latest drain of the queue; drains run one at a time, in order. */
  #flushing: Promise<void> = Promise.resolve();
  /** A drain waiting for the running one: it will take every event queued so far, so it is shared. */
  #waitingDrain: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed: Promise<void> | undefined;
  /**
   * Aborted by close(): cuts the 1 s retry wait short so each batch gets its last attempt at once.
   * Made at first need, as nothing may be at construction (workerd's global scope forbids it).
   */
  #stopController: AbortController | undefined;

  get #stop(): AbortController {
    this.#stopController ??= new AbortController();
    return this.#stopController;
  }

  constructor(options: TelemetryOptions) {
    this.enabled = options.enabled;
    this.#sdkVersion = options.sdkVersion ?? PROTOCOL_SDK_VERSION;
    this.#send = options.send;
  }

  log(
    eventName: string,
    eventData: Record<string, unknown> = {},
    severity: TelemetrySeverity = "INFO",
  ): boolean {
    // Data that cannot become JSON would make the whole batch fail later; refuse it now.
    if (!isJsonSerializable(eventData)) return false;
    const { event_id, event_session_index, timestamp } = this.#base(severity);
    return this.#enqueue({
      event: "GENERIC_EVENT",
      event_id,
      event_name: eventName,
      event_session_index,
      severity,
      timestamp,
      event_data: eventData,
    });
  }

  logException(error: unknown, severity: TelemetrySeverity = "ERROR"): boolean {
    const err = error instanceof Error ? error : undefined;
    const event: UnhandledExceptionEvent = {
      error_message: err ? err.message : String(error),
      error_type: err ? err.name : typeof error,
      event: "UNHANDLED_EXCEPTION",
      ...this.#base(severity),
    };
    if (err?.stack) event.traceback = err.stack;
    const queued = this.#enqueue(event);
    if (queued) void this.flush();
    return queued;
  }

  logUserError(error: unknown): boolean {
    const data: Record<string, unknown> = {
      error_type: error instanceof Error ? error.name : typeof error,
      message: error instanceof Error ? error.message : String(error),
    };
    // The status and body only: response headers may echo credentials.
    if (error instanceof APIStatusError) {
      data.status_code = error.status;
      if (isJsonSerializable(error.body)) data.body = error.body;
    }
    return this.log("user_error", data, "WARNING");
  }

  flush(): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    if (this.#waitingDrain === undefined) {
      this.#waitingDrain = this.#flushing.then(() => {
        this.#waitingDrain = undefined;
        return this.#drain();
      });
      this.#flushing = this.#waitingDrain;
    }
    return this.#waitingDrain;
  }

  /** Called when the client's session exists: later batches carry its id, starting with SESSION_START. */
  startSession(sessionId: string): void {
    if (this.#sessionId !== undefined) return;
    this.#sessionId = sessionId;
    this.#sessionStartedAt = Date.now();
    this.#enqueue({ event: "SESSION_START", ...this.#base("INFO") });
  }

  /**
   * Ends the session (SESSION_END), gives every queued batch one last attempt and stops every timer.
   * Never rejects.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    if (this.#sessionId !== undefined) {
      const duration = formatTimedelta(Date.now() - this.#sessionStartedAt);
      this.#enqueue({ duration, event: "SESSION_END", ...this.#base("INFO") });
    }
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stop.abort();
    this.#closed = this.flush();
    return this.#closed;
  }

  #base(severity: TelemetrySeverity): EventBase {
    return {
      event_id: uuid4(),
      event_session_index: this.#nextIndex++,
      severity,
      timestamp: new Date().toISOString(),
    };
  }

  #enqueue(event: TelemetryEvent): boolean {
    if (!this.enabled || this.#closed) return false;
    if (this.#queue.length >= MAX_QUEUE_SIZE) return false;
    this.#queue.push(event);
    this.#startTimer();
    return true;
  }

  /** The periodic flush starts with the first event, so a client that logs nothing has no timer. */
  #startTimer(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    unrefTimer(this.#timer);
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const events = this.#queue.splice(0, MAX_BATCH_SIZE);
      await this.#deliver({
        events,
        platform: telemetryPlatform(),
        sdk_version: this.#sdkVersion,
        session_id: this.#sessionId ?? this.#sessionless(),
        process_uuid: processUuid(),
      });
    }
  }

  /**
   * The `sessionless-<uuid4>` id of batches sent before the session exists. Drawn lazily: some
   * runtimes (workerd) refuse randomness outside a request, so a client built at a Worker's module
   * scope must make none at construction.
   */
  #sessionless(): string {
    this.#sessionlessId ??= `sessionless-${uuid4()}`;
    return this.#sessionlessId;
  }

  /** Sends until accepted; after close() one last attempt, then the batch is dropped. */
  async #deliver(batch: TelemetryBatch): Promise<void> {
    for (;;) {
      const lastAttempt = this.#stop.signal.aborted;
      try {
        await this.#send(batch, lastAttempt);
        return;
      } catch (error) {
        if (lastAttempt || !isRetryable(error)) return;
        await sleep(RETRY_DELAY_MS, this.#stop.signal).catch(() => {});
      }
    }
  }
}

/** Server answers worth retrying: API errors of any kind and answers other than "accepted". */
function isRetryable(error: unknown): boolean {
  return error instanceof APIError || error instanceof ResponseValidationError;
}

function isJsonSerializable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}

let processId: string | undefined;

function processUuid(): string {
  processId ??= uuid4();
  return processId;
}

/** What Python's `platform.system()` says: `Linux`, `Darwin`, `Windows`, ... */
function telemetryPlatform(): string {
  const os = detectPlatform().os;
  return os === "MacOS" ? "Darwin" : os;
}

/** Python's `str(timedelta)`: `H:MM:SS` plus `.ffffff` when there are microseconds, days in front. */
export function formatTimedelta(ms: number): string {
  const micros = Math.max(0, Math.round(ms * 1000));
  const days = Math.floor(micros / 86_400_000_000);
  const rest = micros - days * 86_400_000_000;
  const hours = Math.floor(rest / 3_600_000_000);
  const minutes = Math.floor((rest % 3_600_000_000) / 60_000_000);
  const seconds = Math.floor((rest % 60_000_000) / 1_000_000);
  const fraction = rest % 1_000_000;
  let text = `${hours}:${pad(minutes, 2)}:${pad(seconds, 2)}`;
  if (fraction > 0) text += `.${pad(fraction, 6)}`;
  return days > 0 ? `${days} day${days === 1 ? "" : "s"}, ${text}` : text;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}
