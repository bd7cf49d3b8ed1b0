/**
 * `tinker-ts billing usage` (official `tinker billing usage`) and `tinker-ts billing storage`
 * (the checkpoint storage of now, 0.32's `get_current_checkpoint_storage_usage`).
 */
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { routeName } from "../../wire/endpoints/define.js";
import { checkpointStorageUsage as storageEndpoint } from "../../wire/endpoints/rest.js";
import type { CommandContext, CommandSpec } from "../app.js";
import { UsageError } from "../errors.js";
import { formatSize, printOutput } from "../output.js";
import { callOptions, plural } from "./common.js";

/** Nested objects flattened to `a.b` keys; dates as ISO strings. */
function flatten(
  value: Record<string, unknown>,
  prefix = "",
  out: Record<string, string> = {},
): Record<string, string> {
  for (const [key, entry] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (entry instanceof Date) out[name] = entry.toISOString();
    else if (entry !== null && typeof entry === "object" && !Array.isArray(entry)) {
      flatten(entry as Record<string, unknown>, name, out);
    } else out[name] = entry === null || entry === undefined ? "" : String(entry);
  }
  return out;
}

function columnsOf(rows: Record<string, string>[]): string[] {
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  return columns;
}

function csv(rows: Record<string, string>[]): string {
  const columns = columnsOf(rows);
  const cell = (text: string) => (/[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  return [columns, ...rows.map((row) => columns.map((c) => row[c] ?? ""))]
    .map((line) => line.map(cell).join(","))
    .join("\n")
    .concat("\n");
}

async function writeCsv(ctx: CommandContext, target: string, rows: Record<string, string>[]): Promise<void> {
  const text = csv(rows);
  if (target === "-") ctx.io.stdout.write(text);
  else await writeFile(resolve(ctx.io.cwd, target), text);
}

/** A USD amount, or "N/A" where the server gives no estimate (the local backend never does). */
function usd(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined ? "N/A" : `$${value.toFixed(digits)}`;
}

export const billingCommands: CommandSpec[] = [
  {
    path: ["billing", "storage"],
    summary: "Show the checkpoint storage of now per project and owner, with its estimated monthly cost",
    options: {
      project: { type: "string", value: "ID", description: "only the checkpoints of this project" },
    },
    details:
      `Uses ${routeName(storageEndpoint)} (tinker ${storageEndpoint.since}); the service's figures may lag\n` +
      "an hour or two. Gigabytes are 10^9 bytes.",
    async run(ctx) {
      const projectId = ctx.values.project as string | undefined;
      if (projectId === "") throw new UsageError("--project must not be empty");
      const usage = await ctx
        .service()
        .createRestClient()
        .getCurrentCheckpointStorageUsage({ ...callOptions(ctx), projectId });
      const count = usage.data.reduce((sum, row) => sum + row.checkpoint_count, 0);
      const bytes = usage.data.reduce((sum, row) => sum + row.size_bytes, 0);
      const rate = usage.effective_rate_usd_per_gigabyte_month;
      const where = projectId === undefined ? "" : ` in project ${projectId}`;
      let title = `${plural(count, "checkpoint")}${where}, ${formatSize(bytes)} stored`;
      if (rate !== null && rate !== undefined) title += ` at ${usd(rate, 4)} per GB-month`;
      printOutput(ctx.io, ctx.global.format, {
        json: () => usage,
        title,
        columns: ["Project", "Owner", "Checkpoints", "Size", "Gigabytes", "Est. Monthly Cost"],
        rows: usage.data.map((row) => [
          row.project_id ?? "(none)",
          row.user_email ?? row.user_name ?? row.org_user_urn ?? "",
          String(row.checkpoint_count),
          formatSize(row.size_bytes),
          row.size_gigabytes.toFixed(6),
          usd(row.estimated_monthly_cost_usd),
        ]),
      });
      return 0;
    },
  },
  {
    path: ["billing", "usage"],
    summary: "Show hourly billing usage (tokens, checkpoints, storage) of a window of at most 14 days",
    args: ["[starting_on]", "[ending_before]"],
    minArgs: 0,
    options: {
      start: { type: "string", value: "TIME", description: "start of the window (instead of STARTING_ON)" },
      end: {
        type: "string",
        value: "TIME",
        description: "end of the window, exclusive (instead of ENDING_BEFORE)",
      },
      csv: {
        type: "string",
        value: "PATH",
        description: "write the usage rows as CSV to PATH ('-' for stdout)",
      },
      "sessions-csv": {
        type: "string",
        value: "PATH",
        description: "also write session_id + user_metadata as CSV to PATH ('-' for stdout)",
      },
    },
    details:
      "STARTING_ON and ENDING_BEFORE (or --start/--end) are RFC 3339 times on whole UTC hours,\n" +
      "e.g. 2026-07-13T00:00:00Z, at most 14 days apart.",
    async run(ctx) {
      const [startArg, endArg] = ctx.positionals;
      const start = (ctx.values.start as string | undefined) ?? startArg;
      const end = (ctx.values.end as string | undefined) ?? endArg;
      if ((ctx.values.start !== undefined && startArg !== undefined) || ctx.positionals.length > 2) {
        throw new UsageError("give the window either as arguments or as --start/--end");
      }
      if (start === undefined || end === undefined) {
        throw new UsageError("give the window: STARTING_ON ENDING_BEFORE, or --start and --end");
      }
      const response = await ctx
        .service()
        .createRestClient()
        .getBillingUsage({ ...callOptions(ctx), startingOn: start, endingBefore: end });
      const rows = response.data.map((row) => flatten(row as Record<string, unknown>));
      const sessionRows = Object.entries(response.sessions ?? {}).map(([sessionId, info]) =>
        flatten({ session_id: sessionId, user_metadata: info.user_metadata ?? {} }),
      );
      const csvPath = ctx.values.csv as string | undefined;
      const sessionsCsvPath = ctx.values["sessions-csv"] as string | undefined;
      if (sessionsCsvPath !== undefined) await writeCsv(ctx, sessionsCsvPath, sessionRows);
      if (csvPath !== undefined) await writeCsv(ctx, csvPath, rows);
      if (csvPath !== undefined || sessionsCsvPath !== undefined) return 0;
      const columns = columnsOf(rows);
      printOutput(ctx.io, ctx.global.format, {
        json: () => response,
        title:
          rows.length === 0
            ? "No usage in this window"
            : `${rows.length} usage row${rows.length === 1 ? "" : "s"}`,
        columns,
        rows: rows.map((row) => columns.map((c) => row[c] ?? "")),
      });
      return 0;
    },
  },
];
