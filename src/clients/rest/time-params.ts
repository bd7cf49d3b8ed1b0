/**
 * Time query parameters of the audit and billing endpoints, checked before sending so a bad window is
 * a ValidationError naming the problem rather than a 400 from the server.
 */

import { ValidationError } from "../../core/errors.js";
import { BILLING_WINDOW } from "../../wire/endpoints/rest.js";

const HOUR_MS = BILLING_WINDOW.unitMs;
/** The longest billing window the service accepts. */
const MAX_BILLING_WINDOW_MS = BILLING_WINDOW.maxMs;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * `starting_on` and `ending_before` of the billing usage call: whole UTC hours, in order, at most 14
 * days apart, sent as `YYYY-MM-DDTHH:00:00Z`.
 */
export function billingWindow(
  startingOn: Date | string,
  endingBefore: Date | string,
): { starting_on: string; ending_before: string } {
  const start = instant(startingOn, "startingOn");
  const end = instant(endingBefore, "endingBefore");
  const issues = [...hourAligned(start, "startingOn"), ...hourAligned(end, "endingBefore")];
  if (issues.length === 0 && end.getTime() <= start.getTime()) {
    issues.push({ path: "endingBefore", message: "must be after startingOn" });
  }
  if (issues.length === 0 && end.getTime() - start.getTime() > MAX_BILLING_WINDOW_MS) {
    issues.push({ path: "endingBefore", message: "the window must not exceed 14 days" });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { starting_on: formatUtcSeconds(start), ending_before: formatUtcSeconds(end) };
}

/** The audit log's `day`: a Date (its UTC day) or `YYYY-MM-DD`. */
export function auditDay(day: Date | string): string {
  if (day instanceof Date) {
    if (Number.isNaN(day.getTime())) throw new ValidationError([{ path: "day", message: "invalid Date" }]);
    return day.toISOString().slice(0, 10);
  }
  if (typeof day !== "string" || !DAY.test(day) || Number.isNaN(Date.parse(day))) {
    throw new ValidationError([{ path: "day", message: `must be YYYY-MM-DD, got ${JSON.stringify(day)}` }]);
  }
  return day;
}

function instant(value: Date | string, path: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValidationError([{ path, message: "invalid Date" }]);
    return value;
  }
  // RFC 3339 requires the offset: without one, the hour meant would depend on the caller's zone.
  const date =
    typeof value === "string" && RFC3339.test(value)
      ? new Date(value.toUpperCase().replace(" ", "T"))
      : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    throw new ValidationError([
      { path, message: `must be a Date or an RFC 3339 timestamp with offset, got ${JSON.stringify(value)}` },
    ]);
  }
  return date;
}

function hourAligned(date: Date, path: string) {
  return date.getTime() % HOUR_MS === 0
    ? []
    : [{ path, message: `must be a whole UTC hour, got ${date.toISOString()}` }];
}

/** `2026-07-13T00:00:00Z`: the form the official client sends (no milliseconds). */
function formatUtcSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
