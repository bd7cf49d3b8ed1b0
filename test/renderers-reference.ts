/**
 * Rendering a model's own chat template (a copy kept outside the repository, named by an environment
 * variable) the way transformers' apply_chat_template does, for the renderer parity tests: the
 * template is run by @huggingface/jinja, with Python's `str.strip(chars)` restored (the package trims
 * all whitespace whatever the argument) and `raise_exception` raising.
 */

import { existsSync, readFileSync } from "node:fs";
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import type { MultimodalMessage, ToolCall, ToolSpec } from "../src/toolkit/renderers/index.js";

/** The template file an environment variable names, or undefined when it is unset. */
export function templateFromEnv(variable: string): string | undefined {
  const path = process.env[variable];
  if (path === undefined || path === "") return undefined;
  if (!existsSync(path)) throw new Error(`${variable}=${path}: no such file`);
  return readFileSync(path, "utf8");
}

const escapeClass = (chars: string) => chars.replace(/[\\\]^-]/g, "\\$&");

export function renderTemplate(source: string, items: Record<string, unknown>): string {
  const template = new Template(source);
  const rewire = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    for (const child of Object.values(node)) rewire(child);
    type Member = { type?: string; object?: unknown; property?: { value?: unknown } };
    const call = node as { type?: string; callee?: Member; args?: unknown[] };
    const name = call.callee?.property?.value;
    if (
      call.type === "CallExpression" &&
      call.callee?.type === "MemberExpression" &&
      call.args?.length === 1
    ) {
      if (name === "strip" || name === "lstrip" || name === "rstrip") {
        call.args = [call.callee.object, ...call.args];
        (call as { callee: unknown }).callee = { type: "Identifier", value: `py_${name}` };
      }
    }
  };
  rewire(template.parsed);
  const env = new Environment();
  const globals: Record<string, unknown> = {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    range: (start: number, stop?: number, step = 1) => {
      const [from, to] = stop === undefined ? [0, start] : [start, stop];
      const out: number[] = [];
      for (let i = from; step > 0 ? i < to : i > to; i += step) out.push(i);
      return out;
    },
    raise_exception: (message: string) => {
      throw new Error(`template: ${message}`);
    },
    py_lstrip: (text: string, chars: string) => text.replace(new RegExp(`^[${escapeClass(chars)}]+`), ""),
    py_rstrip: (text: string, chars: string) => text.replace(new RegExp(`[${escapeClass(chars)}]+$`), ""),
    py_strip: (text: string, chars: string) =>
      text.replace(new RegExp(`^[${escapeClass(chars)}]+|[${escapeClass(chars)}]+$`, "g"), ""),
    ...items,
  };
  for (const [name, value] of Object.entries(globals)) env.set(name, value);
  return new Interpreter(env).run(template.parsed).value as string;
}

/** A message as an OpenAI-style template expects it (`reasoning_content`, `tool_calls`, `tool_call_id`). */
export function templateMessage(message: MultimodalMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    role: message.role,
    content:
      typeof message.content === "string"
        ? message.content
        : message.content.map((part) =>
            part.type === "text" ? { type: "text", text: part.text } : { type: "image" },
          ),
  };
  if (message.thinking !== undefined) out.reasoning_content = message.thinking;
  if (message.name !== undefined) out.name = message.name;
  if (message.toolCallId !== undefined) out.tool_call_id = message.toolCallId;
  if (message.toolCalls !== undefined) {
    out.tool_calls = message.toolCalls.map((call: ToolCall) => ({
      ...(call.id === undefined ? {} : { id: call.id }),
      type: "function",
      function: {
        name: call.name,
        arguments: typeof call.arguments === "string" ? JSON.parse(call.arguments) : call.arguments,
      },
    }));
  }
  return out;
}

export const openAiTools = (tools: readonly ToolSpec[]) =>
  tools.map((spec) => ({ type: "function", function: spec }));
