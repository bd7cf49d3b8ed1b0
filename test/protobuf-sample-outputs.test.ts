/**
 * The sampling outputs added between 0.26.2 and 0.31 (UPSTREAM.md P2, §11): SampleResponse fields 5
 * `target_prompt_logprobs` and 6 `prompt_alt_tokens`, SampledSequence field 4
 * `topk_sampled_logprobs` (the shared TopkLogprobs message, X1), and their JSON form.
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { SampleResponseSchema } from "../src/wire/json-schemas.js";
import {
  decodeSampleResponse,
  encodeSampleResponse,
  ProtobufDecodeError,
  ProtobufEncodeError,
} from "../src/wire/protobuf/index.js";
import { protoToJson } from "../src/wire/protobuf/proto-json.js";
import { ProtoWriter } from "../src/wire/protobuf/writer.js";
import type { SampleResponse, TensorData } from "../src/wire/types.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const joinHex = (parts: string[]) => parts.join(" ").replace(/\s+/g, "");
const int32s = (values: number[]) => {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => {
    buf.writeInt32LE(value, i * 4);
  });
  return new Uint8Array(buf);
};
const float32s = (values: number[]) => {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => {
    buf.writeFloatLE(value, i * 4);
  });
  return new Uint8Array(buf);
};

/** Values that float32 holds exactly, so round trips compare with toEqual. */
const FULL: SampleResponse = {
  sequences: [
    {
      stop_reason: "length",
      tokens: [11, 12],
      logprobs: [-0.5, -1.25],
      topk_sampled_logprobs: [
        [
          [11, -0.5],
          [3, -2],
        ],
        [[12, -1.25]],
      ],
    },
    { stop_reason: "stop", tokens: [9] },
  ],
  prompt_logprobs: [null, -0.75, -3],
  topk_prompt_logprobs: [null, [[4, -0.75]], [[5, -3]]],
  prompt_cache_hit_tokens: 1,
  target_prompt_logprobs: {
    data: [-0.75, -8, -3],
    dtype: "float32",
    shape: [2, 3],
    sparse_crow_indices: [0, 2, 3],
    sparse_col_indices: [0, 2, 1],
  },
  prompt_alt_tokens: {
    tokens: { data: [4, 7, 5, 2 ** 40], dtype: "int64", shape: [2, 2] },
    logprobs: { data: [-0.75, -2.5, -3, -0.125], dtype: "float32", shape: [2, 2] },
  },
};

describe("SampleResponse fields 5-6 and SampledSequence field 4", () => {
  it("round-trip, with a CSR target_prompt_logprobs keeping its indices", () => {
    expect(decodeSampleResponse(encodeSampleResponse(FULL))).toStrictEqual(FULL);
  });

  it("round-trip a dense target_prompt_logprobs", () => {
    const res: SampleResponse = {
      sequences: [],
      target_prompt_logprobs: { data: [-0.5, 0, 0, -4], dtype: "float32", shape: [2, 2] },
    };
    expect(decodeSampleResponse(encodeSampleResponse(res))).toStrictEqual({
      ...res,
      prompt_cache_hit_tokens: 0,
    });
  });

  it("matches hand-computed bytes", () => {
    const bytes = encodeSampleResponse({
      sequences: [{ stop_reason: "stop", tokens: [], topk_sampled_logprobs: [[[7, -0.5]]] }],
      target_prompt_logprobs: { data: [-0.5], dtype: "float32", shape: [1, 1] },
      prompt_alt_tokens: {
        tokens: { data: [3], dtype: "int64", shape: [1, 1] },
        logprobs: { data: [-1], dtype: "float32", shape: [1, 1] },
      },
    });
    expect(hex(bytes)).toBe(
      joinHex([
        "0a 12", // 1: sequences, 18 bytes
        "  22 10", //   4: topk_sampled_logprobs, a TopkLogprobs of 16 bytes
        "    0a 04 07 00 00 00", //     1: token_ids int32 [7]
        "    12 04 00 00 00 bf", //     2: logprobs float32 [-0.5]
        "    18 01 20 01", //     3: k 1, 4: length 1
        "2a 0c", // 5: target_prompt_logprobs, a Tensor of 12 bytes
        "  0a 04 00 00 00 bf 18 01 22 02 01 01", //   dense [-0.5], dtype FLOAT32, shape [1, 1]
        "32 20", // 6: prompt_alt_tokens, 32 bytes
        "  0a 10", //   1: tokens, a Tensor of 16 bytes
        "    0a 08 03 00 00 00 00 00 00 00 18 02 22 02 01 01", //     dense int64 [3], dtype INT64, shape [1, 1]
        "  12 0c", //   2: logprobs, a Tensor of 12 bytes
        "    0a 04 00 00 80 bf 18 01 22 02 01 01", //     dense float32 [-1], dtype FLOAT32, shape [1, 1]
      ]),
    );
  });

  it("dumps under the newest proto names: TopkLogprobs.length (formerly prompt_length)", () => {
    const bytes = encodeSampleResponse({
      sequences: [{ stop_reason: "stop", tokens: [], topk_sampled_logprobs: [[[7, -0.5]], null] }],
    });
    expect(protoToJson(bytes, "SampleResponse")).toEqual({
      sequences: [
        {
          topk_sampled_logprobs: {
            token_ids: Buffer.from(int32s([7, 0])).toString("base64"),
            logprobs: Buffer.from(float32s([-0.5, -99999])).toString("base64"),
            k: 1,
            length: 2,
          },
        },
      ],
    });
  });

  it("sampled top-k uses the prompt top-k's sentinel cells, null rows and trimming", () => {
    const w = new ProtoWriter();
    w.messageField(1, (s) =>
      s.messageField(4, (t) => {
        t.bytesField(1, int32s([0, 0, 5, 0, 6, 8]));
        t.bytesField(2, float32s([-99999, -99999, -1, -99999, -2, -3]));
        t.uint32Field(3, 2);
        t.uint32Field(4, 3);
      }),
    );
    expect(decodeSampleResponse(w.finish()).sequences[0].topk_sampled_logprobs).toEqual([
      null,
      [[5, -1]],
      [
        [6, -2],
        [8, -3],
      ],
    ]);
    const notRequested = new ProtoWriter();
    notRequested.messageField(1, (s) => s.messageField(4, (t) => t.uint32Field(4, 3)));
    expect(decodeSampleResponse(notRequested.finish()).sequences[0]).toStrictEqual({
      stop_reason: "stop",
      tokens: [],
    });
  });

  it("reads the alt-token dtype from Tensor.dtype: INT32 ids come back as int64 numbers", () => {
    const w = new ProtoWriter();
    w.messageField(6, (alt) => {
      alt.messageField(1, (t) => {
        t.bytesField(1, int32s([9, -1]));
        t.enumField(3, 3); // DTYPE_INT32, as the proto comment describes the ids
        t.packedInt64Field(4, [1, 2]);
      });
      alt.messageField(2, (t) => {
        t.bytesField(1, float32s([-0.5, -2]));
        t.enumField(3, 1);
        t.packedInt64Field(4, [1, 2]);
      });
    });
    expect(decodeSampleResponse(w.finish()).prompt_alt_tokens).toStrictEqual({
      tokens: { data: [9, -1], dtype: "int64", shape: [1, 2] },
      logprobs: { data: [-0.5, -2], dtype: "float32", shape: [1, 2] },
    });
  });

  it("rejects a PromptAltTokens missing either tensor", () => {
    const missing = (field: number) => {
      const w = new ProtoWriter();
      w.messageField(6, (alt) =>
        alt.messageField(field, (t) => {
          t.bytesField(1, float32s([1]));
          t.enumField(3, 1);
        }),
      );
      return w.finish();
    };
    expect(() => decodeSampleResponse(missing(1))).toThrow(ProtobufDecodeError);
    expect(() => decodeSampleResponse(missing(1))).toThrow(/prompt_alt_tokens: logprobs is missing/);
    expect(() => decodeSampleResponse(missing(2))).toThrow(/prompt_alt_tokens: tokens is missing/);
  });

  it("names the field in decode errors of the new tensors", () => {
    const w = new ProtoWriter();
    w.messageField(5, (t) => t.bytesField(1, float32s([1])));
    expect(() => decodeSampleResponse(w.finish())).toThrow(
      /target_prompt_logprobs\.dtype: unsupported DType value 0/,
    );
    const short = new ProtoWriter();
    short.messageField(1, (s) =>
      s.messageField(4, (t) => {
        t.uint32Field(3, 2);
        t.uint32Field(4, 1);
      }),
    );
    expect(() => decodeSampleResponse(short.finish())).toThrow(
      /sequences\[0\]\.topk_sampled_logprobs: 1×2 matrices need 8 bytes each/,
    );
  });

  it("rejects values the new fields cannot carry, with their path", () => {
    const base = { sequences: [] };
    expect(() =>
      encodeSampleResponse({
        ...base,
        prompt_alt_tokens: { tokens: { data: [1], dtype: "int64" } } as never,
      }),
    ).toThrow(/prompt_alt_tokens\.logprobs: expected TensorData/);
    expect(() =>
      encodeSampleResponse({
        ...base,
        target_prompt_logprobs: { data: [1], dtype: "int8" } as unknown as TensorData,
      }),
    ).toThrow(ProtobufEncodeError);
    expect(() =>
      encodeSampleResponse({
        sequences: [
          { stop_reason: "stop", tokens: [], topk_sampled_logprobs: [[[1] as unknown as [number, number]]] },
        ],
      }),
    ).toThrow(/sequences\[0\]\.topk_sampled_logprobs\[0\]\[0\]: expected a \[token_id, logprob\] pair/);
  });

  it("does not put sequence_id on the wire: the SDK stamps it from the asample answer (P1)", () => {
    const plain = encodeSampleResponse({ sequences: [{ stop_reason: "stop", tokens: [1] }] });
    const stamped = encodeSampleResponse({
      sequences: [{ stop_reason: "stop", tokens: [1], sequence_id: "s:0" }],
    });
    expect(hex(stamped)).toBe(hex(plain));
  });
});

describe("compatibility across schema versions", () => {
  it("a response without the new fields encodes as in 0.25 and decodes without the new keys", () => {
    const res: SampleResponse = {
      sequences: [{ stop_reason: "length", tokens: [5] }],
      prompt_logprobs: [null],
      topk_prompt_logprobs: [[[9, -0.25]]],
      prompt_cache_hit_tokens: 3,
    };
    const bytes = encodeSampleResponse(res);
    expect(hex(bytes)).toBe(
      joinHex([
        "0a 08 08 01 12 04 05 00 00 00", // 1: sequences { LENGTH, tokens [5] }
        "12 04 00 00 c0 7f", // 2: prompt_logprobs [NaN]
        "1a 10 0a 04 09 00 00 00 12 04 00 00 80 be 18 01 20 01", // 3: top-k [[9, -0.25]], k 1, length 1
        "20 03", // 4: prompt_cache_hit_tokens 3
      ]),
    );
    expect(decodeSampleResponse(bytes)).toStrictEqual(res);
  });

  it("decodes a message carrying fields from a future schema, skipping them at every level", () => {
    const w = new ProtoWriter();
    w.messageField(1, (s) => {
      s.int32Field(2 ** 10, 1); // unknown SampledSequence field
      s.bytesField(2, int32s([4]));
      s.messageField(4, (t) => {
        t.bytesField(1, int32s([4]));
        t.bytesField(2, float32s([-1]));
        t.uint32Field(3, 1);
        t.uint32Field(4, 1);
        t.doubleField(5, 2); // unknown TopkLogprobs field
      });
    });
    w.messageField(6, (alt) => {
      alt.stringField(3, "future"); // unknown PromptAltTokens field
      alt.messageField(1, (t) => {
        t.bytesField(1, int32s([2]));
        t.enumField(3, 3);
      });
      alt.messageField(2, (t) => {
        t.bytesField(1, float32s([-2]));
        t.enumField(3, 1);
      });
    });
    w.messageField(9, (m) => m.stringField(1, "a message we do not know"));
    w.tag(12, 5).raw(new Uint8Array(4)); // unknown fixed32
    expect(decodeSampleResponse(w.finish())).toStrictEqual({
      sequences: [{ stop_reason: "stop", tokens: [4], topk_sampled_logprobs: [[[4, -1]]] }],
      prompt_cache_hit_tokens: 0,
      prompt_alt_tokens: {
        tokens: { data: [2], dtype: "int64" },
        logprobs: { data: [-2], dtype: "float32" },
      },
    });
  });
});

describe("SampleResponse JSON form", () => {
  it("accepts the new fields in their protobuf-mirroring shapes, nulls included", () => {
    const json = JSON.parse(JSON.stringify({ ...FULL, type: "sample" }));
    expect(v.parse(SampleResponseSchema, json)).toEqual({ ...FULL, type: "sample" });
    const nulls = {
      sequences: [{ stop_reason: "stop", tokens: [], topk_sampled_logprobs: null }],
      target_prompt_logprobs: null,
      prompt_alt_tokens: null,
    };
    expect(v.safeParse(SampleResponseSchema, nulls).success).toBe(true);
  });

  it("rejects malformed new fields", () => {
    const bad = [
      { sequences: [], prompt_alt_tokens: { tokens: { data: [1], dtype: "int64" } } },
      { sequences: [], target_prompt_logprobs: { data: ["x"], dtype: "float32" } },
      { sequences: [{ stop_reason: "stop", tokens: [], topk_sampled_logprobs: [[["1", -2]]] }] },
    ];
    for (const body of bad) expect(v.safeParse(SampleResponseSchema, body).success).toBe(false);
  });
});
