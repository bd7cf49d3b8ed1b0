/**
 * Sampler handles (PROTOCOL.md §P4): a string that lets another process (or another client in this
 * one) sample from the same sampling session, authenticating with its own credentials. tinker-ts
 * defines its own format — URL-safe base64 (no padding) of compact JSON:
 *
 *   {"v":1,"sampling_session_id":"…","session_id":"…","base_model":"…","record_stability_info":false}
 *
 * `session_id` and `base_model` are left out when unknown. A handle never carries a credential or
 * the server address: whoever rebuilds the client brings both. Handles are not interchangeable with
 * the Python SDK's.
 */
import * as v from "valibot";
import { ValidationError } from "../core/errors.js";
import { decodeBase64, encodeBase64 } from "../wire/protobuf/base64.js";

/** The handle format this client writes; it reads this one only. */
const HANDLE_VERSION = 1;

export interface SamplerHandle {
  sampling_session_id: string;
  /** The session that created the sampler, for reference (a clone does not join it). */
  session_id?: string;
  base_model?: string;
  record_stability_info: boolean;
}

const SamplerHandleSchema = v.object({
  v: v.literal(HANDLE_VERSION),
  sampling_session_id: v.pipe(v.string(), v.minLength(1)),
  session_id: v.optional(v.string()),
  base_model: v.optional(v.string()),
  record_stability_info: v.boolean(),
});

export function encodeSamplerHandle(handle: SamplerHandle): string {
  const json = JSON.stringify({
    v: HANDLE_VERSION,
    sampling_session_id: handle.sampling_session_id,
    session_id: handle.session_id,
    base_model: handle.base_model,
    record_stability_info: handle.record_stability_info,
  });
  return encodeBase64(new TextEncoder().encode(json))
    .replace(/=+$/, "")
    .replace(/\+/g, "-")
    .replace(/\//g, "_");
}

/** Reads a handle; anything else is a ValidationError (nothing has been sent). */
export function decodeSamplerHandle(handle: string): SamplerHandle {
  const invalid = (reason: string) => new ValidationError([{ path: "handle", message: reason }]);
  if (typeof handle !== "string" || !/^[A-Za-z0-9_-]+$/.test(handle)) {
    throw invalid("must be a sampler handle (URL-safe base64 from getSamplerHandle())");
  }
  const bytes = decodeBase64(handle.replace(/-/g, "+").replace(/_/g, "/"));
  let json: unknown;
  try {
    json =
      bytes === undefined ? undefined : JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    json = undefined;
  }
  const parsed = v.safeParse(SamplerHandleSchema, json);
  if (!parsed.success) {
    throw invalid(`is not a tinker-ts sampler handle (version ${HANDLE_VERSION}) from getSamplerHandle()`);
  }
  const { v: _version, ...fields } = parsed.output;
  return fields;
}
