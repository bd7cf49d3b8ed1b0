/**
 * Training inputs added since 0.25 against the real local backend: string loss_fn_config values
 * (PROTOCOL.md §T1), provenance spans and `withProvenance` (§T3), and the custom-loss metrics (§T2).
 * A request that uses none of them reads as 0.25's did.
 */
import { describe, expect, it } from "vitest";
import {
  BadRequestError,
  type Datum,
  datum,
  forwardBackwardCustom,
  ModelInput,
  type ProvenanceSpan,
  SURROGATE_LOSS_METRIC,
  ValidationError,
  withProvenance,
} from "../src/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/base-models.js";
import {
  decodeForwardBackwardRequest,
  encodeForwardBackwardRequest,
  PROTOBUF_CONTENT_TYPE,
} from "../src/wire/protobuf/index.js";
import { forwardBackwardRequestToProtoJson } from "../src/wire/protobuf/proto-json.js";
import { closeAfterEach, localService, QA, qaDatum, type RecordedRequest } from "./helpers.js";

const closers = closeAfterEach();

function setup() {
  const t = localService();
  closers.add(t.close);
  return t;
}

const MODEL = BUILTIN_BASE_MODEL;
const LORA = { rank: 4, seed: 1 };

function fwdbwd(requests: RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => r.path.endsWith("/forward_backward"));
}

/** A datum whose input is `prompt` prompt tokens then `sampled` sampled ones, annotated as such. */
function annotated(d: Datum, promptLength: number, sequenceId: string): Datum {
  const length = ModelInput.length(d.model_input);
  return withProvenance(d, {
    modelInput: [
      { type: "prompt", sequence_id: sequenceId, offset: 0, length: promptLength },
      { type: "sampled", sequence_id: sequenceId, offset: 0, length: length - promptLength },
    ],
    lossFnInputs: [
      { type: "prompt", sequence_id: sequenceId, offset: 1, length: promptLength - 1 },
      { type: "sampled", sequence_id: sequenceId, offset: 0, length: length - promptLength + 1 },
    ],
  });
}

describe("string-valued loss_fn_config (§T1)", () => {
  function ppoBatch() {
    return QA.slice(0, 2).map((qa) => {
      const base = qaDatum(qa.question, qa.answer);
      const n = base.loss_fn_inputs["target_tokens"]!.data.length;
      return datum(base.model_input, {
        target_tokens: base.loss_fn_inputs["target_tokens"]!.data,
        logprobs: new Array<number>(n).fill(-1),
        advantages: new Array<number>(n).fill(1),
      });
    });
  }

  it("sends every entry in field 7 and the numbers also in field 5; the local losses refuse strings", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const future = training.forwardBackward(ppoBatch(), "ppo", {
      clip_low_threshold: 0.8,
      clip_high_threshold: "1.2",
    });
    // The local engine's losses take numeric settings only: a 400 naming the key.
    await expect(future).rejects.toThrow(BadRequestError);
    await expect(future).rejects.toThrow(/loss_fn_config\.clip_high_threshold/);
    const json = forwardBackwardRequestToProtoJson(fwdbwd(t.requests)[0]!.body);
    expect(json.loss_fn_config).toEqual({ clip_low_threshold: 0.8 });
    expect(json.loss_fn_config_v2).toEqual({
      clip_low_threshold: { number: 0.8 },
      clip_high_threshold: { text: "1.2" },
    });
  });

  it("trains with numbers as before, and refuses values that are neither before sending", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const out = await training.forwardBackward(ppoBatch(), "ppo", { clip_low_threshold: 0.8 });
    expect(Number.isFinite(out.metrics["loss:sum"])).toBe(true);
    const before = t.requests.length;
    for (const bad of [true, null, Number.NaN, {}]) {
      expect(() => training.forwardBackward(ppoBatch(), "ppo", { clip_low_threshold: bad as never })).toThrow(
        /must be a finite number or a string/,
      );
    }
    // Unknown keys stay unknown whatever their type.
    expect(() => training.forward(ppoBatch(), "ppo", { mode: "token" })).toThrow(ValidationError);
    expect(t.requests.length).toBe(before);
  });
});

describe("provenance spans (§T3)", () => {
  const base = qaDatum(QA[0]!.question, QA[0]!.answer);
  const length = ModelInput.length(base.model_input);
  const span = (
    offset: number,
    spanLength: number,
    type: ProvenanceSpan["type"] = "sampled",
  ): ProvenanceSpan => ({
    type,
    sequence_id: "sess:sample:0:0",
    offset,
    length: spanLength,
  });

  it("withProvenance annotates a copy when the spans tile their fields", () => {
    const result = withProvenance(base, {
      modelInput: [span(0, 10, "prompt"), span(0, length - 10)],
      lossFnInputs: [span(0, length)],
    });
    expect(result.model_input_spans).toEqual([span(0, 10, "prompt"), span(0, length - 10)]);
    expect(result.loss_fn_input_spans).toEqual([span(0, length)]);
    expect(result.model_input).toBe(base.model_input);
    expect(base.model_input_spans).toBeUndefined();
    // A list not given keeps the datum's.
    const again = withProvenance(result, { modelInput: [span(0, length)] });
    expect(again.loss_fn_input_spans).toEqual([span(0, length)]);
  });

  it("withProvenance refuses spans that do not tile, or are empty or malformed", () => {
    const cases: [Parameters<typeof withProvenance>[1], RegExp][] = [
      [{ modelInput: [span(0, length - 1)] }, /model_input_spans: the span lengths add up to/],
      [{ modelInput: [span(0, length), span(0, 1)] }, /add up to/],
      [{ lossFnInputs: [span(0, length + 2)] }, /loss_fn_input_spans: .*target_tokens/],
      [{ modelInput: [span(0, 0), span(0, length)] }, /length: must be an integer ≥ 1/],
      [{ modelInput: [span(-1, length)] }, /offset: must be an integer ≥ 0/],
      [
        { modelInput: [{ ...span(0, length), type: "other" as never }] },
        /type: must be "prompt" or "sampled"/,
      ],
      [{ modelInput: [{ ...span(0, length), sequence_id: 3 as never }] }, /sequence_id/],
      [{ modelInput: "x" as never }, /must be an array/],
    ];
    for (const [spans, message] of cases) {
      expect(() => withProvenance(base, spans), JSON.stringify(spans)).toThrow(ValidationError);
      expect(() => withProvenance(base, spans)).toThrow(message);
    }
  });

  it("travel in Datum fields 3 and 4 and leave the computation unchanged", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const plain = QA.slice(0, 2).map((qa) => qaDatum(qa.question, qa.answer));
    const withSpans = plain.map((d, i) => annotated(d, 8, `seq-${i}`));
    const a = await training.forward(plain, "cross_entropy");
    const b = await training.forward(withSpans, "cross_entropy");
    expect(b.metrics).toEqual(a.metrics);
    expect(b.loss_fn_outputs).toEqual(a.loss_fn_outputs);
    const [sentPlain, sentWithSpans] = fwdbwd(t.requests).map((r) => decodeForwardBackwardRequest(r.body));
    expect(sentWithSpans!.data.map((d) => [d.model_input_spans, d.loss_fn_input_spans])).toEqual(
      withSpans.map((d) => [d.model_input_spans, d.loss_fn_input_spans]),
    );
    // Without spans (or a string config) the request has none of the 0.26 fields.
    const json = forwardBackwardRequestToProtoJson(fwdbwd(t.requests)[0]!.body);
    expect(Object.keys(json).sort()).toEqual(["data", "forward_only", "loss_fn", "model_id", "seq_id"]);
    for (const d of json.data as Record<string, unknown>[]) {
      expect(Object.keys(d).sort()).toEqual(["loss_fn_inputs", "model_input"]);
    }
    expect(sentPlain!.data.every((d) => d.model_input_spans === undefined)).toBe(true);
  });

  it("are checked before sending: a hand-built datum with a broken tiling is a ValidationError", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const broken: Datum = { ...base, model_input_spans: [span(0, length + 1)] };
    const before = t.requests.length;
    expect(() => training.forwardBackward([broken], "cross_entropy")).toThrow(
      /data\[0\]\.model_input_spans: the span lengths add up to/,
    );
    expect(t.requests.length).toBe(before);
    expect(await training.forwardBackward([base], "cross_entropy")).toBeDefined();
  });

  it("are verified by the backend: a broken tiling is a 400 at submission", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const send = (data: Datum[]) =>
      t.local.fetch(
        new Request("http://local.tinker/api/v1/forward_backward", {
          method: "POST",
          headers: { "content-type": PROTOBUF_CONTENT_TYPE, "x-api-key": "tml-test-key" },
          body: encodeForwardBackwardRequest({
            model_id: training.modelId,
            seq_id: 1,
            data,
            loss_fn: "cross_entropy",
          }) as Uint8Array<ArrayBuffer>,
        }),
      );
    for (const broken of [
      { ...base, loss_fn_input_spans: [span(0, length - 1)] },
      { ...base, model_input_spans: [span(0, 0), span(0, length)] },
    ]) {
      const answer = await send([broken]);
      expect(answer.status).toBe(400);
      expect(((await answer.json()) as { detail: string }).detail).toMatch(
        /data\[0\]\.(loss_fn_input_spans|model_input_spans)/,
      );
    }
    // seq_id 1 is still free: the SDK's first operation takes it.
    const out = await training.forwardBackward([annotated(base, 8, "s")], "cross_entropy");
    expect(out.loss_fn_outputs).toHaveLength(1);
  });
});

describe("custom-loss metrics (§T2)", () => {
  it("report loss:sum = C and the server's surrogate value, with spans on both passes", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, LORA);
    const data = QA.slice(0, 2).map((qa, i) => annotated(qaDatum(qa.question, qa.answer), 8, `seq-${i}`));
    // C = (Σ lp)² per datum, summed: ∂C/∂lp = 2·Σ lp, so the surrogate Σ −lp·w with w = −g is 2·C.
    const out = await forwardBackwardCustom(training, data, {
      gradient: (_batch, logprobs) => {
        const sums = logprobs.map((lp) => lp.reduce((a, b) => a + b, 0));
        return {
          loss: sums.reduce((acc, s) => acc + s * s, 0),
          gradients: logprobs.map((lp, i) => lp.map(() => 2 * sums[i]!)),
        };
      },
    });
    const sums = out.loss_fn_outputs.map((o) => o["logprobs"]!.data.reduce((a, b) => a + b, 0));
    const custom = sums.reduce((acc, s) => acc + s * s, 0);
    expect(out.metrics["loss:sum"]).toBeCloseTo(custom, 2);
    expect(out.metrics[SURROGATE_LOSS_METRIC]).toBeCloseTo(2 * custom, 1);
    const passes = fwdbwd(t.requests).map((r) => decodeForwardBackwardRequest(r.body));
    expect(passes.map((p) => p.forward_only ?? false)).toEqual([true, false]);
    for (const pass of passes) {
      expect(pass.data.map((d) => [d.model_input_spans, d.loss_fn_input_spans])).toEqual(
        data.map((d) => [d.model_input_spans, d.loss_fn_input_spans]),
      );
    }
  });
});
