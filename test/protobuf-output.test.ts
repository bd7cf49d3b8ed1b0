/**
 * ForwardBackwardOutput codec: the §8.1 composed example byte by byte, round trips, and the
 * official client's decoding rules applied to messages other servers may send.
 */
import { describe, expect, it } from "vitest";
import {
  decodeForwardBackwardOutput,
  encodeForwardBackwardOutput,
  ProtobufDecodeError,
  ProtobufEncodeError,
} from "../src/wire/protobuf/index.js";
import { protoToJson } from "../src/wire/protobuf/proto-json.js";
import { ProtoWriter } from "../src/wire/protobuf/writer.js";
import type { ForwardBackwardOutput } from "../src/wire/types.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const compact = (parts: string[]) => parts.join(" ").replace(/\s+/g, "");

function int64s(values: number[]): Uint8Array {
  const buf = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => {
    buf.writeBigInt64LE(BigInt(v), i * 8);
  });
  return new Uint8Array(buf);
}
function float32s(values: number[]): Uint8Array {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    buf.writeFloatLE(v, i * 4);
  });
  return new Uint8Array(buf);
}
function int32s(values: number[]): Uint8Array {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    buf.writeInt32LE(v, i * 4);
  });
  return new Uint8Array(buf);
}

/** The §8.1 composed example: two datums with 3 and 2 logprobs, one record, metric loss:sum. */
const COMPOSED: ForwardBackwardOutput = {
  loss_fn_output_type: "ArrayRecord",
  loss_fn_outputs: [
    { logprobs: { data: [-0.5, -1, -1.5], dtype: "float32", shape: [3] } },
    { logprobs: { data: [-2, -2.5], dtype: "float32", shape: [2] } },
  ],
  metrics: { "loss:sum": 3.1 },
};

describe("ForwardBackwardOutput: the §8.1 composed example", () => {
  const bytes = encodeForwardBackwardOutput(COMPOSED);

  it("matches hand-computed bytes, with BYTE offsets [0, 12, 20]", () => {
    expect(hex(bytes)).toBe(
      compact([
        "0a 0b 41 72 72 61 79 52 65 63 6f 72 64", // 1: loss_fn_output_type "ArrayRecord"
        "12 4f", // 2: loss_fn_outputs, one ArrayRecord of 79 bytes
        "  0a 0b 41 72 72 61 79 52 65 63 6f 72 64", //   1: type_tag "ArrayRecord"
        "  12 3e", //   2: fields entry, 62 bytes
        "    0a 08 6c 6f 67 70 72 6f 62 73", //     key "logprobs"
        "    12 32", //     value BatchedTensor, 50 bytes
        "      0a 14 000000bf 000080bf 0000c0bf 000000c0 000020c0", //       1: data, 5 float32
        "      12 18 0000000000000000 0c00000000000000 1400000000000000", //       2: offsets 0, 12, 20 (int64 LE)
        "      18 01", //       3: dtype FLOAT32 (no trailing_shape: 1-D outputs)
        "  18 02", //   3: num_datums 2
        "1a 13", // 3: metrics entry, 19 bytes
        "  0a 08 6c 6f 73 73 3a 73 75 6d", //   key "loss:sum"
        "  11 cdcccccccccc0840", //   value 3.1 (double LE)
      ]),
    );
  });

  it("dumps as the expected proto3 JSON", () => {
    expect(protoToJson(bytes, "ForwardBackwardOutput")).toEqual({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [
        {
          type_tag: "ArrayRecord",
          num_datums: "2",
          fields: {
            logprobs: {
              data: Buffer.from(float32s([-0.5, -1, -1.5, -2, -2.5])).toString("base64"),
              offsets: Buffer.from(int64s([0, 12, 20])).toString("base64"),
              dtype: "DTYPE_FLOAT32",
            },
          },
        },
      ],
      metrics: { "loss:sum": 3.1 },
    });
  });

  it("decodes back to the two datums", () => {
    expect(decodeForwardBackwardOutput(bytes)).toEqual(COMPOSED);
  });

  it("rejects element-based offsets [0, 3, 5] instead of slicing wrongly", () => {
    const w = new ProtoWriter();
    w.stringField(1, "ArrayRecord");
    w.messageField(2, (record) => {
      record.messageField(2, (entry) => {
        entry.stringField(1, "logprobs");
        entry.messageField(2, (bt) => {
          bt.bytesField(1, float32s([-0.5, -1, -1.5, -2, -2.5]));
          bt.bytesField(2, int64s([0, 3, 5]));
          bt.enumField(3, 1);
        });
      });
      record.int64Field(3, 2);
    });
    expect(() => decodeForwardBackwardOutput(w.finish())).toThrow(/not a multiple of the 4-byte item size/);
  });
});

describe("ForwardBackwardOutput round trips", () => {
  it("several datums, ragged lengths, several fields, int64 + float32, 2-D trailing shape: one record", () => {
    const out: ForwardBackwardOutput = {
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [
        {
          logprobs: { data: [-0.5, -1, -1.5], dtype: "float32", shape: [3] },
          token_ids: { data: [1, -2, 2 ** 40], dtype: "int64", shape: [3] },
          topk: { data: [1, 2, 3, 4, 5, 6], dtype: "float32", shape: [3, 2] },
        },
        {
          logprobs: { data: [-2, -2.5], dtype: "float32", shape: [2] },
          token_ids: { data: [7, 8], dtype: "int64", shape: [2] },
          topk: { data: [7, 8, 9, 10], dtype: "float32", shape: [2, 2] },
        },
        {
          logprobs: { data: [], dtype: "float32", shape: [0] },
          token_ids: { data: [], dtype: "int64", shape: [0] },
          topk: { data: [], dtype: "float32", shape: [0, 2] },
        },
      ],
      metrics: { "loss:sum": 1.25, "tokens:sum": 5 },
    };
    const bytes = encodeForwardBackwardOutput(out);
    const json = protoToJson(bytes, "ForwardBackwardOutput") as {
      loss_fn_outputs: { num_datums: string; fields: Record<string, Record<string, unknown>> }[];
    };
    expect(json.loss_fn_outputs).toHaveLength(1);
    expect(json.loss_fn_outputs[0].num_datums).toBe("3");
    expect(json.loss_fn_outputs[0].fields.topk.trailing_shape).toEqual(["2"]);
    expect(json.loss_fn_outputs[0].fields.token_ids.offsets).toBe(
      Buffer.from(int64s([0, 24, 40, 40])).toString("base64"),
    );
    expect(json.loss_fn_outputs[0].fields.topk.offsets).toBe(
      Buffer.from(int64s([0, 24, 40, 40])).toString("base64"),
    );
    expect(json.loss_fn_outputs[0].fields.logprobs.offsets).toBe(
      Buffer.from(int64s([0, 12, 20, 20])).toString("base64"),
    );
    expect(decodeForwardBackwardOutput(bytes)).toEqual(out);
  });

  it("splits into consecutive records when dtype or trailing shape changes, and concatenates them back", () => {
    const out: ForwardBackwardOutput = {
      loss_fn_output_type: "TorchLossReturn",
      loss_fn_outputs: [
        { x: { data: [1, 2], dtype: "float32", shape: [1, 2] } },
        { x: { data: [3, 4, 5, 6], dtype: "float32", shape: [2, 2] } },
        { x: { data: [1, 2, 3], dtype: "float32", shape: [1, 3] } },
        { x: { data: [4], dtype: "int64", shape: [1] } },
        { x: { data: [5, 6], dtype: "int64", shape: [2] } },
      ],
      metrics: {},
    };
    const bytes = encodeForwardBackwardOutput(out);
    const json = protoToJson(bytes, "ForwardBackwardOutput") as { loss_fn_outputs: { num_datums: string }[] };
    expect(json.loss_fn_outputs.map((record) => record.num_datums)).toEqual(["2", "1", "2"]);
    expect(decodeForwardBackwardOutput(bytes)).toEqual(out);
  });

  it("writes 1-D outputs without a shape as shape [N]", () => {
    const bytes = encodeForwardBackwardOutput({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [{ logprobs: { data: [0.25, 0.5], dtype: "float32" } }],
      metrics: {},
    });
    expect(decodeForwardBackwardOutput(bytes).loss_fn_outputs).toEqual([
      { logprobs: { data: [0.25, 0.5], dtype: "float32", shape: [2] } },
    ]);
  });

  it("rounds values to float32", () => {
    const bytes = encodeForwardBackwardOutput({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [{ logprobs: { data: [0.1, -1 / 3], dtype: "float32", shape: [2] } }],
      metrics: { "loss:sum": 0.1 },
    });
    const decoded = decodeForwardBackwardOutput(bytes);
    expect(decoded.loss_fn_outputs[0].logprobs.data).toEqual([Math.fround(0.1), Math.fround(-1 / 3)]);
    expect(decoded.metrics["loss:sum"]).toBe(0.1); // metrics are doubles
  });

  it("densifies sparse outputs", () => {
    const bytes = encodeForwardBackwardOutput({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [
        {
          w: {
            data: [5, 6],
            dtype: "float32",
            shape: [2, 3],
            sparse_crow_indices: [0, 1, 2],
            sparse_col_indices: [2, 0],
          },
        },
      ],
      metrics: {},
    });
    expect(decodeForwardBackwardOutput(bytes).loss_fn_outputs[0].w).toEqual({
      data: [0, 0, 5, 6, 0, 0],
      dtype: "float32",
      shape: [2, 3],
    });
  });

  it("keeps datums that have no outputs at all (num_datums only)", () => {
    const out: ForwardBackwardOutput = {
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [{}, {}],
      metrics: {},
    };
    const bytes = encodeForwardBackwardOutput(out);
    expect(protoToJson(bytes, "ForwardBackwardOutput")).toEqual({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [{ type_tag: "ArrayRecord", num_datums: "2" }],
    });
    expect(decodeForwardBackwardOutput(bytes)).toEqual(out);
  });

  it("zero datums: no record; the output type defaults to ArrayRecord", () => {
    const bytes = encodeForwardBackwardOutput({
      loss_fn_output_type: "",
      loss_fn_outputs: [],
      metrics: { "a:max": 2 },
    });
    expect(protoToJson(bytes, "ForwardBackwardOutput")).toEqual({ metrics: { "a:max": 2 } });
    expect(decodeForwardBackwardOutput(bytes)).toEqual({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [],
      metrics: { "a:max": 2 },
    });
    expect(decodeForwardBackwardOutput(new Uint8Array(0))).toEqual({
      loss_fn_output_type: "ArrayRecord",
      loss_fn_outputs: [],
      metrics: {},
    });
  });
});

describe("ForwardBackwardOutput decoding rules for other servers' messages", () => {
  /** Builds a BatchedTensor entry the way the official server may. */
  function field(
    record: ProtoWriter,
    name: string,
    bt: { data: Uint8Array; offsets: number[]; dtype: number; trailing?: number[] },
  ) {
    record.messageField(2, (entry) => {
      entry.stringField(1, name);
      entry.messageField(2, (w) => {
        if (bt.data.length > 0) w.bytesField(1, bt.data);
        w.bytesField(2, int64s(bt.offsets));
        w.enumField(3, bt.dtype);
        if (bt.trailing) w.packedInt64Field(4, bt.trailing);
      });
    });
  }

  it("keeps the part of loss_fn_output_type after the last colon", () => {
    const w = new ProtoWriter();
    w.stringField(1, "tinker.losses:module:TorchLossReturn");
    w.messageField(2, (record) => {
      field(record, "v", { data: float32s([1]), offsets: [0, 4], dtype: 1 });
      record.int64Field(3, 1);
    });
    expect(decodeForwardBackwardOutput(w.finish()).loss_fn_output_type).toBe("TorchLossReturn");
  });

  it("widens INT32 and BFLOAT16, with byte offsets in the source item size", () => {
    const w = new ProtoWriter();
    w.messageField(2, (record) => {
      // INT32: datum 0 = [-1, 2], datum 1 = [3] -> offsets in 4-byte units of bytes
      field(record, "ids", { data: int32s([-1, 2, 3]), offsets: [0, 8, 12], dtype: 3 });
      // BFLOAT16 (2 bytes each): 1.0, -2.0 | 0.5
      field(record, "lp", {
        data: new Uint8Array([0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f]),
        offsets: [0, 4, 6],
        dtype: 4,
      });
      record.int64Field(3, 2);
    });
    expect(decodeForwardBackwardOutput(w.finish()).loss_fn_outputs).toEqual([
      {
        ids: { data: [-1, 2], dtype: "int64", shape: [2] },
        lp: { data: [1, -2], dtype: "float32", shape: [2] },
      },
      { ids: { data: [3], dtype: "int64", shape: [1] }, lp: { data: [0.5], dtype: "float32", shape: [1] } },
    ]);
  });

  it("falls back to the first field's datum count without num_datums, and concatenates records", () => {
    const w = new ProtoWriter();
    w.messageField(2, (record) => {
      field(record, "m", { data: float32s([1, 2, 3, 4]), offsets: [0, 8, 16], dtype: 1, trailing: [2] });
    });
    w.messageField(2, (record) => {
      field(record, "m", { data: float32s([5, 6, 7]), offsets: [0, 12], dtype: 1, trailing: [3] });
    });
    expect(decodeForwardBackwardOutput(w.finish()).loss_fn_outputs).toEqual([
      { m: { data: [1, 2], dtype: "float32", shape: [1, 2] } },
      { m: { data: [3, 4], dtype: "float32", shape: [1, 2] } },
      { m: { data: [5, 6, 7], dtype: "float32", shape: [1, 3] } },
    ]);
  });

  it("trusts num_datums when every field was stripped", () => {
    const w = new ProtoWriter();
    w.stringField(1, "TorchLossReturn");
    w.messageField(2, (record) => {
      record.stringField(1, "TorchLossReturn");
      record.int64Field(3, 3);
    });
    expect(decodeForwardBackwardOutput(w.finish()).loss_fn_outputs).toEqual([{}, {}, {}]);
  });

  it("rejects inconsistent messages with ProtobufDecodeError", () => {
    const build = (fill: (record: ProtoWriter) => void) => {
      const w = new ProtoWriter();
      w.messageField(2, fill);
      return w.finish();
    };
    const cases: [Uint8Array, RegExp][] = [
      // offsets past the data
      [
        build((r) => field(r, "v", { data: float32s([1]), offsets: [0, 8], dtype: 1 })),
        /outside the 4 data bytes/,
      ],
      // num_datums larger than the field's datums
      [
        build((r) => {
          field(r, "v", { data: float32s([1]), offsets: [0, 4], dtype: 1 });
          r.int64Field(3, 2);
        }),
        /has 1 datums, expected 2/,
      ],
      // values do not fill whole rows of the trailing shape
      [
        build((r) => field(r, "v", { data: float32s([1, 2, 3]), offsets: [0, 12], dtype: 1, trailing: [2] })),
        /do not divide/,
      ],
      // unknown / unspecified dtype
      [
        build((r) => field(r, "v", { data: float32s([1]), offsets: [0, 4], dtype: 0 })),
        /unsupported DType value 0/,
      ],
      [
        build((r) => field(r, "v", { data: float32s([1]), offsets: [0, 4], dtype: 7 })),
        /unsupported DType value 7/,
      ],
      // data not a whole number of items
      [
        build((r) => field(r, "v", { data: new Uint8Array(3), offsets: [0, 3], dtype: 1 })),
        /not a whole number/,
      ],
    ];
    for (const [bytes, message] of cases) {
      expect(() => decodeForwardBackwardOutput(bytes)).toThrow(ProtobufDecodeError);
      expect(() => decodeForwardBackwardOutput(bytes)).toThrow(message);
    }
  });

  it("rejects truncated input", () => {
    const bytes = encodeForwardBackwardOutput(COMPOSED);
    expect(() => decodeForwardBackwardOutput(bytes.subarray(0, 30))).toThrow(/truncated/);
    for (let end = 0; end < bytes.length; end++) {
      try {
        decodeForwardBackwardOutput(bytes.subarray(0, end));
      } catch (error) {
        expect(error).toBeInstanceOf(ProtobufDecodeError);
      }
    }
  });
});

describe("ForwardBackwardOutput encode errors", () => {
  it("requires every datum to have the same output names", () => {
    expect(() =>
      encodeForwardBackwardOutput({
        loss_fn_output_type: "ArrayRecord",
        loss_fn_outputs: [
          { logprobs: { data: [1], dtype: "float32" } },
          { other: { data: [1], dtype: "float32" } },
        ],
        metrics: {},
      }),
    ).toThrow(ProtobufEncodeError);
  });

  it("rejects data that does not fill the shape", () => {
    expect(() =>
      encodeForwardBackwardOutput({
        loss_fn_output_type: "ArrayRecord",
        loss_fn_outputs: [{ logprobs: { data: [1, 2, 3], dtype: "float32", shape: [2, 2] } }],
        metrics: {},
      }),
    ).toThrow(/3 values do not fill shape \[2, 2\]/);
  });
});
