/**
 * Quickstart: fine-tune a LoRA adapter on a dozen question → answer pairs, print the loss each
 * step, then answer every training question greedily.
 *
 *   npm run quickstart                      # embedded local backend, no API key
 *   TINKER_API_KEY=tml-… npm run quickstart -- --base-model meta-llama/Llama-3.2-1B
 *   TINKER_BASE_URL=http://127.0.0.1:8000 TINKER_API_KEY=tml-local npm run quickstart  # `tinker-ts serve`
 *
 * The base model defaults to what the server offers: the built-in tiny model on a tinker-ts backend
 * (learning rate 1e-2), else meta-llama/Llama-3.2-1B (1e-4).
 *
 * Flags: --base-model NAME, --steps N, --lr X, --rank R, --save NAME (keep the sampler weights under
 * NAME on the server and print their tinker:// path, e.g. for examples/cloudflare's TINKER_MODEL).
 *
 * Tokens are bytes (the local model's tokenizer). On the real service the same byte-valued ids are
 * fed to the base model: the loop is identical, only the text is not what that model's own tokenizer
 * would produce.
 */
import { parseArgs } from "node:util";
import { type Datum, datum, ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker, decodeTokens } from "tinker-ts/local";
import { promptTokens, QA_PAIRS, supervisedExample } from "./qa-dataset.js";

/** Next-token datum with the loss on the answer only. */
function toDatum(question: string, answer: string): Datum {
  const { input, targets, weights } = supervisedExample(question, answer);
  return datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "base-model": { type: "string" },
      steps: { type: "string", default: "30" },
      lr: { type: "string" },
      rank: { type: "string", default: "16" },
      save: { type: "string" },
    },
  });
  const remote = process.env.TINKER_API_KEY !== undefined && process.env.TINKER_API_KEY !== "";
  const local = remote ? undefined : createLocalTinker();
  const service = remote
    ? new ServiceClient()
    : new ServiceClient({ apiKey: "tml-local", baseURL: "http://local.tinker", fetch: local!.fetch });
  try {
    // A tinker-ts backend (embedded, or `tinker-ts serve` at TINKER_BASE_URL) lists its built-in
    // tiny model; the Tinker service lists its hosted ones.
    const { supported_models } = await service.getServerCapabilities();
    const tiny = supported_models.some((model) => model.model_name === BUILTIN_BASE_MODEL);
    const baseModel = values["base-model"] ?? (tiny ? BUILTIN_BASE_MODEL : "meta-llama/Llama-3.2-1B");
    // The tiny model (about 130 thousand weights, random at the start) wants a much larger step than a
    // billion-parameter pretrained one (docs/GUIDE-DATUM.md, "Learning rates").
    const learningRate = Number(values.lr ?? (baseModel.startsWith("tinker-ts/") ? 1e-2 : 1e-4));
    const steps = Number(values.steps);
    const where = local
      ? "embedded local backend"
      : tiny
        ? `tinker-ts backend at ${process.env.TINKER_BASE_URL}`
        : "Tinker service";
    console.log(`${where} · ${baseModel} · rank ${values.rank} · lr ${learningRate}`);

    const training = await service.createLoraTrainingClient(baseModel, {
      rank: Number(values.rank),
      seed: 0,
    });
    const batch = QA_PAIRS.map(({ question, answer }) => toDatum(question, answer));
    const answerTokens = batch.reduce(
      (n, d) => n + d.loss_fn_inputs.weights!.data.reduce((a, b) => a + b, 0),
      0,
    );

    let firstLoss = 0;
    let lastLoss = 0;
    for (let step = 1; step <= steps; step++) {
      // Both calls are queued at once and run in order on the server.
      const fb = training.forwardBackward(batch, "cross_entropy");
      const optim = training.optimStep({ learning_rate: learningRate });
      const [output] = await Promise.all([fb, optim]);
      const loss = output.metrics["loss:sum"]! / answerTokens;
      if (step === 1) firstLoss = loss;
      lastLoss = loss;
      console.log(`step ${String(step).padStart(3)}  loss ${loss.toFixed(4)}`);
    }

    if (values.save !== undefined) {
      const { path } = await training.saveWeightsForSampler(values.save);
      console.log(`sampler weights: ${path}`);
    }
    const sampler = await training.saveWeightsAndGetSamplingClient();
    let correct = 0;
    for (const { question, answer } of QA_PAIRS) {
      const result = await sampler.sample(ModelInput.fromInts(promptTokens(question)), 1, {
        max_tokens: 24,
        temperature: 0,
        stop: ["\n"],
      });
      const text = decodeTokens(result.sequences[0]!.tokens).trim();
      const ok = text === answer;
      if (ok) correct++;
      console.log(`${ok ? "✓" : "✗"} ${question} → ${text}`);
    }
    console.log(
      `loss ${firstLoss.toFixed(4)} → ${lastLoss.toFixed(4)} (${((100 * lastLoss) / firstLoss).toFixed(1)}% of the first step); ${correct}/${QA_PAIRS.length} answers exact`,
    );
  } finally {
    await service.close();
    local?.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
