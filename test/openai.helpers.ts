/**
 * A chat fine-tune for the OpenAI-shaped tests: the built-in tiny model trained with the
 * `role_colon` renderer on a few short conversations, saved as sampler weights. A handful of steps
 * at a large learning rate is enough to make its greedy replies differ from the base model's.
 */
import { ModelInput, type ServiceClient } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/index.js";
import { datumFromConversation, getRenderer } from "../src/toolkit/index.js";

export const CHATS = [
  [
    { role: "user" as const, content: "Say hi" },
    { role: "assistant" as const, content: "hi there, friend" },
  ],
  [
    { role: "user" as const, content: "Count to three" },
    { role: "assistant" as const, content: "one two three" },
  ],
];

export const chatRenderer = () => getRenderer("role_colon", new ByteLevelTokenizer());

/** Trains for `steps` and returns the `tinker://…/sampler_weights/<name>` path. */
export async function trainChatCheckpoint(
  service: ServiceClient,
  name = "chat",
  steps = 12,
): Promise<string> {
  const renderer = chatRenderer();
  const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed: 0 });
  const batch = CHATS.map((messages) => datumFromConversation(renderer, messages));
  for (let step = 0; step < steps; step++) {
    await Promise.all([
      training.forwardBackward(batch, "cross_entropy"),
      training.optimStep({ learning_rate: 2e-2 }),
    ]);
  }
  const { path } = await training.saveWeightsForSampler(name);
  return path;
}

/** The native SamplingClient's greedy reply to `prompt` (token ids), decoded without its end token. */
export async function nativeGreedy(
  service: ServiceClient,
  model: { modelPath?: string; baseModel?: string },
  prompt: number[],
  params: { max_tokens: number; stop?: number[] },
): Promise<{ text: string; tokens: number[]; logprobs: number[] }> {
  const sampler = await service.createSamplingClient(model);
  const { sequences } = await sampler.sample(ModelInput.fromInts(prompt), 1, { temperature: 0, ...params });
  const { tokens, logprobs = [] } = sequences[0]!;
  const end = params.stop?.includes(tokens[tokens.length - 1]!) ? tokens.length - 1 : tokens.length;
  return {
    text: new ByteLevelTokenizer().decode(tokens.slice(0, end), { skipSpecialTokens: true }),
    tokens: tokens.slice(0, end),
    logprobs: logprobs.slice(0, end),
  };
}
