/**
 * The CLI's REST additions over loopback HTTP against the real local backend: `checkpoint search`
 * (filters as flags, paging, table and JSON, usage errors), `billing storage`, and the metadata
 * column of checkpoint tables. A small recording HTTP server in front of the backend shows the exact
 * requests the CLI sends.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliIO, main } from "../src/cli/app.js";
import { checkpointTable } from "../src/cli/commands/checkpoint.js";
import { formatMetadata } from "../src/cli/output.js";
import { type Checkpoint, ServiceClient } from "../src/index.js";
import { createLocalTinker, type LocalTinker } from "../src/local/index.js";

const API_KEY = "tml-rest-cli-key";
const BASE_MODEL = "tinker-ts/byte-lm-tiny";
const OTHER_MODEL = "Qwen/Qwen3-8B";

interface Sent {
  method: string;
  url: string;
  body: string;
}

let local: LocalTinker;
let server: Server;
let baseUrl: string;
let work: string;
const sent: Sent[] = [];
const services: ServiceClient[] = [];
/** tinker paths, in save order: p1's s1 and w1, then the unassigned session's s2. */
let s1: string;
let w1: string;
let s2: string;

/** The backend over HTTP, recording each request's method, URL and body. */
async function recordingServer(): Promise<void> {
  local = createLocalTinker({ apiKeys: [API_KEY], longPollMs: 1_000 });
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = `http://${req.headers.host}${req.url}`;
    sent.push({ method: req.method ?? "GET", url, body: body.toString("utf8") });
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers))
      if (typeof value === "string") headers.set(name, value);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const response = await local.fetch(
      new Request(url, { method: req.method, headers, body: hasBody ? body : undefined }),
    );
    res.statusCode = response.status;
    response.headers.forEach((value, name) => {
      res.setHeader(name, value);
    });
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(projectId?: string): ServiceClient {
  const service = new ServiceClient({ apiKey: API_KEY, baseURL: baseUrl, projectId, telemetry: false });
  services.push(service);
  return service;
}

async function cli(args: string[]) {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text), isTTY: false },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    env: { TINKER_API_KEY: API_KEY, TINKER_BASE_URL: baseUrl },
    cwd: work,
    stdinIsTTY: false,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

function json(result: { code: number; stdout: string; stderr: string }): Record<string, unknown> {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

const searchBodies = (from: number) =>
  sent
    .slice(from)
    .filter((r) => r.url.endsWith("/api/v1/checkpoints/search"))
    .map((r) => r.body);
const tinkerPaths = (output: Record<string, unknown>) =>
  (output.checkpoints as { tinker_path: string }[]).map((c) => c.tinker_path);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tinker-ts-rest-cli-"));
  await recordingServer();
  const a = await client("p1").createLoraTrainingClient(BASE_MODEL, { rank: 2 });
  s1 = (await a.saveState("s1")).path;
  w1 = (await a.saveWeightsForSampler("w1")).path;
  const b = await client().createLoraTrainingClient(OTHER_MODEL, { rank: 2 });
  s2 = (await b.saveState("s2")).path;
});

afterAll(async () => {
  for (const service of services) await service.close();
  await new Promise((resolve) => server?.close(resolve));
  await local?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("tinker-ts checkpoint search", () => {
  it("searches everything newest first, as JSON, sending the SDK's body", async () => {
    const before = sent.length;
    const output = json(await cli(["checkpoint", "search", "--format", "json"]));
    expect(tinkerPaths(output)).toEqual([s2, w1, s1]);
    expect(output.next_cursor).toBeNull();
    expect(searchBodies(before)).toEqual(['{"user_metadata":{},"owner":"me","limit":20}']);
  });

  it("turns the flags into filters", async () => {
    const before = sent.length;
    const output = json(
      await cli([
        "checkpoint",
        "search",
        "--project",
        "p1",
        "--project",
        "p9",
        "--type",
        "sampler_weights",
        "--base-model",
        BASE_MODEL,
        "--owner",
        "any",
        "-f",
        "json",
      ]),
    );
    expect(tinkerPaths(output)).toEqual([w1]);
    expect(searchBodies(before)).toEqual([
      `{"project_ids":["p1","p9"],"user_metadata":{},"checkpoint_type":"sampler","owner":"any","base_models":["${BASE_MODEL}"],"limit":20}`,
    ]);
    const metadata = await cli([
      "checkpoint",
      "search",
      "--metadata",
      "team=search",
      "--metadata",
      "stage=a=b",
    ]);
    expect(metadata).toMatchObject({ code: 0, stderr: "" });
    expect(metadata.stdout).toBe("No checkpoints found\n");
    expect(JSON.parse(searchBodies(before).at(-1)!).user_metadata).toEqual({ team: "search", stage: "a=b" });
  });

  it("prints a table, pages along the cursor, and says when more matched than shown", async () => {
    const table = await cli(["checkpoint", "search", "--type", "training"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("2 checkpoints found");
    expect(lines[1]).toMatch(/^Checkpoint ID\s+Type\s+Size\s+Public\s+Created\s+Expires\s+Path$/);
    expect(lines[3]).toContain(s2);
    expect(lines[4]).toContain(s1);

    const one = await cli(["checkpoint", "search", "--limit", "1"]);
    expect(one.stdout.split("\n")[0]).toBe("1 checkpoint found (more not shown, use --limit to see more)");

    const before = sent.length;
    const all = json(await cli(["checkpoint", "search", "--limit", "0", "-f", "json"]));
    expect(tinkerPaths(all)).toEqual([s2, w1, s1]);
    expect(searchBodies(before).map((body) => JSON.parse(body).limit)).toEqual([200]);
  });

  it("exits 2 on bad flags, before any request", async () => {
    const before = sent.length;
    for (const [args, message] of [
      [["--metadata", "team"], /--metadata must be KEY=VALUE, got "team"/],
      [["--metadata", "=x"], /--metadata must be KEY=VALUE/],
      [["--metadata", "a=1", "--metadata", "a=2"], /--metadata gives "a" twice/],
      [["--type", "checkpoint"], /--type must be training, sampler or external/],
      [["--owner", "all"], /--owner must be "me" or "any", got "all"/],
      [["--limit", "many"], /--limit must be a non-negative integer, got many/],
    ] as const) {
      const result = await cli(["checkpoint", "search", ...args]);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect(sent).toHaveLength(before);
  });
});

describe("tinker-ts billing storage", () => {
  it("shows the stored checkpoints per project, as a table and as JSON", async () => {
    const before = sent.length;
    const output = json(await cli(["billing", "storage", "-f", "json"]));
    expect(sent.slice(before).map((r) => `${r.method} ${r.url.replace(baseUrl, "")}`)).toContain(
      "GET /api/v1/billing/usage/checkpoints/current",
    );
    const rows = output.data as { project_id: string | null; checkpoint_count: number; size_bytes: number }[];
    expect(rows.map((row) => [row.project_id, row.checkpoint_count])).toEqual([
      [null, 1],
      ["p1", 2],
    ]);
    expect(output.effective_rate_usd_per_gigabyte_month).toBeNull();

    const table = await cli(["billing", "storage"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^3 checkpoints, [\d.]+ [KM]?B stored$/);
    expect(lines[1]).toMatch(/^Project\s+Owner\s+Checkpoints\s+Size\s+Gigabytes\s+Est\. Monthly Cost$/);
    expect(lines[3]).toMatch(/^\(none\)\s+local-user\s+1\s+/);
    expect(lines[3]).toMatch(/N\/A$/);
    expect(lines[4]).toMatch(/^p1\s+local-user\s+2\s+/);

    const before2 = sent.length;
    const p1 = await cli(["billing", "storage", "--project", "p1"]);
    expect(p1.stdout.split("\n")[0]).toMatch(/^2 checkpoints in project p1, /);
    expect(
      sent.slice(before2).some((r) => r.url.endsWith("/billing/usage/checkpoints/current?project_id=p1")),
    ).toBe(true);
    expect((await cli(["billing", "storage", "--project", ""])).code).toBe(2);
  });
});

describe("checkpoint tables and user_metadata", () => {
  const checkpoint = (name: string, userMetadata?: Record<string, string> | null): Checkpoint => ({
    checkpoint_id: `weights/${name}`,
    checkpoint_type: "training",
    time: new Date(),
    tinker_path: `tinker://r:train:0/weights/${name}`,
    size_bytes: 10,
    public: false,
    expires_at: null,
    user_metadata: userMetadata,
  });

  it("adds a Metadata column only when a checkpoint shown has metadata", () => {
    const plain = checkpointTable([checkpoint("a"), checkpoint("b", {})]);
    expect(plain.columns).not.toContain("Metadata");
    expect(plain.rows[0]).toHaveLength(7);

    const mixed = checkpointTable([checkpoint("a", { team: "search", stage: "sft" }), checkpoint("b", null)]);
    expect(mixed.columns.at(-1)).toBe("Metadata");
    expect(mixed.rows.map((row) => row.at(-1))).toEqual(["team=search, stage=sft", ""]);
    expect(formatMetadata(undefined)).toBe("");
  });

  it("checkpoint list over HTTP keeps the official columns when nothing carries metadata", async () => {
    const list = await cli(["checkpoint", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[1]).toMatch(
      /^Checkpoint ID\s+Type\s+Size\s+Public\s+Created\s+Expires\s+Path$/,
    );
  });
});
