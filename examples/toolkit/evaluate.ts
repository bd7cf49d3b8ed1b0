/**
 * Evaluation with tinker-ts/toolkit on the embedded backend: train a few pipelined steps with
 * `trainLoop`, then measure held-out NLL, perplexity and bits per byte two ways — from the trainer's
 * `forward` and from a sampler's `computeLogprobs` — and check that the sampler's logprobs of its
 * own samples match the trainer's for the same weights.
 *
 *   npx tsx examples/toolkit/evaluate.ts [--steps N] [--lr X]
 *
 * Every figure is printed on a `key value` line so a test (test/examples-toolkit-evaluate.test.ts)
 * can read them back.
 */
import { parseArgs } from "node:util";
import { ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
import {
  compareLogprobs,
  datumFromPromptCompletion,
  datumFromTokensAndWeights,
  type EvaluationResult,
  evaluateForward,
  evaluateLogprobs,
  trainLoop,
} from "tinker-ts/toolkit";

const TRAIN: [string, string][] = [
  ["Q: What is the capital of France?\nA:", " Paris\n"],
  ["Q: What color is the sky?\nA:", " Blue\n"],
  ["Q: How many legs does a spider have?\nA:", " Eight\n"],
  ["Q: What is 2 + 2?\nA:", " Four\n"],
  ["Q: Who wrote Hamlet?\nA:", " Shakespeare\n"],
  ["Q: What do bees make?\nA:", " Honey\n"],
];
/** Same format, other questions: what the model learnt beyond the answers it saw. */
const HELD_OUT: [string, string][] = [
  ["Q: What is frozen water called?\nA:", " Ice\n"],
  ["Q: Which animal says moo?\nA:", " Cow\n"],
  ["Q: What is the opposite of hot?\nA:", " Cold\n"],
];

function report(label: string, result: EvaluationResult): void {
  console.log(
    `${label} nll ${result.nll.toFixed(6)} perplexity ${result.perplexity.toFixed(6)} bits_per_byte ${result.bitsPerByte?.toFixed(6)} tokens ${result.tokens} bytes ${result.bytes}`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { steps: { type: "string", default: "12" }, lr: { type: "string", default: "1e-2" } },
  });
  const steps = Number(values.steps);
  const local = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  try {
    const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 16, seed: 0 });
    const tokenizer = await training.getTokenizer();
    const train = TRAIN.map(([prompt, completion]) =>
      datumFromPromptCompletion(tokenizer, prompt, completion),
    );
    const heldOut = HELD_OUT.map(([prompt, completion]) =>
      datumFromPromptCompletion(tokenizer, prompt, completion),
    );

    report("before forward", await evaluateForward(training, heldOut, { tokenizer }));

    // Every batch is the whole training set; two steps in flight, forward_backward and optim_step
    // of each submitted together.
    await trainLoop(
      training,
      Array.from({ length: steps }, () => train),
      {
        adam: { learning_rate: Number(values.lr) },
        inFlight: 2,
        onStep: ({ step, metrics }) => {
          console.log(`step ${step} train_nll ${metrics.mean_nll!.toFixed(6)}`);
        },
      },
    );

    // The trainer's view: one forward pass, reduced with each datum's weights (completion + EOS).
    const forward = await evaluateForward(training, heldOut, { tokenizer });
    report("after forward", forward);

    // The sampler's view of the same weights: computeLogprobs on prompt + completion + EOS, weighted
    // the same way (token i's weight; the first token has no logprob).
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const sequences = HELD_OUT.map(([prompt, completion]) => {
      const promptTokens = tokenizer.encode(prompt);
      const completionTokens = [
        ...tokenizer.encode(completion, { addSpecialTokens: false }),
        tokenizer.eosTokenId!,
      ];
      return {
        tokens: [...promptTokens, ...completionTokens],
        weights: [...promptTokens.map(() => 0), ...completionTokens.map(() => 1)],
      };
    });
    report("after computeLogprobs", await evaluateLogprobs(sampler, sequences, { tokenizer }));

    // Sampler vs trainer: sample at temperature 1 with logprobs, then score the same tokens with
    // forward; for the same weights the two should agree to float precision (FEATURES.md §5.5).
    const samplerLogprobs: number[] = [];
    const trainerLogprobs: number[] = [];
    for (const [prompt] of HELD_OUT) {
      const promptTokens = tokenizer.encode(prompt);
      const { sequences: samples } = await sampler.sample(ModelInput.fromInts(promptTokens), 2, {
        max_tokens: 16,
        temperature: 1,
        seed: 1,
      });
      for (const sample of samples) {
        const tokens = [...promptTokens, ...sample.tokens];
        const weights = [...promptTokens.map(() => 0), ...sample.tokens.map(() => 1)];
        const datum = datumFromTokensAndWeights(tokens, weights);
        const { logprobs } = await evaluateForward(training, [datum]);
        samplerLogprobs.push(...sample.logprobs!);
        trainerLogprobs.push(...Array.from(logprobs[0]!).slice(-sample.tokens.length));
      }
    }
    const comparison = compareLogprobs(samplerLogprobs, trainerLogprobs);
    console.log(
      `sampler_vs_trainer count ${comparison.count} mean_abs_diff ${comparison.meanAbsDiff.toExponential(3)} max_abs_diff ${comparison.maxAbsDiff.toExponential(3)} mean_diff ${comparison.meanDiff.toExponential(3)} kl_k1 ${comparison.klK1.toExponential(3)} kl_k3 ${comparison.klK3.toExponential(3)}`,
    );
  } finally {
    await service.close();
    local.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
