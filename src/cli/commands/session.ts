/** `tinker-ts session export-trace` (official `tinker session export-trace`). */
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { CommandSpec } from "../app.js";
import { downloadToFile } from "../download.js";
import { formatSize, printOutput } from "../output.js";
import { callOptions } from "./common.js";

export const sessionCommands: CommandSpec[] = [
  {
    path: ["session", "export-trace"],
    summary: "Export a session's timeline as a Perfetto trace (.pftrace)",
    args: ["<session_id>"],
    options: {
      output: {
        type: "string",
        short: "o",
        value: "PATH",
        description: "where to save it (default ./<session_id>.pftrace)",
      },
      "url-only": { type: "boolean", description: "print the signed download URL instead of downloading" },
    },
    async run(ctx) {
      const sessionId = ctx.positionals[0];
      const json = ctx.global.format === "json";
      if (!json) ctx.io.stderr.write(`Exporting trace for session ${sessionId} (this may take a while)...\n`);
      const service = ctx.service();
      const url = await service
        .createRestClient()
        .exportSessionTrace(sessionId, { ...callOptions(ctx), pollIntervalMs: 1000 });
      if (ctx.values["url-only"]) {
        ctx.io.stdout.write(json ? `${JSON.stringify({ session_id: sessionId, url })}\n` : `${url}\n`);
        return 0;
      }
      const file = resolve(ctx.io.cwd, (ctx.values.output as string | undefined) ?? `${sessionId}.pftrace`);
      await mkdir(dirname(file), { recursive: true });
      // A signed URL takes no credentials. A server that links the trace under its own API (the
      // local backend does) gets the API key, and only then.
      const base = (ctx.global.baseUrl ?? "").replace(/\/+$/, "");
      const ownApi = base !== "" && url.startsWith(`${base}/api/v1/`);
      const size = await downloadToFile(url, file, {
        progressStream: ctx.io.stderr,
        showProgress: !json,
        label: "Downloading trace",
        overwrite: true,
        headers: ownApi && ctx.global.apiKey ? { "X-API-Key": ctx.global.apiKey } : undefined,
      });
      printOutput(ctx.io, ctx.global.format, {
        json: () => ({ session_id: sessionId, destination: file, size_bytes: size }),
        title: `Saved the trace of ${sessionId} (${formatSize(size)}) to ${file}`,
        columns: [],
        rows: [],
      });
      return 0;
    },
  },
];
