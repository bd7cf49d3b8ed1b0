/**
 * openai-node, the yardstick of the bundle and cold-import goals (issue #15), installed once into a
 * cache folder outside the repository (never a dependency of tinker-ts): OPENAI_NODE_DIR, or
 * ~/.cache/tinker-ts/peers/openai-<version>. The version is the devDependency pinned elsewhere in
 * this repository for the `tinker-ts/openai` entry, so both measure the same package.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const OPENAI_VERSION = "7.60.0";

/** The folder whose node_modules holds openai, installing it on first use; undefined if npm fails. */
export function openaiPeer(): string | undefined {
  const dir =
    process.env.OPENAI_NODE_DIR ??
    join(
      process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"),
      "tinker-ts",
      "peers",
      `openai-${OPENAI_VERSION}`,
    );
  if (existsSync(join(dir, "node_modules", "openai", "package.json"))) return dir;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), '{"private":true}\n');
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    execFileSync(
      npm,
      ["install", "--no-audit", "--no-fund", "--prefer-offline", `openai@${OPENAI_VERSION}`],
      {
        cwd: dir,
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
    return dir;
  } catch {
    return undefined;
  }
}
