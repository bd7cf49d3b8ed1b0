/** `tinker-ts serve`: the embedded Tinker-compatible backend over HTTP (see ../serve.ts). */
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
    },
    async run(ctx) {
      const portText = (ctx.values.port as string | undefined) ?? "8000";
      const port = Number(portText);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`invalid --port ${portText}`);
      const ttlText = ctx.values["jwt-ttl"] as string | undefined;
      const ttlSeconds = ttlText === undefined ? undefined : Number(ttlText);
      if (ttlSeconds !== undefined && !(ttlSeconds > 0)) throw new UsageError(`invalid --jwt-ttl ${ttlText}`);
      const server = await serve({
        port,
        host: (ctx.values.host as string | undefined) ?? "127.0.0.1",
        apiKeys: ctx.values["api-key"] as string[] | undefined,
        jwt: ctx.values.jwt === true || ttlSeconds !== undefined ? { ttlSeconds } : undefined,
      });
      ctx.io.stdout.write(`tinker-ts local backend listening on ${server.url}\n`);
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
