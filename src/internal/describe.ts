/**
 * A short rendering of any value for error messages that never throws: user input may be an object
 * without `toString`, and a validation error must not turn into a TypeError while being written.
 */
export function describeValue(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean")
    return String(value);
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}
