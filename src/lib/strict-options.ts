/**
 * Runtime checks of the options objects users pass. TypeScript catches `optimStep({ lr: 0.01 })`
 * at compile time; plain JavaScript does not, and an unknown key would otherwise be ignored (the
 * step runs at the default rate). Every options object is checked here at method entry, before
 * anything is sent: unknown keys (with the key probably meant) and value types.
 *
 * A shape is stated once per options type: `optionShape<T>()` makes the compiler require exactly
 * the keys of `T`, so the runtime list cannot drift from the declared interface; the shapes of wire
 * objects (AdamParams, DimuonParams) are read from their valibot schemas by `shapeOfSchema`.
 */
import type * as v from "valibot";
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { describeValue } from "../internal/describe.js";

/** The kinds of value an option may hold; `any` skips the type check (e.g. a TensorData). */
export type OptionKind =
  | "number"
  | "integer"
  | "string"
  | "boolean"
  | "function"
  | "object"
  | "array"
  | "signal"
  | "date"
  | "null"
  | "any";

/** One kind, or several accepted alternatives. */
export type OptionRule = OptionKind | readonly OptionKind[];

/** The keys an options object may have and the kind of each. */
export type OptionShape = Readonly<Record<string, OptionRule>>;

/** A shape with exactly the keys of `T` (the compiler refuses a missing or an extra one). */
export function optionShape<T>(shape: ShapeOf<T>): ShapeOf<T> {
  return shape;
}

/** The shape type of the options type `T`: one rule per key, optional keys included. */
export type ShapeOf<T> = { readonly [K in keyof Required<T>]: OptionRule };

/** What `signal` and `timeout` of every network call accept. */
export const CALL_OPTION_SHAPE = { signal: "signal", timeout: "number" } as const satisfies OptionShape;

/**
 * Names users reach for that no edit distance finds. Only used when the target is a key of the
 * shape at hand (so `lr` means `learning_rate` in optimizer params and nothing elsewhere).
 */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  lr: ["learning_rate", "learningRate"],
  learningrate: ["learning_rate"],
  maxnewtokens: ["max_tokens", "maxTokens"],
  maxlength: ["max_tokens"],
  temp: ["temperature"],
  stopsequences: ["stop"],
  timeoutms: ["timeout"],
  abortsignal: ["signal"],
  url: ["baseURL"],
  endpoint: ["baseURL"],
  host: ["baseURL"],
  key: ["apiKey"],
  token: ["apiKey"],
  retries: ["maxRetries"],
  lorarank: ["rank"],
  model: ["baseModel", "modelPath"],
  modelname: ["baseModel"],
  ttl: ["ttlSeconds"],
  metadata: ["userMetadata"],
  loglevel: ["logLevel"],
  verbose: ["logLevel"],
  debug: ["logLevel"],
};

/** Lower case without `_` and `-`: `maxTokens`, `max_tokens` and `MAX-TOKENS` all read `maxtokens`. */
function normalize(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, "");
}

/** Levenshtein distance, small strings only. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known key `key` was probably meant to be, if one is close enough. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const wanted = normalize(key);
  const same = known.find((k) => normalize(k) === wanted);
  if (same !== undefined) return same;
  const alias = ALIASES[wanted]?.find((k) => known.includes(k));
  if (alias !== undefined) return alias;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(wanted.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(wanted, normalize(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function isAbortSignal(value: unknown): boolean {
  if (typeof AbortSignal !== "undefined" && value instanceof AbortSignal) return true;
  // An AbortSignal of another realm (a test runner's, a polyfill's).
  const candidate = value as { aborted?: unknown; addEventListener?: unknown } | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.aborted === "boolean" &&
    typeof candidate.addEventListener === "function"
  );
}

function matches(value: unknown, kind: OptionKind): boolean {
  switch (kind) {
    case "any":
      return true;
    case "number":
      return typeof value === "number";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "array":
      return Array.isArray(value);
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    case "signal":
      return isAbortSignal(value);
    case "date":
      return value instanceof Date;
    case "null":
      return value === null;
    default:
      return typeof value === kind;
  }
}

const KIND_NAMES: Record<OptionKind, string> = {
  number: "a number",
  integer: "an integer",
  string: "a string",
  boolean: "a boolean",
  function: "a function",
  object: "an object",
  array: "an array",
  signal: "an AbortSignal",
  date: "a Date",
  null: "null",
  any: "anything",
};

/** `string "1e-2"`, `number 3`, `array [1,2]`: the type a value has, then the value. */
function describeGot(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  const type = Array.isArray(value) ? "array" : typeof value;
  const shown = describeValue(value);
  return shown.length > 60 ? type : `${type} ${shown}`;
}

/** The issues of one value against its rule; none when it fits. */
function typeIssue(value: unknown, rule: OptionRule): string | undefined {
  const kinds = typeof rule === "string" ? [rule] : rule;
  if (kinds.some((kind) => matches(value, kind))) return undefined;
  const wanted = kinds.map((kind) => KIND_NAMES[kind]).join(" or ");
  return `must be ${wanted}, got ${describeGot(value)}`;
}

/** Every issue of `value` against `shape`, each path prefixed by `where` (e.g. `optimStep(params)`). */
export function optionIssues(value: unknown, shape: OptionShape, where: string): ValidationIssue[] {
  if (value === undefined) return [];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [{ path: where, message: `must be an options object, got ${describeGot(value)}` }];
  }
  const issues: ValidationIssue[] = [];
  const known = Object.keys(shape);
  for (const key of Object.keys(value)) {
    const rule = shape[key];
    if (rule === undefined) {
      const suggestion = suggestKey(key, known);
      issues.push({
        path: `${where}.${key}`,
        message: suggestion
          ? `unknown option; did you mean \`${suggestion}\`?`
          : `unknown option; known: ${known.map((k) => `\`${k}\``).join(", ")}`,
      });
      continue;
    }
    const entry = (value as Record<string, unknown>)[key];
    // An explicit `undefined` means "not given", as for any optional parameter.
    if (entry === undefined) continue;
    const problem = typeIssue(entry, rule);
    if (problem) issues.push({ path: `${where}.${key}`, message: problem });
  }
  return issues;
}

/** Throws one ValidationError listing every unknown key and mistyped value of `value`. */
export function checkOptions(value: unknown, shape: OptionShape, where: string): void {
  const issues = optionIssues(value, shape, where);
  if (issues.length > 0) throw new ValidationError(issues);
}

type AnySchema = v.GenericSchema & {
  wrapped?: AnySchema;
  options?: readonly unknown[];
  literal?: unknown;
  entries?: Record<string, AnySchema>;
  pipe?: readonly AnySchema[];
};

/** The rule of one valibot schema: its base type, through optional/nullable/pipe wrappers. */
function ruleOfSchema(schema: AnySchema): OptionRule {
  switch (schema.type) {
    case "optional":
    case "exact_optional":
    case "undefinedable":
      return ruleOfSchema(schema.wrapped!);
    case "nullable":
    case "nullish":
      return [...[ruleOfSchema(schema.wrapped!)].flat(), "null"];
    case "number":
      return "number";
    case "string":
    case "picklist":
      return "string";
    case "boolean":
      return "boolean";
    case "literal":
      return matches(schema.literal, "number")
        ? "number"
        : matches(schema.literal, "string")
          ? "string"
          : "any";
    case "array":
    case "tuple":
      return "array";
    case "object":
    case "strict_object":
    case "loose_object":
    case "record":
    case "variant":
      return "object";
    case "union":
      return (schema.options as AnySchema[]).flatMap((option) => [ruleOfSchema(option)].flat());
    default:
      return "any";
  }
}

/**
 * The entries of an object schema, also when it sits in a pipe (such as `plainObject`'s, which checks
 * "a JSON object, not an array" before the object schema).
 */
function objectEntries(schema: AnySchema): Record<string, AnySchema> | undefined {
  if (schema.entries) return schema.entries;
  for (const item of schema.pipe ?? []) {
    if (item !== schema && item.kind === "schema") {
      const entries = objectEntries(item);
      if (entries) return entries;
    }
  }
  return undefined;
}

/** The shape of a valibot object schema: its keys, each with its base type. */
export function shapeOfSchema(schema: v.GenericSchema): OptionShape {
  const entries = objectEntries(schema as AnySchema);
  if (!entries) throw new Error(`shapeOfSchema: ${schema.type} is not an object schema`);
  return Object.fromEntries(Object.entries(entries).map(([key, entry]) => [key, ruleOfSchema(entry)]));
}
