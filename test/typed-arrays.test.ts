/**
 * Typed arrays as training input (issue #7): Int32Array / Uint32Array tokens and Float32Array /
 * Int32Array / BigInt64Array tensor data go into forward / forward_backward without conversion,
 * encode to the same bytes as the number[] datums, train the real local backend identically,
 * and fail validation with the same ValidationError before any request.
 */
import { describe, expect, it } from "vitest";
import { supervisedExample } from "../examples/qa-dataset.js";
import { datum, ModelInput, TensorData, ValidationError } from "../src/index.js";
import { ProtobufEncodeError } from "../src/wire/protobuf/errors.js";
import { decodeForwardBackwardRequest, encodeForwardBackwardRequest } from "../src/wire/protobuf/index.js";
import type { DatumInput } from "../src/wire/types.js";
import { closeAfterEach, localService, QA } from "./helpers.js";

const closers = closeAfterEach();

const examples = QA.map(({ question, answer }) => supervisedExample(question, answer));

const plainBatch = () =>
  examples.map(({ input, targets, weights }) =>
    datum(ModelInput.fromInts(input), { target_tokens: targets, weights }),
  );

/** The same batch with every array typed; targets alternate Int32Array and BigInt64Array. */
const typedBatch = (): DatumInput[] =>
  examples.map(({ input, targets, weights }, i) =>
    datum(ModelInput.fromInts(i % 2 === 0 ? Int32Array.from(input) : Uint32Array.from(input)), {
      target_tokens: i % 2 === 0 ? Int32Array.from(targets) : BigInt64Array.from(targets, BigInt),
      weights: Float32Array.from(weights),
    }),
  );

const request = (data: DatumInput[]) => ({
  model_id: "s:train:0",
  seq_id: 7,
  data,
  loss_fn: "cross_entropy",
});

describe("typed arrays in the forward_backward request codec", () => {
  it("encodes to exactly the bytes of the same number[] datums", () => {
    const plain = encodeForwardBackwardRequest(request(plainBatch()));
    const typed = encodeForwardBackwardRequest(request(typedBatch()));
    expect(Buffer.from(typed).toString("hex")).toBe(Buffer.from(plain).toString("hex"));
    // And the backend reads them back as plain numbers.
    const decoded = decodeForwardBackwardRequest(typed);
    expect(decoded.data[1]!.loss_fn_inputs["target_tokens"]!.data).toEqual(examples[1]!.targets);
  });

  it("keeps negative Int32Array values sign-extended when widened to int64", () => {
    const tensor = { data: Int32Array.of(-1, 5, -2147483648), dtype: "int64" as const };
    const bytes = encodeForwardBackwardRequest(
      request([{ model_input: ModelInput.empty(), loss_fn_inputs: { x: tensor } }]),
    );
    const decoded = decodeForwardBackwardRequest(bytes);
    expect(decoded.data[0]!.loss_fn_inputs["x"]!.data).toEqual([-1, 5, -2147483648]);
  });

  it("rejects values the wire cannot carry and arrays of the wrong kind, naming the element", () => {
    const tokens = (t: Uint32Array | Float64Array) =>
      request([
        { model_input: { chunks: [{ type: "encoded_text", tokens: t as never }] }, loss_fn_inputs: {} },
      ]);
    expect(() => encodeForwardBackwardRequest(tokens(Uint32Array.of(1, 2 ** 31)))).toThrow(
      /chunks\[0\]\.tokens\[1\]: 2147483648 is not a 32-bit signed integer/,
    );
    expect(() => encodeForwardBackwardRequest(tokens(Float64Array.of(1)))).toThrow(ProtobufEncodeError);
    const mismatch = request([
      {
        model_input: ModelInput.empty(),
        loss_fn_inputs: { w: { data: Int32Array.of(1), dtype: "float32" } },
      },
    ]);
    expect(() => encodeForwardBackwardRequest(mismatch)).toThrow(
      /expected an array or Float32Array, got a Int32Array/,
    );
  });
});

describe("typed arrays through TrainingClient on the local backend", () => {
  it("train exactly like the same datums as number[]", async () => {
    const t = localService();
    closers.add(t.close);
    const plainRun = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 8, seed: 3 });
    const typedRun = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 8, seed: 3 });
    for (let step = 0; step < 3; step++) {
      const [plainOut, typedOut] = await Promise.all([
        plainRun.forwardBackward(plainBatch(), "cross_entropy"),
        typedRun.forwardBackward(typedBatch(), "cross_entropy"),
      ]);
      expect(typedOut.metrics["loss:sum"]).toBe(plainOut.metrics["loss:sum"]);
      expect(typedOut.loss_fn_outputs).toEqual(plainOut.loss_fn_outputs);
      // Results stay plain number[], whatever the input was.
      expect(Array.isArray(typedOut.loss_fn_outputs[0]!.logprobs!.data)).toBe(true);
      await Promise.all([
        plainRun.optimStep({ learning_rate: 1e-2 }),
        typedRun.optimStep({ learning_rate: 1e-2 }),
      ]);
    }
    const forward = await typedRun.forward(typedBatch(), "cross_entropy");
    const plainForward = await plainRun.forward(plainBatch(), "cross_entropy");
    expect(forward.metrics["loss:sum"]).toBe(plainForward.metrics["loss:sum"]);
  });

  it("fail validation with a ValidationError naming the element, before any request", async () => {
    const t = localService();
    closers.add(t.close);
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const { input, targets, weights } = examples[0]!;
    const weightsWithNaN = Float32Array.from(weights);
    weightsWithNaN[3] = Number.NaN;
    const negativeToken = Int32Array.from(input);
    negativeToken[2] = -5;
    const cases: [DatumInput, RegExp][] = [
      [
        datum(ModelInput.fromInts(input), { target_tokens: targets, weights: weightsWithNaN }),
        /weights\.data\[3\]$/,
      ],
      [datum(ModelInput.fromInts(negativeToken), { target_tokens: targets }), /chunks\[0\]\.tokens\[2\]$/],
      [
        datum(ModelInput.fromInts(Uint32Array.from(input, (x, i) => (i === 1 ? 2 ** 31 : x))), {
          target_tokens: targets,
        }),
        /chunks\[0\]\.tokens\[1\]$/,
      ],
      [
        datum(ModelInput.fromInts(input), {
          target_tokens: TensorData.fromArray(Float32Array.from(targets), "int64"),
        }),
        /target_tokens\.data$/,
      ],
      [
        datum(ModelInput.fromInts(input), {
          target_tokens: targets,
          weights: TensorData.fromArray(Int32Array.from(weights), "float32"),
        }),
        /weights\.data$/,
      ],
      [
        datum(ModelInput.fromInts(input), { target_tokens: Int32Array.from(targets).subarray(1) }),
        /target_tokens$/,
      ],
    ];
    const sent = t.requests.length;
    for (const [bad, path] of cases) {
      let error: unknown;
      try {
        training.forwardBackward([bad], "cross_entropy");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues[0]!.path).toMatch(path);
    }
    expect(t.requests.length).toBe(sent);
  });

  it("are refused in sampling prompts, which travel as JSON", async () => {
    const t = localService();
    closers.add(t.close);
    const sampler = await t.service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
    const prompt = ModelInput.fromInts(Int32Array.of(1, 2, 3));
    expect(() => sampler.sample(prompt as never, 1, { max_tokens: 1 })).toThrow(ValidationError);
  });
});
