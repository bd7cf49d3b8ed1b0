/**
 * The `tinker-ts` command line: dispatch, global options, help and exit codes. Commands live in
 * ./commands/, one module per group, and follow the official `tinker` CLI (FEATURES.md §1.9).
 *
 * Exit codes (EXIT_CODES, printed by --help): 0 success, 1 failure (API, network, file system),
 * 2 usage error. Errors go to stderr as one `Error: …` line, without a stack trace and with the API
 * key redacted.
 */
import { parseArgs } from "node:util";
import { ServiceClient } from "../index.js";
import { authCommands } from "./commands/auth.js";
import { billingCommands } from "./commands/billing.js";
import { checkpointCommands } from "./commands/checkpoint.js";
import { runCommands } from "./commands/run.js";
import { sampleCommands } from "./commands/sample.js";
import { serveCommands } from "./commands/serve.js";
import { sessionCommands } from "./commands/session.js";
import { versionCommands } from "./commands/version.js";
import { type CliCredential, clientCredentialOptions, resolveCliCredential } from "./credentials.js";
import { CliError, UsageError } from "./errors.js";
import { type CliIO, colorEnabled, type OutputFormat, style } from "./output.js";

export { CliError, UsageError } from "./errors.js";
export type { CliIO } from "./output.js";

/** A parseArgs option plus its help text. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Shown in help, e.g. `N` in `--limit N`. */
  value?: string;
  description: string;
}

export interface CommandSpec {
  /** The command words, e.g. ["checkpoint", "list"]. */
  path: string[];
  summary: string;
  /** Positional arguments as shown in usage, e.g. `<tinker_path>`; `[x]` optional, `...` variadic. */
  args?: string[];
  /** Smallest and largest number of positionals (default: from `args`). */
  minArgs?: number;
  maxArgs?: number;
  options?: Record<string, OptionSpec>;
  /** Extra help text after the options. */
  details?: string;
  /** Does not talk to the API (no --base-url / --api-key needed). */
  offline?: boolean;
  run(ctx: CommandContext): Promise<number | undefined>;
}

export interface GlobalOptions {
  format: OutputFormat;
  baseUrl: string | undefined;
  apiKey: string | undefined;
  /** --timeout: a deadline for the whole command. */
  timeoutMs: number | undefined;
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  io: CliIO;
  global: GlobalOptions;
  /** The SDK client for --base-url/--api-key (created on first use, closed after the command). */
  service(): ServiceClient;
}

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  "base-url": {
    type: "string",
    value: "URL",
    description: "API base URL (default: TINKER_BASE_URL, else the service)",
  },
  "api-key": {
    type: "string",
    value: "KEY",
    description: "API key (default: TINKER_API_KEY, else TINKER_CREDENTIAL_CMD, else the stored key)",
  },
  format: { type: "string", short: "f", value: "table|json", description: "output format (default: table)" },
  timeout: {
    type: "string",
    value: "S",
    description: "give up after S seconds (default: the SDK's retry policy)",
  },
  help: { type: "boolean", short: "h", description: "show help" },
};

const GROUPS: Record<string, string> = {
  run: "Manage training runs",
  checkpoint: "Manage checkpoints",
  session: "Manage sessions",
  billing: "View billing usage and checkpoint storage",
  auth: "Log in with an API key, log out, show the credential in use",
};

export const COMMANDS: CommandSpec[] = [
  ...runCommands,
  ...checkpointCommands,
  ...sessionCommands,
  ...billingCommands,
  ...authCommands,
  ...sampleCommands,
  ...versionCommands,
  ...serveCommands,
];

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const color = colorEnabled(io.stderr, io.env);
  let apiKey: string | undefined;
  let service: ServiceClient | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const { command, words, rest } = findCommand(argv);
    if (!command && words.length === 0 && (rest.includes("--version") || rest.includes("-V"))) {
      return (await versionCommand.run(versionContext(io))) ?? 0;
    }
    if (!command) return groupHelp(io, words, rest);
    const options = { ...GLOBAL_OPTIONS, ...command.options };
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: attachNegativeValues(rest, options),
        options: parseArgsOptions(options),
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError(`${(error as Error).message.split("\n")[0]}`);
    }
    const values = parsed.values as CommandContext["values"];
    if (values.help) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const [min, max] = arity(command);
    if (parsed.positionals.length < min) {
      throw new UsageError(`missing argument ${command.args?.[parsed.positionals.length] ?? ""}`.trim());
    }
    if (parsed.positionals.length > max) {
      throw new UsageError(`unexpected argument "${parsed.positionals[max]}"`);
    }
    const format = (values.format as string | undefined) ?? "table";
    if (format !== "table" && format !== "json") {
      throw new UsageError(`--format must be "table" or "json", got "${format}"`);
    }
    const timeoutText = values.timeout as string | undefined;
    const timeout = timeoutText === undefined ? undefined : Number(timeoutText);
    if (timeout !== undefined && !(timeout > 0)) {
      throw new UsageError(`--timeout must be a positive number of seconds, got ${timeoutText}`);
    }
    // `serve` has its own repeatable --api-key (the keys it accepts), not the client's.
    apiKey =
      command.path[0] === "serve" ? undefined : ((values["api-key"] as string) ?? io.env.TINKER_API_KEY);
    // Without a key, the SDK's other sources in its order: TINKER_CREDENTIAL_CMD, then the stored key.
    // (`auth` commands look at the sources themselves.)
    let credential: CliCredential | undefined;
    if (!apiKey && !command.offline && command.path[0] !== "serve" && command.path[0] !== "auth") {
      credential = await resolveCliCredential(undefined, io.env);
      if (credential.source === "stored") apiKey = credential.apiKey;
    }
    const global: GlobalOptions = {
      format,
      baseUrl: (values["base-url"] as string | undefined) ?? io.env.TINKER_BASE_URL,
      apiKey,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    };
    const ctx: CommandContext = {
      values,
      positionals: parsed.positionals,
      io,
      global,
      service() {
        if (!service) {
          if (!global.apiKey && credential?.source !== "command") {
            throw new CliError(
              "no API key",
              "Pass --api-key, set TINKER_API_KEY, or store a key with `tinker-ts auth login --api-key -`.",
            );
          }
          const credentialOptions = global.apiKey
            ? { apiKey: global.apiKey }
            : clientCredentialOptions(credential!);
          // No telemetry from a short-lived command line tool.
          service = new ServiceClient({ ...credentialOptions, baseURL: global.baseUrl, telemetry: false });
        }
        return service;
      },
    };
    if (global.timeoutMs === undefined || command.path[0] === "serve") return (await command.run(ctx)) ?? 0;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CliError(`timed out after ${timeout} s`, "Raise --timeout, or check --base-url.")),
        global.timeoutMs,
      );
    });
    return (await Promise.race([command.run(ctx), deadline])) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${style(color, "red", "Error:")} ${redact(error.message, apiKey)}\n`);
      io.stderr.write(`Run "tinker-ts ${helpTarget(argv)}--help" for usage.\n`);
      return 2;
    }
    io.stderr.write(`${style(color, "red", "Error:")} ${redact(describeError(error), apiKey)}\n`);
    if (error instanceof CliError && error.hint) io.stderr.write(`${redact(error.hint, apiKey)}\n`);
    return 1;
  } finally {
    clearTimeout(timer);
    await service?.close().catch(() => {});
  }
}

/** The command named by the leading words of `argv` (options may come before them). */
function findCommand(argv: string[]): { command?: CommandSpec; words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  const takesValue = new Set(["--base-url", "--api-key", "--format", "-f", "--timeout"]);
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") break;
    if (arg.startsWith("-")) {
      rest.push(arg);
      if (takesValue.has(arg) && i + 1 < argv.length) rest.push(argv[++i]);
      continue;
    }
    const candidate = [...words, arg];
    if (!COMMANDS.some((c) => startsWith(c.path, candidate))) break;
    words.push(arg);
    const exact = COMMANDS.find((c) => c.path.join(" ") === candidate.join(" "));
    if (exact) return { command: exact, words, rest: [...rest, ...argv.slice(i + 1)] };
  }
  return { words, rest: [...rest, ...argv.slice(i)] };
}

function startsWith(path: string[], prefix: string[]): boolean {
  return prefix.length <= path.length && prefix.every((word, i) => path[i] === word);
}

/** `tinker-ts`, `tinker-ts checkpoint`, or an unknown command: help or a usage error. */
function groupHelp(io: CliIO, words: string[], rest: string[]): number {
  const unknown = rest.find((arg) => !arg.startsWith("-"));
  if (unknown) {
    const where = words.length === 0 ? "" : `${words.join(" ")} `;
    throw new UsageError(`unknown command "${where}${unknown}"`);
  }
  const text = words.length === 0 ? topHelp() : subHelp(words[0]);
  if (rest.includes("--help") || rest.includes("-h") || (words.length === 0 && rest.length === 0)) {
    io.stdout.write(text);
    return 0;
  }
  io.stderr.write(text);
  return 2;
}

function topHelp(): string {
  const lines = ["Usage: tinker-ts [global options] <command> [options]", "", "Commands:"];
  const entries: [string, string][] = Object.entries(GROUPS);
  for (const command of COMMANDS) {
    if (command.path.length === 1) entries.push([command.path[0], command.summary]);
  }
  lines.push(...twoColumns(entries));
  const version: OptionSpec = { type: "boolean", short: "V", description: "print the version and exit" };
  lines.push("", "Global options:", ...optionLines({ ...GLOBAL_OPTIONS, version }));
  lines.push("", 'Run "tinker-ts <command> --help" for the options of a command.', "", EXIT_CODES, "");
  return lines.join("\n");
}

/** What the exit status means, for every command. */
export const EXIT_CODES = "Exit codes: 0 success, 1 failure (API, network, files), 2 usage error.";

/** The context `--version` runs `tinker-ts version` with: no options, table output, no client. */
function versionContext(io: CliIO): CommandContext {
  return {
    values: {},
    positionals: [],
    io,
    global: { format: "table", baseUrl: undefined, apiKey: undefined, timeoutMs: undefined },
    service() {
      throw new Error("version needs no client");
    },
  };
}

const versionCommand = versionCommands[0];

/**
 * `--max-tokens -3` as `--max-tokens=-3`: parseArgs takes a value starting with `-` for an option
 * (and calls it ambiguous), so a negative number would never reach the command's own check, which
 * says what is allowed.
 */
function attachNegativeValues(args: string[], options: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const next = args[i + 1];
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : Object.keys(options).find((n) => arg === `-${options[n].short}`);
    if (
      arg !== "--" &&
      name !== undefined &&
      options[name]?.type === "string" &&
      next !== undefined &&
      /^-(\d|\.\d)/.test(next)
    ) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
    if (arg === "--") {
      out.push(...args.slice(i + 1));
      break;
    }
  }
  return out;
}

function subHelp(group: string): string {
  const commands = COMMANDS.filter((c) => c.path[0] === group);
  const lines = [`Usage: tinker-ts ${group} <command> [options]`, "", GROUPS[group] ?? "", "", "Commands:"];
  lines.push(...twoColumns(commands.map((c) => [c.path.slice(1).join(" "), c.summary])));
  lines.push("", `Run "tinker-ts ${group} <command> --help" for the options of a command.`, "");
  return lines.join("\n");
}

export function commandHelp(command: CommandSpec): string {
  const args = command.args?.length ? ` ${command.args.join(" ")}` : "";
  const lines = [`Usage: tinker-ts ${command.path.join(" ")} [options]${args}`, "", command.summary];
  if (command.options && Object.keys(command.options).length > 0) {
    lines.push("", "Options:", ...optionLines(command.options));
  }
  if (command.details) lines.push("", command.details.trimEnd());
  const globals = command.offline
    ? { help: GLOBAL_OPTIONS.help, format: GLOBAL_OPTIONS.format }
    : command.path[0] === "serve"
      ? { help: GLOBAL_OPTIONS.help }
      : GLOBAL_OPTIONS;
  lines.push("", "Global options:", ...optionLines(globals), "", EXIT_CODES, "");
  return lines.join("\n");
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  return twoColumns(
    Object.entries(options).map(([name, spec]) => {
      const short = spec.short ? `-${spec.short}, ` : "    ";
      const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
      return [`${short}--${name}${value}`, spec.description];
    }),
  );
}

function twoColumns(entries: [string, string][]): string[] {
  const width = Math.max(0, ...entries.map(([left]) => left.length));
  return entries.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`.trimEnd());
}

function parseArgsOptions(options: Record<string, OptionSpec>) {
  const result: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(options)) {
    result[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  return result;
}

function arity(command: CommandSpec): [number, number] {
  const args = command.args ?? [];
  const min = command.minArgs ?? args.filter((a) => a.startsWith("<")).length;
  const max =
    command.maxArgs ?? (args.some((a) => a.endsWith("...")) ? Number.POSITIVE_INFINITY : args.length);
  return [min, max];
}

function helpTarget(argv: string[]): string {
  const { words } = findCommand(argv);
  return words.length ? `${words.join(" ")} ` : "";
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const issues = (error as { issues?: { path?: string; message: string }[] }).issues;
  if (Array.isArray(issues) && issues.length > 0 && error.name === "ValidationError") {
    return issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join("; ");
  }
  const cause = (error as { cause?: unknown }).cause;
  if (error.name === "TypeError" && error.message === "fetch failed" && cause instanceof Error) {
    return `network error: ${cause.message}`;
  }
  return error.message;
}

/** Never print the API key, whatever an error message contains. */
export function redact(text: string, apiKey: string | undefined): string {
  return apiKey && apiKey.length >= 4 ? text.split(apiKey).join("***") : text;
}
