/**
 * Property-based tests of the public constructors and request builders: every bad input is refused
 * with a ValidationError (never another error type, never a crash) before any request is sent, and
 * valid inputs pass validation.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  datum,
  ModelInput,
  parseTinkerPath,
  type SamplingClient,
  ServiceClient,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { validateAdamParams, validateForwardBackwardInput } from "../src/lib/validate.js";
import { type Faulty, faultyService, MODEL } from "./faults.helpers.js";

const RUNS = { numRuns: 150 };

let t: Faulty;
let training: TrainingClient;
let sampler: SamplingClient;

beforeAll(async () => {
  t = faultyService();
  training = await t.service.createLoraTrainingClient(MODEL, { rank: 1 });
  sampler = await t.service.createSamplingClient({ baseModel: MODEL });
});
afterAll(async () => {
  await t.close();
});

/**
 * Runs `call` (sync or async) and returns what it threw, or undefined. Checks no request was sent.
 */
async function refusal(call: () => unknown): Promise<unknown> {
  const before = t.requests.length;
  let thrown: unknown;
  try {
    const result = call();
    if (result && typeof (result as PromiseLike<unknown>).then === "function") await result;
  } catch (error) {
    thrown = error;
  }
  expect(t.requests.length).toBe(before);
  return thrown;
}

async function expectValidationError(call: () => unknown): Promise<void> {
  const thrown = await refusal(call);
  if (!(thrown instanceof ValidationError)) {
    throw new Error(
      `expected a ValidationError, got ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`,
    );
  }
}

const nonFinite = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);
const notANumber = fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.object(), nonFinite);

describe("ServiceClient options", () => {
  it("refuses malformed API keys without echoing them", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string().filter((key) => !key.startsWith("tml-") && !key.startsWith("eyJ")),
        async (apiKey) => {
          const thrown = await refusal(
            () => new ServiceClient({ apiKey, baseURL: "http://x", telemetry: false }),
          );
          expect(thrown).toBeInstanceOf(ValidationError);
          if (apiKey.length >= 4) expect((thrown as Error).message).not.toContain(apiKey);
        },
      ),
      RUNS,
    );
  });

  it("refuses bad maxRetries and timeout", async () => {
    // null and undefined mean "unset" (the default applies), so they are not bad input here.
    const set = notANumber.filter((x) => x !== null);
    const badRetries = fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true }), set);
    // Non-numbers, non-positive and out-of-range values (see the test below for Infinity and `true`).
    const badTimeout = fc.oneof(
      fc.double({ max: 0 }),
      fc.constantFrom(Number.NaN, Number.NEGATIVE_INFINITY, false),
      fc.string().filter((x) => !(Number(x) > 0)),
    );
    await fc.assert(
      fc.asyncProperty(badRetries, async (maxRetries) => {
        await expectValidationError(
          () => new ServiceClient({ apiKey: "tml-x", maxRetries: maxRetries as number, telemetry: false }),
        );
      }),
      RUNS,
    );
    await fc.assert(
      fc.asyncProperty(badTimeout, async (timeout) => {
        await expectValidationError(
          () => new ServiceClient({ apiKey: "tml-x", timeout: timeout as number, telemetry: false }),
        );
      }),
      RUNS,
    );
  });

  // A timeout must be a finite number within setTimeout's range (larger or infinite ones fire at once).
  it("refuses timeouts that are not finite numbers in setTimeout's range", async () => {
    for (const timeout of [true, Number.POSITIVE_INFINITY, "5", 2 ** 31, { valueOf: () => 5 }]) {
      await expectValidationError(
        () => new ServiceClient({ apiKey: "tml-x", timeout: timeout as never, telemetry: false }),
      );
    }
  });

  it("accepts well-formed options and sends nothing until used", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string(),
        fc.nat(20),
        fc.integer({ min: 1, max: 600_000 }),
        async (suffix, maxRetries, timeout) => {
          const client = await refusal(
            () => new ServiceClient({ apiKey: `tml-${suffix}`, maxRetries, timeout, telemetry: false }),
          );
          expect(client).toBeUndefined();
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe("forwardBackward", () => {
  it("refuses any data that is not a list of valid datums", async () => {
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (data) => {
        await expectValidationError(() => training.forwardBackward(data as never, "cross_entropy"));
      }),
      RUNS,
    );
  });

  it("refuses datums with broken tokens, tensors or inputs", async () => {
    const badToken = fc.oneof(
      fc.integer({ max: -1 }),
      fc.double({ noInteger: true }),
      nonFinite,
      fc.constantFrom(2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
        badToken,
        fc.nat(7),
        async (tokens, bad, at) => {
          const broken = [...tokens];
          broken[at % broken.length] = bad;
          const d = datum(ModelInput.fromInts(tokens), {
            target_tokens: tokens,
            weights: tokens.map(() => 1),
          });
          const withBadInput = { ...d, model_input: { chunks: [{ type: "encoded_text", tokens: broken }] } };
          await expectValidationError(() =>
            training.forwardBackward([withBadInput as never], "cross_entropy"),
          );
          const withBadWeights = {
            ...d,
            loss_fn_inputs: {
              ...d.loss_fn_inputs,
              weights: { data: tokens.map(() => bad), dtype: "float32" },
            },
          };
          // ±Infinity is a float32 value (and a legitimate logprob); NaN is not accepted.
          if (Number.isNaN(bad)) {
            await expectValidationError(() =>
              training.forwardBackward([withBadWeights as never], "cross_entropy"),
            );
          }
        },
      ),
      RUNS,
    );
  });

  it("refuses unknown loss functions and bad loss configs", async () => {
    const valid = datum(ModelInput.fromInts([1, 2, 3]), { target_tokens: [2, 3, 4] });
    await fc.assert(
      fc.asyncProperty(
        fc
          .oneof(fc.string(), fc.anything())
          .filter(
            (name) =>
              !["cross_entropy", "importance_sampling", "ppo", "cispo", "dro"].includes(name as string),
          ),
        async (lossFn) => {
          await expectValidationError(() => training.forwardBackward([valid], lossFn as never));
        },
      ),
      RUNS,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(fc.double(), notANumber), { minKeys: 1 }),
        async (config) => {
          await expectValidationError(() =>
            training.forwardBackward([valid], "cross_entropy", config as never),
          );
        },
      ),
      RUNS,
    );
  });

  // The loss tables are looked up by own key, so "toString" is an unknown loss, not a crash.
  it("refuses loss functions named like Object.prototype members", async () => {
    const valid = datum(ModelInput.fromInts([1, 2, 3]), { target_tokens: [2, 3, 4] });
    for (const lossFn of ["toString", "constructor", "hasOwnProperty", "__proto__"]) {
      await expectValidationError(() => training.forwardBackward([valid], lossFn as never));
    }
  });

  it("valid datums pass validation", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }).chain((tokens) =>
            fc.record({
              tokens: fc.constant(tokens),
              weights: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
                minLength: tokens.length,
                maxLength: tokens.length,
              }),
            }),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        (items) => {
          const data = items.map(({ tokens, weights }) =>
            datum(ModelInput.fromInts(tokens), { target_tokens: tokens, weights }),
          );
          validateForwardBackwardInput(data, "cross_entropy", undefined, { maxContextLength: 4096 });
        },
      ),
      RUNS,
    );
  });
});

describe("optimStep", () => {
  const key = fc.constantFrom("learning_rate", "beta1", "beta2", "eps", "weight_decay", "grad_clip_norm");
  const badFor = (name: string) =>
    fc.oneof(
      notANumber,
      name === "beta1" || name === "beta2"
        ? fc.oneof(fc.double({ min: 1, noNaN: true }), fc.double({ max: -Number.MIN_VALUE, noNaN: true }))
        : name === "eps"
          ? fc.double({ max: 0, noNaN: true })
          : fc.double({ max: -Number.MIN_VALUE, noNaN: true }),
    );

  it("refuses any out-of-range or non-numeric Adam parameter", async () => {
    await fc.assert(
      fc.asyncProperty(
        key.chain((name) => fc.tuple(fc.constant(name), badFor(name))),
        async ([name, value]) => {
          await expectValidationError(() => training.optimStep({ [name]: value } as never));
        },
      ),
      RUNS,
    );
  });

  it("valid Adam parameters pass validation", () => {
    fc.assert(
      fc.property(
        fc.record({
          learning_rate: fc.double({ min: 0, max: 10, noNaN: true }),
          beta1: fc.double({ min: 0, max: 0.999, noNaN: true }),
          beta2: fc.double({ min: 0, max: 0.999, noNaN: true }),
          eps: fc.double({ min: 1e-30, max: 1, noNaN: true }),
          weight_decay: fc.double({ min: 0, max: 1, noNaN: true }),
          grad_clip_norm: fc.double({ min: 0, max: 100, noNaN: true }),
        }),
        (params) => validateAdamParams(params),
      ),
      RUNS,
    );
  });
});

describe("sample", () => {
  const prompt = ModelInput.fromInts([256, 72, 105]);

  it("refuses junk prompts", async () => {
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (junk) => {
        await expectValidationError(() => sampler.sample(junk as never, 1, { max_tokens: 2 }));
      }),
      RUNS,
    );
  });

  it("refuses bad numSamples and sampling params", async () => {
    const bad = fc.oneof(
      fc.record({
        numSamples: fc.oneof(fc.integer({ max: 0 }), fc.double({ noInteger: true }), notANumber),
        params: fc.constant({}),
      }),
      fc.record({
        numSamples: fc.constant(1),
        params: fc.record({
          max_tokens: fc.oneof(fc.integer({ max: 0 }), fc.double({ noInteger: true }), notANumber),
        }),
      }),
      fc.record({
        numSamples: fc.constant(1),
        params: fc.record({
          temperature: fc.oneof(fc.double({ max: -Number.MIN_VALUE, noNaN: true }), fc.constant(Number.NaN)),
        }),
      }),
      fc.record({
        numSamples: fc.constant(1),
        params: fc.record({
          top_p: fc.oneof(fc.double({ max: 0, noNaN: true }), fc.double({ min: 1.000001, noNaN: true })),
        }),
      }),
      fc.record({
        numSamples: fc.constant(1),
        params: fc.record({
          top_k: fc.oneof(
            fc.integer({ min: -1000, max: -2 }),
            fc.constant(0),
            fc.double({ noInteger: true }),
          ),
        }),
      }),
      fc.record({
        numSamples: fc.constant(1),
        params: fc.record({
          seed: fc.oneof(
            fc.double({ noInteger: true }),
            notANumber.filter((x) => x !== null),
          ),
        }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(bad, async ({ numSamples, params }) => {
        await expectValidationError(() => sampler.sample(prompt, numSamples as number, params as never));
      }),
      RUNS,
    );
  });
});

describe("checkpoint names and tinker paths", () => {
  it("saveState refuses empty names, names with '/', and non-strings", async () => {
    const bad = fc.oneof(
      fc.constant(""),
      fc.tuple(fc.string(), fc.string()).map(([a, b]) => `${a}/${b}`),
      fc.anything().filter((x) => typeof x !== "string"),
    );
    await fc.assert(
      fc.asyncProperty(bad, async (name) => {
        await expectValidationError(() => training.saveState(name as never));
        await expectValidationError(() => training.saveWeightsForSampler(name as never));
      }),
      RUNS,
    );
  });

  it("parseTinkerPath returns or throws ValidationError, for any input", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `tinker://${s}`),
          fc.anything(),
        ),
        (path) => {
          try {
            const parsed = parseTinkerPath(path as string);
            expect(parsed.tinkerPath).toBe(path);
          } catch (error) {
            expect(error).toBeInstanceOf(ValidationError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("parses every well-formed path and loadState refuses every other one", async () => {
    const part = fc.string({ minLength: 1 }).filter((s) => !s.includes("/"));
    await fc.assert(
      fc.asyncProperty(part, fc.constantFrom("weights", "sampler_weights"), part, async (run, kind, name) => {
        const parsed = parseTinkerPath(`tinker://${run}/${kind}/${name}`);
        expect(parsed).toMatchObject({ trainingRunId: run, checkpointId: `${kind}/${name}` });
      }),
      RUNS,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string().filter((s) => !s.startsWith("tinker://")),
          fc.string().map((s) => `tinker://${s.replaceAll("/", "")}`),
        ),
        async (path) => {
          await expectValidationError(() => training.loadState(path));
          await expectValidationError(() => training.loadStateWithOptimizer(path));
        },
      ),
      RUNS,
    );
  });
});
