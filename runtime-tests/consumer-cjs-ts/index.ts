// A CommonJS TypeScript consumer (module node16, no "type": "module"): the package's .d.cts types
// must resolve and type-check, and the emitted require() calls must run.
import {
  APIFuture,
  datum,
  ModelInput,
  NotFoundError,
  type RestClient,
  ServiceClient,
  type TrainingRun,
  ValidationError,
} from "tinker-ts";
import { createLocalTinker, type LocalTinker } from "tinker-ts/local";

async function main(): Promise<void> {
  const local: LocalTinker = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-cjs-ts",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
  const example = datum(ModelInput.fromInts([256, 72, 105]), {
    target_tokens: [72, 105, 33],
    weights: [0, 1, 1],
  });
  const future = training.forwardBackward([example], "cross_entropy");
  if (!(future instanceof APIFuture)) throw new Error("forwardBackward did not return an APIFuture");
  const output = await future;
  const loss: number = output.metrics["loss:sum"];
  const rest: RestClient = service.createRestClient();
  const runs: TrainingRun[] = [];
  for await (const run of rest.listTrainingRuns({ limit: 1 })) runs.push(run);
  const missing = await rest.getTrainingRun("nope").catch((error: unknown) => error);
  await service.close();
  local.close();
  console.log(
    JSON.stringify({
      loss: Number.isFinite(loss),
      runs: runs.length,
      notFound: missing instanceof NotFoundError,
      validationError: typeof ValidationError,
    }),
  );
}

// Rethrown outside the promise chain, so that the process exits non-zero.
main().catch((error: unknown) => {
  setTimeout(() => {
    throw error;
  });
});
