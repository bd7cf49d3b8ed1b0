/**
 * Supervised fine-tuning on a dozen short chats, crash-safe: the `role_colon` renderer turns each
 * conversation into a datum, `trainLoop` keeps two steps in flight, and a `CheckpointManager` saves
 * every few steps. Kill the process at any point and run it again with `--resume`: it continues from
 * the latest checkpoint and ends with the same weights as a run that was never interrupted.
 *
 *   npx tsx examples/toolkit/sft-chat.ts                                # embedded backend, 24 steps
 *   npx tsx examples/toolkit/sft-chat.ts --base-url http://127.0.0.1:8000 --state sft.json
 *   npx tsx examples/toolkit/sft-chat.ts --base-url http://127.0.0.1:8000 --state sft.json --resume
 *
 * Flags: --base-url URL (a `tinker-ts serve`; default: the embedded backend, in process),
 * --steps N (24), --every N (checkpoint every N steps, 4), --seed S (0), --lr X (0.01),
 * --state FILE (the run id and the checkpoint ledger), --resume (continue the run in --state),
 * --stall-at-step N (stop making progress after step N and wait to be killed: for the test).
 *
 * What makes the resume exact:
 * - the batch of step i depends on i and the seed only (a seeded shuffle per epoch), so the resumed
 *   run sees the batches the first one would have;
 * - a checkpoint named `step-000012` holds exactly 12 steps: with two steps in flight, step 13
 *   may already be on the server when step 12's results are read, so the loop drains before every
 *   step the manager will save at (`shouldDrain` asks `checkpoints.isDue`);
 * - the step to resume from is read from the server's checkpoint list (the name), not from the
 *   state file, so a crash between a save and a state write cannot make them disagree;
 * - the checkpoint holds the Adam moments too (`createTrainingClientFromStateWithOptimizer`).
 *
 * The state file is the CheckpointManager's ledger, stored as JSON (lib/file-store.ts): the
 * job's runs (a resume creates a new run), the metrics keep-best compares, the pins. It is written
 * to a temporary file and renamed, so a kill never leaves half a file.
 */
import { createHash } from "node:crypto";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type Datum, ModelInput, type RestClient, ServiceClient, type TrainingClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "tinker-ts/local";
import {
  type ChatMessage,
  CheckpointManager,
  datumFromConversation,
  emptyLedger,
  getRenderer,
  resumeFromLatest,
  trainLoop,
} from "tinker-ts/toolkit";
import { fileState, memoryState, type RunState } from "./lib/file-store.js";

/** A dozen short user → assistant chats; a few carry a system prompt. */
export const CHATS: readonly (readonly ChatMessage[])[] = [
  [
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "Hello! How can I help?" },
  ],
  [
    { role: "user", content: "What is 2+2?" },
    { role: "assistant", content: "4." },
  ],
  [
    { role: "user", content: "Capital of France?" },
    { role: "assistant", content: "Paris." },
  ],
  [
    { role: "system", content: "Answer in one word." },
    { role: "user", content: "Color of the sky?" },
    { role: "assistant", content: "Blue." },
  ],
  [
    { role: "user", content: "Say bye." },
    { role: "assistant", content: "Bye!" },
  ],
  [
    { role: "user", content: "Opposite of hot?" },
    { role: "assistant", content: "Cold." },
  ],
  [
    { role: "user", content: "How many legs has a cat?" },
    { role: "assistant", content: "Four." },
  ],
  [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Thanks!" },
    { role: "assistant", content: "You're welcome." },
  ],
  [
    { role: "user", content: "First letter of the alphabet?" },
    { role: "assistant", content: "A." },
  ],
  [
    { role: "user", content: "Is ice cold?" },
    { role: "assistant", content: "Yes." },
  ],
  [
    { role: "user", content: "What do bees make?" },
    { role: "assistant", content: "Honey." },
  ],
  [
    { role: "user", content: "Name a primary color." },
    { role: "assistant", content: "Red." },
  ],
];

const BATCH_SIZE = 4;

export interface SftChatOptions {
  /** A running Tinker-compatible server; default: the embedded backend, in process. */
  baseURL?: string;
  steps?: number;
  /** Checkpoint every this many steps. */
  every?: number;
  seed?: number;
  learningRate?: number;
  /** JSON file with the run id and the checkpoint ledger; default: kept in memory only. */
  stateFile?: string;
  /** Continue from the latest checkpoint of the job in `stateFile`. */
  resume?: boolean;
  /** After this step (counted from 1), stop and wait forever: a known point for a test to kill at. */
  stallAtStep?: number;
  log?: (line: string) => void;
}

export interface SftChatResult {
  runId: string;
  /** Steps the run started from (0, or the resumed checkpoint's). */
  startStep: number;
  /** SHA-256 of the final adapter tensors (names, shapes, float32 values of `adapter_model.safetensors`). */
  fingerprint: string;
  answers: { question: string; answer: string }[];
}

export async function runSftChat(options: SftChatOptions = {}): Promise<SftChatResult> {
  const steps = options.steps ?? 24;
  const every = options.every ?? 4;
  const seed = options.seed ?? 0;
  const learningRate = options.learningRate ?? 1e-2;
  const log = options.log ?? console.log;
  const local = options.baseURL === undefined ? createLocalTinker() : undefined;
  const service =
    local === undefined
      ? new ServiceClient({ apiKey: process.env.TINKER_API_KEY || "tml-local", baseURL: options.baseURL })
      : new ServiceClient({ apiKey: "tml-local", baseURL: "http://local.tinker", fetch: local.fetch });
  // The archive URL points at the server that built it; the embedded one is reached through its handler.
  const download = local === undefined ? fetch : (url: string) => local.fetch(new Request(url));
  try {
    const rest = service.createRestClient();
    const state = options.stateFile === undefined ? memoryState() : await fileState(options.stateFile);
    const { training, startStep } = await startOrResume(service, rest, state, options.resume ?? false, seed);
    await state.setRunId(training.modelId);
    log(`run ${training.modelId} from step ${startStep}`);

    const renderer = getRenderer("role_colon", await training.getTokenizer());
    const data = CHATS.map((chat) => datumFromConversation(renderer, chat));
    const checkpoints = new CheckpointManager({
      training,
      rest,
      everySteps: every,
      keepLast: 2,
      keepBest: { metric: "mean_nll", mode: "min", count: 1 },
      store: state.store,
    });

    await trainLoop(training, batchesFrom(data, startStep, steps, seed), {
      adam: { learning_rate: learningRate },
      inFlight: 2,
      startStep,
      // trainLoop counts steps from 0: after index i, i + 1 steps are done.
      shouldDrain: (i) => checkpoints.isDue(i + 1),
      onStep: async (result) => {
        const done = result.step + 1;
        log(`step ${done} mean_nll ${result.metrics.mean_nll?.toFixed(4)}`);
        const saved = await checkpoints.maybeSave(done, { mean_nll: result.metrics.mean_nll ?? Number.NaN });
        if (saved) {
          for (const failure of saved.retention.failed) log(`retention: ${failure.path}: ${failure.error}`);
          log(`checkpoint step ${saved.step} ${saved.path}`);
        }
        if (done === options.stallAtStep) {
          log(`stalled after step ${done}`);
          await new Promise(() => setInterval(() => {}, 60_000));
        }
      },
    });

    const fingerprint = await weightsFingerprint(training, rest, download);
    log(`fingerprint ${fingerprint}`);
    const answers = await greedyAnswers(training, renderer);
    for (const { question, answer } of answers) log(`${question} → ${answer}`);
    return { runId: training.modelId, startStep, fingerprint, answers };
  } finally {
    await service.close();
    local?.close();
  }
}

/** The batches of steps `from`…`to - 1`: each a function of its step number and the seed alone. */
function* batchesFrom(data: readonly Datum[], from: number, to: number, seed: number): Generator<Datum[]> {
  const perEpoch = Math.floor(data.length / BATCH_SIZE);
  for (let step = from; step < to; step++) {
    const epoch = Math.floor(step / perEpoch);
    const order = shuffled(data.length, seed * 1_000_003 + epoch);
    const start = (step % perEpoch) * BATCH_SIZE;
    yield order.slice(start, start + BATCH_SIZE).map((i) => data[i]!);
  }
}

/** A permutation of 0…n-1 from a seeded xorshift generator (Fisher–Yates). */
function shuffled(n: number, seed: number): number[] {
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

async function startOrResume(
  service: ServiceClient,
  rest: RestClient,
  state: RunState,
  resume: boolean,
  seed: number,
): Promise<{ training: TrainingClient; startStep: number }> {
  if (resume) {
    // The last run of the job that saved a checkpoint; a later run that died before its first save
    // left nothing to resume from.
    const runId = (await state.store.load())?.runs.at(-1);
    const resumed = runId === undefined ? undefined : await resumeFromLatest(service, rest, runId);
    if (resumed) return { training: resumed.training, startStep: resumed.step };
    throw new Error("--resume: the state file names no run with a checkpoint to resume from");
  }
  await state.store.save(emptyLedger());
  const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed });
  return { training, startStep: 0 };
}

/**
 * SHA-256 of the adapter weights in the archive of a final sampler checkpoint: every tensor's name,
 * shape and float32 bytes, in name order. The file's `__metadata__` is left out: it describes the
 * run (its LoRA seed, for one), and a resumed run is a different run with the same weights.
 */
/** The PEFT adapter file of a checkpoint archive. */
const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

/** The regular files of a (ustar) tar archive by name: as much of tar as a checkpoint archive uses. */
function untar(archive: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const field = (header: Uint8Array, at: number, length: number) =>
    new TextDecoder().decode(header.subarray(at, at + length)).replace(/\0[\s\S]*$/, "");
  for (let at = 0; at + 512 <= archive.length; ) {
    const header = archive.subarray(at, at + 512);
    if (header.every((byte) => byte === 0)) break;
    const size = Number.parseInt(field(header, 124, 12).trim() || "0", 8);
    const prefix = field(header, 345, 155);
    const name = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100);
    files.set(name, archive.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** The tensors of a safetensors file: an 8-byte little-endian header length, a JSON header, the data. */
function safetensors(
  file: Uint8Array,
): { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[] {
  const headerLength = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const data = file.subarray(8 + headerLength);
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(
      ([
        name,
        {
          dtype,
          shape,
          data_offsets: [from, to],
        },
      ]) => ({
        name,
        dtype,
        shape,
        bytes: data.subarray(from, to),
      }),
    );
}

async function weightsFingerprint(
  training: TrainingClient,
  rest: RestClient,
  download: (url: string) => Promise<Response>,
): Promise<string> {
  const { path } = await training.saveWeightsForSampler("final");
  const { url } = await rest.getCheckpointArchiveUrlFromTinkerPath(path);
  const response = await download(url);
  if (!response.ok) throw new Error(`archive download failed: ${response.status}`);
  const file = untar(new Uint8Array(await response.arrayBuffer())).get(ADAPTER_WEIGHTS_FILE);
  if (file === undefined) throw new Error(`the archive has no ${ADAPTER_WEIGHTS_FILE}`);
  const hash = createHash("sha256");
  for (const tensor of safetensors(file).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    hash.update(`${tensor.name} ${tensor.dtype} ${tensor.shape.join("x")}\n`);
    hash.update(tensor.bytes);
  }
  return hash.digest("hex");
}

async function greedyAnswers(
  training: TrainingClient,
  renderer: ReturnType<typeof getRenderer>,
): Promise<{ question: string; answer: string }[]> {
  const sampler = await training.saveWeightsAndGetSamplingClient();
  return Promise.all(
    CHATS.slice(0, 4).map(async (chat) => {
      const prompt = renderer.buildGenerationPrompt(chat.slice(0, -1));
      const result = await sampler.sample(ModelInput.fromInts(prompt), 1, {
        max_tokens: 24,
        temperature: 0,
        stop: renderer.stopSequences(),
      });
      const answer = renderer.parseResponse(result.sequences[0]!.tokens).message.content;
      return { question: chat.at(-2)!.content, answer };
    }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "base-url": { type: "string" },
      steps: { type: "string", default: "24" },
      every: { type: "string", default: "4" },
      seed: { type: "string", default: "0" },
      lr: { type: "string", default: "0.01" },
      state: { type: "string" },
      resume: { type: "boolean", default: false },
      "stall-at-step": { type: "string" },
    },
  });
  if (values.resume && values.state === undefined) throw new Error("--resume needs --state FILE");
  await runSftChat({
    baseURL: values["base-url"],
    steps: Number(values.steps),
    every: Number(values.every),
    seed: Number(values.seed),
    learningRate: Number(values.lr),
    stateFile: values.state,
    resume: values.resume,
    stallAtStep: values["stall-at-step"] === undefined ? undefined : Number(values["stall-at-step"]),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
