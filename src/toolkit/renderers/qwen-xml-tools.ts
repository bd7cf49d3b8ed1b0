/**
 * Qwen3.5's tool calls (also Qwen3.6 and Qwen3.8): XML rather than Qwen3's JSON —
 *
 *     <tool_call>
 *     <function=get_weather>
 *     <parameter=city>
 *     Paris
 *     </parameter>
 *     </function>
 *     </tool_call>
 *
 * — and the system-prompt text that declares the tools and the format. Strings are written as they
 * are; objects and lists as JSON; other values as the template writes them: Qwen3.5 with Python's
 * `str` (`True`, `None`), Qwen3.6/3.8 as JSON (`true`, `null`).
 */

import { toolCallArguments } from "./common.js";
import { pyJson, pyStr } from "./python-format.js";
import type { ToolCall, ToolSpec, UnparsedToolCall } from "./types.js";

/** How scalar arguments are written: Qwen3.5's Python `str`, or Qwen3.6/3.8's JSON. */
export type ScalarStyle = "python" | "json";

const TOOL_FORMAT =
  "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n" +
  "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n" +
  "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n" +
  "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n" +
  "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n" +
  "- Required parameters MUST be specified\n" +
  "- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n" +
  "- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n" +
  "</IMPORTANT>";

/** The tool part of the system turn: the tools as OpenAI tools, one JSON per line, and the format. */
export function qwenToolsText(tools: readonly ToolSpec[]): string {
  const lines = tools.map((spec) => `\n${pyJson({ type: "function", function: spec })}`).join("");
  return `# Tools\n\nYou have access to the following functions:\n\n<tools>${lines}\n</tools>${TOOL_FORMAT}`;
}

function argumentText(value: unknown, style: ScalarStyle): string {
  if (typeof value === "string") return value;
  if (style === "json" || (typeof value === "object" && value !== null)) return pyJson(value);
  return pyStr(value);
}

/** The calls of an assistant turn, as the template writes them after its content. */
export function qwenToolCallsText(
  calls: readonly ToolCall[],
  hasContent: boolean,
  style: ScalarStyle,
): string {
  return calls
    .map((call, k) => {
      const params = Object.entries(toolCallArguments(call))
        .map(([name, value]) => `<parameter=${name}>\n${argumentText(value, style)}\n</parameter>\n`)
        .join("");
      const lead = k > 0 ? "\n" : hasContent ? "\n\n" : "";
      return `${lead}<tool_call>\n<function=${call.name}>\n${params}</function>\n</tool_call>`;
    })
    .join("");
}

const FUNCTION = /^\s*<function=([^>\n]+)>([\s\S]*?)<\/function>\s*$/;
const PARAMETER = /<parameter=([^>\n]+)>([\s\S]*?)<\/parameter>/g;
const PYTHON_SCALARS: Record<string, unknown> = { True: true, False: false, None: null };

/** A parameter's value read back: JSON when it is JSON (but a string stays as written), else text. */
function readValue(text: string, style: ScalarStyle): unknown {
  const raw = text.replace(/^\n/, "").replace(/\n$/, "");
  if (style === "python" && raw in PYTHON_SCALARS) return PYTHON_SCALARS[raw];
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "string" ? raw : value;
  } catch {
    return raw;
  }
}

/** One `<tool_call>` block's inside, read back into a call. */
export function parseQwenToolCall(inner: string, style: ScalarStyle): ToolCall | UnparsedToolCall {
  const raw = `<tool_call>${inner}</tool_call>`;
  const match = FUNCTION.exec(inner);
  if (match === null) return { raw, error: "expected <function=NAME>…</function> inside <tool_call>" };
  const args: Record<string, unknown> = {};
  let at = 0;
  for (const param of match[2]!.matchAll(PARAMETER)) {
    if (match[2]!.slice(at, param.index).trim() !== "") {
      return { raw, error: "text between parameters" };
    }
    args[param[1]!.trim()] = readValue(param[2]!, style);
    at = param.index + param[0].length;
  }
  if (match[2]!.slice(at).trim() !== "") return { raw, error: "text after the last parameter" };
  return { name: match[1]!.trim(), arguments: JSON.stringify(args) };
}
