/**
 * The TypeScript half of bench/python.ts: the workloads of bench/peers/python_sdk.py, run with
 * tinker-ts as a Node application gets it (the built package under the `node` condition, plain
 * `node`, no loader), one workload per process.
 *
 *   node bench/peers/ts_sdk.mjs fb-cpu  BASE_URL COUNT
 *   node bench/peers/ts_sdk.mjs samples BASE_URL COUNT
 *
 * (The third workload, `encode`, is bench/peers/ts_encode.ts: it needs the SDK's internal encoder.)
 * Prints `FIGURE {json}`, as the Python half does.
 */
import { resourceUsage } from "node:process";

const { ServiceClient, datum, ModelInput } = await import("../../dist/node.js");
const MODEL = "tinker-ts/byte-lm-tiny";
const [workload, url, n] = process.argv.slice(2);
const count = Number(n);
const figure = (values) => console.log(`FIGURE ${JSON.stringify(values)}`);

const service = new ServiceClient({ baseURL: url, apiKey: "tml-bench", telemetry: false });
try {
  if (workload === "fb-cpu") {
    const training = await service.createLoraTrainingClient(MODEL, { rank: 1 });
    const one = datum(ModelInput.fromInts([256, 72, 105, 33]), {
      target_tokens: [72, 105, 33, 10],
      weights: [1, 1, 1, 1],
    });
    for (let i = 0; i < count; i++) await training.forwardBackward([one], "cross_entropy");
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < count; i++) await training.forwardBackward([one], "cross_entropy");
    const cpu = process.cpuUsage(cpu0);
    figure({
      cpu_us: (cpu.user + cpu.system) / count,
      wall_us: ((performance.now() - wall0) * 1000) / count,
    });
  } else if (workload === "samples") {
    const sampler = await service.createSamplingClient({ baseModel: MODEL });
    const prompt = ModelInput.fromInts([256, ...Array.from({ length: 63 }, (_, i) => 72 + (i % 26))]);
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: count }, () => sampler.sample(prompt, 1, { max_tokens: 1, seed: 0 })),
    );
    const done = results.filter((r) => r.sequences.length > 0).length;
    // maxRSS is in KiB, as Python's ru_maxrss on Linux.
    figure({
      peak_rss_mb: resourceUsage().maxRSS / 1024,
      done,
      seconds: (performance.now() - started) / 1000,
    });
  } else {
    throw new Error(`unknown workload ${workload}`);
  }
} finally {
  await service.close();
}
