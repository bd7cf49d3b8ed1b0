/** Timer accounting for tests that check a client leaves no timer behind. */

/**
 * Counts this process's pending timers, unref'd ones included (which getActiveResourcesInfo() does
 * not list): every setTimeout until it fires or is cleared, every setInterval until it is cleared.
 */
export function trackTimers() {
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const saved = { ...pick(g, ["setTimeout", "setInterval", "clearTimeout", "clearInterval"]) };
  const pending = new Set<unknown>();
  g.setTimeout = (fn: unknown, ms: unknown, ...args: unknown[]) => {
    const handle = saved.setTimeout!(() => {
      pending.delete(handle);
      (fn as (...a: unknown[]) => void)(...args);
    }, ms);
    pending.add(handle);
    return handle;
  };
  g.setInterval = (...args: unknown[]) => {
    const handle = saved.setInterval!(...args);
    pending.add(handle);
    return handle;
  };
  for (const name of ["clearTimeout", "clearInterval"] as const) {
    g[name] = (handle: unknown) => {
      pending.delete(handle);
      return saved[name]!(handle);
    };
  }
  return {
    pending: () => pending.size,
    restore: () => Object.assign(g, saved),
  };
}

function pick<T extends object, K extends keyof T>(object: T, keys: K[]): Partial<Pick<T, K>> {
  return Object.fromEntries(keys.map((k) => [k, object[k]])) as Partial<Pick<T, K>>;
}

/** Ref'd timers Node still waits for. */
export function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}
