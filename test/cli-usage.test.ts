/**
 * The CLI's first-hour rough edges: `--version`, escapes in `--prompt`, negative numbers reaching
 * the command's own check, the exit codes in the help, and `sample` against `tinker-ts serve`
 * tokenizing with the server's byte-level tokenizer for a model name the server only imitates.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type CliIO, main } from "../src/cli/app.js";
import { interpretEscapes } from "../src/cli/commands/sample.js";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { VERSION } from "../src/version.js";

let server: RunningServer;

beforeAll(async () => {
  server = await serve({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await server?.close();
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text), isTTY: false },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    env: { TINKER_API_KEY: "tml-local", TINKER_BASE_URL: server.url },
    cwd: process.cwd(),
    stdinIsTTY: false,
    confirm: async () => false,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

describe("tinker-ts usage", () => {
  it("prints the version for --version and -V, exit 0", async () => {
    for (const flag of ["--version", "-V"]) {
      const result = await cli([flag]);
      expect(result).toEqual({
        code: 0,
        stdout: `tinker-ts ${VERSION} (Tinker protocol 0.39.0)\n`,
        stderr: "",
      });
    }
  });

  it("documents the exit codes in the help", async () => {
    expect((await cli(["--help"])).stdout).toContain("Exit codes: 0 success, 1 failure");
    expect((await cli(["sample", "--help"])).stdout).toContain("Exit codes: 0 success, 1 failure");
  });

  it("says what a number option allows when given a negative one, instead of 'ambiguous'", async () => {
    const cases: [string[], string][] = [
      [["--max-tokens", "-3"], "--max-tokens must be a positive integer, got -3"],
      [["--num-samples", "-1"], "--num-samples must be a positive integer, got -1"],
      [["--seed", "-2"], "--seed must be a non-negative integer, got -2"],
    ];
    for (const [extra, message] of cases) {
      const result = await cli([
        "sample",
        "--base-model",
        "tinker-ts/byte-lm-tiny",
        "--prompt",
        "x",
        ...extra,
      ]);
      expect(result.code, extra.join(" ")).toBe(2);
      expect(result.stderr).toContain(`Error: ${message}\n`);
    }
    const timeout = await cli(["run", "list", "--timeout", "-1"]);
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain("--timeout must be a positive number of seconds, got -1");
  });

  it("reads \\n, \\t, \\r and \\\\ in --prompt and --stop as the characters", () => {
    expect(interpretEscapes("Q: Hi\\nA:")).toBe("Q: Hi\nA:");
    expect(interpretEscapes("a\\tb\\rc")).toBe("a\tb\rc");
    expect(interpretEscapes("C:\\\\new")).toBe("C:\\new");
    expect(interpretEscapes("keep \\x and \\")).toBe("keep \\x and \\");
  });

  it("samples an imitated model name with the server's byte-level tokenizer, no Hub download", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    try {
      const result = await cli([
        "sample",
        "--base-model",
        "Qwen/Qwen3-8B",
        "--prompt",
        "Q: Hi\\nA:",
        "--max-tokens",
        "4",
        "--stop",
        "\\n",
        "-f",
        "json",
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const out = JSON.parse(result.stdout) as { prompt: string; prompt_tokens: number[] };
      expect(out.prompt).toBe("Q: Hi\nA:");
      // <|bos|> then the UTF-8 bytes: the server's tokenizer, not Qwen's.
      expect(out.prompt_tokens).toEqual([256, ...new TextEncoder().encode("Q: Hi\nA:")]);
      const hosts = fetchSpy.mock.calls.map(
        ([input]) => new URL(input instanceof Request ? input.url : input).host,
      );
      // Only the server (a Hub download would go through fetch; the SDK's own requests go over
      // Node's transport in this suite, or through fetch with TINKER_TS_TRANSPORT=fetch).
      expect(hosts.filter((host) => host !== new URL(server.url).host)).toEqual([]);
    } finally {
      fetchSpy.mockRestore();
    }
  });
});
