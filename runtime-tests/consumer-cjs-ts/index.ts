// A CommonJS TypeScript consumer (module node16, no "type": "module"): the .d.cts types of the
// three entries (tinker-ts, tinker-ts/local, tinker-ts/toolkit) must resolve and type-check, and the
// emitted require() calls must run.
import {
  APIFuture,
  datum,
  ModelInput,
  NotFoundError,
  type RestClient,
  ServiceClient,
  type TrainingRun,
  ValidationError,
} from "tinker-ts";
import { createLocalTinker, type LocalTinker } from "tinker-ts/local";
import {
  type ChatMessage,
  CheckpointManager,
  datumFromConversation,
  getRenderer,
  meanNll,
  type Renderer,
  type SavedCheckpoint,
  type TrainLoopResult,
  type TrainStepResult,
  trainLoop,
} from "tinker-ts/toolkit";

async function main(): Promise<void> {
  const local: LocalTinker = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-cjs-ts",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
  const example = datum(ModelInput.fromInts([256, 72, 105]), {
    target_tokens: [72, 105, 33],
    weights: [0, 1, 1],
  });
  const future = training.forwardBackward([example], "cross_entropy");
  if (!(future instanceof APIFuture)) throw new Error("forwardBackward did not return an APIFuture");
  const output = await future;
  const loss: number = output.metrics["loss:sum"];
  const rest: RestClient = service.createRestClient();
  const runs: TrainingRun[] = [];
  for await (const run of rest.listTrainingRuns({ limit: 1 })) runs.push(run);
  const missing = await rest.getTrainingRun("nope").catch((error: unknown) => error);

  // The toolkit entry (dist/toolkit.cjs and its .d.cts) on the same training client.
  const renderer: Renderer = getRenderer("role_colon", await training.getTokenizer());
  const chat: ChatMessage[] = [
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello." },
  ];
  const batch = [datumFromConversation(renderer, chat)];
  const checkpoints = new CheckpointManager({ training, rest, everySteps: 2, keepLast: 1 });
  const saved: SavedCheckpoint[] = [];
  const loop: TrainLoopResult = await trainLoop(training, [batch, batch], {
    adam: { learning_rate: 1e-2 },
    inFlight: 2,
    shouldDrain: (i: number) => checkpoints.isDue(i + 1),
    onStep: async (step: TrainStepResult) => {
      const save = await checkpoints.maybeSave(step.step + 1);
      if (save) saved.push(save);
    },
  });
  const forward = await training.forward(batch, "cross_entropy");
  const nll: number = meanNll(
    forward.loss_fn_outputs[0]!.logprobs!.data as number[],
    batch[0]!.loss_fn_inputs.weights!.data as number[],
  );
  // A toolkit ValidationError is the main entry's class, although toolkit.cjs is a file of its own.
  const zeroWeights = (() => {
    try {
      return meanNll([-1], [0]);
    } catch (error: unknown) {
      return error;
    }
  })();
  await service.close();
  local.close();
  console.log(
    JSON.stringify({
      loss: Number.isFinite(loss),
      runs: runs.length,
      notFound: missing instanceof NotFoundError,
      validationError: typeof ValidationError,
      toolkit: {
        steps: loop.steps,
        checkpoint: saved.map((c) => c.name).join(),
        nll: Number.isFinite(nll),
        crossEntryError: zeroWeights instanceof ValidationError,
      },
    }),
  );
}

// Rethrown outside the promise chain, so that the process exits non-zero.
main().catch((error: unknown) => {
  setTimeout(() => {
    throw error;
  });
});
