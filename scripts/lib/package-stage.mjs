/**
 * Shared by scripts/runtime-matrix.mjs and scripts/check-package.mjs: build the package in a scratch
 * copy of the sources (so that a concurrent `npm run build` in the checkout cannot race it), pack it,
 * and install the tarball into scratch consumer folders without touching the checkout.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const bin = (name) => join(root, "node_modules", ".bin", name);

/** Runs a command in its own process group; resolves with its output, or rejects with it in the message. */
export function run(command, argv, { cwd = root, env = {}, timeout = 180_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      stderr += `\n(killed after ${timeout / 1000}s)`;
    }, timeout);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else {
        const error = new Error(`${command} ${argv.join(" ")} exited with ${code}\n${stderr}${stdout}`);
        Object.assign(error, { stdout, stderr, code });
        reject(error);
      }
    });
  });
}

/**
 * Builds the package as `npm run build` does (tsup, then scripts/build-types.mjs) into `<scratch>/pkg` and returns that folder;
 * with `build: false`, returns the checkout itself (its current dist/ must exist).
 */
export async function stagePackage(scratch, { build = true } = {}) {
  if (!build) {
    if (!existsSync(join(root, "dist", "index.js")))
      throw new Error("dist/ is missing; run `npm run build` first");
    return root;
  }
  const pkg = join(scratch, "pkg");
  mkdirSync(pkg);
  const sources = ["package.json", "tsup.config.ts", "tsconfig.json", "tsconfig.build.json", "README.md"];
  for (const name of [...sources, "LICENSE", "bin", "src", "scripts/build-types.mjs"]) {
    if (existsSync(join(root, name))) cpSync(join(root, name), join(pkg, name), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"), "dir");
  // What `npm run build` runs: tsup, then the per-module declarations.
  await run(bin("tsup"), [], { cwd: pkg, env: { NO_COLOR: "1" } });
  await run(process.execPath, [join(pkg, "scripts", "build-types.mjs")], { cwd: pkg });
  return pkg;
}

/** `npm pack`s the package folder into `scratch` and returns the tarball's path. */
export async function pack(pkg, scratch) {
  await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", scratch], { cwd: pkg });
  const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error("npm pack made no tarball");
  return join(scratch, tarball);
}

/**
 * Installs the tarball into `dir` (created with a minimal package.json unless one is there). Its
 * dependencies (ky, valibot, @huggingface/tokenizers) come from npm's cache, which `npm ci` fills.
 */
export async function installTarball(tarball, dir) {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, "package.json"))) {
    writeFileSync(
      join(dir, "package.json"),
      `${JSON.stringify({ name: "scratch-consumer", private: true })}\n`,
    );
  }
  await npmInstallQuietly(tarball, dir);
}

/**
 * `npm install spec` into `dir` as a throwaway: from npm's cache where it can, no lock file, no
 * package.json change, no install scripts, errors only.
 */
export function npmInstallQuietly(spec, dir, options = {}) {
  return run(
    "npm",
    [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--no-save",
      "--no-package-lock",
      "--ignore-scripts",
      "--loglevel=error",
      spec,
    ],
    { cwd: dir, ...options },
  );
}

/** One result line: `ok   name   1.2s  detail` or `FAIL name ...`. */
export function line(ok, name, seconds, detail) {
  return `${ok ? "ok  " : "FAIL"} ${name.padEnd(12)} ${`${seconds.toFixed(1)}s`.padStart(5)}  ${detail}`;
}
