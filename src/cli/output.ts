/**
 * Terminal output of the CLI: where it goes (CliIO, injectable for tests), aligned tables, JSON,
 * human-readable sizes and times, colour (only on a TTY, never with NO_COLOR or TERM=dumb) and the
 * progress bar.
 */

export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Whether stdin is a terminal (confirmation prompts are only asked there). */
  stdinIsTTY: boolean;
  /** Asks a yes/no question on the terminal. */
  confirm?(question: string): Promise<boolean>;
  /** Reads a secret: asked without echo when stdin is a terminal, else all of stdin. */
  readSecret?(prompt: string): Promise<string>;
}

export type OutputFormat = "table" | "json";

/** Colour for a stream: a TTY, NO_COLOR unset or empty, TERM not "dumb"; FORCE_COLOR forces it. */
export function colorEnabled(stream: OutStream, env: CliIO["env"]): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "" && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY === true && env.TERM !== "dumb";
}

export function style(enabled: boolean, code: "bold" | "red" | "dim", text: string): string {
  if (!enabled) return text;
  const open = { bold: 1, red: 31, dim: 2 }[code];
  return `\u001b[${open}m${text}\u001b[0m`;
}

/** Something printable in both formats. */
export interface Printable {
  json(): unknown;
  title?: string;
  columns: string[];
  rows: string[][];
}

export function printOutput(io: CliIO, format: OutputFormat, output: Printable): void {
  if (format === "json") {
    io.stdout.write(`${JSON.stringify(output.json(), null, 2)}\n`);
    return;
  }
  const color = colorEnabled(io.stdout, io.env);
  if (output.title) io.stdout.write(`${style(color, "bold", output.title)}\n`);
  if (output.rows.length > 0) io.stdout.write(renderTable(output.columns, output.rows, color));
}

/** Columns padded to their widest cell, two spaces apart, a rule under the header. */
export function renderTable(columns: string[], rows: string[][], color = false): string {
  const widths = columns.map((column, i) =>
    Math.max(displayWidth(column), ...rows.map((row) => displayWidth(row[i] ?? ""))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + " ".repeat(widths[i] - displayWidth(cell))))
      .join("  ")
      .trimEnd();
  const header = line(columns);
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  return `${style(color, "bold", header)}\n${style(color, "dim", rule)}\n${rows.map((row) => `${line(row)}\n`).join("")}`;
}

/** Code points, which is the terminal width for the text this CLI prints. */
function displayWidth(text: string): number {
  return [...text].length;
}

export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || bytes < 0) return "N/A";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let size = bytes;
  for (const unit of units) {
    if (size < 1024 || unit === "PB") return unit === "B" ? `${size} B` : `${size.toFixed(1)} ${unit}`;
    size /= 1024;
  }
  return `${bytes} B`;
}

/** "5 minutes ago", "in 2 hours"; dates further than 30 days away as YYYY-MM-DD. */
export function formatTime(date: Date | null | undefined, now: number = Date.now()): string {
  if (!date) return "N/A";
  const delta = (date.getTime() - now) / 1000;
  const abs = Math.abs(delta);
  if (abs < 60) return delta <= 0 ? "just now" : "in less than a minute";
  const units: [number, string][] = [
    [86_400, "day"],
    [3_600, "hour"],
    [60, "minute"],
  ];
  if (abs >= 30 * 86_400) return date.toISOString().slice(0, 10);
  for (const [seconds, name] of units) {
    if (abs >= seconds) {
      const n = Math.floor(abs / seconds);
      const text = `${n} ${name}${n === 1 ? "" : "s"}`;
      return delta < 0 ? `${text} ago` : `in ${text}`;
    }
  }
  return date.toISOString();
}

export const yesNo = (value: boolean | null | undefined): string => (value ? "Yes" : "No");

/** `user_metadata` on one line: `key=value, key=value` in the server's order; empty when none. */
export function formatMetadata(metadata: Record<string, string> | null | undefined): string {
  return Object.entries(metadata ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(", ");
}

/**
 * Download progress on stderr: a redrawn bar on a TTY, else a plain line at every 10 % (for logs).
 * Silent when disabled (JSON output).
 */
export class Progress {
  #done = 0;
  #lastPlain = -1;
  readonly #tty: boolean;

  constructor(
    readonly stream: OutStream,
    readonly label: string,
    readonly total: number | undefined,
    readonly enabled: boolean,
  ) {
    this.#tty = stream.isTTY === true;
  }

  update(bytes: number): void {
    this.#done += bytes;
    this.#render(false);
  }

  finish(): void {
    this.#render(true);
  }

  #render(final: boolean): void {
    if (!this.enabled) return;
    const known = this.total !== undefined && this.total > 0;
    const percent = known ? Math.min(100, Math.floor((this.#done / this.total!) * 100)) : undefined;
    const amount = known
      ? `${formatSize(this.#done)}/${formatSize(this.total)}`
      : `${formatSize(this.#done)}`;
    if (this.#tty) {
      const width = 30;
      const filled = percent === undefined ? 0 : Math.round((percent / 100) * width);
      const bar = percent === undefined ? "" : `[${"#".repeat(filled)}${"-".repeat(width - filled)}] `;
      const pct = percent === undefined ? "" : `${String(percent).padStart(3)}% `;
      this.stream.write(`\r${this.label} ${bar}${pct}${amount}\u001b[K${final ? "\n" : ""}`);
      return;
    }
    if (percent === undefined) {
      if (final) this.stream.write(`${this.label}: ${amount}\n`);
      return;
    }
    const step = Math.floor(percent / 10) * 10;
    if (step > this.#lastPlain && (step < 100 || final || this.#done >= this.total!)) {
      this.#lastPlain = step;
      this.stream.write(`${this.label}: ${step}% (${amount})\n`);
    }
  }
}
