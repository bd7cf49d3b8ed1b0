/**
 * `tinker-ts sample` (tinkex's `tinkex run`): one prompt, sampled from a base model or a saved
 * sampler checkpoint. The prompt is tokenized with the model's tokenizer (`getTokenizer`): the
 * built-in byte-level one for `tinker-ts/…` models, the Hugging Face one for others.
 */
import { ModelInput } from "../../index.js";
import type { CommandSpec } from "../app.js";
import { UsageError } from "../errors.js";
import { printOutput } from "../output.js";
import { callOptions, integerOption, numberOption } from "./common.js";

export const sampleCommands: CommandSpec[] = [
  {
    path: ["sample"],
    summary: "Sample a completion of a prompt from a base model or a sampler checkpoint",
    options: {
      "base-model": { type: "string", value: "NAME", description: "sample from this base model" },
      "model-path": { type: "string", value: "PATH", description: "sample from this tinker:// checkpoint" },
      prompt: { type: "string", value: "TEXT", description: "the prompt (required)" },
      "max-tokens": { type: "string", value: "N", description: "tokens to generate (default 32)" },
      temperature: { type: "string", value: "T", description: "sampling temperature (default 1)" },
      "top-p": { type: "string", value: "P", description: "nucleus sampling threshold" },
      "top-k": { type: "string", value: "K", description: "sample among the K most likely tokens" },
      seed: { type: "string", value: "N", description: "random seed, for reproducible samples" },
      "num-samples": { type: "string", value: "N", description: "how many completions (default 1)" },
    },
    async run(ctx) {
      const baseModel = ctx.values["base-model"] as string | undefined;
      const modelPath = ctx.values["model-path"] as string | undefined;
      const prompt = ctx.values.prompt as string | undefined;
      if ((baseModel === undefined) === (modelPath === undefined)) {
        throw new UsageError("give exactly one of --base-model and --model-path");
      }
      if (prompt === undefined) throw new UsageError("--prompt is required");
      const maxTokens = integerOption(ctx, "max-tokens", 32, 1);
      const numSamples = integerOption(ctx, "num-samples", 1, 1);
      const seedText = ctx.values.seed as string | undefined;
      const seed = seedText === undefined ? undefined : integerOption(ctx, "seed", 0, 0);
      const topK = ctx.values["top-k"] === undefined ? undefined : integerOption(ctx, "top-k", 0, 1);
      const sampler = await ctx.service().createSamplingClient({ ...callOptions(ctx), baseModel, modelPath });
      const tokenizer = await sampler.getTokenizer(callOptions(ctx));
      const tokens = tokenizer.encode(prompt);
      const response = await sampler.sample(
        ModelInput.fromInts(tokens),
        numSamples,
        {
          max_tokens: maxTokens,
          temperature: numberOption(ctx, "temperature") ?? 1,
          top_p: numberOption(ctx, "top-p"),
          top_k: topK,
          seed,
        },
        callOptions(ctx),
      );
      const samples = response.sequences.map((sequence) => ({
        text: tokenizer.decode(sequence.tokens),
        tokens: sequence.tokens,
        stop_reason: sequence.stop_reason,
      }));
      if (ctx.global.format === "json") {
        printOutput(ctx.io, "json", {
          json: () => ({ prompt, prompt_tokens: tokens, samples }),
          columns: [],
          rows: [],
        });
      } else {
        for (const [i, sample] of samples.entries()) {
          if (samples.length > 1) ctx.io.stdout.write(`--- sample ${i + 1} (${sample.stop_reason}) ---\n`);
          ctx.io.stdout.write(`${sample.text}\n`);
        }
      }
      return 0;
    },
  },
];
