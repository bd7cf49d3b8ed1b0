/**
 * The checkpoint archive call (PROTOCOL.md §2.7.5, gotcha 20). The service answers with a redirect to
 * a signed URL, which must not be followed: the `Location` is the result. A server may instead answer
 * 200 JSON `{url, expires}` (the newer contract), and 503 while it is still building the archive.
 *
 * Browsers never show a script an unfollowed redirect (they give an opaque response with status 0),
 * so there only the 200 JSON form works; the opaque case fails with an error that says so.
 */
import { APIError, APIStatusError } from "../../core/errors.js";
import type { HttpClient, HttpResponse } from "../../core/http.js";
import { sleep } from "../../internal/sleep.js";
import {
  type CheckpointArchiveUrlResponse,
  CheckpointArchiveUrlResponseSchema,
} from "../../wire/rest-schemas.js";
import { parseResponse } from "../../wire/schemas.js";

/** Validity assumed for a redirect without an `Expires` header. */
const DEFAULT_URL_LIFETIME_MS = 15 * 60_000;
/** Attempts while the server answers 503 ("archive still being built"), as the official client. */
const BUILDING_ATTEMPTS = 6;
export const DEFAULT_BUILDING_RETRY_DELAY_MS = 30_000;

export interface ArchiveRequestOptions {
  signal: AbortSignal | undefined;
  /** Wait between attempts while the archive is being built. */
  buildingRetryDelayMs: number;
}

/** Asks for the archive URL, waiting while the server is still building the archive. */
export async function requestArchiveUrl(
  http: HttpClient,
  path: string,
  options: ArchiveRequestOptions,
): Promise<CheckpointArchiveUrlResponse> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await http.request({
        method: "GET",
        path,
        redirect: "manual",
        headers: { Accept: "application/json" },
        signal: options.signal,
      });
      return readArchiveAnswer(response);
    } catch (error) {
      const building = error instanceof APIStatusError && error.status === 503;
      if (!building || attempt >= BUILDING_ATTEMPTS) throw error;
      await sleep(options.buildingRetryDelayMs, options.signal);
    }
  }
}

function readArchiveAnswer(response: HttpResponse): CheckpointArchiveUrlResponse {
  const { status, headers } = response;
  if (status === 0) {
    throw new APIError(
      "The checkpoint archive answer is an opaque redirect, which this runtime does not let a script " +
        "read (browsers do this). The server must answer 200 JSON {url, expires} for this call to work here.",
      { status },
    );
  }
  if (status >= 300 && status < 400) {
    const url = headers.get("location");
    if (!url) {
      throw new APIStatusError(`Checkpoint archive redirect (${status}) without a Location header`, {
        status,
        headers,
        body: response.json() ?? response.text(),
      });
    }
    return { url, expires: expiresHeader(headers.get("expires")) };
  }
  return parseResponse(CheckpointArchiveUrlResponseSchema, response.json(), "checkpoint archive URL");
}

/** The `Expires` HTTP-date, or 15 minutes from now when it is missing or unreadable. */
function expiresHeader(value: string | null): Date {
  const time = value === null ? Number.NaN : Date.parse(value);
  return new Date(Number.isNaN(time) ? Date.now() + DEFAULT_URL_LIFETIME_MS : time);
}
