/** Unit tests of the ModelInput / TensorData / datum helpers (pure functions). */
import { describe, expect, it } from "vitest";
import { datum, ModelInput, TensorData, ValidationError } from "../src/index.js";

describe("ModelInput helpers", () => {
  it("builds, reads and measures inputs like the Python helpers", () => {
    const input = ModelInput.fromInts([1, 2, 3]);
    expect(ModelInput.toInts(input)).toEqual([1, 2, 3]);
    const longer = ModelInput.appendInt(input, 4);
    expect(longer.chunks).toHaveLength(2);
    expect(input.chunks).toHaveLength(1);
    const withImage = ModelInput.append(longer, {
      type: "image",
      data: "AAAA",
      format: "png",
      expected_tokens: 5,
    });
    expect(ModelInput.length(withImage)).toBe(9);
    expect(() => ModelInput.toInts(withImage)).toThrow(ValidationError);
    expect(() =>
      ModelInput.length(ModelInput.append(input, { type: "image", data: "AAAA", format: "png" })),
    ).toThrow(/expected_tokens/);
    // DMel header: marker 254, dtype byte, ndim 2, dims 300 (LEB128 0xac 0x02) and 80.
    const dmel = btoa(String.fromCharCode(254, 1, 2, 0xac, 0x02, 80));
    expect(ModelInput.length({ chunks: [{ type: "dmel", dmel }] })).toBe(300);
    expect(ModelInput.length(ModelInput.empty())).toBe(0);
  });

  it("converts plain lists only for the known loss inputs", () => {
    const d = datum(ModelInput.fromInts([1, 2]), { target_tokens: [2, 3], weights: [0, 1] });
    expect(d.loss_fn_inputs.target_tokens).toEqual({ data: [2, 3], dtype: "int64", shape: [2] });
    expect(d.loss_fn_inputs.weights!.dtype).toBe("float32");
    expect(() => datum(ModelInput.fromInts([1]), { mystery: [1] })).toThrow(/loss_fn_inputs\.mystery/);
    expect(TensorData.fromArray(new Float32Array([1, 2, 3, 4]), "float32", [2, 2]).shape).toEqual([2, 2]);
  });
});
