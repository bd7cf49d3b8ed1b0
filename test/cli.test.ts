/**
 * The `tinker-ts` CLI against the embedded backend over loopback: `serve` runs in-process on port 0,
 * runs and checkpoints are made with the SDK, and the CLI's `main` runs with captured output (one
 * child-process test checks real exit codes).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliIO, COMMANDS, main, redact } from "../src/cli/app.js";
import { planExtraction } from "../src/cli/download.js";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { ServiceClient } from "../src/index.js";
import { adapterFromState, peftTensorName } from "../src/local/archive.js";
import {
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  hashSeed,
  TrainableModel,
} from "../src/local/engine/index.js";
import { decodeSafetensors } from "../src/local/safetensors.js";
import { readTar, tarHeader, writeTar } from "../src/local/tar.js";

const API_KEY = "tml-cli-secret-key";
const BASE_MODEL = "tinker-ts/byte-lm-tiny";

let server: RunningServer;
let service: ServiceClient;
let work: string;
let runId: string;
let trainPath: string;
let samplerPath: string;
let sessionId: string;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    stdoutTTY?: boolean;
    stderrTTY?: boolean;
    cwd?: string;
    /** Simulates a terminal on stdin that answers the confirmation prompt. */
    answer?: boolean;
  } = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text), isTTY: options.stdoutTTY ?? false },
    stderr: { write: (text: string) => (stderr += text), isTTY: options.stderrTTY ?? false },
    env: { TINKER_API_KEY: API_KEY, TINKER_BASE_URL: server.url, ...options.env },
    cwd: options.cwd ?? work,
    stdinIsTTY: options.answer !== undefined,
    confirm: async (question) => {
      stderr += question;
      return options.answer ?? false;
    },
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

function json(result: CliResult): unknown {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

beforeAll(async () => {
  server = await serve({ port: 0, host: "127.0.0.1", longPollMs: 1_000 });
  service = new ServiceClient({ apiKey: API_KEY, baseURL: server.url });
  work = await mkdtemp(join(tmpdir(), "tinker-ts-cli-test-"));
  const training = await service.createLoraTrainingClient(BASE_MODEL, {
    rank: 4,
    seed: 7,
    userMetadata: { owner: "cli-test" },
  });
  runId = training.modelId;
  sessionId = runId.split(":train:")[0];
  trainPath = (await training.saveState("first")).path;
  samplerPath = (await training.saveWeightsForSampler("sampler")).path;
  await training.saveState("second");
  await training.saveState("doomed");
  const other = await service.createLoraTrainingClient(BASE_MODEL, { rank: 2 });
  await other.saveState("other");
});

afterAll(async () => {
  await service?.close();
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("help and usage", () => {
  it("prints help for the CLI, every group and every command", async () => {
    const top = await cli(["--help"]);
    expect(top.code).toBe(0);
    for (const word of [
      "run",
      "checkpoint",
      "session",
      "billing",
      "sample",
      "version",
      "serve",
      "--base-url",
    ]) {
      expect(top.stdout).toContain(word);
    }
    expect((await cli([])).code).toBe(0);
    const group = await cli(["checkpoint", "--help"]);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/download\s+Download a checkpoint archive/);
    for (const command of COMMANDS) {
      const help = await cli([...command.path, "--help"]);
      expect(help.code, command.path.join(" ")).toBe(0);
      expect(help.stdout).toContain(`Usage: tinker-ts ${command.path.join(" ")}`);
      for (const option of Object.keys(command.options ?? {})) expect(help.stdout).toContain(`--${option}`);
    }
  });

  it("exits 2 on usage errors, with the message on stderr", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown command "frobnicate"/],
      [["checkpoint", "frob"], /unknown command "checkpoint frob"/],
      [["run", "list", "--bogus"], /Unknown option '--bogus'/],
      [["run", "info"], /missing argument <run_id>/],
      [["run", "info", "a", "b"], /unexpected argument "b"/],
      [["run", "list", "--format", "xml"], /--format must be "table" or "json"/],
      [["run", "list", "--limit", "abc"], /--limit must be a non-negative integer, got abc/],
      [["run", "list", "--timeout", "0"], /--timeout must be a positive number/],
      [["checkpoint", "info", "not-a-path"], /invalid checkpoint path/],
      [["checkpoint", "set-ttl", "tinker://r/weights/x"], /give the TTL/],
      [["checkpoint", "set-ttl", "tinker://r/weights/x", "-5"], /Unknown option|positive whole number/],
      [["checkpoint", "set-ttl", "tinker://r/weights/x", "abc"], /positive whole number/],
      [["sample", "--prompt", "x"], /exactly one of --base-model and --model-path/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/Run "tinker-ts .*--help" for usage/);
    }
    // A group without a command: its help on stderr, exit 2.
    const bare = await cli(["checkpoint"]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("Usage: tinker-ts checkpoint <command>");
  });

  it("takes global options before or after the command, in both spellings", async () => {
    for (const args of [
      ["--format", "json", "run", "list"],
      ["-f", "json", "run", "list"],
      ["--format=json", "run", "list", "--limit", "1"],
      ["run", "--api-key", API_KEY, "list", "-f", "json"],
    ]) {
      expect(json(await cli(args)), args.join(" ")).toHaveProperty("runs");
    }
    // --base-url and --api-key win over the environment.
    const flags = await cli(["--base-url", server.url, "run", "list", "--api-key", API_KEY, "-f", "json"], {
      env: { TINKER_BASE_URL: "http://127.0.0.1:1", TINKER_API_KEY: undefined },
    });
    expect(json(flags)).toHaveProperty("runs");
  });

  it("prints the version", async () => {
    expect((await cli(["version"])).stdout).toMatch(
      /^tinker-ts \d+\.\d+\.\d+ \(Tinker protocol 0\.39\.0\)\n$/,
    );
    expect(json(await cli(["--format", "json", "version"]))).toMatchObject({ protocol_version: "0.39.0" });
  });
});

describe("errors", () => {
  it("redacts the API key from any message", () => {
    expect(redact(`bad key ${API_KEY}!`, API_KEY)).toBe("bad key ***!");
    expect(redact("nothing to hide", undefined)).toBe("nothing to hide");
  });

  it("reports API errors on stderr with exit 1, no stack trace and never the API key", async () => {
    const missing = await cli(["run", "info", "no-such-run:train:0"]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toMatch(/^Error: .*not found/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    expect(missing.stderr).not.toContain(API_KEY);

    const noKey = await cli(["run", "list"], { env: { TINKER_API_KEY: undefined } });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/no API key/);
  });
});

describe("run", () => {
  it("lists runs as an aligned table and as JSON", async () => {
    const table = await cli(["run", "list"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("2 training runs");
    expect(lines[1]).toMatch(/^Run ID\s+Base Model\s+LoRA\s+Last Update\s+Status$/);
    // Aligned: every column starts at the same offset in the header and in each row.
    const modelColumn = lines[1].indexOf("Base Model");
    for (const row of lines.slice(3)) expect(row.indexOf(BASE_MODEL)).toBe(modelColumn);
    expect(table.stdout).toContain("Rank 4");
    expect(table.stdout).not.toContain("\u001b[");

    const listed = json(await cli(["run", "list", "--format", "json"])) as {
      runs: { training_run_id: string }[];
    };
    expect(listed.runs.map((r) => r.training_run_id)).toContain(runId);

    const limited = await cli(["run", "list", "--limit", "1", "-c", "id,owner,checkpoint"]);
    expect(limited.stdout).toMatch(/^1 training run \(1 more not shown, use --limit to see more\)\n/);
    expect(limited.stdout).toMatch(/Run ID\s+Owner\s+Last Checkpoint/);
    expect((await cli(["run", "list", "-c", "id,nope"])).code).toBe(2);
  });

  it("shows a run with its metadata", async () => {
    const info = await cli(["run", "info", runId]);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain(`Training Run: ${runId}`);
    expect(info.stdout).toMatch(/LoRA\s+Yes \(Rank 4\)/);
    expect(info.stdout).toMatch(/ {2}- owner\s+cli-test/);
    expect(json(await cli(["run", "info", runId, "-f", "json"]))).toMatchObject({
      training_run_id: runId,
      lora_rank: 4,
      user_metadata: { owner: "cli-test" },
    });
  });
});

describe("checkpoint", () => {
  it("lists the checkpoints of a run and across runs", async () => {
    const table = await cli(["checkpoint", "list", "--run-id", runId]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^4 checkpoints for run ${runId}\n`));
    expect(table.stdout).toMatch(/Checkpoint ID\s+Type\s+Size\s+Public\s+Created\s+Expires\s+Path/);
    expect(table.stdout).toContain(trainPath);
    const all = json(await cli(["checkpoint", "list", "--format", "json"])) as {
      checkpoints: { tinker_path: string }[];
    };
    expect(all.checkpoints.length).toBe(5);
    const limited = await cli(["checkpoint", "list", "--limit", "2"]);
    expect(limited.stdout).toMatch(/^2 checkpoints \(3 more not shown/);
  });

  it("shows a checkpoint with its run's LoRA settings", async () => {
    const info = await cli(["checkpoint", "info", trainPath]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/Checkpoint ID\s+weights\/first/);
    expect(info.stdout).toMatch(/LoRA\s+Yes \(Rank 4\)/);
    expect(json(await cli(["checkpoint", "info", samplerPath, "-f", "json"]))).toMatchObject({
      checkpoint_type: "sampler",
      is_lora: true,
      lora_rank: 4,
    });
    const missing = await cli(["checkpoint", "info", `tinker://${runId}/weights/nope`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/checkpoint not found/);
  });

  it("publishes and unpublishes", async () => {
    const isPublic = async () =>
      (json(await cli(["checkpoint", "info", trainPath, "-f", "json"])) as { public: boolean }).public;
    expect((await cli(["checkpoint", "publish", trainPath])).code).toBe(0);
    expect(await isPublic()).toBe(true);
    const again = await cli(["checkpoint", "publish", trainPath]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already public/);
    expect((await cli(["checkpoint", "unpublish", trainPath])).code).toBe(0);
    expect(await isPublic()).toBe(false);
  });

  it("sets and removes the TTL, in the official and the short forms", async () => {
    const expiresAt = async () =>
      (json(await cli(["checkpoint", "info", trainPath, "-f", "json"])) as { expires_at: string | null })
        .expires_at;
    expect((await cli(["checkpoint", "set-ttl", trainPath, "3600"])).code).toBe(0);
    const expiry = Date.parse((await expiresAt())!);
    expect(expiry - Date.now()).toBeGreaterThan(3500_000);
    expect((await cli(["checkpoint", "set-ttl", trainPath, "none"])).code).toBe(0);
    expect(await expiresAt()).toBeNull();
    expect((await cli(["checkpoint", "set-ttl", trainPath, "--ttl", "7200"])).code).toBe(0);
    expect(await expiresAt()).not.toBeNull();
    expect((await cli(["checkpoint", "set-ttl", trainPath, "--remove"])).code).toBe(0);
    expect(await expiresAt()).toBeNull();
  });

  it("deletes only with confirmation (--yes without a terminal)", async () => {
    const doomed = `tinker://${runId}/weights/doomed`;
    const refused = await cli(["checkpoint", "delete", doomed]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--yes/);
    expect((await cli(["checkpoint", "info", doomed])).code).toBe(0);
    // On a terminal it asks; "no" keeps the checkpoint.
    const declined = await cli(["checkpoint", "delete", doomed], { answer: false });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toMatch(
      /Will delete 1 checkpoint:\n {2}- tinker:.*\nDelete 1 checkpoint\? .*\[y\/N\] Deletion cancelled/,
    );
    expect((await cli(["checkpoint", "info", doomed])).code).toBe(0);
    const deleted = await cli(["checkpoint", "delete", doomed, "--yes"]);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain("Deleted 1 checkpoint");
    expect((await cli(["checkpoint", "info", doomed])).code).toBe(1);
    // Filters need --run-id; a filter that matches nothing deletes nothing.
    expect((await cli(["checkpoint", "delete", doomed, "--type", "weights", "-y"])).code).toBe(2);
    const none = await cli(["checkpoint", "delete", "--run-id", runId, "--before", "2000-01-01", "-y"]);
    expect(none.code).toBe(0);
    expect(none.stderr).toMatch(/No checkpoints found/);
  });
});

describe("checkpoint download", () => {
  it("downloads the real archive with progress and extracts the adapter", async () => {
    const out = join(work, "downloads");
    const result = await cli(["checkpoint", "download", trainPath, "--output", out]);
    expect(result.code, result.stderr).toBe(0);
    // stderr is not a terminal: plain percentage lines.
    expect(result.stderr).toMatch(/Downloading archive: 100% \(/);
    expect(result.stderr).not.toContain("\r");
    const target = join(out, `${runId.replace(/[^\w.-]/g, "_")}_weights_first`);
    expect(result.stdout).toContain(target);
    expect((await readdir(target)).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    expect(await readdir(out)).toEqual([target.slice(out.length + 1)]);

    const config = JSON.parse(await readFile(join(target, "adapter_config.json"), "utf8"));
    expect(config).toMatchObject({ base_model_name_or_path: BASE_MODEL, r: 4, peft_type: "LORA" });
    // The server's model was created with rank 4, seed 7 and never trained: a model built here
    // with the same settings has the same parameters.
    const twin = new TrainableModel(createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed(BASE_MODEL)), {
      rank: 4,
      seed: 7,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    const { tensors } = decodeSafetensors(
      new Uint8Array(await readFile(join(target, "adapter_model.safetensors"))),
    );
    const parameters = twin.parameters();
    expect(tensors.map((t) => t.name)).toEqual(parameters.map((p) => peftTensorName(p.name)));
    for (const [i, parameter] of parameters.entries()) {
      expect([...tensors[i].data]).toEqual([...parameter.value].map(Math.fround));
    }
    expect(
      decodeSafetensors(adapterFromState(twin.exportState(), BASE_MODEL).safetensors).tensors.length,
    ).toBe(tensors.length);

    // No overwrite without --force.
    const again = await cli(["checkpoint", "download", trainPath, "-o", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*\n.*--force/);
    const forced = await cli(["checkpoint", "download", trainPath, "-o", out, "--force", "--format", "json"]);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toBe("");
    expect(JSON.parse(forced.stdout)).toMatchObject({ destination: target });
  });

  it("draws a progress bar when stderr is a terminal, coloured only without NO_COLOR", async () => {
    const out = join(work, "tty");
    const result = await cli(["checkpoint", "download", samplerPath, "-o", out], {
      stderrTTY: true,
      stdoutTTY: true,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/\rDownloading archive \[#{30}\] 100% /);
    expect(result.stdout).toContain("\u001b[1m");
    const plain = await cli(["checkpoint", "download", samplerPath, "-o", out, "--force"], {
      stderrTTY: true,
      stdoutTTY: true,
      env: { NO_COLOR: "1" },
    });
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain("\u001b[");
  });

  describe("from a malicious server", () => {
    let evil: Server;
    let evilUrl: string;
    let archive: Uint8Array = new Uint8Array(0);
    const archiveRequests: IncomingHttpHeaders[] = [];

    beforeAll(async () => {
      evil = createServer((req, res) => {
        const path = req.url ?? "";
        if (path.endsWith("/client/config")) {
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ pjwt_auth_enabled: false }));
        } else if (path.endsWith("/archive")) {
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({ url: `${evilUrl}/files/evil.tar`, expires: new Date(Date.now() + 60_000) }),
          );
        } else if (path === "/files/evil.tar") {
          archiveRequests.push(req.headers);
          res.setHeader("content-type", "application/x-tar");
          res.end(archive);
        } else {
          res.statusCode = 404;
          res.end("{}");
        }
      });
      await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve));
      evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => evil.close(() => resolve()));
    });

    async function downloadFrom(bytes: Uint8Array) {
      archive = bytes;
      const root = await mkdtemp(join(work, "evil-"));
      const out = join(root, "out");
      const result = await cli(["checkpoint", "download", "tinker://evil:train:0/weights/x", "-o", out], {
        env: { TINKER_BASE_URL: evilUrl },
      });
      return { result, root, out };
    }

    const file = (name: string, text = "pwned") => ({ name, data: new TextEncoder().encode(text) });

    it.each([
      [
        "../evil",
        writeTar([file("adapter_config.json", "{}"), file("../evil")]),
        /outside the output directory/,
      ],
      ["../../evil", writeTar([file("ok/../../../evil")]), /outside the output directory/],
      ["/abs", writeTar([file("/tmp/tinker-ts-evil-abs")]), /absolute path/],
      [
        "symlink",
        (() => {
          const bytes = new Uint8Array(512 * 3);
          bytes.set(
            tarHeader({ name: "adapter_model.safetensors", size: 0, typeflag: "2", linkname: "/etc/passwd" }),
          );
          return bytes;
        })(),
        /is a link/,
      ],
    ])("refuses an archive with %s and writes nothing", async (_name, bytes, message) => {
      const { result, root, out } = await downloadFrom(bytes);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      // Nothing outside the output directory, and nothing left inside it either.
      expect(await readdir(root)).toEqual(["out"]);
      expect(await readdir(out)).toEqual([]);
      expect(existsSync("/tmp/tinker-ts-evil-abs")).toBe(false);
      // The archive itself was fetched without our API key.
      const headers = archiveRequests.at(-1)!;
      expect(headers["x-api-key"]).toBeUndefined();
      expect(headers.authorization).toBeUndefined();
      expect(JSON.stringify(headers)).not.toContain(API_KEY);
    });

    it("plans safe paths only", () => {
      const entries = readTar(writeTar([file("a/b.txt"), { name: "a" }, file("./c")]));
      expect(planExtraction(entries, "/x/t").map((p) => p.path)).toEqual([
        "/x/t/a/b.txt",
        "/x/t/a",
        "/x/t/c",
      ]);
      expect(() => planExtraction(readTar(writeTar([file("a/../../t2/x")])), "/x/t")).toThrow(/outside/);
      expect(() => planExtraction(readTar(writeTar([file("C:/win")])), "/x/t")).toThrow(/absolute/);
    });
  });
});

describe("session, billing, sample", () => {
  it("exports a session trace to a file, or prints its URL", async () => {
    const urlOnly = await cli(["session", "export-trace", sessionId, "--url-only"]);
    expect(urlOnly.code).toBe(0);
    expect(urlOnly.stdout.trim()).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/sessions\/.+\/trace\?token=[\w.-]+$/,
    );
    const saved = await cli(["session", "export-trace", sessionId, "-o", "traces/t.pftrace"]);
    expect(saved.code, saved.stderr).toBe(0);
    const trace = JSON.parse(await readFile(join(work, "traces", "t.pftrace"), "utf8"));
    expect(trace).toBeTypeOf("object");
  });

  it("shows billing usage as a table, JSON or CSV", async () => {
    const hour = 3_600_000;
    const start = new Date(Math.floor(Date.now() / hour) * hour - hour).toISOString();
    const end = new Date(Math.floor(Date.now() / hour) * hour + hour).toISOString();
    const table = await cli(["billing", "usage", start, end]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/usage row|No usage/);
    const asJson = json(await cli(["billing", "usage", "--start", start, "--end", end, "-f", "json"])) as {
      data: unknown[];
    };
    expect(Array.isArray(asJson.data)).toBe(true);
    const csv = await cli(["billing", "usage", start, end, "--csv", "-"]);
    expect(csv.code).toBe(0);
    if (asJson.data.length > 0) expect(csv.stdout.split("\n")[0]).toContain("bucket_start");
    expect((await cli(["billing", "usage", start])).code).toBe(2);
  });

  it("samples from a base model and from a sampler checkpoint", async () => {
    const args = [
      "sample",
      "--base-model",
      BASE_MODEL,
      "--prompt",
      "Hello",
      "--max-tokens",
      "8",
      "--seed",
      "3",
    ];
    const first = json(await cli([...args, "--format", "json"])) as {
      prompt_tokens: number[];
      samples: { text: string; tokens: number[] }[];
    };
    expect(first.prompt_tokens.length).toBeGreaterThan(0);
    expect(first.samples).toHaveLength(1);
    expect(first.samples[0].tokens.length).toBeLessThanOrEqual(8);
    const second = json(await cli([...args, "--format", "json"])) as typeof first;
    expect(second.samples).toEqual(first.samples);
    const text = await cli(args);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(`${first.samples[0].text}\n`);
    const fromCheckpoint = await cli([
      "sample",
      "--model-path",
      samplerPath,
      "--prompt",
      "Hi",
      "--num-samples",
      "2",
    ]);
    expect(fromCheckpoint.code, fromCheckpoint.stderr).toBe(0);
    expect(fromCheckpoint.stdout).toContain("--- sample 2");
  });
});

describe("as a child process", () => {
  it("exits 0, 1 and 2", async () => {
    const run = (args: string[]) =>
      new Promise<CliResult>((resolve) => {
        execFile(
          process.execPath,
          ["--import", "tsx", "src/cli/main.ts", ...args],
          { env: { ...process.env, TINKER_API_KEY: API_KEY, TINKER_BASE_URL: server.url, NO_COLOR: "1" } },
          (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
        );
      });
    const [ok, failed, usage, refused] = await Promise.all([
      run(["checkpoint", "list", "--run-id", runId, "--format", "json"]),
      run(["run", "info", "missing:train:0"]),
      run(["run", "list", "--nope"]),
      // Nothing listens on port 1: the SDK keeps retrying until the --timeout deadline.
      run(["run", "list", "--base-url", "http://127.0.0.1:1", "--timeout", "1.5"]),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).run_id).toBe(runId);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^Error: /);
    expect(failed.stderr).not.toContain(API_KEY);
    expect(usage.code).toBe(2);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^Error: timed out after 1.5 s/);
    expect(refused.stderr).not.toContain(API_KEY);
  });
});
