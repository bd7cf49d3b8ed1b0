/**
 * The tinker-ts command line. `serve` runs the embedded backend over HTTP:
 *
 *   tinker-ts serve [--port 8000] [--host 127.0.0.1] [--api-key K]... [--jwt] [--jwt-ttl S]
 */
import { parseArgs } from "node:util";
import { serve } from "./serve.js";

const USAGE = `Usage: tinker-ts <command> [options]

Commands:
  serve     Run the embedded Tinker-compatible backend over HTTP
            --port N      port to listen on (default 8000; 0 picks a free one)
            --host H      address to bind (default 127.0.0.1, loopback only)
            --api-key K   accept only this API key (repeatable; default any non-empty key)
            --jwt         require the JWT exchange (POST /api/v1/auth/token) like the service
            --jwt-ttl S   lifetime of issued JWTs in seconds (default 3600; implies --jwt)
  help      Show this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve": {
      const { values } = parseArgs({
        args: rest,
        options: {
          port: { type: "string", default: "8000" },
          host: { type: "string", default: "127.0.0.1" },
          "api-key": { type: "string", multiple: true },
          jwt: { type: "boolean", default: false },
          "jwt-ttl": { type: "string" },
        },
      });
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        process.stderr.write(`invalid --port ${values.port}\n`);
        return 2;
      }
      const ttlSeconds = values["jwt-ttl"] === undefined ? undefined : Number(values["jwt-ttl"]);
      if (ttlSeconds !== undefined && !(ttlSeconds > 0)) {
        process.stderr.write(`invalid --jwt-ttl ${values["jwt-ttl"]}\n`);
        return 2;
      }
      const server = await serve({
        port,
        host: values.host!,
        apiKeys: values["api-key"],
        jwt: values.jwt || ttlSeconds !== undefined ? { ttlSeconds } : undefined,
      });
      process.stdout.write(`tinker-ts local backend listening on ${server.url}\n`);
      const stop = () => {
        void server.close().then(() => process.exit(0));
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      return new Promise<number>(() => {});
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
