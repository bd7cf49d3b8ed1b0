/**
 * Datum provenance spans (fields 3-4, 0.26.2, UPSTREAM.md T3): `model_input_spans` and
 * `loss_fn_input_spans`, repeated ProvenanceSpan, a oneof of prompt_tokens / sampled_tokens.
 */
import { describe, expect, it } from "vitest";
import {
  decodeForwardBackwardRequest,
  encodeForwardBackwardRequest,
  ProtobufDecodeError,
  ProtobufEncodeError,
} from "../src/wire/protobuf/index.js";
import { forwardBackwardRequestToProtoJson } from "../src/wire/protobuf/proto-json.js";
import { ProtoWriter } from "../src/wire/protobuf/writer.js";
import type { DatumInput, ForwardBackwardRequest, ProvenanceSpan } from "../src/wire/types.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const joinHex = (parts: string[]) => parts.join(" ").replace(/\s+/g, "");

function requestOf(data: DatumInput[]): ForwardBackwardRequest<DatumInput> {
  return { model_id: "", seq_id: 0, data, loss_fn: "" };
}

const emptyDatum = { model_input: { chunks: [] }, loss_fn_inputs: {} };

describe("provenance span encoding", () => {
  it("matches hand-computed bytes: fields 3 and 4 after the loss inputs, one message per span", () => {
    const bytes = encodeForwardBackwardRequest(
      requestOf([
        {
          ...emptyDatum,
          model_input_spans: [{ type: "prompt", sequence_id: "s", offset: 0, length: 2 }],
          loss_fn_input_spans: [{ type: "sampled", sequence_id: "s", offset: 1, length: 1 }],
        },
      ]),
    );
    expect(hex(bytes)).toBe(
      joinHex([
        "1a 14", // ForwardBackwardRequest 3: data, 20 bytes
        "  1a 07", //   Datum 3: model_input_spans, 7 bytes
        "    0a 05", //     ProvenanceSpan 1: prompt_tokens, 5 bytes
        "      0a 01 73 18 02", //       sequence_id "s", length 2 (offset 0 left out)
        "  22 09", //   Datum 4: loss_fn_input_spans, 9 bytes
        "    12 07", //     ProvenanceSpan 2: sampled_tokens, 7 bytes
        "      0a 01 73 10 01 18 01", //       sequence_id "s", offset 1, length 1
      ]),
    );
  });

  it("writes the member even when all its fields are default, and int64 offsets beyond 32 bits", () => {
    const bytes = encodeForwardBackwardRequest(
      requestOf([
        {
          ...emptyDatum,
          model_input_spans: [
            { type: "sampled", sequence_id: "", offset: 0, length: 0 },
            { type: "prompt", sequence_id: "", offset: 2 ** 40, length: 1 },
          ],
        },
      ]),
    );
    expect(hex(bytes)).toBe(
      joinHex([
        "1a 11", // data, 17 bytes
        "  1a 02 12 00", //   span 1: sampled_tokens {} (the oneof is still set)
        "  1a 0b 0a 09", //   span 2: prompt_tokens, 9 bytes
        "    10 80 80 80 80 80 20", //     offset 2^40 as a 6-byte varint
        "    18 01", //     length 1
      ]),
    );
  });

  it("keeps the span order and dumps as proto3 JSON with the oneof member names", () => {
    const spans: ProvenanceSpan[] = [
      { type: "prompt", sequence_id: "seq-a", offset: 0, length: 2 },
      { type: "sampled", sequence_id: "seq-a", offset: 0, length: 2 },
      { type: "sampled", sequence_id: "seq-b", offset: 3, length: 1 },
    ];
    const json = forwardBackwardRequestToProtoJson(
      encodeForwardBackwardRequest(requestOf([{ ...emptyDatum, loss_fn_input_spans: spans }])),
    );
    expect(json).toEqual({
      data: [
        {
          loss_fn_input_spans: [
            { prompt_tokens: { sequence_id: "seq-a", length: "2" } },
            { sampled_tokens: { sequence_id: "seq-a", length: "2" } },
            { sampled_tokens: { sequence_id: "seq-b", offset: "3", length: "1" } },
          ],
        },
      ],
    });
  });

  it("absent and empty span lists encode exactly as a 0.25 datum", () => {
    const datum: DatumInput = {
      model_input: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
      loss_fn_inputs: { target_tokens: { data: [2, 3], dtype: "int64", shape: [2] } },
    };
    const plain = hex(encodeForwardBackwardRequest(requestOf([datum])));
    const empty = hex(
      encodeForwardBackwardRequest(requestOf([{ ...datum, model_input_spans: [], loss_fn_input_spans: [] }])),
    );
    expect(empty).toBe(plain);
    expect(plain).toBe(
      joinHex([
        "1a 38", // data, 56 bytes
        "  0a 0c 0a 0a 0a 08 01 00 00 00 02 00 00 00", //   Chunk { encoded_text { tokens int32 [1, 2] } }
        "  12 28 0a 0d 74 61 72 67 65 74 5f 74 6f 6b 65 6e 73", //   loss_fn_inputs entry "target_tokens"
        "    12 17 0a 10 02 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00", //     Tensor { dense int64 [2, 3],
        "      18 02 22 01 02", //       dtype INT64, shape [2] }
      ]),
    );
  });

  it("round-trips spans on typed-array datums, next to large payloads sized up front", () => {
    const tokens = Int32Array.from({ length: 300 }, (_, i) => i);
    const request = requestOf([
      {
        model_input: { chunks: [{ type: "encoded_text", tokens }] },
        loss_fn_inputs: {
          target_tokens: {
            data: BigInt64Array.from({ length: 300 }, (_, i) => BigInt(i + 1)),
            dtype: "int64",
          },
        },
        model_input_spans: [
          { type: "prompt", sequence_id: "sampler:7:0", offset: 0, length: 100 },
          { type: "sampled", sequence_id: "sampler:7:0", offset: 0, length: 200 },
        ],
        loss_fn_input_spans: [{ type: "sampled", sequence_id: "sampler:7:0", offset: 0, length: 300 }],
      },
      { ...emptyDatum, loss_fn_input_spans: [{ type: "prompt", sequence_id: "x", offset: 5, length: 1 }] },
    ]);
    const decoded = decodeForwardBackwardRequest(encodeForwardBackwardRequest(request));
    expect(decoded.data[0].model_input_spans).toEqual(request.data[0].model_input_spans);
    expect(decoded.data[0].loss_fn_input_spans).toEqual(request.data[0].loss_fn_input_spans);
    expect(decoded.data[0].model_input.chunks[0]).toEqual({
      type: "encoded_text",
      tokens: Array.from(tokens),
    });
    expect(decoded.data[1]).toStrictEqual({
      ...emptyDatum,
      loss_fn_input_spans: [{ type: "prompt", sequence_id: "x", offset: 5, length: 1 }],
    });
  });

  it("rejects spans the wire cannot carry, with their path", () => {
    const bad = (span: unknown, message: RegExp) => {
      const request = requestOf([{ ...emptyDatum, loss_fn_input_spans: [span as ProvenanceSpan] }]);
      expect(() => encodeForwardBackwardRequest(request)).toThrow(ProtobufEncodeError);
      expect(() => encodeForwardBackwardRequest(request)).toThrow(message);
    };
    bad(null, /data\[0\]\.loss_fn_input_spans\[0\]: expected a provenance span/);
    bad(
      { type: "prompt_tokens", sequence_id: "s", offset: 0, length: 1 },
      /\.type: expected "prompt" or "sampled"/,
    );
    bad(
      { type: "toString", sequence_id: "s", offset: 0, length: 1 },
      /\.type: expected "prompt" or "sampled"/,
    );
    bad({ type: "sampled", sequence_id: 7, offset: 0, length: 1 }, /\.sequence_id: expected a string/);
    bad({ type: "sampled", sequence_id: "s", length: 1 }, /\.offset: undefined is not a safe integer/);
    bad(
      { type: "sampled", sequence_id: "s", offset: 0, length: 1.5 },
      /\.length: 1\.5 is not a safe integer/,
    );
    bad({ type: "sampled", sequence_id: "s", offset: 2 ** 53, length: 1 }, /\.offset: .* not a safe integer/);
    const notArray = requestOf([{ ...emptyDatum, model_input_spans: {} as unknown as ProvenanceSpan[] }]);
    expect(() => encodeForwardBackwardRequest(notArray)).toThrow(
      /data\[0\]\.model_input_spans: expected an array/,
    );
  });
});

describe("provenance span decoding", () => {
  /** A request with one datum whose body `build` writes. */
  const datumBody = (build: (d: ProtoWriter) => void) => {
    const w = new ProtoWriter();
    w.messageField(3, build);
    return w.finish();
  };

  it("leaves the span keys out of a datum that has none", () => {
    const [datum] = decodeForwardBackwardRequest(datumBody(() => {})).data;
    expect(datum).toStrictEqual(emptyDatum);
  });

  it("skips unknown fields in spans and in their members, and reads defaults for missing fields", () => {
    const body = datumBody((d) => {
      d.messageField(4, (span) => {
        span.stringField(9, "future");
        span.messageField(2, (m) => {
          m.int64Field(3, 4);
          m.bytesField(15, new Uint8Array([1, 2]));
        });
      });
      d.int32Field(20, 1); // an unknown Datum field
    });
    expect(decodeForwardBackwardRequest(body).data[0].loss_fn_input_spans).toEqual([
      { type: "sampled", sequence_id: "", offset: 0, length: 4 },
    ]);
  });

  it("the last oneof member on the wire wins", () => {
    const body = datumBody((d) =>
      d.messageField(3, (span) => {
        span.messageField(2, (m) => m.stringField(1, "a"));
        span.messageField(1, (m) => m.stringField(1, "b"));
      }),
    );
    expect(decodeForwardBackwardRequest(body).data[0].model_input_spans).toEqual([
      { type: "prompt", sequence_id: "b", offset: 0, length: 0 },
    ]);
  });

  it("reads negative int64 values as they are (range rules are validation's job)", () => {
    const body = datumBody((d) =>
      d.messageField(3, (span) => span.messageField(1, (m) => m.int64Field(2, -3))),
    );
    expect(decodeForwardBackwardRequest(body).data[0].model_input_spans?.[0]?.offset).toBe(-3);
  });

  it("rejects a span with no member, and members with the wrong wire type, with their path", () => {
    const noMember = datumBody((d) => {
      d.messageField(3, (span) => span.messageField(1, () => {}));
      d.messageField(3, (span) => span.int32Field(7, 1));
    });
    expect(() => decodeForwardBackwardRequest(noMember)).toThrow(ProtobufDecodeError);
    expect(() => decodeForwardBackwardRequest(noMember)).toThrow(
      /data\[0\]\.model_input_spans\[1\]: span has neither prompt_tokens nor sampled_tokens/,
    );
    const wrongType = datumBody((d) => d.messageField(4, (span) => span.int32Field(2, 1)));
    expect(() => decodeForwardBackwardRequest(wrongType)).toThrow(
      /data\[0\]\.loss_fn_input_spans\[0\]\.sampled_tokens: expected length-delimited/,
    );
    const wrongLength = datumBody((d) =>
      d.messageField(4, (span) => span.messageField(1, (m) => m.stringField(3, "x"))),
    );
    expect(() => decodeForwardBackwardRequest(wrongLength)).toThrow(/prompt_tokens\.length: expected varint/);
  });
});
