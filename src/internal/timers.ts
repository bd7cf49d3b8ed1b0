/**
 * Background timers (heartbeat) must never keep a process alive by themselves: unref them where the
 * runtime knows the concept (Node and Bun timer objects, Deno's numeric ids).
 */
export function unrefTimer(handle: unknown): void {
  if (typeof handle === "object" && handle !== null && "unref" in handle) {
    (handle as { unref(): void }).unref();
    return;
  }
  const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
  if (typeof handle === "number" && deno?.unrefTimer) deno.unrefTimer(handle);
}
