/** examples/deno: `deno task train` fine-tunes on the embedded backend and answers the questions. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const onPath = (name: string) =>
  [join(root, "node_modules/.bin"), ...(process.env.PATH ?? "").split(delimiter)].some((dir) =>
    existsSync(join(dir, name)),
  );

const found = onPath("deno");

describe.skipIf(!found)(
  found ? "examples/deno" : "examples/deno: skipped, no deno binary in node_modules/.bin or PATH",
  () => {
    it("trains with a falling loss and answers the training questions", async () => {
      const { stdout } = await promisify(execFile)("npx", ["deno", "task", "train"], {
        cwd: join(root, "examples/deno"),
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" },
        timeout: 60_000,
      });
      const losses = [...stdout.matchAll(/^step \d+ loss (\S+)$/gm)].map((match) => Number(match[1]));
      expect(losses).toHaveLength(30);
      expect(losses.at(-1)!).toBeLessThan(losses[0]! / 10);
      expect(stdout).toContain("Q: What is the capital of France? A: Paris");
      expect(stdout.match(/^Q: .* A: .+$/gm)).toHaveLength(6);
    });

    it("streams the fine-tune's answer to the terminal (deno task chat)", async () => {
      const { stdout } = await promisify(execFile)("npx", ["deno", "task", "chat"], {
        cwd: join(root, "examples/deno"),
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" },
        timeout: 60_000,
      });
      expect(stdout).toContain("Q: What is the capital of France?\nA: Paris\n");
      expect(Number(/\((\d+) pieces streamed\)/.exec(stdout)![1])).toBeGreaterThan(1);
    });
  },
);
