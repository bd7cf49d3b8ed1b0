/**
 * The one scenario every runtime runs against the embedded backend, in process: a LoRA training
 * client (rank 4), three training steps (the loss must fall at every step), a greedy sample, a REST
 * list both awaited (one page) and iterated with `for await` across pages, and two typed errors
 * checked with `instanceof`; then the toolkit part (scenario-toolkit.mjs) on the same backend. The
 * entries come in as arguments (`sdk`: tinker-ts + tinker-ts/local, `toolkit`: tinker-ts/toolkit)
 * so that the same code runs whether the package was imported, required or bundled.
 */
import { toolkitScenario } from "./scenario-toolkit.mjs";

export async function scenario(sdk, runtime, toolkit) {
  const started = Date.now();
  const { ServiceClient, ModelInput, datum, ValidationError, NotFoundError, createLocalTinker } = sdk;
  const local = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-runtime",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  try {
    const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    // "<bos>Hi!" → predict "Hi!" after the prompt byte.
    const example = datum(ModelInput.fromInts([256, 72, 105]), {
      target_tokens: [72, 105, 33],
      weights: [0, 1, 1],
    });
    const losses = [];
    for (let step = 0; step < 3; step++) {
      const fb = training.forwardBackward([example], "cross_entropy");
      const optim = training.optimStep({ learning_rate: 1e-2 });
      const [output] = await Promise.all([fb, optim]);
      losses.push(output.metrics["loss:sum"]);
    }

    const sampler = await training.saveWeightsAndGetSamplingClient();
    const sample = await sampler.sample(ModelInput.fromInts([256, 72]), 1, { max_tokens: 4, temperature: 0 });
    const tokens = Array.from(sample.sequences[0].tokens);

    // A second run, so that paging with limit 1 has to fetch a second page.
    await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const rest = service.createRestClient();
    const firstPage = await rest.listTrainingRuns({ limit: 1 });
    let runs = 0;
    for await (const run of rest.listTrainingRuns({ limit: 1 })) {
      if (run?.training_run_id) runs++;
      if (runs >= 10) break;
    }

    const errors = [];
    try {
      await training.forwardBackward([], "cross_entropy");
      errors.push("forwardBackward([]) did not throw");
    } catch (error) {
      errors.push(error instanceof ValidationError ? "ValidationError" : `unexpected ${describe(error)}`);
    }
    try {
      await rest.getTrainingRun("nope");
      errors.push("getTrainingRun(nope) did not reject");
    } catch (error) {
      errors.push(error instanceof NotFoundError ? "NotFoundError" : `unexpected ${describe(error)}`);
    }

    let toolkitResult;
    try {
      if (typeof toolkit?.trainLoop !== "function")
        throw new Error("the tinker-ts/toolkit entry was not loaded");
      toolkitResult = await toolkitScenario(sdk, toolkit, service);
    } catch (error) {
      toolkitResult = { ok: false, problems: [String(error?.stack ?? error)] };
    }

    const problems = [];
    const falling = losses.every((loss, i) => Number.isFinite(loss) && (i === 0 || loss < losses[i - 1]));
    if (!(losses.length === 3 && falling)) {
      problems.push(`loss did not fall: ${losses.join(",")}`);
    }
    if (tokens.length === 0) problems.push("empty sample");
    if (firstPage.training_runs?.length !== 1)
      problems.push("await listTrainingRuns({limit: 1}) is not one page");
    if (runs < 2) problems.push(`for await over listTrainingRuns({limit: 1}) saw ${runs} runs, not 2`);
    for (const e of errors) if (!e.endsWith("Error") || e.startsWith("unexpected")) problems.push(e);
    for (const p of toolkitResult.problems) problems.push(`toolkit: ${p}`);
    return {
      runtime,
      engine: engine(),
      ok: problems.length === 0,
      problems,
      losses,
      tokens,
      runs,
      errors,
      toolkit: toolkitResult,
      secureContext: globalThis.isSecureContext ?? null,
      randomUUID: typeof globalThis.crypto?.randomUUID === "function",
      asyncDispose: typeof Symbol.asyncDispose === "symbol",
      ms: Date.now() - started,
    };
  } finally {
    await service.close();
    local.close();
  }
}

/** Which engine this really is, from its globals (bundled code cannot ask a package). */
function engine() {
  const g = globalThis;
  if (g.Deno?.version?.deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun?.version) return `bun ${g.Bun.version}`;
  if (typeof g.EdgeRuntime === "string") return `EdgeRuntime=${g.EdgeRuntime}`;
  if (g.process?.versions?.node) return `node ${g.process.versions.node}`;
  const ua = g.navigator?.userAgent ?? "";
  return /(?:Headless)?Chrome\/[\d.]+/.exec(ua)?.[0] ?? (ua || "unknown");
}

function describe(error) {
  return `${error?.constructor?.name ?? typeof error}: ${error?.message ?? String(error)}`;
}
