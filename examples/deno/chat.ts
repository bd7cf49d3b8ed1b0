/**
 * Deno: fine-tune the tiny model on the embedded backend, then stream its answers to the terminal
 * token by token through the backend's OpenAI-compatible route (tinker-ts/openai).
 *
 *   cd examples/deno && deno task chat ["your question"]
 *
 * Against Tinker itself, build `new TinkerOpenAI({ apiKey })` (no `fetch`, no `baseURL`), set
 * `model` to your `tinker://…/sampler_weights/…` path, and add --allow-net.
 */
import { datum, ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
import { chunkText, TinkerOpenAI } from "tinker-ts/openai";
import { QA_PAIRS, supervisedExample } from "../qa-dataset.js";

// Deno's global, typed here so that the repository's Node typecheck reads this file too.
const { Deno } = globalThis as unknown as {
  Deno: { args: string[]; stdout: { write(bytes: Uint8Array): Promise<number> } };
};

const question = Deno.args[0] ?? "What is the capital of France?";
const encoder = new TextEncoder();

const local = createLocalTinker();
const service = new ServiceClient({
  apiKey: "tml-local",
  baseURL: "http://local.tinker",
  fetch: local.fetch,
});
try {
  const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 16, seed: 0 });
  const batch = QA_PAIRS.slice(0, 6).map(({ question, answer }) => {
    const { input, targets, weights } = supervisedExample(question, answer);
    return datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
  });
  for (let step = 0; step < 30; step++) {
    await Promise.all([
      training.forwardBackward(batch, "cross_entropy"),
      training.optimStep({ learning_rate: 1e-2 }),
    ]);
  }
  const { path } = await training.saveWeightsForSampler("deno-chat");
  console.log(`fine-tuned: ${path}`);

  const client = new TinkerOpenAI({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  // The format the fine-tune was trained on; the answer ends at the newline.
  const stream = await client.completions.create({
    model: path,
    prompt: `Q: ${question}\nA:`,
    max_tokens: 48,
    temperature: 0,
    stop: ["\n"],
    stream: true,
  });
  await Deno.stdout.write(encoder.encode(`Q: ${question}\nA:`));
  let pieces = 0;
  for await (const chunk of stream) {
    const text = chunkText(chunk);
    if (text === "") continue;
    pieces++;
    await Deno.stdout.write(encoder.encode(text)); // each piece as it is drawn
  }
  console.log(`\n(${pieces} pieces streamed)`);
} finally {
  await service.close();
  await local.close();
}
