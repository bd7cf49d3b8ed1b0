/**
 * `TINKER_CREDENTIAL_CMD` (PROTOCOL.md §1.2): a shell command whose trimmed stdout is a fresh
 * credential, run again for every token request.
 *
 * Starting a process is not a web-standard capability, so the runtime's own API is loaded only when
 * the command is first run: `Deno.Command` on Deno, `node:child_process` on Node and Bun (through a
 * dynamic import that bundlers leave alone). Everywhere else the command cannot run, and the error
 * points to `ClientOptions.credentialProvider`, the portable form of the same thing.
 *
 * Neither the command nor anything it prints appears in an error message: both may hold secrets.
 */
import { TinkerError } from "./errors.js";

/** A command that hangs must not hang the client forever. */
const COMMAND_TIMEOUT_MS = 120_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;

/** A credential source that runs `command` through the shell on every call. */
export function credentialCommand(command: string): () => Promise<string> {
  return () => runCredentialCommand(command);
}

/** Runs `command` through the shell and returns its trimmed stdout, which must not be empty. */
export async function runCredentialCommand(command: string): Promise<string> {
  const output = await runShell(command);
  const credential = output.trim();
  if (credential === "") throw new TinkerError("TINKER_CREDENTIAL_CMD returned an empty credential.");
  return credential;
}

interface DenoCommandApi {
  Command: new (
    program: string,
    options: { args: string[]; stdout: "piped"; stderr: "null"; stdin: "null"; signal?: AbortSignal },
  ) => { output(): Promise<{ code: number; stdout: Uint8Array }> };
  build: { os: string };
}

interface NodeChildProcess {
  exec(
    command: string,
    options: { encoding: "utf8"; timeout: number; maxBuffer: number; windowsHide: boolean },
    callback: (error: (Error & { code?: number | string; killed?: boolean }) | null, stdout: string) => void,
  ): unknown;
}

function runShell(command: string): Promise<string> {
  const g = globalThis as { Deno?: Partial<DenoCommandApi>; process?: { versions?: { node?: string } } };
  if (typeof g.Deno?.Command === "function") return runWithDeno(g.Deno as DenoCommandApi, command);
  if (g.process?.versions?.node) return runWithNode(command);
  return Promise.reject(
    new TinkerError(
      "TINKER_CREDENTIAL_CMD cannot run here: this runtime cannot start processes. " +
        "Pass ClientOptions.credentialProvider instead.",
    ),
  );
}

async function runWithDeno(deno: DenoCommandApi, command: string): Promise<string> {
  const [shell, flag] = deno.build.os === "windows" ? ["cmd", "/c"] : ["sh", "-c"];
  const result = await new deno.Command(shell, {
    args: [flag, command],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
    signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
  })
    .output()
    .catch(() => {
      throw commandFailed("could not be started or timed out");
    });
  if (result.code !== 0) throw commandFailed(`exited with code ${result.code}`);
  return new TextDecoder().decode(result.stdout);
}

async function runWithNode(command: string): Promise<string> {
  // A variable specifier keeps bundlers for browsers and Workers from trying to resolve it.
  const specifier = "node:child_process";
  const childProcess = (await import(/* @vite-ignore */ specifier)) as NodeChildProcess;
  return new Promise((resolve, reject) => {
    childProcess.exec(
      command,
      { encoding: "utf8", timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true },
      (error, stdout) => {
        if (!error) resolve(stdout);
        else if (error.killed) reject(commandFailed("timed out or printed too much"));
        else if (typeof error.code === "number") reject(commandFailed(`exited with code ${error.code}`));
        else reject(commandFailed("could not be started"));
      },
    );
  });
}

function commandFailed(how: string): TinkerError {
  return new TinkerError(`TINKER_CREDENTIAL_CMD ${how}.`);
}
