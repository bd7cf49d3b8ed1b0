/**
 * docs/GUIDE-DATUM.md runs as written: its ```ts blocks, in order, form one program against the
 * embedded backend (the package names resolve to src/ through tsconfig.json `paths`). Every
 * `console.log(x); // → value` line is a claim: the test turns it into a check that `x` prints as
 * `value` (strings as they are, anything else as JSON), and fails on the first claim that is wrong.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const guide = readFileSync(join(root, "docs/GUIDE-DATUM.md"), "utf8");

/** The program: every ts block, each claim turned into a call of `__claim`. */
function guideProgram(markdown: string): { source: string; claims: number } {
  const blocks = [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  let claims = 0;
  const body = blocks
    .map((block) =>
      block.replace(/^(\s*)console\.log\((.*)\);\s*\/\/ → (.*)$/gm, (_, indent, expr, expected) => {
        claims++;
        return `${indent}__claim(${expr}, ${JSON.stringify(expected.trim())}, ${JSON.stringify(expr)});`;
      }),
    )
    .join("\n");
  const prelude = `
const __claim = (value: unknown, expected: string, expr: string) => {
  const shown = typeof value === "string" ? value : JSON.stringify(value);
  if (shown !== expected) throw new Error(\`GUIDE CLAIM \${expr}: expected \${expected}, got \${shown}\`);
  console.log(\`claim ok: \${expr}\`);
};
`;
  return { source: `${prelude}\n${body}\nconsole.log("guide done");\n`, claims };
}

describe("docs/GUIDE-DATUM.md", () => {
  it("every snippet runs against the embedded backend and every // → claim holds", async () => {
    const { source, claims } = guideProgram(guide);
    expect(claims).toBeGreaterThan(10);
    // Inside the repository, so that tsx applies tsconfig.json's `paths` to `tinker-ts`.
    const dir = mkdtempSync(join(root, "test", ".guide-"));
    try {
      writeFileSync(join(dir, "guide.ts"), source);
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ["--import", "tsx", join(dir, "guide.ts")],
        {
          cwd: root,
          timeout: 120_000,
        },
      );
      expect(stdout.match(/^claim ok: /gm)).toHaveLength(claims);
      expect(stdout).toContain("guide done");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
