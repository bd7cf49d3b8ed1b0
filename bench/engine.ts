/**
 * Engine benchmark: the quickstart's supervised fine-tune (12 question → answer pairs, one batch
 * per step) with per-step timing, the loss curve and greedy accuracy at the end.
 *
 *   npx tsx bench/engine.ts [--steps 60] [--rank 32] [--lr 1e-2]
 */

import { promptTokens, QA_PAIRS, supervisedExample } from "../examples/qa-dataset.js";
import {
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  decodeTokens,
  type EngineDatum,
  hashSeed,
  TrainableModel,
} from "../src/local/engine/index.js";

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const steps = argument("steps", 60);
const rank = argument("rank", 32);
const learningRate = argument("lr", 1e-2);

const batch: EngineDatum[] = QA_PAIRS.map(({ question, answer }) => {
  const { input, targets, weights } = supervisedExample(question, answer);
  return { tokens: input, lossFnInputs: { target_tokens: targets, weights } };
});

let started = performance.now();
const base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed("tinker-ts/byte-lm-tiny"));
const model = new TrainableModel(base, {
  rank,
  seed: 0,
  trainAttn: true,
  trainMlp: true,
  trainUnembed: true,
});
console.log(
  `base model + rank-${rank} LoRA (${model.parameterCount} trainable params): ${(performance.now() - started).toFixed(1)} ms`,
);
const tokens = batch.reduce((sum, d) => sum + d.tokens.length, 0);
console.log(`batch: ${batch.length} sequences, ${tokens} tokens; lr ${learningRate}, ${steps} steps`);

const adam = { learningRate, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, gradClipNorm: 0 };
let firstLoss = 0;
let totalMs = 0;
for (let step = 0; step < steps; step++) {
  started = performance.now();
  const { metrics } = model.forwardBackward(batch, "cross_entropy", undefined, false);
  const fbMs = performance.now() - started;
  const optim = model.optimStep(adam);
  const stepMs = performance.now() - started;
  totalMs += stepMs;
  const loss = metrics["loss:sum"];
  if (step === 0) firstLoss = loss;
  console.log(
    `step ${String(step + 1).padStart(3)}  loss:sum ${loss.toFixed(3).padStart(9)}  (${((100 * loss) / firstLoss).toFixed(1).padStart(5)}%)  ` +
      `grad_norm ${optim["grad_norm:mean"].toFixed(3).padStart(8)}  forward_backward ${fbMs.toFixed(1)} ms  step ${stepMs.toFixed(1)} ms`,
  );
}
console.log(`mean step time: ${(totalMs / steps).toFixed(1)} ms`);

started = performance.now();
const sampler = model.snapshot();
let correct = 0;
for (const { question, answer: a } of QA_PAIRS) {
  const [sample] = sampler.sample(promptTokens(question), {
    temperature: 0,
    topK: -1,
    topP: 1,
    stopStrings: ["\n"],
    maxTokens: 32,
    numSamples: 1,
  });
  const answer = decodeTokens(sample.tokens).trim();
  if (answer === a) correct++;
  console.log(
    `  ${answer === a ? "ok " : "BAD"} ${question} -> ${JSON.stringify(decodeTokens(sample.tokens))}`,
  );
}
console.log(
  `greedy accuracy: ${correct}/${QA_PAIRS.length} (sampling took ${(performance.now() - started).toFixed(1)} ms)`,
);
