/**
 * One transport of bench/leak.ts, in its own process (`node --expose-gc`): FUTURES futures (forward
 * and sample, alternating, 16 in flight) through the built package, the heap measured after a full
 * GC at every tenth of the run. Prints `FIGURE {json}` with the checkpoints.
 *
 *   node --expose-gc bench/leak-worker.mjs node|fetch|fetch-ignoring-signal BASE_URL FUTURES
 */
const [mode, url, n] = process.argv.slice(2);
const count = Number(n);
if (mode === "fetch") process.env.TINKER_TS_TRANSPORT = "fetch";
const { ServiceClient, datum, ModelInput } = await import("../dist/node.js");

/** A fetch that never looks at the request's signal (as some polyfills and proxies behave). */
const ignoringSignal = async (request) =>
  globalThis.fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.method === "GET" ? undefined : await request.arrayBuffer(),
  });

const service = new ServiceClient({
  baseURL: url,
  apiKey: "tml-bench",
  telemetry: false,
  ...(mode === "fetch-ignoring-signal" ? { fetch: ignoringSignal } : {}),
});
const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 1 });
const sampler = await service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
const one = datum(ModelInput.fromInts([256, 72, 105, 33]), {
  target_tokens: [72, 105, 33, 10],
  weights: [1, 1, 1, 1],
});
const prompt = ModelInput.fromInts([256, 72, 105]);
const future = (i) =>
  i % 2 ? sampler.sample(prompt, 1, { max_tokens: 1, seed: i }) : training.forward([one], "cross_entropy");

async function run(total, inFlight = 16) {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await future(next++);
    }),
  );
}
/** Heap after full GCs, with the finalizers they queue (WeakRefs, FinalizationRegistry) run in between. */
const heap = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return process.memoryUsage().heapUsed;
};

// Warm-up: the JIT optimises functions for a while (its code is on the heap too), sockets, and the
// client's bounded caches fill (the request-id ledger holds the last 4,096 ids: one per future), so
// what grows after it is growth that would not stop.
await run(Math.min(5_000, count));
const checkpoints = [{ futures: 0, heap: await heap() }];
const step = Math.max(1, Math.floor(count / 10));
for (let done = 0; done < count; done += step) {
  await run(step);
  checkpoints.push({ futures: done + step, heap: await heap() });
}
await service.close();
console.log(`FIGURE ${JSON.stringify({ mode, checkpoints })}`);
