/**
 * Downloads for the CLI: streaming a signed URL to a file with progress, and extracting a tar
 * archive safely.
 *
 * Safe extraction refuses the whole archive (writing nothing) if any entry is a symlink, hard link
 * or device, has an absolute path, or would land outside the output directory (`..`). Files are
 * created exclusively (`wx`): nothing existing is overwritten or followed.
 */
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { gunzipSync } from "node:zlib";
import { readTar, type TarEntry } from "../local/tar.js";
import { CliError } from "./errors.js";
import { type OutStream, Progress } from "./output.js";

/**
 * Streams `url` into `file` and returns the number of bytes. Sends no credentials: the URL is
 * signed. Progress goes to `progressStream` when `showProgress`.
 */
export async function downloadToFile(
  url: string,
  file: string,
  options: {
    progressStream: OutStream;
    showProgress: boolean;
    label: string;
    headers?: Record<string, string>;
    /** Replace an existing file (default: fail if it exists). */
    overwrite?: boolean;
  },
): Promise<number> {
  let response: Response;
  try {
    response = await fetch(url, { redirect: "follow", headers: options.headers });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    const reason = cause instanceof Error ? cause.message : (error as Error).message;
    throw new CliError(`download failed: ${reason}`, "Check your network connection and try again.");
  }
  if (!response.ok || !response.body) {
    const detail = await response.text().catch(() => "");
    const why =
      response.status === 410
        ? " (the download URL expired)"
        : response.status === 403
          ? " (the download URL was refused)"
          : "";
    throw new CliError(
      `download failed: HTTP ${response.status}${why}${detail ? `: ${detail.slice(0, 200)}` : ""}`,
    );
  }
  const lengthHeader = response.headers.get("content-length");
  const total = lengthHeader === null ? undefined : Number(lengthHeader);
  const progress = new Progress(options.progressStream, options.label, total, options.showProgress);
  const out = createWriteStream(file, { flags: options.overwrite ? "w" : "wx" });
  const closed = new Promise<void>((resolvePromise, reject) => {
    out.once("close", resolvePromise);
    out.once("error", reject);
  });
  let written = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      written += value.length;
      if (!out.write(value)) await new Promise<void>((r) => out.once("drain", () => r()));
      progress.update(value.length);
    }
  } finally {
    out.end();
    await closed;
  }
  progress.finish();
  if (total !== undefined && Number.isFinite(total) && written !== total) {
    throw new CliError(`download incomplete: got ${written} of ${total} bytes`);
  }
  return written;
}

/** Refused archive contents. */
export class UnsafeArchiveError extends CliError {}

export interface PlannedFile {
  path: string;
  entry: TarEntry;
}

/**
 * Where each entry of `entries` would be written under `targetDir`; throws UnsafeArchiveError for
 * anything unsafe, before anything is written.
 */
export function planExtraction(entries: readonly TarEntry[], targetDir: string): PlannedFile[] {
  const base = resolve(targetDir);
  const planned: PlannedFile[] = [];
  for (const entry of entries) {
    const name = entry.name;
    const shown = JSON.stringify(name);
    if (entry.type === "symlink" || entry.type === "hardlink") {
      throw new UnsafeArchiveError(
        `unsafe archive: ${shown} is a link`,
        "The archive may be corrupted or malicious.",
      );
    }
    if (entry.type === "other") {
      throw new UnsafeArchiveError(
        `unsafe archive: ${shown} is a special file (type ${JSON.stringify(entry.typeflag)})`,
        "The archive may be corrupted or malicious.",
      );
    }
    if (name === "" || name.includes("\0"))
      throw new UnsafeArchiveError(`unsafe archive: empty or invalid entry name`);
    if (isAbsolute(name) || name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name)) {
      throw new UnsafeArchiveError(
        `unsafe archive: absolute path ${shown}`,
        "The archive may be corrupted or malicious.",
      );
    }
    const path = resolve(base, name.replace(/\\/g, "/"));
    const inside = relative(base, path);
    if (inside.startsWith("..") || isAbsolute(inside)) {
      throw new UnsafeArchiveError(
        `unsafe archive: ${shown} would be written outside the output directory`,
        "The archive may be corrupted or malicious.",
      );
    }
    if (inside === "") continue; // "./"
    planned.push({ path, entry });
  }
  return planned;
}

/** Extracts a (possibly gzipped) tar into `targetDir` (created), safely. Returns the files written. */
export async function extractArchive(archive: Uint8Array, targetDir: string): Promise<string[]> {
  let bytes = archive;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = new Uint8Array(gunzipSync(bytes));
  let entries: TarEntry[];
  try {
    entries = readTar(bytes);
  } catch (error) {
    throw new CliError(`cannot read the archive: ${(error as Error).message}`, "Try downloading again.");
  }
  const planned = planExtraction(entries, targetDir);
  await mkdir(targetDir, { recursive: true });
  const written: string[] = [];
  for (const { path, entry } of planned) {
    if (entry.type === "directory") {
      await mkdir(path, { recursive: true });
      continue;
    }
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, entry.data, { flag: "wx", mode: entry.mode & 0o755 || 0o644 });
    written.push(path.slice(resolve(targetDir).length + sep.length));
  }
  return written;
}
