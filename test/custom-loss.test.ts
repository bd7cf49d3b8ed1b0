/**
 * forwardBackwardCustom against the real local backend: a DPO step through the autodiff equals the
 * same step sent by hand as a weighted cross_entropy, the `{ gradient }` form equals the autodiff
 * form, and the requests follow PROTOCOL.md §7.2 (forward with zero weights, then weights = −g).
 */
import { describe, expect, it } from "vitest";
import { supervisedExample } from "../examples/qa-dataset.js";
import {
  APIUserAbortError,
  type Datum,
  datum,
  ModelInput,
  TinkerError,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import {
  add,
  concat,
  dot,
  logSigmoid,
  mean,
  mul,
  neg,
  square,
  sub,
  sum,
  type Tensor,
} from "../src/lib/autodiff/index.js";
import {
  CUSTOM_LOSS_METRIC,
  type CustomGradientFn,
  type CustomLossFn,
  float32Tensor,
  forwardBackwardCustom,
  SURROGATE_LOSS_METRIC,
} from "../src/lib/custom-loss.js";
import { decodeForwardBackwardRequest } from "../src/wire/protobuf/index.js";
import { closeAfterEach, jsonBody, localService, type RecordedRequest } from "./helpers.js";

const closers = closeAfterEach();

function setup() {
  const t = localService();
  closers.add(t.close);
  return t;
}

const MODEL = "tinker-ts/byte-lm-tiny";
const LORA = { rank: 4, seed: 7 };
const LEARNING_RATE = 1e-2;
const BETA = 0.5;

/** Two prompts, each with a preferred and a dispreferred answer: datums [c0, r0, c1, r1]. */
const PREFERENCES = [
  { question: "What is the capital of France?", chosen: "Paris", rejected: "Rome" },
  { question: "What color is the sky?", chosen: "Blue", rejected: "Green" },
];

/** `weights` marks the answer tokens; the losses below use it as their mask. */
function preferenceData(): Datum[] {
  return PREFERENCES.flatMap(({ question, chosen, rejected }) =>
    [chosen, rejected].map((answer) => {
      const { input, targets, weights } = supervisedExample(question, answer);
      return datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
    }),
  );
}

function maskOf(d: Datum): number[] {
  return d.loss_fn_inputs["weights"]!.data;
}

/** Σ_t mask_t·lp_t: the log-likelihood of the answer. */
function answerLogprob(logprobs: readonly number[], mask: readonly number[]): number {
  let total = 0;
  for (let t = 0; t < logprobs.length; t++) total += logprobs[t]! * mask[t]!;
  return total;
}

async function forwardLogprobs(training: TrainingClient, data: Datum[]): Promise<number[][]> {
  const output = await training.forward(data, "cross_entropy");
  return output.loss_fn_outputs.map((record) => record["logprobs"]!.data);
}

/** DPO with the autodiff: −Σ_pairs log σ(β((s_c − ref_c) − (s_r − ref_r))). */
function dpoLoss(reference: readonly number[]): CustomLossFn {
  return (data, logprobs) => {
    const scores = logprobs.map((lp, i) => dot(lp, maskOf(data[i]!)));
    const terms: Tensor[] = [];
    let preferred = 0;
    for (let c = 0; c < scores.length; c += 2) {
      const r = c + 1;
      const margin = mul(BETA, sub(sub(scores[c]!, reference[c]!), sub(scores[r]!, reference[r]!)));
      if (margin.item() > 0) preferred++;
      terms.push(logSigmoid(margin));
    }
    return {
      loss: neg(terms.reduce((a, b) => add(a, b))),
      metrics: { "dpo_accuracy:mean": preferred / terms.length },
    };
  };
}

/**
 * The same DPO loss and its gradient in closed form. With z = β((s_c − ref_c) − (s_r − ref_r)) and
 * C = log(1 + e^−z): ∂C/∂z = −σ(−z), so ∂C/∂lp_c,t = −β·σ(−z)·mask_t and ∂C/∂lp_r,t = +β·σ(−z)·mask_t.
 */
function dpoClosedForm(
  logprobs: readonly number[][],
  masks: readonly number[][],
  reference: readonly number[],
): { loss: number; gradients: number[][] } {
  const gradients: number[][] = [];
  let loss = 0;
  for (let c = 0; c < logprobs.length; c += 2) {
    const r = c + 1;
    const z =
      BETA *
      (answerLogprob(logprobs[c]!, masks[c]!) -
        reference[c]! -
        (answerLogprob(logprobs[r]!, masks[r]!) - reference[r]!));
    loss += Math.max(-z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    const pull = BETA / (1 + Math.exp(z));
    gradients[c] = masks[c]!.map((m) => -pull * m);
    gradients[r] = masks[r]!.map((m) => pull * m);
  }
  return { loss, gradients };
}

function maxAbsDifference(a: readonly number[][], b: readonly number[][]): number {
  let worst = 0;
  a.forEach((row, i) => {
    row.forEach((x, t) => {
      worst = Math.max(worst, Math.abs(x - b[i]![t]!));
    });
  });
  return worst;
}

function forwardBackwardRequests(requests: readonly RecordedRequest[]) {
  return requests
    .filter((r) => r.path.endsWith("/forward_backward"))
    .map((r) => decodeForwardBackwardRequest(r.body));
}

describe("forwardBackwardCustom on the local backend", () => {
  it("takes the same DPO step as the built-in cross_entropy with weights −∂C/∂lp", async () => {
    const t = setup();
    const [custom, builtIn] = await Promise.all([
      t.service.createLoraTrainingClient(MODEL, LORA),
      t.service.createLoraTrainingClient(MODEL, LORA),
    ]);
    const data = preferenceData();
    const masks = data.map(maskOf);
    const start = await forwardLogprobs(custom, data);
    expect(await forwardLogprobs(builtIn, data)).toEqual(start);
    const reference = start.map((lp, i) => answerLogprob(lp, masks[i]!));

    for (let step = 0; step < 2; step++) {
      const fb = forwardBackwardCustom(custom, data, dpoLoss(reference));
      await fb.requestId;
      const [out] = await Promise.all([fb, custom.optimStep({ learning_rate: LEARNING_RATE })]);

      const policy = await forwardLogprobs(builtIn, data);
      const closed = dpoClosedForm(policy, masks, reference);
      const surrogate = data.map((d, i) =>
        datum(d.model_input, {
          target_tokens: d.loss_fn_inputs["target_tokens"]!,
          weights: closed.gradients[i]!.map((g) => -g),
        }),
      );
      await Promise.all([
        builtIn.forwardBackward(surrogate, "cross_entropy"),
        builtIn.optimStep({ learning_rate: LEARNING_RATE }),
      ]);

      // Adam is blind to a global scale of the gradient, so check the weights themselves too.
      const sentWeights = forwardBackwardRequests(t.requests)
        .filter((r) => r.model_id === custom.modelId && !r.forward_only)
        .at(-1)!
        .data.map((d) => d.loss_fn_inputs["weights"]!.data);
      expect(
        maxAbsDifference(
          sentWeights,
          surrogate.map((d) => d.loss_fn_inputs["weights"]!.data),
        ),
      ).toBeLessThan(1e-7);
      expect(out.metrics[CUSTOM_LOSS_METRIC]).toBeCloseTo(closed.loss, 10);
      expect(out.metrics["dpo_accuracy:mean"]).toBe(step === 0 ? 0 : 1);
      expect(out.loss_fn_outputs).toHaveLength(data.length);
      // Before the first step the policy is the reference: every margin is 0 and C = 2·log 2.
      if (step === 0) expect(out.metrics[CUSTOM_LOSS_METRIC]).toBeCloseTo(2 * Math.LN2, 12);
    }

    const after = await forwardLogprobs(custom, data);
    expect(maxAbsDifference(after, await forwardLogprobs(builtIn, data))).toBeLessThan(1e-5);
    // Not vacuous: training moved the logprobs, and in DPO's direction.
    expect(maxAbsDifference(after, start)).toBeGreaterThan(1e-3);
    expect(dpoClosedForm(after, masks, reference).loss).toBeLessThan(2 * Math.LN2);
  });

  it("takes the same step with a { gradient } function as with the autodiff", async () => {
    const t = setup();
    const [viaAutodiff, viaGradient] = await Promise.all([
      t.service.createLoraTrainingClient(MODEL, LORA),
      t.service.createLoraTrainingClient(MODEL, LORA),
    ]);
    const data = preferenceData();
    // Pull each answer token's logprob towards −0.5: C = mean_i Σ_t m_t (lp_t + 0.5)².
    const target = -0.5;
    const autodiffLoss: CustomLossFn = (batch, logprobs) => ({
      loss: mean(concat(logprobs.map((lp, i) => dot(square(sub(lp, target)), maskOf(batch[i]!))))),
    });
    const gradientLoss: CustomGradientFn = (batch, logprobs) => {
      const n = logprobs.length;
      let loss = 0;
      const gradients = logprobs.map((lp, i) => {
        const mask = maskOf(batch[i]!);
        lp.forEach((x, t) => {
          loss += (mask[t]! * (x - target) ** 2) / n;
        });
        return lp.map((x, t) => (2 * mask[t]! * (x - target)) / n);
      });
      return { loss, gradients };
    };

    for (const [training, loss] of [
      [viaAutodiff, autodiffLoss],
      [viaGradient, { gradient: gradientLoss }],
    ] as const) {
      const fb = forwardBackwardCustom(training, data, loss);
      await fb.requestId;
      await Promise.all([fb, training.optimStep({ learning_rate: LEARNING_RATE })]);
    }
    const a = await forwardLogprobs(viaAutodiff, data);
    const b = await forwardLogprobs(viaGradient, data);
    expect(maxAbsDifference(a, b)).toBeLessThan(1e-5);
    expect(maxAbsDifference(a, await forwardLogprobs(await freshClient(t), data))).toBeGreaterThan(1e-3);
  });

  it("sends a forward with zero weights, then weights −g, and reports the second call", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const [withMask, withoutWeights] = preferenceData().slice(0, 2);
    const bare: Datum = {
      model_input: withoutWeights!.model_input,
      loss_fn_inputs: { target_tokens: withoutWeights!.loss_fn_inputs["target_tokens"]! },
    };
    const data = [withMask!, bare];
    const before = t.requests.length;

    // C = −2·Σ lp over the masked answer of datum 0 − 3·Σ lp over all of datum 1: g = −2·mask, −3.
    const fb = forwardBackwardCustom(training, data, (batch, [first, second]) => ({
      loss: neg(add(mul(2, dot(first!, maskOf(batch[0]!))), mul(3, sum(second!)))),
      metrics: { "note:unique": 7, [CUSTOM_LOSS_METRIC]: 42 },
    }));
    const requestId = await fb.requestId;
    const step = training.optimStep({ learning_rate: LEARNING_RATE });
    const [out] = await Promise.all([fb, step]);

    const sent = t.requests.slice(before);
    expect(
      sent
        .filter((r) => /\/(forward_backward|optim_step)$/.test(r.path))
        .map((r) => r.path.split("/").at(-1)),
    ).toEqual(["forward_backward", "forward_backward", "optim_step"]);
    const [forward, backward] = forwardBackwardRequests(sent);
    expect(forward!.forward_only).toBe(true);
    expect(forward!.loss_fn).toBe("cross_entropy");
    expect(forward!.data[0]).toEqual(withMask);
    const targets = bare.loss_fn_inputs["target_tokens"]!;
    expect(forward!.data[1]!.loss_fn_inputs["weights"]).toEqual({
      data: targets.data.map(() => 0),
      dtype: "float32",
      shape: [targets.data.length],
    });

    expect(backward!.forward_only).toBeFalsy();
    expect(backward!.loss_fn).toBe("cross_entropy");
    expect(backward!.data.map((d) => d.model_input)).toEqual(data.map((d) => d.model_input));
    expect(backward!.data.map((d) => d.loss_fn_inputs["target_tokens"])).toEqual(
      data.map((d) => d.loss_fn_inputs["target_tokens"]),
    );
    expect(backward!.data[0]!.loss_fn_inputs["weights"]!.data).toEqual(maskOf(withMask!).map((m) => 2 * m));
    expect(backward!.data[1]!.loss_fn_inputs["weights"]!.data).toEqual(targets.data.map(() => 3));

    // The request id is the forward_backward's: polled only after that submission.
    const submittedAt = sent.findIndex((r, i) => r.path.endsWith("/forward_backward") && i > 0);
    const polls = sent
      .map((r, i) => ({ i, r }))
      .filter(({ r }) => r.path.endsWith("/retrieve_future"))
      .filter(({ r }) => (jsonBody(r) as { request_id: string }).request_id === requestId);
    expect(polls.length).toBeGreaterThan(0);
    expect(polls.every(({ i }) => i > submittedAt)).toBe(true);

    // The user's metrics win over the server's and over the reported loss; the server's loss of
    // the surrogate pass, Σ −lp·w, is kept as surrogate_loss:sum (§T2).
    const [lp0, lp1] = out.loss_fn_outputs.map((o) => o["logprobs"]!.data);
    const mask = maskOf(withMask!);
    const surrogate =
      -lp0!.reduce((acc, lp, i) => acc + 2 * mask[i]! * lp, 0) - 3 * lp1!.reduce((a, b) => a + b, 0);
    expect(out.metrics).toEqual({
      [CUSTOM_LOSS_METRIC]: 42,
      "note:unique": 7,
      [SURROGATE_LOSS_METRIC]: expect.closeTo(surrogate, 3),
    });
    expect(out.loss_fn_outputs.map((o) => o["logprobs"]!.data.length)).toEqual(
      data.map((d) => d.loss_fn_inputs["target_tokens"]!.data.length),
    );
  });

  it("rejects bad data with a ValidationError before any request", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const [good] = preferenceData();
    const extra: Datum = {
      ...good!,
      loss_fn_inputs: { ...good!.loss_fn_inputs, advantages: float32Tensor([0], [1]) },
    };
    const noTargets: Datum = { ...good!, loss_fn_inputs: { weights: good!.loss_fn_inputs["weights"]! } };
    const loss: CustomLossFn = (_, logprobs) => ({ loss: sum(logprobs[0]!) });
    const sent = t.requests.length;

    let error: unknown;
    try {
      forwardBackwardCustom(training, [good!, extra, noTargets], loss);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual([
      "data[1].loss_fn_inputs.advantages",
      "data[2].loss_fn_inputs.target_tokens",
    ]);
    expect(() => forwardBackwardCustom(training, [], loss)).toThrow(/No data provided/);
    expect(t.requests.length).toBe(sent);

    // No seq_id was taken: the next operation runs (a gap would stall the ordered queue).
    await forwardBackwardCustom(training, [good!], loss);
  });

  it("fails after the forward, sending nothing more, when the loss is unusable or aborted", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const data = preferenceData().slice(0, 2);
    const countBackwards = () => forwardBackwardRequests(t.requests).filter((r) => !r.forward_only).length;

    await expect(
      forwardBackwardCustom(training, data, (_, logprobs) => ({ loss: sum(logprobs[0]!) })),
    ).rejects.toThrow(/does not depend on the logprobs of data\[1\]/);
    await expect(
      forwardBackwardCustom(training, data, { gradient: () => ({ loss: 0, gradients: [[1], [2]] }) }),
    ).rejects.toThrow(/gradient for data\[0\] has 1 values/);
    await expect(
      forwardBackwardCustom(training, data, (_, logprobs) => ({ loss: concat(logprobs) })),
    ).rejects.toThrow(/must be a scalar/);
    await expect(
      forwardBackwardCustom(training, data, () => ({ loss: 1 }) as unknown as { loss: Tensor }),
    ).rejects.toThrow(TinkerError);
    const controller = new AbortController();
    await expect(
      forwardBackwardCustom(
        training,
        data,
        (_, logprobs) => {
          controller.abort();
          return { loss: sum(concat(logprobs)) };
        },
        { signal: controller.signal },
      ),
    ).rejects.toBeInstanceOf(APIUserAbortError);
    expect(countBackwards()).toBe(0);

    // The run is not marked broken: a later custom step goes through.
    const out = await forwardBackwardCustom(training, data, (_, [a, b]) => ({
      loss: sum(add(sum(a!), sum(b!))),
    }));
    expect(out.metrics[CUSTOM_LOSS_METRIC]).toBeLessThan(0);
    expect(countBackwards()).toBe(1);
  });
});

describe("float32Tensor", () => {
  it("sends a mostly-zero 2-D tensor as CSR, by the official client's rule", () => {
    expect(float32Tensor([0, 0, 0, 0, 5, 0, 0, 0, 0], [3, 3])).toEqual({
      data: [5],
      dtype: "float32",
      shape: [3, 3],
      sparse_crow_indices: [0, 0, 1, 1],
      sparse_col_indices: [1],
    });
    // (2 + 1) + 2·2 = 7 is not below 2·3 = 6: dense.
    expect(float32Tensor([1, 0, 0, 0, 0, 2], [2, 3])).toEqual({
      data: [1, 0, 0, 0, 0, 2],
      dtype: "float32",
      shape: [2, 3],
    });
    expect(float32Tensor([0, 0, 0], [3])).toEqual({ data: [0, 0, 0], dtype: "float32", shape: [3] });
  });
});

async function freshClient(t: ReturnType<typeof setup>): Promise<TrainingClient> {
  return t.service.createLoraTrainingClient(MODEL, LORA);
}
