/**
 * openai-node, the yardstick of the bundle and cold-import goals (issue #15), installed once into a
 * cache folder outside the repository (never a dependency of tinker-ts): OPENAI_NODE_DIR, or
 * ~/.cache/tinker-ts/peers/openai-<version>. The version is the devDependency pinned elsewhere in
 * this repository for the `tinker-ts/openai` entry, so both measure the same package.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const OPENAI_VERSION = "7.60.0";

/** True when `dir`/node_modules holds openai at OPENAI_VERSION. */
function holdsOpenAI(dir: string): boolean {
  const manifest = join(dir, "node_modules", "openai", "package.json");
  return existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).version === OPENAI_VERSION;
}

/**
 * The folder whose node_modules holds openai: the repository's own when it has that version (a
 * devDependency) and `repository` allows it, else the cache folder, installed on first use;
 * undefined if npm fails.
 */
export function openaiPeer({ repository = true } = {}): string | undefined {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  if (repository && holdsOpenAI(root)) return root;
  const dir =
    process.env.OPENAI_NODE_DIR ??
    join(
      process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"),
      "tinker-ts",
      "peers",
      `openai-${OPENAI_VERSION}`,
    );
  if (holdsOpenAI(dir)) return dir;
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
