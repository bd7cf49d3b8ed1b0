/**
 * The JWT mode of PROTOCOL.md §1.4: every request carries a short-lived JWT obtained by exchanging
 * a credential at `POST /api/v1/auth/token`.
 *
 * - A background timer refreshes the token 300 s before its `exp`, and retries every 60 s when that
 *   fails. (A token that lives less than that is refreshed halfway through its remaining life
 *   instead, so short lifetimes do not turn into a refresh storm.) The timer is unref'd and
 *   `close()` clears it.
 * - Before each request, a token with 60 s or less left (or an unreadable `exp`) is refreshed on
 *   demand. Concurrent callers share one exchange. When the refresh fails the stale token is sent
 *   anyway: the server then answers with a clear 401 rather than the client failing on its own.
 */
import { unrefTimer } from "../../internal/timers.js";
import { decodeJwtClaims, type JwtClaims, secondsUntilExpiry } from "../jwt.js";
import type { CredentialProvider } from "./provider.js";

export const REFRESH_BEFORE_EXPIRY_S = 300;
export const REFRESH_ON_DEMAND_S = 60;
export const REFRESH_RETRY_MS = 60_000;
/** The shortest background delay: a token that arrives (nearly) expired is not re-fetched in a loop. */
const MIN_REFRESH_DELAY_MS = 1_000;
/** setTimeout fires at once for delays above 2^31 − 1 ms (~24.8 days); longer waits are cut to that. */
const MAX_TIMER_MS = 2_147_483_647;

export class JwtCredentials implements CredentialProvider {
  readonly #fetchToken: () => Promise<string>;
  #token: string | undefined;
  /** The exchange in flight, shared by every caller that needs a new token meanwhile. */
  #refreshing: Promise<string> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** `fetchToken` gets a fresh credential and exchanges it for a JWT (one attempt). */
  constructor(fetchToken: () => Promise<string>) {
    this.#fetchToken = fetchToken;
  }

  async credential(): Promise<string> {
    const token = this.#token;
    if (token !== undefined && hasRunway(token)) return token;
    try {
      return await this.refresh();
    } catch (error) {
      if (this.#token !== undefined) return this.#token;
      throw error;
    }
  }

  /** Exchanges for a new token now. Each success (re)schedules the background refresh. */
  refresh(): Promise<string> {
    this.#refreshing ??= this.#fetchToken().then(
      (token) => {
        this.#refreshing = undefined;
        this.#token = token;
        this.#schedule(backgroundDelayMs(token));
        return token;
      },
      (error: unknown) => {
        this.#refreshing = undefined;
        throw error;
      },
    );
    return this.#refreshing;
  }

  /** The current token's claims, undefined before the first exchange. */
  claims(): JwtClaims | undefined {
    return this.#token === undefined ? undefined : decodeJwtClaims(this.#token);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.refresh().catch(() => this.#schedule(REFRESH_RETRY_MS));
    }, delayMs);
    // Refreshing alone must not keep a script running.
    unrefTimer(this.#timer);
  }
}

function hasRunway(token: string): boolean {
  const left = secondsUntilExpiry(token);
  return left !== undefined && left > REFRESH_ON_DEMAND_S;
}

/** When the background refresh of a fresh `token` should run. */
export function backgroundDelayMs(token: string, nowMs: number = Date.now()): number {
  const left = secondsUntilExpiry(token, nowMs);
  if (left === undefined || left <= 0) return REFRESH_RETRY_MS;
  const seconds = Math.max(left - REFRESH_BEFORE_EXPIRY_S, left / 2);
  return Math.min(Math.max(seconds * 1000, MIN_REFRESH_DELAY_MS), MAX_TIMER_MS);
}
