/**
 * Kimi K2.5/K2.6 declare tools as TypeScript, not JSON: the model's tokenizer turns the request's
 * tools (keys sorted) into the `tools_ts_str` its chat template writes in the `tool_declare` turn:
 *
 *     # Tools
 *
 *     ## functions
 *     namespace functions {
 *     // Get the weather
 *     type get_weather = (_: {
 *       // The city
 *       city: string,
 *       unit?: "c" | "f"
 *     }) => any;
 *     }
 *
 * Rules (format facts of Moonshot's encoder): required properties first, each group by name;
 * descriptions and constraints (`maxLength`, `minimum`, …) as `//` comments above the property;
 * `integer` is `number`; enums are unions of literals; `$defs` become interfaces and `$ref`s their
 * names (`#` is the root, `parameters`). A schema the encoder cannot read makes Kimi's tokenizer fall
 * back to compact JSON, and so does this module.
 */

import { deepSortKeys, pyJson, pyStr } from "./python-format.js";
import type { ToolSpec } from "./types.js";

type Schema = Record<string, unknown>;

const INDENT = "  ";

/** A schema the encoder refuses (the caller falls back to JSON). */
class Unsupported extends Error {}

interface Type {
  ts(indent: string): string;
  description: string;
  constraints: [string, unknown][];
}

/** `// line` per line of a description (blank lines stay blank), indented. */
function comment(text: string, indent = ""): string {
  return text
    .split("\n")
    .map((line) => (line ? `${indent}// ${line}` : ""))
    .join("\n");
}

function docstring(type: Type, indent: string): string {
  const lines: string[] = [];
  if (type.description) lines.push(comment(type.description, indent));
  if (type.constraints.length > 0) {
    const sorted = [...type.constraints].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    lines.push(`${indent}// ${sorted.map(([k, v]) => `${k}: ${pyStr(v)}`).join(", ")}`);
  }
  return lines.map((line) => `${line}\n`).join("");
}

class Encoder {
  readonly definitions = new Map<string, unknown>();
  selfReference = false;

  type(schema: unknown): Type {
    if (typeof schema === "boolean") return this.leaf(schema ? "any" : "null", {});
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw new Unsupported();
    const s = schema as Schema;
    if ("$ref" in s) return this.reference(s);
    if ("anyOf" in s) {
      const options = (s.anyOf as unknown[]).map((option) => this.type(option));
      return this.node(s, [], (indent) => options.map((o) => o.ts(indent)).join(" | "));
    }
    if ("enum" in s) return this.enumeration(s);
    const type = s.type;
    if (Array.isArray(type)) {
      const names: Record<string, string> = {
        string: "string",
        number: "number",
        integer: "number",
        boolean: "boolean",
        null: "null",
        object: "{}",
        array: "Array<any>",
      };
      const parts = type.map((t) => names[t as string] ?? thrown());
      return this.node(s, [], () => parts.join(" | "));
    }
    if (type === "object") return this.object(s);
    if (type === "array") return this.array(s);
    if (typeof type === "string") return this.leaf(type, s);
    if (Object.keys(s).length === 0) return this.leaf("any", {});
    throw new Unsupported();
  }

  node(s: Schema, constraintKeys: readonly string[], ts: (indent: string) => string): Type {
    return {
      ts,
      description: typeof s.description === "string" ? s.description : "",
      constraints: constraintKeys.filter((k) => k in s).map((k) => [k, s[k]]),
    };
  }

  leaf(type: string, s: Schema): Type {
    const keys =
      type === "string"
        ? ["maxLength", "minLength", "pattern"]
        : type === "number" || type === "integer"
          ? ["maximum", "minimum"]
          : [];
    return this.node(s, keys, () => (type === "integer" ? "number" : type));
  }

  reference(s: Schema): Type {
    const ref = s.$ref;
    let name: string;
    if (ref === "#") {
      this.selfReference = true;
      name = "parameters";
    } else if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
      name = ref.split("/").at(-1)!;
      if (!this.definitions.has(name)) throw new Unsupported();
    } else {
      throw new Unsupported();
    }
    return this.node(s, [], () => name);
  }

  enumeration(s: Schema): Type {
    const values = s.enum as unknown[];
    if (!Array.isArray(values)) throw new Unsupported();
    let type = s.type;
    if (Array.isArray(type)) {
      if (type.length === 1) type = type[0];
      else if (type.length === 2 && type.includes("null")) type = type[0] === "null" ? type[1] : type[0];
      else throw new Unsupported();
    }
    // Python's bool is an int, so booleans pass as numbers there.
    const fits: Record<string, (v: unknown) => boolean> = {
      string: (v) => typeof v === "string",
      number: (v) => typeof v === "number" || typeof v === "boolean",
      integer: (v) => Number.isInteger(v) || typeof v === "boolean",
      boolean: (v) => typeof v === "boolean",
    };
    const accepts = typeof type === "string" ? fits[type] : undefined;
    if (accepts && !values.every((v) => v === null || accepts(v))) throw new Unsupported();
    const literal = (v: unknown) => (typeof v === "string" ? `"${v}"` : pyStr(v));
    return this.node(s, [], () => values.map(literal).join(" | "));
  }

  array(s: Schema): Type {
    const item = pyTruthy(s.items) ? this.type(s.items) : this.leaf("any", {});
    return this.node(s, ["minItems", "maxItems"], (indent) => {
      const doc = docstring(item, indent + INDENT);
      if (!doc) return `Array<${item.ts(indent)}>`;
      return `Array<\n${doc}${indent}${INDENT}${item.ts(indent + INDENT)}\n${indent}>`;
    });
  }

  object(s: Schema): Type {
    if (s.$defs && typeof s.$defs === "object") {
      for (const [name, def] of Object.entries(s.$defs as Schema)) this.definitions.set(name, def);
    }
    const extra = s.additionalProperties;
    const extraType =
      extra === undefined || extra === null
        ? undefined
        : extra === true
          ? "any"
          : extra === false
            ? "never"
            : typeof extra === "object"
              ? this.type(extra)
              : thrown();
    const properties = this.properties(s);
    return this.node(s, [], (indent) => {
      const inner = indent + INDENT;
      const fields = properties.map((p) => p.ts(inner));
      if (extraType !== undefined) {
        fields.push(
          `${inner}[k: string]: ${typeof extraType === "string" ? extraType : extraType.ts(inner)}`,
        );
      }
      return fields.length === 0 ? "{}" : `{\n${fields.join(",\n")}\n${indent}}`;
    });
  }

  /**
   * The properties of an object schema: required ones first, each group by name (`sorted`), or in
   * the schema's order (the root interface of a self-referencing schema).
   */
  properties(s: Schema, sorted = true): { ts(indent: string): string }[] {
    const props = s.properties;
    if (typeof props !== "object" || props === null) return [];
    const required = new Set(Array.isArray(s.required) ? (s.required as unknown[]) : []);
    const entries = Object.entries(props as Schema).map(([name, prop]) => ({
      name,
      optional: !required.has(name),
      type: this.type(prop),
      fallback: typeof prop === "object" && prop !== null ? (prop as Schema).default : undefined,
    }));
    const byName = (a: { name: string }, b: { name: string }) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    const ordered = sorted
      ? [
          ...entries.filter((e) => !e.optional).sort(byName),
          ...entries.filter((e) => e.optional).sort(byName),
        ]
      : entries;
    return ordered.map((e) => ({
      ts: (indent: string) => {
        let doc = docstring(e.type, indent);
        if (e.fallback !== undefined && e.fallback !== null) {
          const shown =
            typeof e.fallback === "number" || typeof e.fallback === "boolean"
              ? pyStr(e.fallback)
              : pyJson(e.fallback);
          doc += `${indent}// Default: ${shown}\n`;
        }
        return `${doc}${indent}${e.name}${e.optional ? "?" : ""}: ${e.type.ts(indent)}`;
      },
    }));
  }
}

/** Python's truthiness of a JSON value: empty objects and lists are false. */
function pyTruthy(value: unknown): boolean {
  if (typeof value === "object" && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}

function thrown(): never {
  throw new Unsupported();
}

function declareFunction(spec: Schema): string {
  const encoder = new Encoder();
  const parameters = (spec.parameters as Schema | undefined) || {};
  const root = encoder.object(parameters);
  const interfaces: string[] = [];
  if (encoder.selfReference) {
    const fields = encoder.properties(parameters, false).map((p) => p.ts(INDENT));
    interfaces.push(`interface parameters {${fields.length > 0 ? `\n${fields.join(",\n")}\n` : ""}}`);
  }
  for (const [name, def] of [...encoder.definitions]) {
    if (typeof def !== "object" || def === null || Array.isArray(def)) throw new Unsupported();
    const text = encoder.type(def).ts("");
    const description = (def as Schema).description;
    const doc = typeof description === "string" && description ? `${comment(description)}\n` : "";
    interfaces.push(`${doc}interface ${name} ${text}`);
  }
  const name = typeof spec.name === "string" ? spec.name : "function";
  const signature = encoder.selfReference ? "parameters" : root.ts("");
  const description =
    typeof spec.description === "string" && spec.description ? comment(spec.description) : "";
  return [interfaces.join("\n"), description, `type ${name} = (_: ${signature}) => any;`]
    .filter((part) => part !== "")
    .join("\n");
}

/**
 * The `tool_declare` text Kimi K2.5/K2.6 are given for `tools`: TypeScript declarations, or the tools'
 * compact JSON (keys sorted) when a schema is beyond what Moonshot's encoder reads.
 */
export function kimiToolDeclaration(tools: readonly ToolSpec[]): string {
  const sorted = deepSortKeys(tools.map((spec) => ({ type: "function", function: spec }))) as Schema[];
  try {
    const functions = sorted.map((tool) => declareFunction(tool.function as Schema));
    return `# Tools\n\n## functions\nnamespace functions {\n${functions.join("\n")}\n}\n`;
  } catch (error) {
    if (!(error instanceof Unsupported) && !(error instanceof TypeError)) throw error;
    return pyJson(sorted, true);
  }
}
