/**
 * The built package as users get it: `require` and `import` through the package's own `exports`
 * (self-reference by name), each in a fresh Node process that must exit on its own; and the CLI's
 * `serve`, which must stop cleanly on SIGTERM. Run after `npm run build` (`npm test` does both).
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe("built package", () => {
  it("has been built", () => {
    expect(existsSync(`${root}/dist/index.js`), "run `npm run build` first").toBe(true);
  });

  for (const name of ["smoke.mjs", "smoke.cjs"]) {
    it(`works from ${name} and the process exits by itself`, async () => {
      const { stdout } = await run(process.execPath, [fixture(name)], { cwd: root, timeout: 30_000 });
      const result = JSON.parse(stdout.trim());
      expect(result).toEqual({ format: name.endsWith("cjs") ? "cjs" : "esm", tokens: 4, errors: "function" });
    });
  }

  it("runs README's usage example as written", async () => {
    const readme = readFileSync(`${root}/README.md`, "utf8");
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    // Inside the package folder, so that `tinker-ts` resolves to this package by self-reference.
    const dir = mkdtempSync(`${root}/test/.readme-`);
    try {
      writeFileSync(`${dir}/example.mjs`, example);
      const { stdout } = await run(process.execPath, [`${dir}/example.mjs`], { cwd: root, timeout: 30_000 });
      const [loss] = stdout.trim().split("\n");
      expect(Number(loss)).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serve --min-sdk-version refuses older clients as the service does, and the SDK says what to do", async () => {
    const child = spawn(
      process.execPath,
      [`${root}/dist/cli.js`, "serve", "--port", "0", "--min-sdk-version", "0.40.0"],
      { cwd: root },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (data) => {
        out += String(data);
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match && out.includes("below sdk_version 0.40.0")) resolve(match[1]!);
      });
      child.once("exit", (code) => reject(new Error(`serve exited early with ${code}`)));
    });
    try {
      const refused = await fetch(`${url}/api/v1/create_session`, {
        method: "POST",
        headers: { "X-API-Key": "tml-cli", "content-type": "application/json" },
        body: JSON.stringify({ sdk_version: "0.39.0", tags: [], user_metadata: {}, type: "create_session" }),
      });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ detail: expect.stringMatching(/no longer supported/) });
      const { ServiceClient, SdkVersionUnsupportedError } = await import(`${root}/dist/index.js`);
      const service = new ServiceClient({ apiKey: "tml-cli", baseURL: url, telemetry: false });
      const error = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SdkVersionUnsupportedError);
      await service.close();
      const accepted = new ServiceClient({
        apiKey: "tml-cli",
        baseURL: url,
        telemetry: false,
        sdkVersion: "0.40.0",
      });
      await expect(
        accepted.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 2 }),
      ).resolves.toBeDefined();
      await accepted.close();
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  });

  it("serves over HTTP from the CLI and stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [`${root}/dist/cli.js`, "serve", "--port", "0"], { cwd: root });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (data) => {
        out += String(data);
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
      child.once("exit", (code) => reject(new Error(`serve exited early with ${code}`)));
    });
    const response = await fetch(`${url}/api/v1/get_server_capabilities`, {
      headers: { "X-API-Key": "tml-cli" },
    });
    expect((await response.json()).supported_models[0].model_name).toBe("tinker-ts/byte-lm-tiny");
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
