/** `tinker-ts version`. */
import { PROTOCOL_SDK_VERSION, VERSION } from "../../version.js";
import type { CommandSpec } from "../app.js";

export const versionCommands: CommandSpec[] = [
  {
    path: ["version"],
    summary: "Print the version",
    offline: true,
    async run(ctx) {
      if (ctx.global.format === "json") {
        ctx.io.stdout.write(
          `${JSON.stringify({ version: VERSION, protocol_version: PROTOCOL_SDK_VERSION })}\n`,
        );
      } else {
        ctx.io.stdout.write(`tinker-ts ${VERSION} (Tinker protocol ${PROTOCOL_SDK_VERSION})\n`);
      }
      return 0;
    },
  },
];
