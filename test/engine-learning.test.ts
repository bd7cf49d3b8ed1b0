/**
 * The quickstart's learning target: a LoRA fine-tune on a dozen question → answer pairs must
 * drive the summed loss below 20% of its initial value and make greedy decoding reproduce at
 * least 11 of 12 answers within 60 steps (we allow only 40 here to keep a safety margin and the
 * test fast), with each step fast enough for the quickstart to finish in well under a minute.
 */
import { describe, expect, it } from "vitest";
import {
  BOS_TOKEN,
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  decodeTokens,
  type EngineDatum,
  encodeText,
  hashSeed,
  TrainableModel,
} from "../src/local/engine/index.js";

const QA_PAIRS = [
  { q: "What is the capital of France?", a: "Paris" },
  { q: "What color is the sky?", a: "Blue" },
  { q: "How many legs does a spider have?", a: "Eight" },
  { q: "What is 2 + 2?", a: "Four" },
  { q: "Who wrote Hamlet?", a: "Shakespeare" },
  { q: "What is the largest planet?", a: "Jupiter" },
  { q: "What do bees make?", a: "Honey" },
  { q: "What is frozen water called?", a: "Ice" },
  { q: "Which animal says moo?", a: "Cow" },
  { q: "What is the opposite of hot?", a: "Cold" },
  { q: "How many days are in a week?", a: "Seven" },
  { q: "What gas do plants absorb?", a: "Carbon dioxide" },
];

const promptTokens = (q: string) => [BOS_TOKEN, ...encodeText(`Q: ${q}\nA:`)];

/** Prompt weight 0, completion weight 1, inputs/targets shifted by one — as the quickstart renders them. */
function supervisedDatum(q: string, a: string): EngineDatum {
  const prompt = promptTokens(q);
  const all = [...prompt, ...encodeText(` ${a}\n`)];
  const targets = all.slice(1);
  return {
    tokens: all.slice(0, -1),
    lossFnInputs: { target_tokens: targets, weights: targets.map((_, i) => (i + 1 < prompt.length ? 0 : 1)) },
  };
}

const STEPS = 40;
const ADAM = { learningRate: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-12, weightDecay: 0, gradClipNorm: 0 };

describe("engine learning (quickstart target)", () => {
  it("memorises 12 QA pairs with a rank-32 LoRA", () => {
    const base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed("tinker-ts/byte-lm-tiny"));
    const model = new TrainableModel(base, {
      rank: 32,
      seed: 0,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    const batch = QA_PAIRS.map(({ q, a }) => supervisedDatum(q, a));

    const losses: number[] = [];
    const stepMs: number[] = [];
    for (let step = 0; step < STEPS; step++) {
      const started = performance.now();
      losses.push(model.forwardBackward(batch, "cross_entropy", undefined, false).metrics["loss:sum"]);
      model.optimStep(ADAM);
      stepMs.push(performance.now() - started);
    }
    const sampler = model.snapshot();
    const answers = QA_PAIRS.map(({ q }) => {
      const [sample] = sampler.sample(promptTokens(q), {
        temperature: 0,
        topK: -1,
        topP: 1,
        stopStrings: ["\n"],
        maxTokens: 32,
        numSamples: 1,
      });
      return decodeTokens(sample.tokens).trim();
    });
    const correct = answers.filter((answer, i) => answer === QA_PAIRS[i].a).length;
    const medianMs = [...stepMs].sort((x, y) => x - y)[Math.floor(stepMs.length / 2)];
    console.log(
      `learning: loss ${losses[0].toFixed(1)} → ${losses[9].toFixed(1)} (step 10) → ${losses[STEPS - 1].toFixed(3)} ` +
        `(step ${STEPS}); greedy ${correct}/12; median step ${medianMs.toFixed(0)} ms`,
    );

    expect(losses[0]).toBeGreaterThan(400); // ≈ 90 completion tokens × ln(258)
    expect(Math.min(...losses)).toBeLessThan(0.2 * losses[0]);
    expect(losses[STEPS - 1]).toBeLessThan(0.2 * losses[0]);
    expect(correct).toBeGreaterThanOrEqual(11);
    // Generous bound (CI machines vary); bench/engine.ts reports the real figure.
    expect(medianMs).toBeLessThan(1500);
  });
});
