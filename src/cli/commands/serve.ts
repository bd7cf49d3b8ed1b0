/** `tinker-ts serve`: the embedded Tinker-compatible backend over HTTP (see ../serve.ts). */
import { readFile } from "node:fs/promises";
import type { FaultPlan } from "../../local/index.js";
import type { CommandSpec } from "../app.js";
import { UsageError } from "../errors.js";
import { serve } from "../serve.js";

export const serveCommands: CommandSpec[] = [
  {
    path: ["serve"],
    summary: "Run the embedded Tinker-compatible backend over HTTP",
    offline: true,
    options: {
      port: {
        type: "string",
        value: "N",
        description: "port to listen on (default 8000; 0 picks a free one)",
      },
      host: { type: "string", value: "H", description: "address to bind (default 127.0.0.1, loopback only)" },
      "api-key": {
        type: "string",
        multiple: true,
        value: "K",
        description: "accept only this API key (repeatable; default any non-empty key)",
      },
      jwt: {
        type: "boolean",
        description: "require the JWT exchange (POST /api/v1/auth/token) like the service",
      },
      "jwt-ttl": {
        type: "string",
        value: "S",
        description: "lifetime of issued JWTs in seconds (default 3600; implies --jwt)",
      },
      "data-dir": {
        type: "string",
        value: "DIR",
        description: "keep sessions, runs, checkpoints and samplers in DIR so they survive a restart",
      },
      "session-ttl": {
        type: "string",
        value: "S",
        description: "expire sessions without a heartbeat for S seconds (default 600)",
      },
      chaos: {
        type: "string",
        value: "FILE",
        description: "inject faults from a seeded fault plan (JSON: {seed, rate, kinds, ...})",
      },
      "min-sdk-version": {
        type: "string",
        value: "V",
        description: "refuse create_session from clients whose sdk_version is below V, as the service does",
      },
      quiet: {
        type: "boolean",
        description: "do not log a line per request (method, path, status, ms)",
      },
      models: {
        type: "string",
        value: "NAMES",
        description:
          "comma-separated base models to list and accept (default: the built-in one, any name accepted)",
      },
    },
    async run(ctx) {
      const portText = (ctx.values.port as string | undefined) ?? "8000";
      const port = Number(portText);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`invalid --port ${portText}`);
      const ttlText = ctx.values["jwt-ttl"] as string | undefined;
      const ttlSeconds = ttlText === undefined ? undefined : Number(ttlText);
      if (ttlSeconds !== undefined && !(ttlSeconds > 0)) throw new UsageError(`invalid --jwt-ttl ${ttlText}`);
      const sessionTtlText = ctx.values["session-ttl"] as string | undefined;
      const sessionTtl = sessionTtlText === undefined ? undefined : Number(sessionTtlText);
      if (sessionTtl !== undefined && !(sessionTtl > 0)) {
        throw new UsageError(`invalid --session-ttl ${sessionTtlText}`);
      }
      const modelsText = ctx.values.models as string | undefined;
      const models = modelsText
        ?.split(",")
        .map((name) => name.trim())
        .filter((name) => name !== "");
      if (models !== undefined && models.length === 0)
        throw new UsageError("--models needs at least one name");
      const minSdkVersion = ctx.values["min-sdk-version"] as string | undefined;
      if (minSdkVersion !== undefined && !/^\d+\.\d+\.\d+/.test(minSdkVersion))
        throw new UsageError(`invalid --min-sdk-version ${minSdkVersion} (expected e.g. 0.33.0)`);
      const chaosFile = ctx.values.chaos as string | undefined;
      const faultPlan = chaosFile === undefined ? undefined : await readFaultPlan(chaosFile);
      const apiKeys = ctx.values["api-key"] as string[] | undefined;
      const dataDir = ctx.values["data-dir"] as string | undefined;
      const server = await serve({
        port,
        host: (ctx.values.host as string | undefined) ?? "127.0.0.1",
        apiKeys,
        jwt: ctx.values.jwt === true || ttlSeconds !== undefined ? { ttlSeconds } : undefined,
        dataDir,
        sessionTtlMs: sessionTtl === undefined ? undefined : sessionTtl * 1000,
        faultPlan,
        models,
        minSdkVersion,
        onRequest: ctx.values.quiet === true ? undefined : (line) => ctx.io.stdout.write(`${line}\n`),
      });
      ctx.io.stdout.write(`tinker-ts local backend listening on ${server.url}\n`);
      if (dataDir !== undefined) ctx.io.stdout.write(`data directory: ${dataDir}\n`);
      if (minSdkVersion !== undefined)
        ctx.io.stdout.write(`refusing sessions from clients below sdk_version ${minSdkVersion}\n`);
      if (faultPlan) ctx.io.stdout.write(`injecting faults from ${chaosFile} (seed ${faultPlan.seed})\n`);
      // The accepted keys are secrets: the banner names them without printing them.
      const keyHint = apiKeys?.length
        ? `<your --api-key>\n  (accepting ${apiKeys.length === 1 ? "one key" : `${apiKeys.length} keys`}: ${apiKeys.map(maskedKey).join(", ")})`
        : "tml-local";
      ctx.io.stdout.write(
        `\nTo use it, set:\n  export TINKER_BASE_URL=${server.url} TINKER_API_KEY=${keyHint}\n` +
          `Its model is tinker-ts/byte-lm-tiny: byte tokens (256 = <|bos|>), random until you train it,\n` +
          `learning rate about 1e-2 (hosted models want about 1e-4). Then, in a clone: npm run quickstart\n`,
      );
      return new Promise<number>((resolve) => {
        const stop = () => {
          void server.close().then(() => resolve(0));
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    },
  },
];

/** A key as the banner shows it: its last four characters when it is long enough to spare them. */
export function maskedKey(key: string): string {
  return key.length >= 16 ? `${key.startsWith("tml-") ? "tml-" : ""}…${key.slice(-4)}` : "set (hidden)";
}

/** Reads and checks a fault plan file (FaultPlan of tinker-ts/local; docs/LOCAL_BACKEND.md). */
async function readFaultPlan(file: string): Promise<FaultPlan> {
  let plan: unknown;
  try {
    plan = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new UsageError(`cannot read --chaos ${file}: ${error instanceof Error ? error.message : error}`);
  }
  const p = plan as Partial<FaultPlan>;
  if (
    typeof p !== "object" ||
    p === null ||
    !Number.isInteger(p.seed) ||
    typeof p.rate !== "number" ||
    !(p.rate >= 0 && p.rate <= 1) ||
    typeof p.kinds !== "object" ||
    p.kinds === null
  ) {
    throw new UsageError(
      `invalid fault plan in ${file}: expected {"seed": integer, "rate": 0..1, "kinds": {"http500": 1, ...}}`,
    );
  }
  const known = ["http500", "http503", "http429", "drop", "reset", "poll408", "poll410", "delay"];
  for (const kind of Object.keys(p.kinds)) {
    if (!known.includes(kind))
      throw new UsageError(`unknown fault kind "${kind}" in ${file} (known: ${known.join(", ")})`);
  }
  return p as FaultPlan;
}
