/**
 * `tinker-ts checkpoint …` (official `tinker checkpoint …`): list, search, info, publish, unpublish,
 * set-ttl, delete, download.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Checkpoint, CheckpointSearchCursor, RestClient, SearchOwner } from "../../index.js";
import { routeName } from "../../wire/endpoints/define.js";
import {
  SEARCH_LIMIT,
  SEARCH_OWNERS,
  searchCheckpoints as searchEndpoint,
} from "../../wire/endpoints/rest.js";
import { CHECKPOINT_TYPES, type CheckpointType, checkpointTypeOfSegment } from "../../wire/rest-schemas.js";
import type { CommandContext, CommandSpec } from "../app.js";
import { downloadToFile, extractArchive } from "../download.js";
import { CliError, UsageError } from "../errors.js";
import { formatMetadata, formatSize, formatTime, printOutput, yesNo } from "../output.js";
import { callOptions, integerOption, parseCheckpointPath, plural } from "./common.js";

const PATH_HELP =
  "<tinker_path> is tinker://<run-id>/weights/<name> or tinker://<run-id>/sampler_weights/<name>.";
const PAGE = 1000;

const LIST_COLUMNS = ["Checkpoint ID", "Type", "Size", "Public", "Created", "Expires", "Path"];

/**
 * The checkpoint table: the official columns, plus `Metadata` (§W3) when any checkpoint shown has
 * some, so listings from servers without it look as before.
 */
export function checkpointTable(checkpoints: Checkpoint[]): { columns: string[]; rows: string[][] } {
  const withMetadata = checkpoints.some((c) => formatMetadata(c.user_metadata) !== "");
  return {
    columns: withMetadata ? [...LIST_COLUMNS, "Metadata"] : LIST_COLUMNS,
    rows: checkpoints.map((c) => [
      c.checkpoint_id,
      c.checkpoint_type,
      formatSize(c.size_bytes),
      yesNo(c.public),
      formatTime(c.time),
      c.expires_at ? formatTime(c.expires_at) : "Never",
      c.tinker_path,
      ...(withMetadata ? [formatMetadata(c.user_metadata)] : []),
    ]),
  };
}

/** The checkpoint at `path`, from its run's list (there is no single-checkpoint endpoint). */
async function findCheckpoint(ctx: CommandContext, rest: RestClient, path: string): Promise<Checkpoint> {
  const { runId } = parseCheckpointPath(path);
  const { checkpoints } = await rest.listCheckpoints(runId, callOptions(ctx));
  const checkpoint = checkpoints.find((c) => c.tinker_path === path);
  if (!checkpoint) throw new CliError(`checkpoint not found: ${path}`);
  return checkpoint;
}

/** Asks before a destructive action; without a terminal, --yes is required. */
async function confirmed(ctx: CommandContext, question: string): Promise<boolean> {
  if (ctx.values.yes) return true;
  if (!ctx.io.stdinIsTTY || !ctx.io.confirm) {
    throw new CliError(
      "refusing to delete without confirmation",
      "Pass --yes (-y) when stdin is not a terminal.",
    );
  }
  return ctx.io.confirm(question);
}

/** A checkpoint type given by name (`training`) or by path segment (`weights`). */
function checkpointTypeOf(text: string): CheckpointType | undefined {
  return (CHECKPOINT_TYPES as readonly string[]).includes(text)
    ? (text as CheckpointType)
    : checkpointTypeOfSegment(text);
}

/** `checkpoint delete --type`: the kinds a run lists (§2.7.3). */
const LISTED_TYPES: readonly CheckpointType[] = ["training", "sampler"];
/** The largest search page the protocol allows. */
const SEARCH_PAGE = SEARCH_LIMIT.max;

/** `--metadata KEY=VALUE`, repeated: the pairs every match must carry. */
function metadataOption(values: string[] | undefined): Record<string, string> | undefined {
  if (!values || values.length === 0) return undefined;
  const metadata: Record<string, string> = {};
  for (const pair of values) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`--metadata must be KEY=VALUE, got "${pair}"`);
    const key = pair.slice(0, at);
    if (Object.hasOwn(metadata, key)) throw new UsageError(`--metadata gives "${key}" twice`);
    metadata[key] = pair.slice(at + 1);
  }
  return metadata;
}

/** ISO 8601 date or date-time; UTC unless it says otherwise. */
function parseDate(text: string, option: string): Date {
  let value = text.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) value += "T00:00:00Z";
  else if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(value)) value += "Z";
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--${option} must be an ISO 8601 date such as 2024-01-01 or 2024-01-01T08:00:00Z`);
  }
  return date;
}

export const checkpointCommands: CommandSpec[] = [
  {
    path: ["checkpoint", "list"],
    summary: "List one run's checkpoints, or your most recent checkpoints across runs",
    options: {
      "run-id": { type: "string", value: "ID", description: "list the checkpoints of this training run" },
      limit: {
        type: "string",
        value: "N",
        description: "across runs: how many to show (default 20; 0 = all)",
      },
    },
    async run(ctx) {
      const rest = ctx.service().createRestClient();
      const runId = ctx.values["run-id"] as string | undefined;
      const limit = integerOption(ctx, "limit", 20);
      let checkpoints: Checkpoint[];
      let total: number;
      if (runId !== undefined) {
        checkpoints = (await rest.listCheckpoints(runId, callOptions(ctx))).checkpoints;
        total = checkpoints.length;
      } else {
        checkpoints = [];
        total = 0;
        for (;;) {
          const want = limit === 0 ? PAGE : Math.min(PAGE, limit - checkpoints.length);
          const page = await rest.listUserCheckpoints({
            ...callOptions(ctx),
            limit: want,
            offset: checkpoints.length,
          });
          checkpoints.push(...page.checkpoints);
          total = page.cursor?.total_count ?? checkpoints.length;
          const target = limit === 0 ? total : Math.min(limit, total);
          if (page.checkpoints.length < want || checkpoints.length >= target) break;
        }
      }
      const where = runId !== undefined ? ` for run ${runId}` : "";
      let title =
        checkpoints.length === 0
          ? `No checkpoints found${where}`
          : `${plural(checkpoints.length, "checkpoint")}${where}`;
      if (total > checkpoints.length)
        title += ` (${total - checkpoints.length} more not shown, use --limit to see more)`;
      printOutput(ctx.io, ctx.global.format, {
        json: () =>
          runId !== undefined ? { run_id: runId, checkpoints } : { checkpoints, total_count: total },
        title,
        ...checkpointTable(checkpoints),
      });
      return 0;
    },
  },
  {
    path: ["checkpoint", "search"],
    summary: "Search checkpoints by project, metadata, type and base model, newest first (experimental)",
    options: {
      project: {
        type: "string",
        multiple: true,
        value: "ID",
        description: "only checkpoints of this project (repeatable; default: every project)",
      },
      metadata: {
        type: "string",
        multiple: true,
        value: "KEY=VALUE",
        description: "only checkpoints saved with this user_metadata pair (repeatable; all must match)",
      },
      type: { type: "string", value: "TYPE", description: "only training, sampler or external checkpoints" },
      "base-model": {
        type: "string",
        multiple: true,
        value: "NAME",
        description: "only checkpoints of runs on this base model (repeatable)",
      },
      owner: {
        type: "string",
        value: "me|any",
        description: "yours (me, the default) or every checkpoint you may list (any)",
      },
      limit: { type: "string", value: "N", description: "how many to show (default 20; 0 = all)" },
    },
    details:
      `Uses ${routeName(searchEndpoint)} (tinker ${searchEndpoint.since}, experimental); older servers answer 404.\n` +
      "TYPE is training (or weights), sampler (or sampler_weights) or external.",
    async run(ctx) {
      const typeText = ctx.values.type as string | undefined;
      const checkpointType = typeText === undefined ? undefined : checkpointTypeOf(typeText);
      if (typeText !== undefined && checkpointType === undefined) {
        throw new UsageError("--type must be training, sampler or external");
      }
      const owner = ctx.values.owner as SearchOwner | undefined;
      if (owner !== undefined && !SEARCH_OWNERS.includes(owner)) {
        throw new UsageError(`--owner must be "me" or "any", got "${owner}"`);
      }
      const limit = integerOption(ctx, "limit", 20);
      const filters = {
        projectIds: ctx.values.project as string[] | undefined,
        userMetadata: metadataOption(ctx.values.metadata as string[] | undefined),
        checkpointType,
        baseModels: ctx.values["base-model"] as string[] | undefined,
        owner,
      };
      const rest = ctx.service().createRestClient();
      const checkpoints: Checkpoint[] = [];
      let cursor: CheckpointSearchCursor | null = null;
      for (;;) {
        const want = limit === 0 ? SEARCH_PAGE : Math.min(SEARCH_PAGE, limit - checkpoints.length);
        const page = await rest.searchCheckpoints({ ...callOptions(ctx), ...filters, limit: want, cursor });
        checkpoints.push(...page.checkpoints);
        cursor = page.next_cursor ?? null;
        if (cursor === null || page.checkpoints.length === 0) break;
        if (limit !== 0 && checkpoints.length >= limit) break;
      }
      let title =
        checkpoints.length === 0
          ? "No checkpoints found"
          : `${plural(checkpoints.length, "checkpoint")} found`;
      if (cursor !== null) title += " (more not shown, use --limit to see more)";
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({ checkpoints, next_cursor: cursor }),
        title,
        ...checkpointTable(checkpoints),
      });
      return 0;
    },
  },
  {
    path: ["checkpoint", "info"],
    summary: "Show the details of a checkpoint, with the LoRA settings of its run",
    args: ["<tinker_path>"],
    details: PATH_HELP,
    async run(ctx) {
      const path = ctx.positionals[0];
      const { runId } = parseCheckpointPath(path);
      const rest = ctx.service().createRestClient();
      const [checkpoint, run] = await Promise.all([
        findCheckpoint(ctx, rest, path),
        rest.getTrainingRun(runId, callOptions(ctx)),
      ]);
      const rows = [
        ["Checkpoint ID", checkpoint.checkpoint_id],
        ["Type", checkpoint.checkpoint_type],
        ["Tinker Path", checkpoint.tinker_path],
        ["Size", formatSize(checkpoint.size_bytes)],
        ["Public", yesNo(checkpoint.public)],
        ["Created", formatTime(checkpoint.time)],
        ["Expires", checkpoint.expires_at ? formatTime(checkpoint.expires_at) : "Never"],
        ["Training Run ID", runId],
        ["Base Model", run.base_model],
        ["LoRA", run.is_lora ? (run.lora_rank ? `Yes (Rank ${run.lora_rank})` : "Yes") : "No"],
      ];
      const metadata = Object.entries(checkpoint.user_metadata ?? {});
      if (metadata.length > 0) {
        rows.push(["Metadata", ""]);
        for (const [key, value] of metadata) rows.push([`  - ${key}`, value]);
      }
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({
          ...checkpoint,
          base_model: run.base_model,
          is_lora: run.is_lora,
          lora_rank: run.lora_rank ?? null,
        }),
        title: `Checkpoint: ${checkpoint.checkpoint_id}`,
        columns: ["Property", "Value"],
        rows,
      });
      return 0;
    },
  },
  ...(["publish", "unpublish"] as const).map(
    (action): CommandSpec => ({
      path: ["checkpoint", action],
      summary:
        action === "publish"
          ? "Make a checkpoint public (owner only)"
          : "Make a public checkpoint private again (owner only)",
      args: ["<tinker_path>"],
      details: PATH_HELP,
      async run(ctx) {
        const path = ctx.positionals[0];
        const rest = ctx.service().createRestClient();
        const want = action === "publish";
        // The server answers 409 when nothing would change, which the SDK retries for minutes:
        // look first and say so at once.
        const checkpoint = await findCheckpoint(ctx, rest, path);
        if (checkpoint.public === want) {
          throw new CliError(`checkpoint is already ${want ? "public" : "private"}: ${path}`);
        }
        if (want) await rest.publishCheckpointFromTinkerPath(path, callOptions(ctx));
        else await rest.unpublishCheckpointFromTinkerPath(path, callOptions(ctx));
        printOutput(ctx.io, ctx.global.format, {
          json: () => ({ tinker_path: path, public: want }),
          title: `${want ? "Published" : "Unpublished"} ${path}`,
          columns: [],
          rows: [],
        });
        return 0;
      },
    }),
  ),
  {
    path: ["checkpoint", "set-ttl"],
    summary: "Set or remove the expiry of a checkpoint",
    args: ["<tinker_path>", "[seconds|none]"],
    options: {
      ttl: { type: "string", value: "SECONDS", description: "expire this many seconds from now" },
      remove: { type: "boolean", description: "remove the expiry (same as the argument none)" },
    },
    details: `${PATH_HELP}\nGive the TTL as --ttl SECONDS or as the second argument; --remove or "none" clears it.`,
    async run(ctx) {
      const [path, positional] = ctx.positionals;
      parseCheckpointPath(path);
      const given = [
        ctx.values.ttl !== undefined,
        ctx.values.remove === true,
        positional !== undefined,
      ].filter(Boolean).length;
      if (given === 0)
        throw new UsageError("give the TTL in seconds (--ttl SECONDS or an argument) or --remove");
      if (given > 1) throw new UsageError("give only one of --ttl, --remove or the TTL argument");
      const text = (ctx.values.ttl as string | undefined) ?? positional;
      let ttl: number | null = null;
      if (ctx.values.remove !== true && text !== "none") {
        ttl = Number(text);
        if (!Number.isInteger(ttl) || ttl <= 0) {
          throw new UsageError(`the TTL must be a positive whole number of seconds or "none", got "${text}"`);
        }
      }
      await ctx.service().createRestClient().setCheckpointTtlFromTinkerPath(path, ttl, callOptions(ctx));
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({ tinker_path: path, ttl_seconds: ttl }),
        title: ttl === null ? `Removed the expiry of ${path}` : `${path} expires in ${ttl} s`,
        columns: [],
        rows: [],
      });
      return 0;
    },
  },
  {
    path: ["checkpoint", "delete"],
    summary: "Delete checkpoints permanently",
    args: ["[tinker_path...]"],
    minArgs: 0,
    options: {
      "run-id": {
        type: "string",
        value: "ID",
        description: "delete the checkpoints of this run (with the filters)",
      },
      type: { type: "string", value: "TYPE", description: "with --run-id: only weights or sampler_weights" },
      before: {
        type: "string",
        value: "DATE",
        description: "with --run-id: only those created before (ISO 8601, UTC)",
      },
      after: {
        type: "string",
        value: "DATE",
        description: "with --run-id: only those created after (ISO 8601, UTC)",
      },
      yes: { type: "boolean", short: "y", description: "do not ask for confirmation" },
    },
    details: `${PATH_HELP}\nThis cannot be undone. Without a terminal, --yes is required.`,
    async run(ctx) {
      const runId = ctx.values["run-id"] as string | undefined;
      const paths = ctx.positionals;
      if (paths.length === 0 && runId === undefined)
        throw new UsageError("give checkpoint paths or --run-id");
      if (paths.length > 0 && runId !== undefined)
        throw new UsageError("give either checkpoint paths or --run-id, not both");
      const typeText = ctx.values.type as string | undefined;
      const beforeText = ctx.values.before as string | undefined;
      const afterText = ctx.values.after as string | undefined;
      if (runId === undefined && (typeText || beforeText || afterText)) {
        throw new UsageError("--type, --before and --after need --run-id");
      }
      for (const path of paths) parseCheckpointPath(path);
      const rest = ctx.service().createRestClient();
      let targets = paths;
      if (runId !== undefined) {
        const named = typeText === undefined ? undefined : checkpointTypeOf(typeText);
        const type = named !== undefined && LISTED_TYPES.includes(named) ? named : undefined;
        if (typeText !== undefined && !type)
          throw new UsageError(`--type must be weights or sampler_weights`);
        const before = beforeText === undefined ? undefined : parseDate(beforeText, "before");
        const after = afterText === undefined ? undefined : parseDate(afterText, "after");
        const { checkpoints } = await rest.listCheckpoints(runId, callOptions(ctx));
        targets = checkpoints
          .filter(
            (c) =>
              (type === undefined || c.checkpoint_type === type) &&
              (!before || c.time < before) &&
              (!after || c.time > after),
          )
          .map((c) => c.tinker_path);
        if (targets.length === 0) {
          ctx.io.stderr.write(`No checkpoints found for run ${runId} matching the filters\n`);
          return 0;
        }
      }
      if (!ctx.values.yes) {
        ctx.io.stderr.write(
          `Will delete ${plural(targets.length, "checkpoint")}:\n${targets.map((p) => `  - ${p}\n`).join("")}`,
        );
        if (
          !(await confirmed(
            ctx,
            `Delete ${plural(targets.length, "checkpoint")}? This cannot be undone. [y/N] `,
          ))
        ) {
          ctx.io.stderr.write("Deletion cancelled.\n");
          return 1;
        }
      }
      const failed: { tinker_path: string; error: string }[] = [];
      let deleted = 0;
      for (const path of targets) {
        try {
          await rest.deleteCheckpointFromTinkerPath(path, callOptions(ctx));
          deleted++;
        } catch (error) {
          failed.push({ tinker_path: path, error: (error as Error).message });
        }
      }
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({ deleted_count: deleted, failed }),
        title: `Deleted ${plural(deleted, "checkpoint")}`,
        columns: failed.length ? ["Failed", "Error"] : [],
        rows: failed.map((f) => [f.tinker_path, f.error]),
      });
      return failed.length > 0 ? 1 : 0;
    },
  },
  {
    path: ["checkpoint", "download"],
    summary: "Download a checkpoint archive and extract it safely",
    args: ["<tinker_path>"],
    options: {
      output: {
        type: "string",
        short: "o",
        value: "DIR",
        description: "parent directory (default: the current one)",
      },
      force: { type: "boolean", description: "replace the target directory if it exists" },
    },
    details:
      `${PATH_HELP}\nExtracts into <DIR>/<run-id>_<kind>_<name>/ (characters other than letters, digits, ".", "-"\n` +
      `and "_" become "_"). The archive is fetched from its signed URL without your API key. Links,\n` +
      `absolute paths and paths leaving the directory are refused, and nothing is written then.`,
    async run(ctx) {
      const path = ctx.positionals[0];
      const { runId, checkpointId } = parseCheckpointPath(path);
      const parent = resolve(ctx.io.cwd, (ctx.values.output as string | undefined) ?? ".");
      const target = join(parent, `${runId}_${checkpointId.replace("/", "_")}`.replace(/[^\w.-]/g, "_"));
      const force = ctx.values.force === true;
      if (existsSync(target) && !force) {
        throw new CliError(
          `target directory already exists: ${target}`,
          "Use --force to replace it, or choose another --output.",
        );
      }
      const showProgress = ctx.global.format !== "json";
      const rest = ctx.service().createRestClient();
      if (showProgress) ctx.io.stderr.write(`Requesting the archive of ${path} (this may take a while)...\n`);
      const { url } = await rest.getCheckpointArchiveUrlFromTinkerPath(path, callOptions(ctx));
      const temp = await mkdtemp(join(tmpdir(), "tinker-ts-download-"));
      try {
        const archiveFile = join(temp, "checkpoint.tar");
        const size = await downloadToFile(url, archiveFile, {
          progressStream: ctx.io.stderr,
          showProgress,
          label: "Downloading archive",
        });
        const archive = new Uint8Array(await readFile(archiveFile));
        // Extract into a fresh sibling first: a refused archive or --force never leaves a half-written target.
        await mkdir(parent, { recursive: true });
        const staging = await mkdtemp(join(parent, ".tinker-ts-extract-"));
        let files: string[];
        try {
          files = await extractArchive(archive, join(staging, "x"));
          if (existsSync(target)) await rm(target, { recursive: true, force: true });
          await rename(join(staging, "x"), target);
        } finally {
          await rm(staging, { recursive: true, force: true });
        }
        printOutput(ctx.io, ctx.global.format, {
          json: () => ({ tinker_path: path, destination: target, size_bytes: size, files }),
          title: `Downloaded ${path} (${formatSize(size)}) to ${target}`,
          columns: ["File"],
          rows: files.map((f) => [f]),
        });
      } finally {
        await rm(temp, { recursive: true, force: true });
      }
      return 0;
    },
  },
];
