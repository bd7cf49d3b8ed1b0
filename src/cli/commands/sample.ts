/**
 * `tinker-ts sample` (tinkex's `tinkex run`): one prompt, sampled from a base model or a saved
 * sampler checkpoint. The prompt is tokenized with the server's tokenizer for the model: the
 * built-in byte-level one on a tinker-ts backend (`tinker-ts serve`), whatever model name it
 * imitates; otherwise the model's own (`getTokenizer`, from the Hugging Face Hub), or --tokenizer.
 */
import { type CallOptions, ModelInput, type SamplingClient, type ServiceClient } from "../../index.js";
import {
  BYTE_LEVEL_TOKENIZER_ID,
  ByteLevelTokenizer,
  loadTokenizer,
  type Tokenizer,
  tokenizerIdForModelName,
} from "../../lib/tokenizer/index.js";
import type { CommandSpec } from "../app.js";
import { UsageError } from "../errors.js";
import { printOutput } from "../output.js";
import { callOptions, integerOption, numberOption } from "./common.js";

/**
 * `\n`, `\t`, `\r` and `\\` in a command-line argument as the characters they name (a shell passes
 * `"Q: Hi\nA:"` with a literal backslash); any other backslash stays as typed.
 */
export function interpretEscapes(text: string): string {
  const named: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\" };
  return text.replace(/\\([ntr\\])/g, (_, c: string) => named[c]);
}

/**
 * The tokenizer the server tokenizes with. A tinker-ts backend lists its built-in `tinker-ts/…`
 * model and serves every other name with the same byte-level tokenizer, so a Hugging Face download
 * for a name it only imitates (Qwen/Qwen3-8B) would tokenize the prompt wrongly, and needs a network.
 */
async function serverTokenizer(
  service: ServiceClient,
  sampler: SamplingClient,
  explicit: string | undefined,
  options: CallOptions,
): Promise<Tokenizer> {
  if (explicit !== undefined) return loadTokenizer(explicit, options);
  const { supported_models } = await service.getServerCapabilities(options);
  const local = (supported_models ?? []).some(
    (model) => tokenizerIdForModelName(model.model_name ?? "") === BYTE_LEVEL_TOKENIZER_ID,
  );
  return local ? new ByteLevelTokenizer() : sampler.getTokenizer(options);
}

export const sampleCommands: CommandSpec[] = [
  {
    path: ["sample"],
    summary: "Sample a completion of a prompt from a base model or a sampler checkpoint",
    options: {
      "base-model": { type: "string", value: "NAME", description: "sample from this base model" },
      "model-path": { type: "string", value: "PATH", description: "sample from this tinker:// checkpoint" },
      prompt: {
        type: "string",
        value: "TEXT",
        description: "the prompt (required); \\n, \\t, \\r and \\\\ are read as newline, tab, CR, backslash",
      },
      stop: {
        type: "string",
        multiple: true,
        value: "TEXT",
        description: "stop when the completion produces TEXT (repeatable; escapes as in --prompt)",
      },
      tokenizer: {
        type: "string",
        value: "ID",
        description: "tokenize with this tokenizer (default: the server's for the model)",
      },
      "max-tokens": { type: "string", value: "N", description: "tokens to generate (default 32)" },
      temperature: { type: "string", value: "T", description: "sampling temperature (default 1)" },
      "top-p": { type: "string", value: "P", description: "nucleus sampling threshold" },
      "top-k": { type: "string", value: "K", description: "sample among the K most likely tokens" },
      seed: { type: "string", value: "N", description: "random seed, for reproducible samples" },
      "num-samples": { type: "string", value: "N", description: "how many completions (default 1)" },
    },
    details: [
      "The prompt is tokenized as the model's tokenizer does by default (with its BOS token, if it has",
      "one). Against `tinker-ts serve` that is the built-in byte-level tokenizer for every model name;",
      "its base models are untrained, so expect noise until you sample a fine-tuned checkpoint",
      "(--model-path tinker://…/sampler_weights/…).",
      "",
      'Example: tinker-ts sample --base-model tinker-ts/byte-lm-tiny --prompt "Q: Hi\\nA:" --stop "\\n"',
    ].join("\n"),
    async run(ctx) {
      const baseModel = ctx.values["base-model"] as string | undefined;
      const modelPath = ctx.values["model-path"] as string | undefined;
      const promptText = ctx.values.prompt as string | undefined;
      const prompt = promptText === undefined ? undefined : interpretEscapes(promptText);
      const stop = (ctx.values.stop as string[] | undefined)?.map(interpretEscapes);
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
      const tokenizer = await serverTokenizer(
        ctx.service(),
        sampler,
        ctx.values.tokenizer as string | undefined,
        callOptions(ctx),
      );
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
          ...(stop ? { stop } : {}),
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
