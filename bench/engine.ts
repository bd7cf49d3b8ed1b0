/**
 * Bench case (f): the embedded engine's training and sampling speed, measured on the engine directly
 * (no HTTP, no SDK), plus the quickstart's supervised fine-tune as a sanity check that the steps
 * being timed actually learn.
 *
 *   npx tsx bench/engine.ts [--quick] [--rank 32] [--batch 8] [--seq 128]
 *
 * Prints `RESULT {...}` lines for bench/run.ts (see its header for the format).
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
import { median, report, spread } from "./lib/result.js";

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const quick = process.argv.includes("--quick");
const rank = argument("rank", 32);
const batchSize = argument("batch", 8);
const seqLen = argument("seq", 128);
const warmupSteps = quick ? 1 : 2;
const timedSteps = quick ? 2 : 10;
const samplingRounds = quick ? 2 : 8;
const quickstartSteps = quick ? 4 : 30;

/** Seeded byte sequences (xorshift), so every run trains on the same batch. */
function syntheticBatch(size: number, length: number): EngineDatum[] {
  let state = 0x9e3779b9;
  const nextByte = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % 256;
  };
  return Array.from({ length: size }, () => {
    const sequence = Array.from({ length: length + 1 }, nextByte);
    return {
      tokens: sequence.slice(0, -1),
      lossFnInputs: { target_tokens: sequence.slice(1), weights: sequence.slice(1).map(() => 1) },
    };
  });
}

function newModel(): TrainableModel {
  const base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed("tinker-ts/byte-lm-tiny"));
  return new TrainableModel(base, { rank, seed: 0, trainAttn: true, trainMlp: true, trainUnembed: true });
}

const adam = { learningRate: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, gradClipNorm: 0 };

// --- f1: training tokens per second -------------------------------------------------------------

const model = newModel();
const batch = syntheticBatch(batchSize, seqLen);
const batchTokens = batchSize * seqLen;
console.log(
  `engine: ${DEFAULT_MODEL_CONFIG.nLayers} layers × d${DEFAULT_MODEL_CONFIG.dModel}, rank-${rank} LoRA ` +
    `(${model.parameterCount} trainable params); batch ${batchSize} × ${seqLen} = ${batchTokens} tokens`,
);
const trainingRates: number[] = [];
for (let step = 0; step < warmupSteps + timedSteps; step++) {
  const started = performance.now();
  const { metrics } = model.forwardBackward(batch, "cross_entropy", undefined, false);
  model.optimStep(adam);
  const ms = performance.now() - started;
  const warm = step >= warmupSteps;
  if (warm) trainingRates.push((batchTokens / ms) * 1000);
  console.log(
    `  ${warm ? "step" : "warm"} ${step + 1}: ${ms.toFixed(1)} ms, loss/token ${(metrics["loss:sum"] / batchTokens).toFixed(3)}`,
  );
}
report({
  id: "f1",
  measure: `engine training (forward_backward + optim_step, ${batchSize}×${seqLen} tokens, LoRA rank ${rank})`,
  value: Math.round(median(trainingRates)),
  unit: "tokens/s",
  detail: `median of ${timedSteps} steps, spread ${spread(trainingRates)}`,
});

// --- f2: sampling tokens per second -------------------------------------------------------------

const sampler = model.snapshot();
const samplePrompt = batch[0]!.tokens.slice(0, 16);
const maxTokens = 64;
const numSamples = 4;
const samplingRates: number[] = [];
for (let round = 0; round < samplingRounds + 1; round++) {
  const started = performance.now();
  const sequences = sampler.sample(samplePrompt, {
    temperature: 1,
    topK: -1,
    topP: 1,
    stopStrings: [],
    maxTokens,
    numSamples,
    seed: round,
  });
  const ms = performance.now() - started;
  const generated = sequences.reduce((sum, s) => sum + s.tokens.length, 0);
  // Round 0 is warm-up.
  if (round > 0) samplingRates.push((generated / ms) * 1000);
}
report({
  id: "f2",
  measure: `engine sampling (16-token prompt, ${numSamples} samples × ${maxTokens} tokens)`,
  value: Math.round(median(samplingRates)),
  unit: "tokens/s",
  detail: `median of ${samplingRounds}, spread ${spread(samplingRates)}`,
});

// --- f3: sanity, the quickstart fine-tune still learns ------------------------------------------

const qaModel = newModel();
const qaBatch: EngineDatum[] = QA_PAIRS.map(({ question, answer }) => {
  const { input, targets, weights } = supervisedExample(question, answer);
  return { tokens: input, lossFnInputs: { target_tokens: targets, weights } };
});
let firstLoss = 0;
let lastLoss = 0;
for (let step = 0; step < quickstartSteps; step++) {
  const { metrics } = qaModel.forwardBackward(qaBatch, "cross_entropy", undefined, false);
  qaModel.optimStep(adam);
  lastLoss = metrics["loss:sum"];
  if (step === 0) firstLoss = lastLoss;
}
const qaSampler = qaModel.snapshot();
let correct = 0;
for (const { question, answer } of QA_PAIRS) {
  const [sample] = qaSampler.sample(promptTokens(question), {
    temperature: 0,
    topK: -1,
    topP: 1,
    stopStrings: ["\n"],
    maxTokens: 32,
    numSamples: 1,
  });
  if (decodeTokens(sample!.tokens).trim() === answer) correct++;
}
console.log(
  `quickstart SFT: loss ${firstLoss.toFixed(1)} → ${lastLoss.toFixed(1)} in ${quickstartSteps} steps, greedy accuracy ${correct}/${QA_PAIRS.length}`,
);
report({
  id: "f3",
  measure: `quickstart SFT loss after ${quickstartSteps} steps (sanity: the timed steps learn)`,
  value: Math.round((1000 * lastLoss) / firstLoss) / 10,
  unit: "% of step 1",
  detail: `greedy accuracy ${correct}/${QA_PAIRS.length}`,
});
