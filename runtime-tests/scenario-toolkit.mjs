/**
 * The toolkit part of the scenario (`tinker-ts/toolkit`), on the same embedded backend: the
 * `role_colon` renderer over the byte-level tokenizer, `datumFromConversation` on two tiny chats,
 * `trainLoop` with two steps in flight for three steps while a `CheckpointManager` (every 2 steps,
 * keepLast 1) saves at step 2 behind a drain point, `latestCheckpoint` reading it back from the
 * server's list, `meanNll` of a `forward`, a greedy sample stopped by the renderer's
 * `stopSequences()` and parsed back with `parseResponse`. Also: a `ValidationError` thrown by the
 * toolkit entry is `instanceof` the main entry's class (in CommonJS each entry is its own file), and
 * `createChatTemplateRenderer` without the optional peer `@huggingface/jinja` installed rejects with
 * the install hint instead of breaking the module graph.
 *
 * Then the cookbook-parity checks (scenario-toolkit-cookbook.mjs): the Qwen3.5 and Kimi K2.5
 * renderers with tool calls, JSONL → `datasetFromConversations` → `trainSupervised` with a
 * learning-rate schedule and held-out evaluation, and `trainRL` over a one-step `Env`. Each reports
 * `{ ok, problems, … }` under its own key; their problems are the part's problems too.
 *
 * `toolkit` is the entry's namespace; `sdk` the main entry's (for ModelInput and the error classes).
 */
import { renderersCheck, rlCheck, supervisedCheck } from "./scenario-toolkit-cookbook.mjs";

export async function toolkitScenario(sdk, toolkit, service) {
  const started = Date.now();
  const { ModelInput, ValidationError } = sdk;
  const {
    CheckpointManager,
    createChatTemplateRenderer,
    datumFromConversation,
    getRenderer,
    latestCheckpoint,
    meanNll,
    trainLoop,
  } = toolkit;
  const problems = [];

  const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4, seed: 0 });
  const tokenizer = await training.getTokenizer();
  const renderer = getRenderer("role_colon", tokenizer);
  const chats = [
    [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello." },
    ],
    [
      { role: "user", content: "2+2?" },
      { role: "assistant", content: "4." },
    ],
  ];
  const batch = chats.map((chat) => datumFromConversation(renderer, chat));

  const rest = service.createRestClient();
  const checkpoints = new CheckpointManager({ training, rest, everySteps: 2, keepLast: 1 });
  const nlls = [];
  const saved = [];
  const loop = await trainLoop(training, [batch, batch, batch], {
    adam: { learning_rate: 2e-2 },
    inFlight: 2,
    // trainLoop counts from 0: after index i, i + 1 steps are done.
    shouldDrain: (i) => checkpoints.isDue(i + 1),
    onStep: async (result) => {
      nlls.push(result.metrics.mean_nll);
      const save = await checkpoints.maybeSave(result.step + 1, { mean_nll: result.metrics.mean_nll });
      if (save) saved.push(save.name);
    },
  });
  const latest = await latestCheckpoint(rest, training.modelId);

  // meanNll of the trained weights over the batch: the two datums' logprobs and weights, joined.
  const forward = await training.forward(batch, "cross_entropy");
  const nll = meanNll(
    forward.loss_fn_outputs.flatMap((output) => Array.from(output.logprobs.data)),
    batch.flatMap((d) => Array.from(d.loss_fn_inputs.weights.data)),
  );

  const sampler = await training.saveWeightsAndGetSamplingClient();
  const prompt = renderer.buildGenerationPrompt(chats[0].slice(0, -1));
  const stop = renderer.stopSequences();
  const sample = await sampler.sample(ModelInput.fromInts(prompt), 1, {
    max_tokens: 12,
    temperature: 0,
    stop,
  });
  const tokens = Array.from(sample.sequences[0].tokens);
  const parsed = renderer.parseResponse(tokens);

  let crossEntryError;
  try {
    meanNll([-1], [0]);
    crossEntryError = "meanNll with zero weights did not throw";
  } catch (error) {
    crossEntryError = error instanceof ValidationError ? "ValidationError" : `unexpected ${describe(error)}`;
  }
  let jinja;
  try {
    await createChatTemplateRenderer(tokenizer, { template: "{{ messages[0].content }}" });
    jinja = "present";
  } catch (error) {
    jinja = /npm install @huggingface\/jinja/.test(error?.message)
      ? "absent"
      : `unexpected ${describe(error)}`;
  }

  const falling = nlls.every((x, i) => Number.isFinite(x) && (i === 0 || x < nlls[i - 1]));
  if (!(loop.steps === 3 && nlls.length === 3 && falling)) {
    problems.push(`trainLoop: ${loop.steps} steps, mean_nll ${nlls.join(",")} (want 3, falling)`);
  }
  if (saved.join() !== "step-000002") problems.push(`CheckpointManager saved [${saved}], not [step-000002]`);
  if (latest?.name !== "step-000002" || latest?.step !== 2) {
    problems.push(`latestCheckpoint found ${latest?.name ?? "nothing"}`);
  }
  if (!(Number.isFinite(nll) && nll < nlls[0]))
    problems.push(`meanNll ${nll} is not below step 1's ${nlls[0]}`);
  if (!(stop.length > 0 && parsed.message?.role === "assistant")) {
    problems.push(`parseResponse gave ${JSON.stringify(parsed)}`);
  }
  const stopped = tokens.length > 0 && stop.includes(tokens.at(-1));
  if (parsed.termination !== (stopped ? "stop" : "length")) {
    problems.push(`termination ${parsed.termination} for tokens [${tokens}]`);
  }
  if (crossEntryError !== "ValidationError") problems.push(`toolkit error: ${crossEntryError}`);
  if (jinja.startsWith("unexpected")) problems.push(`createChatTemplateRenderer: ${jinja}`);

  const renderers = await renderersCheck(sdk, toolkit);
  const supervised = await supervisedCheck(sdk, toolkit, service, renderer);
  const rl = await rlCheck(toolkit, service, tokenizer);
  for (const [name, part] of Object.entries({ renderers, supervised, rl })) {
    for (const problem of part.problems) problems.push(`${name}: ${problem}`);
  }

  return {
    ok: problems.length === 0,
    problems,
    steps: loop.steps,
    nlls,
    checkpoint: latest?.name ?? null,
    nll,
    reply: parsed.message?.content ?? null,
    termination: parsed.termination,
    tokens,
    jinja,
    renderers,
    supervised,
    rl,
    ms: Date.now() - started,
  };
}

function describe(error) {
  return `${error?.constructor?.name ?? typeof error}: ${error?.message ?? String(error)}`;
}
