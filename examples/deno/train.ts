/**
 * Deno: fine-tune a LoRA adapter on the embedded Tinker backend, then answer greedily.
 *
 *   cd examples/deno && deno task train
 *
 * The backend is an in-process fetch handler, so the only permission asked for is --allow-env
 * (the client reads its TINKER_* settings): no network, no files. Outside this repository, map
 * "tinker-ts" to "npm:tinker-ts" in deno.json and import from "tinker-ts" / "tinker-ts/local".
 * To train on the Tinker service, build `new ServiceClient({ apiKey })` without `fetch`/`baseURL`
 * and add --allow-net (examples/quickstart.ts shows the service's base model and learning rate).
 */
import { type Datum, datum, ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker, decodeTokens } from "tinker-ts/local";
import { promptTokens, QA_PAIRS, supervisedExample } from "../qa-dataset.js";

const STEPS = 30;
const PAIRS = QA_PAIRS.slice(0, 6);

// Client and backend talk through `local.fetch`; nothing leaves the process.
const local = createLocalTinker();
const service = new ServiceClient({
  apiKey: "tml-local",
  baseURL: "http://local.tinker",
  fetch: local.fetch,
});

try {
  const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 16, seed: 0 });

  // One next-token datum per pair, with the loss on the answer tokens only.
  const batch: Datum[] = PAIRS.map(({ question, answer }) => {
    const { input, targets, weights } = supervisedExample(question, answer);
    return datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
  });
  const answerTokens = batch.reduce(
    (n, d) => n + d.loss_fn_inputs.weights!.data.reduce((a, b) => a + b, 0),
    0,
  );

  for (let step = 1; step <= STEPS; step++) {
    // Queue both operations at once; the server runs them in call order.
    const [output] = await Promise.all([
      training.forwardBackward(batch, "cross_entropy"),
      training.optimStep({ learning_rate: 1e-2 }),
    ]);
    console.log(`step ${step} loss ${(output.metrics["loss:sum"]! / answerTokens).toFixed(4)}`);
  }

  // Freeze the adapter into a sampler and answer each question greedily, stopping at the newline.
  const sampler = await training.saveWeightsAndGetSamplingClient();
  for (const { question } of PAIRS) {
    const result = await sampler.sample(ModelInput.fromInts(promptTokens(question)), 1, {
      max_tokens: 24,
      temperature: 0,
      stop: ["\n"],
    });
    console.log(`Q: ${question} A: ${decodeTokens(result.sequences[0]!.tokens).trim()}`);
  }
} finally {
  await service.close();
  local.close();
}
