/**
 * Python's way of writing values, which chat templates use because transformers renders them in
 * Python: `str(x)` (`True`, `None`, `1e-05`) and the `tojson` filter, which is `json.dumps` with
 * `ensure_ascii=False` and the default `", "` / `": "` separators.
 *
 * JavaScript has one number type, so a number is written as a Python int when it is integral (as
 * JSON `3` parses in Python) and as a Python float otherwise; a JSON `3.0` (a float in Python,
 * written `3.0`) cannot be told apart here and is written `3`.
 */

/** Python's `str()` of a number: ints in full, floats as `repr` (scientific below 1e-4 and from 1e16). */
export function pyNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (!Number.isFinite(n)) return n > 0 ? "Infinity" : "-Infinity";
  const abs = Math.abs(n);
  if (Number.isInteger(n) && abs < 1e21) return String(n);
  if (abs >= 1e-4 && abs < 1e16) return String(n);
  // toExponential() without digits gives the shortest digits that read back as n, as repr does.
  const [mantissa, exponent] = n.toExponential().split("e") as [string, string];
  const sign = exponent.startsWith("-") ? "-" : "+";
  return `${mantissa}e${sign}${exponent.replace(/^[+-]/, "").padStart(2, "0")}`;
}

/** Python's `str()` of a JSON scalar (`True`, `False`, `None`, numbers); strings as they are. */
export function pyStr(value: unknown): string {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  if (typeof value === "number") return pyNumber(value);
  if (typeof value === "string") return value;
  return pyJson(value);
}

/**
 * `json.dumps(value, ensure_ascii=False, separators=…)`: Python's separators by default
 * (`", "`, `": "`), or compact ones (`","`, `":"`). Keys keep their order.
 */
export function pyJson(value: unknown, compact = false): string {
  const item = compact ? "," : ", ";
  const key = compact ? ":" : ": ";
  const write = (v: unknown): string => {
    if (v === null || v === undefined) return "null";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") return pyNumber(v);
    // JSON.stringify escapes the same characters json.dumps does with ensure_ascii=False.
    if (typeof v === "string") return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map(write).join(item)}]`;
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries.map(([k, x]) => JSON.stringify(k) + key + write(x)).join(item)}}`;
  };
  return write(value);
}

/** A copy with every object's keys sorted, recursively (Kimi sorts tool schemas before declaring them). */
export function deepSortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deepSortKeys);
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(record)
      .sort()
      .map((k) => [k, deepSortKeys(record[k])]),
  );
}
