/** `tinker-ts run list|info`: training runs (official `tinker run …`). */
import type { TrainingRun } from "../../index.js";
import type { CommandSpec } from "../app.js";
import { UsageError } from "../errors.js";
import { formatTime, printOutput } from "../output.js";
import { callOptions, integerOption, plural } from "./common.js";

const COLUMNS: Record<string, [header: string, cell: (run: TrainingRun) => string]> = {
  id: ["Run ID", (r) => r.training_run_id],
  model: ["Base Model", (r) => r.base_model],
  owner: ["Owner", (r) => r.model_owner],
  lora: ["LoRA", (r) => (r.is_lora ? (r.lora_rank ? `Rank ${r.lora_rank}` : "Yes") : "No")],
  updated: ["Last Update", (r) => formatTime(r.last_request_time)],
  status: ["Status", (r) => (r.corrupted ? "Failed" : "OK")],
  checkpoint: ["Last Checkpoint", (r) => r.last_checkpoint?.checkpoint_id ?? "None"],
  checkpoint_time: [
    "Checkpoint Time",
    (r) => (r.last_checkpoint ? formatTime(r.last_checkpoint.time) : "N/A"),
  ],
};
const DEFAULT_COLUMNS = ["id", "model", "lora", "updated", "status"];
const PAGE = 100;

export const runCommands: CommandSpec[] = [
  {
    path: ["run", "list"],
    summary: "List training runs",
    options: {
      limit: { type: "string", value: "N", description: "how many runs to show (default 20; 0 = all)" },
      columns: {
        type: "string",
        short: "c",
        value: "LIST",
        description: `comma-separated columns of ${Object.keys(COLUMNS).join(", ")} (default ${DEFAULT_COLUMNS.join(",")})`,
      },
    },
    async run(ctx) {
      const limit = integerOption(ctx, "limit", 20);
      const columnsText = ctx.values.columns as string | undefined;
      const columns = columnsText ? columnsText.split(",").map((c) => c.trim()) : DEFAULT_COLUMNS;
      const unknown = columns.filter((c) => !(c in COLUMNS));
      if (unknown.length > 0) {
        throw new UsageError(
          `unknown column(s) ${unknown.join(", ")}; available: ${Object.keys(COLUMNS).join(", ")}`,
        );
      }
      const rest = ctx.service().createRestClient();
      const runs: TrainingRun[] = [];
      let total = 0;
      for (;;) {
        const want = limit === 0 ? PAGE : Math.min(PAGE, limit - runs.length);
        const page = await rest.listTrainingRuns({ ...callOptions(ctx), limit: want, offset: runs.length });
        runs.push(...page.training_runs);
        total = page.cursor.total_count;
        const target = limit === 0 ? total : Math.min(limit, total);
        if (page.training_runs.length < want || runs.length >= target) break;
      }
      let title = runs.length === 0 ? "No training runs found" : plural(runs.length, "training run");
      if (total > runs.length) title += ` (${total - runs.length} more not shown, use --limit to see more)`;
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({ runs, total_count: total }),
        title,
        columns: columns.map((c) => COLUMNS[c][0]),
        rows: runs.map((run) => columns.map((c) => COLUMNS[c][1](run))),
      });
      return 0;
    },
  },
  {
    path: ["run", "info"],
    summary: "Show the details of a training run, including its metadata",
    args: ["<run_id>"],
    async run(ctx) {
      const rest = ctx.service().createRestClient();
      const run = await rest.getTrainingRun(ctx.positionals[0], callOptions(ctx));
      const rows: string[][] = [
        ["Run ID", run.training_run_id],
        ["Base Model", run.base_model],
        ["Owner", run.model_owner],
        ["LoRA", run.is_lora ? (run.lora_rank ? `Yes (Rank ${run.lora_rank})` : "Yes") : "No"],
        ["Last Update", formatTime(run.last_request_time)],
        ["Status", run.corrupted ? "Failed" : "OK"],
      ];
      for (const [label, checkpoint] of [
        ["Last Training Checkpoint", run.last_checkpoint],
        ["Last Sampler Checkpoint", run.last_sampler_checkpoint],
      ] as const) {
        if (!checkpoint) continue;
        rows.push([label, checkpoint.checkpoint_id]);
        rows.push(["  - Time", formatTime(checkpoint.time)]);
        rows.push(["  - Path", checkpoint.tinker_path]);
      }
      const metadata = Object.entries(run.user_metadata ?? {});
      if (metadata.length > 0) {
        rows.push(["Metadata", ""]);
        for (const [key, value] of metadata) rows.push([`  - ${key}`, value]);
      }
      printOutput(ctx.io, ctx.global.format, {
        json: () => run,
        title: `Training Run: ${run.training_run_id}`,
        columns: ["Property", "Value"],
        rows,
      });
      return 0;
    },
  },
];
