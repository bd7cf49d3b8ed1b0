/**
 * The mistakes a new user makes in the first hour (issue 17), each run against the real local
 * backend through a counting fetch: every one must fail at once with its message, having sent
 * nothing. The table is also docs/ERRORS.md: the code shown there is each row's own source, the
 * message what it threw. `UPDATE_ERRORS_DOC=1 npx vitest run test/mistakes.test.ts` rewrites the
 * table; otherwise a doc that differs from what the SDK does fails this test.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  datum,
  ModelInput,
  type RestClient,
  type SamplingClient,
  ServiceClient,
  TinkerError,
  type TrainingClient,
} from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";

const MODEL = "tinker-ts/byte-lm-tiny";
const KEY = "tml-mistakes-0123456789";
const BASE_URL = "http://local.tinker";

interface World {
  service: ServiceClient;
  training: TrainingClient;
  sampler: SamplingClient;
  rest: RestClient;
  prompt: ModelInput;
  /** A good datum for cross_entropy. */
  good: ReturnType<typeof datum>;
  /** The same clients after `service.close()`. */
  closed: { service: ServiceClient; training: TrainingClient; sampler: SamplingClient; rest: RestClient };
  /** A client built from these options, on the counting fetch. */
  client(options: Record<string, unknown>): ServiceClient;
}

interface Mistake {
  /** What the user meant or did, in words. */
  what: string;
  run: (w: World) => unknown;
}

// Plain-JavaScript mistakes are written `as never`: TypeScript would refuse them, plain JS does not.
const MISTAKES: Mistake[] = [
  // Construction
  { what: "base URL without a scheme", run: (w) => w.client({ baseURL: "localhost:8000" }) },
  {
    what: "base URL with a path but no scheme",
    run: (w) => w.client({ baseURL: "127.0.0.1:8000/services/tinker" }),
  },
  { what: "base URL of another scheme", run: (w) => w.client({ baseURL: "ws://localhost:8000" }) },
  { what: "API key of another service", run: (w) => w.client({ apiKey: "sk-proj-0123" }) },
  {
    what: "a header value with a line break (a pasted token)",
    run: (w) => w.client({ defaultHeaders: { "x-team": "research\n" } }),
  },
  { what: "a header name with a space", run: (w) => w.client({ defaultHeaders: { "x team": "research" } }) },
  { what: "option spelled `baseUrl`", run: (w) => w.client({ baseUrl: BASE_URL }) },
  { what: "option spelled `api_key` (Python)", run: (w) => w.client({ api_key: KEY }) },
  { what: "timeout in the wrong option", run: (w) => w.client({ timeoutMs: 5_000 }) },
  { what: "timeout as text", run: (w) => w.client({ timeout: "30s" }) },
  { what: "negative retry count", run: (w) => w.client({ maxRetries: -1 }) },
  { what: "tags as one string", run: (w) => w.client({ tags: "sft,v1" }) },
  { what: "unknown log level", run: (w) => w.client({ logLevel: "verbose" }) },
  { what: "`debug: true` to see requests", run: (w) => w.client({ debug: true }) },
  // ServiceClient calls
  { what: "empty base model", run: (w) => w.service.createLoraTrainingClient("") },
  {
    what: "LoRA rank under its Python name",
    run: (w) => w.service.createLoraTrainingClient(MODEL, { lora_rank: 8 } as never),
  },
  { what: "LoRA rank 0", run: (w) => w.service.createLoraTrainingClient(MODEL, { rank: 0 }) },
  {
    what: "LoRA rank as text",
    run: (w) => w.service.createLoraTrainingClient(MODEL, { rank: "8" } as never),
  },
  {
    what: "every LoRA part switched off",
    run: (w) =>
      w.service.createLoraTrainingClient(MODEL, { trainMlp: false, trainAttn: false, trainUnembed: false }),
  },
  {
    what: "optimizer named `adam`",
    run: (w) => w.service.createLoraTrainingClient(MODEL, { optimizer: { type: "adam" } as never }),
  },
  { what: "negative timeout", run: (w) => w.service.getServerCapabilities({ timeout: -1 }) },
  {
    what: "timeout in seconds as text",
    run: (w) => w.service.getServerCapabilities({ timeout: "3s" } as never),
  },
  {
    what: "a number where the AbortSignal goes",
    run: (w) => w.service.getServerCapabilities({ signal: 3_000 } as never),
  },
  { what: "sampler without model", run: (w) => w.service.createSamplingClient({}) },
  { what: "sampler with `model`", run: (w) => w.service.createSamplingClient({ model: MODEL } as never) },
  {
    what: "sampler from a file path",
    run: (w) => w.service.createSamplingClient({ modelPath: "/tmp/checkpoint" }),
  },
  { what: "resume from a checkpoint name", run: (w) => w.service.createTrainingClientFromState("step-100") },
  // TrainingClient
  { what: "learning rate as `lr`", run: (w) => w.training.optimStep({ lr: 0.01 } as never) },
  { what: "learning rate in camelCase", run: (w) => w.training.optimStep({ learningRate: 0.01 } as never) },
  { what: "learning rate as text", run: (w) => w.training.optimStep({ learning_rate: "1e-2" } as never) },
  { what: "negative learning rate", run: (w) => w.training.optimStep({ learning_rate: -1e-4 }) },
  { what: "beta1 of 1 or more", run: (w) => w.training.optimStep({ beta1: 1.5 }) },
  {
    what: "Dimuon step on an AdamW run",
    run: (w) => w.training.optimStep({ type: "dimuon", learning_rate: 0.01 }),
  },
  { what: "misspelled loss", run: (w) => w.training.forwardBackward([w.good], "crossentropy" as never) },
  {
    what: "datum without targets",
    run: (w) => w.training.forwardBackward([datum(ModelInput.fromInts([1, 2, 3]), {})], "cross_entropy"),
  },
  {
    what: "targets and weights of different lengths",
    run: (w) =>
      w.training.forwardBackward(
        [datum(ModelInput.fromInts([1, 2, 3]), { target_tokens: [2, 3, 4], weights: [1, 1] })],
        "cross_entropy",
      ),
  },
  {
    what: "tokens that are not integers",
    run: (w) =>
      w.training.forwardBackward(
        [datum(ModelInput.fromInts([1, 2.5, 3]), { target_tokens: [2, 3, 4] })],
        "cross_entropy",
      ),
  },
  {
    what: "a PPO option on cross_entropy",
    run: (w) => w.training.forwardBackward([w.good], "cross_entropy", { clip_low_threshold: 0.8 }),
  },
  {
    what: "call options where the loss config goes",
    run: (w) => w.training.forwardBackward([w.good], "cross_entropy", undefined, { timeout: "10s" } as never),
  },
  { what: "checkpoint name with a slash", run: (w) => w.training.saveState("runs/step-1") },
  { what: "TTL under its short name", run: (w) => w.training.saveState("step-1", { ttl: 3_600 } as never) },
  { what: "TTL in minutes", run: (w) => w.training.saveState("step-1", { ttlSeconds: 60 }) },
  {
    what: "metadata in snake_case",
    run: (w) => w.training.saveWeightsForSampler("s-1", { user_metadata: { a: "b" } } as never),
  },
  { what: "load from a checkpoint name", run: (w) => w.training.loadState("step-1") },
  // SamplingClient
  { what: "max tokens in camelCase", run: (w) => w.sampler.sample(w.prompt, 1, { maxTokens: 5 } as never) },
  {
    what: "max tokens as `max_new_tokens` (transformers)",
    run: (w) => w.sampler.sample(w.prompt, 1, { max_new_tokens: 5 } as never),
  },
  { what: "zero samples", run: (w) => w.sampler.sample(w.prompt, 0, { max_tokens: 5 }) },
  { what: "max tokens 0", run: (w) => w.sampler.sample(w.prompt, 1, { max_tokens: 0 }) },
  {
    what: "negative temperature",
    run: (w) => w.sampler.sample(w.prompt, 1, { max_tokens: 5, temperature: -1 }),
  },
  { what: "prompt as a plain array", run: (w) => w.sampler.sample([1, 2, 3] as never, 1, { max_tokens: 5 }) },
  {
    what: "prompt logprobs as `logprobs`",
    run: (w) => w.sampler.sample(w.prompt, 1, { max_tokens: 5 }, { logprobs: true } as never),
  },
  // RestClient
  { what: "page size as `pageSize`", run: (w) => w.rest.listTrainingRuns({ pageSize: 10 } as never) },
  { what: "page size 0", run: (w) => w.rest.listTrainingRuns({ limit: 0 }) },
  // After close()
  { what: "train after close()", run: (w) => w.closed.training.optimStep({ learning_rate: 1e-4 }) },
  { what: "sample after close()", run: (w) => w.closed.sampler.sample(w.prompt, 1, { max_tokens: 5 }) },
  { what: "new run after close()", run: (w) => w.closed.service.createLoraTrainingClient(MODEL) },
  { what: "REST call after close()", run: (w) => w.closed.rest.listTrainingRuns() },
];

const local = createLocalTinker({ longPollMs: 2_000 });
let sent = 0;
const countingFetch = (request: Request) => {
  sent++;
  return local.fetch(request);
};

function newClient(options: Record<string, unknown> = {}): ServiceClient {
  return new ServiceClient({
    apiKey: KEY,
    baseURL: BASE_URL,
    fetch: countingFetch,
    telemetry: false,
    ...options,
  });
}

let world: World;
const opened: ServiceClient[] = [];

beforeAll(async () => {
  const make = async () => {
    const service = newClient();
    opened.push(service);
    const training = await service.createLoraTrainingClient(MODEL);
    const sampler = await service.createSamplingClient({ baseModel: MODEL });
    return { service, training, sampler, rest: service.createRestClient() };
  };
  const open = await make();
  const closed = await make();
  await closed.service.close();
  world = {
    ...open,
    closed,
    prompt: ModelInput.fromInts([1, 2, 3]),
    good: datum(ModelInput.fromInts([1, 2, 3]), { target_tokens: [2, 3, 4] }),
    client: (options) => {
      const client = newClient(options);
      opened.push(client);
      return client;
    },
  };
});

afterAll(async () => {
  for (const service of opened) await service.close();
  local.close();
});

/** The row's code as the doc shows it: its source (plain JS after TypeScript's types are gone). */
function codeOf(mistake: Mistake): string {
  return (
    mistake.run
      .toString()
      .replace(/^\(?w\)?\s*=>\s*/, "")
      .replace(/\bw\.client\(/, "new ServiceClient(")
      .replace(/\bw\.(closed\.)?/g, "")
      .replace(/\(0,\s*__vite_ssr_import_\d+__\.(\w+)\)/g, "$1")
      .replace(/__vite_ssr_import_\d+__\./g, "")
      .replace(/\s+/g, " ")
      .replace(/\[ /g, "[")
      .replace(/ \]/g, "]")
      // The transpiler's number forms back to the written ones: 5e3 → 5000, .01 → 0.01.
      .replace(/\b(\d+)e(\d)\b/g, (_, digits: string, exponent: string) =>
        String(Number(digits) * 10 ** Number(exponent)),
      )
      .replace(/(^|[^\w.])\.(\d)/g, "$10.$2")
      .replace(/\bMODEL\b/g, JSON.stringify(MODEL))
      .replace(/\bBASE_URL\b/g, JSON.stringify(BASE_URL))
      .replace(/\bKEY\b/g, '"tml-…"')
      .replace(/(\d)_(\d{3})/g, "$1$2")
  );
}

interface Outcome {
  error: string;
  message: string;
  sent: number;
  synchronous: boolean;
}

async function attempt(mistake: Mistake): Promise<Outcome> {
  const before = sent;
  let result: unknown;
  try {
    result = mistake.run(world);
  } catch (error) {
    return { ...describe_(error), sent: sent - before, synchronous: true };
  }
  try {
    await result;
  } catch (error) {
    return { ...describe_(error), sent: sent - before, synchronous: false };
  }
  return { error: "(none)", message: "(accepted)", sent: sent - before, synchronous: false };
}

function describe_(error: unknown): { error: string; message: string } {
  return error instanceof Error
    ? { error: error.name, message: error.message }
    : { error: typeof error, message: String(error) };
}

const outcomes = new Map<Mistake, Outcome>();

describe("every mistake fails at once, naming what is wrong, with nothing sent", () => {
  test.each(MISTAKES.map((m) => [m.what, m] as const))("%s", async (_, mistake) => {
    const outcome = await attempt(mistake);
    outcomes.set(mistake, outcome);
    expect(outcome.message).not.toBe("(accepted)");
    expect(outcome.error).toBe("ValidationError");
    expect(outcome.sent).toBe(0);
    // Never a secret in a message.
    expect(outcome.message).not.toContain(KEY);
  });
});

const DOC = new URL("../docs/ERRORS.md", import.meta.url);
const BEGIN = "<!-- mistakes:begin (generated by test/mistakes.test.ts) -->";
const END = "<!-- mistakes:end -->";

function table(): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const rows = MISTAKES.map((m, i) => {
    const o = outcomes.get(m)!;
    // Session ids are new in every run; the doc shows them as `session-…`.
    const message = o.message.replace(/session-[0-9a-f-]{36}/g, "session-…");
    return `| ${i + 1} | ${cell(m.what)} | \`${cell(codeOf(m))}\` | ${o.error}: ${cell(message)} | ${o.sent} |`;
  });
  return [
    "| # | mistake | code | error, verbatim | requests sent |",
    "| - | ------- | ---- | --------------- | ------------- |",
    ...rows,
  ].join("\n");
}

test("docs/ERRORS.md shows exactly these mistakes and messages", () => {
  expect(outcomes.size).toBe(MISTAKES.length);
  const doc = readFileSync(DOC, "utf8");
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  expect(start).toBeGreaterThanOrEqual(0);
  const generated = `${BEGIN}\n\n${table()}\n\n`;
  if (process.env.UPDATE_ERRORS_DOC) {
    writeFileSync(DOC, doc.slice(0, start) + generated + doc.slice(end));
    return;
  }
  // Compared without table padding, which the formatter may add.
  const squash = (text: string) =>
    text
      .replace(/ +/g, " ")
      .replace(/\| -+ /g, "| - ")
      .trim();
  expect(squash(doc.slice(start, end))).toBe(squash(generated));
});

test("every mistake names its class: a TinkerError the caller can catch", async () => {
  const error = await Promise.resolve()
    .then(() => world.training.optimStep({ lr: 0.01 } as never))
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(TinkerError);
});
