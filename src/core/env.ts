/**
 * Runtime-neutral access to environment variables: `process.env` on Node and Bun, `Deno.env` on Deno
 * (which throws without --allow-env, so it is guarded), nothing in browsers and Workers.
 */
interface DenoLike {
  env: { get(name: string): string | undefined };
}

export function readEnv(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: DenoLike };
  if (g.process?.env) {
    // Deno 2 has a global `process` whose env throws without --allow-env.
    try {
      return emptyToUndefined(g.process.env[name]);
    } catch {
      return undefined;
    }
  }
  if (g.Deno?.env) {
    try {
      return emptyToUndefined(g.Deno.env.get(name));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The official client treats an empty string as unset (since 0.18); so do we. */
function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}
