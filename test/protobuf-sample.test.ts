/** SampleResponse codec: round trips, sentinel encodings of nulls, and decoding rules / errors. */
import { describe, expect, it } from "vitest";
import {
  decodeSampleResponse,
  encodeSampleResponse,
  ProtobufDecodeError,
  ProtobufEncodeError,
  TOPK_EMPTY_LOGPROB,
} from "../src/wire/protobuf/index.js";
import { protoToJson } from "../src/wire/protobuf/proto-json.js";
import { ProtoWriter } from "../src/wire/protobuf/writer.js";
import type { SampleResponse } from "../src/wire/types.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const b64 = (values: number[], kind: "i32" | "f32") => {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    if (kind === "i32") buf.writeInt32LE(v, i * 4);
    else buf.writeFloatLE(v, i * 4);
  });
  return buf.toString("base64");
};
const float32s = (values: number[]) => new Uint8Array(Buffer.from(b64(values, "f32"), "base64"));
const int32s = (values: number[]) => new Uint8Array(Buffer.from(b64(values, "i32"), "base64"));

describe("SampleResponse round trips", () => {
  it("sequences with and without logprobs, prompt logprobs with a null first, ragged top-k, cache hits", () => {
    const res: SampleResponse = {
      sequences: [
        { stop_reason: "length", tokens: [5, 6, 7], logprobs: [-0.5, -0.25, -2] },
        { stop_reason: "stop", tokens: [8, -1] },
        { stop_reason: "stop", tokens: [] },
      ],
      prompt_logprobs: [null, -0.5, -0.125],
      topk_prompt_logprobs: [
        null,
        [[9, -0.25]],
        [
          [9, -0.25],
          [3, -1.5],
        ],
      ],
      prompt_cache_hit_tokens: 2,
    };
    const bytes = encodeSampleResponse(res);
    expect(decodeSampleResponse(bytes)).toEqual(res);
  });

  it("lays top-k out as an N×K matrix with (0, -99999) empty cells", () => {
    const bytes = encodeSampleResponse({
      sequences: [],
      topk_prompt_logprobs: [
        null,
        [[9, -0.25]],
        [
          [9, -0.25],
          [3, -1.5],
        ],
      ],
    });
    expect(protoToJson(bytes, "SampleResponse")).toEqual({
      topk_prompt_logprobs: {
        token_ids: b64([0, 0, 9, 0, 9, 3], "i32"),
        logprobs: b64([-99999, -99999, -0.25, -99999, -0.25, -1.5], "f32"),
        k: 2,
        length: 3, // `prompt_length` before the TopkPromptLogprobs -> TopkLogprobs rename; same field 4
      },
    });
    expect(TOPK_EMPTY_LOGPROB).toBe(-99999);
  });

  it("an empty top-k row comes back as null; all-null rows survive (k is at least 1)", () => {
    const bytes = encodeSampleResponse({ sequences: [], topk_prompt_logprobs: [null, [], null] });
    expect(decodeSampleResponse(bytes).topk_prompt_logprobs).toEqual([null, null, null]);
  });

  it("the §3.7 JSON example, with float32 rounding", () => {
    const res: SampleResponse = {
      sequences: [{ stop_reason: "length", tokens: [5, 6, 7], logprobs: [-0.1, -0.2, -0.3] }],
      prompt_logprobs: [null, -0.5, -0.5],
      topk_prompt_logprobs: [null, [[9, -0.25]], [[9, -0.25]]],
      prompt_cache_hit_tokens: 0,
    };
    expect(decodeSampleResponse(encodeSampleResponse(res))).toEqual({
      ...res,
      sequences: [
        { stop_reason: "length", tokens: [5, 6, 7], logprobs: [-0.1, -0.2, -0.3].map(Math.fround) },
      ],
    });
  });

  it("matches hand-computed bytes", () => {
    const bytes = encodeSampleResponse({
      sequences: [{ stop_reason: "length", tokens: [5] }],
      prompt_logprobs: [null],
      prompt_cache_hit_tokens: 3,
    });
    expect(hex(bytes)).toBe(
      [
        "0a 08", // 1: sequences, 8 bytes
        "  08 01", //   1: stop_reason LENGTH
        "  12 04 05 00 00 00", //   2: tokens int32 LE [5]
        "12 04 00 00 c0 7f", // 2: prompt_logprobs [NaN] (float32 quiet NaN)
        "20 03", // 4: prompt_cache_hit_tokens 3
      ]
        .join(" ")
        .replace(/\s+/g, ""),
    );
  });

  it("omits defaults: STOP, no tokens, no cache hits", () => {
    const bytes = encodeSampleResponse({ sequences: [{ stop_reason: "stop", tokens: [] }] });
    expect(hex(bytes)).toBe("0a00");
    expect(decodeSampleResponse(bytes)).toEqual({
      sequences: [{ stop_reason: "stop", tokens: [] }],
      prompt_cache_hit_tokens: 0,
    });
  });
});

describe("SampleResponse decoding rules", () => {
  it("reads empty logprobs / prompt_logprobs as absent and NaN as null", () => {
    const w = new ProtoWriter();
    w.messageField(1, (s) => {
      s.bytesField(2, int32s([4]));
      s.bytesField(3, new Uint8Array(0));
    });
    w.bytesField(2, new Uint8Array(0));
    expect(decodeSampleResponse(w.finish())).toEqual({
      sequences: [{ stop_reason: "stop", tokens: [4] }],
      prompt_cache_hit_tokens: 0,
    });

    const nan = new ProtoWriter().bytesField(2, float32s([Number.NaN, -1, Number.NaN])).finish();
    expect(decodeSampleResponse(nan).prompt_logprobs).toEqual([null, -1, null]);
  });

  it("treats k == 0 or length == 0 as no top-k, and trims trailing empty cells", () => {
    const topk = (k: number, n: number, tokens: number[], logprobs: number[]) => {
      const w = new ProtoWriter();
      w.messageField(3, (t) => {
        if (tokens.length) t.bytesField(1, int32s(tokens));
        if (logprobs.length) t.bytesField(2, float32s(logprobs));
        if (k) t.uint32Field(3, k);
        if (n) t.uint32Field(4, n);
      });
      return decodeSampleResponse(w.finish()).topk_prompt_logprobs;
    };
    expect(topk(0, 2, [], [])).toBeUndefined();
    expect(topk(2, 0, [], [])).toBeUndefined();
    // Row 0: first cell empty -> null, whatever follows. Row 1: an interior empty cell is kept
    // (only trailing ones are trimmed), and token 4 with the sentinel logprob is not empty.
    // Row 2: token 0 with a real logprob is not an empty cell.
    expect(
      topk(3, 3, [0, 5, 0, 7, 0, 4, 0, 0, 0], [-99999, -1, -99999, -0.5, -99999, -99999, -2, -99999, -99999]),
    ).toEqual([
      null,
      [
        [7, -0.5],
        [0, -99999],
        [4, -99999],
      ],
      [[0, -2]],
    ]);
  });

  it("rejects an unknown stop_reason", () => {
    const w = new ProtoWriter();
    w.messageField(1, (s) => s.enumField(1, 2));
    expect(() => decodeSampleResponse(w.finish())).toThrow(ProtobufDecodeError);
    expect(() => decodeSampleResponse(w.finish())).toThrow(
      /sequences\[0\]\.stop_reason: unknown stop_reason enum value 2/,
    );
  });

  it("rejects truncated input and malformed arrays", () => {
    const bytes = encodeSampleResponse({
      sequences: [{ stop_reason: "length", tokens: [5, 6, 7], logprobs: [-0.5, -0.25, -2] }],
      prompt_logprobs: [null, -0.5],
    });
    expect(() => decodeSampleResponse(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    for (let end = 0; end < bytes.length; end++) {
      try {
        decodeSampleResponse(bytes.subarray(0, end));
      } catch (error) {
        expect(error).toBeInstanceOf(ProtobufDecodeError);
      }
    }
    const odd = new ProtoWriter();
    odd.messageField(1, (s) => s.bytesField(2, new Uint8Array(6)));
    expect(() => decodeSampleResponse(odd.finish())).toThrow(/sequences\[0\]\.tokens: 6 bytes/);

    const short = new ProtoWriter();
    short.messageField(3, (t) => {
      t.bytesField(1, int32s([1, 2]));
      t.bytesField(2, float32s([1, 2]));
      t.uint32Field(3, 2);
      t.uint32Field(4, 2);
    });
    expect(() => decodeSampleResponse(short.finish())).toThrow(/2×2 matrices need 16 bytes/);
  });
});

describe("SampleResponse encode errors", () => {
  it("rejects an unknown stop_reason and out-of-range tokens", () => {
    expect(() => encodeSampleResponse({ sequences: [{ stop_reason: "eos" as never, tokens: [1] }] })).toThrow(
      ProtobufEncodeError,
    );
    expect(() => encodeSampleResponse({ sequences: [{ stop_reason: "stop", tokens: [2 ** 31] }] })).toThrow(
      /sequences\[0\]\.tokens\[0\]/,
    );
    expect(() =>
      encodeSampleResponse({
        sequences: [],
        topk_prompt_logprobs: [[[1, -1, 3] as unknown as [number, number]]],
      }),
    ).toThrow(/\[token_id, logprob\] pair/);
  });
});
