/**
 * ForwardBackwardRequest codec, checked against requests captured from the official Python client
 * 0.25.0 (requests*-0.25.0.jsonl, read with readConformance), against hand-computed bytes, and for
 * its error paths.
 */
import { describe, expect, it } from "vitest";
import {
  decodeForwardBackwardRequest,
  encodeForwardBackwardRequest,
  ProtobufDecodeError,
  ProtobufEncodeError,
} from "../src/wire/protobuf/index.js";
import { forwardBackwardRequestToProtoJson } from "../src/wire/protobuf/proto-json.js";
import type { ForwardBackwardRequest, TensorData } from "../src/wire/types.js";
import { readConformance } from "./helpers.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));

// ---- conformance: the official client's requests ----

/** A recorded forward_backward request: its proto3-JSON body and the Content-Length sent. */
interface Capture {
  source: string;
  contentLength: number;
  body: Record<string, unknown>;
}

/** The captures as of writing, inlined so the test also runs where the capture files are absent. */
const INLINE_CAPTURES: Capture[] = [
  {
    source: "requests-0.25.0.jsonl (inline copy)",
    contentLength: 159,
    body: {
      model_id: "stub-session-1:train:0",
      seq_id: 1,
      data: [
        {
          model_input: [{ encoded_text: { tokens: "AQAAAAIAAAADAAAABAAAAA==" } }],
          loss_fn_inputs: {
            weights: { dense: "AAAAAAAAgD8AAIA/AACAPw==", dtype: "DTYPE_FLOAT32", shape: ["4"] },
            target_tokens: {
              dense: "AgAAAAAAAAADAAAAAAAAAAQAAAAAAAAABQAAAAAAAAA=",
              dtype: "DTYPE_INT64",
              shape: ["4"],
            },
          },
        },
      ],
      loss_fn: "cross_entropy",
    },
  },
  {
    source: "requests-ext-0.25.0.jsonl (inline copy)",
    contentLength: 111,
    body: {
      model_id: "stub-session-1:train:0",
      seq_id: 3,
      data: [
        {
          model_input: [{ encoded_text: { tokens: "AQAAAAIAAAADAAAA" } }],
          loss_fn_inputs: {
            target_tokens: { dense: "AgAAAAAAAAADAAAAAAAAAAQAAAAAAAAA", dtype: "DTYPE_INT64", shape: ["3"] },
          },
        },
      ],
      loss_fn: "cross_entropy",
    },
  },
];

const CAPTURE_FILES = ["requests-0.25.0.jsonl", "requests-ext-0.25.0.jsonl"];

function loadCaptures(): Capture[] {
  const captures: Capture[] = [];
  for (const file of CAPTURE_FILES) {
    readConformance<{ path: string; headers: Record<string, string>; body: Record<string, unknown> }>(
      file,
    ).forEach((entry, index) => {
      if (entry.path !== "/api/v1/forward_backward") return;
      expect(entry.body._proto).toBe("tinker_public.ForwardBackwardRequest");
      expect(entry.headers["Content-Encoding"]).toBeUndefined();
      const { _proto, ...body } = entry.body;
      captures.push({
        source: `${file}:${index + 1}`,
        contentLength: Number(entry.headers["Content-Length"]),
        body,
      });
    });
  }
  return captures;
}

const FILE_CAPTURES = loadCaptures();

/** Reads little-endian arrays with Node's Buffer: independent of the codec under test. */
function numbersFromBase64(text: string, kind: "int32" | "int64" | "float32"): number[] {
  const buf = Buffer.from(text, "base64");
  const size = kind === "int64" ? 8 : 4;
  return Array.from({ length: buf.length / size }, (_, i) =>
    kind === "int32"
      ? buf.readInt32LE(i * 4)
      : kind === "int64"
        ? Number(buf.readBigInt64LE(i * 8))
        : buf.readFloatLE(i * 4),
  );
}

type Json = Record<string, unknown>;

/** Builds the SDK-side request a capture corresponds to (only the features the captures use). */
function requestFromProtoJson(body: Json): ForwardBackwardRequest {
  const knownTop = ["model_id", "seq_id", "data", "loss_fn", "loss_fn_config", "forward_only"];
  expect(Object.keys(body).every((key) => knownTop.includes(key))).toBe(true);
  return {
    model_id: (body.model_id as string | undefined) ?? "",
    seq_id: (body.seq_id as number | undefined) ?? 0,
    loss_fn: (body.loss_fn as string | undefined) ?? "",
    loss_fn_config: body.loss_fn_config as Record<string, number> | undefined,
    forward_only: body.forward_only as boolean | undefined,
    data: ((body.data as Json[] | undefined) ?? []).map((datum) => ({
      model_input: {
        chunks: ((datum.model_input as Json[] | undefined) ?? []).map((chunk) => {
          const text = chunk.encoded_text as Json | undefined;
          if (text === undefined)
            throw new Error(`capture uses a chunk kind this test does not map: ${Object.keys(chunk)}`);
          return {
            type: "encoded_text" as const,
            tokens: numbersFromBase64((text.tokens as string) ?? "", "int32"),
          };
        }),
      },
      loss_fn_inputs: Object.fromEntries(
        Object.entries((datum.loss_fn_inputs as Record<string, Json> | undefined) ?? {}).map(
          ([name, tensor]) => {
            if (tensor.dense === undefined)
              throw new Error("capture uses a sparse tensor this test does not map");
            const dtype = tensor.dtype === "DTYPE_FLOAT32" ? "float32" : "int64";
            const td: TensorData = {
              data: numbersFromBase64(tensor.dense as string, dtype === "float32" ? "float32" : "int64"),
              dtype,
            };
            if (tensor.shape !== undefined) td.shape = (tensor.shape as string[]).map(Number);
            return [name, td];
          },
        ),
      ),
    })),
  };
}

/** The first capture, written out by hand as the SDK would build it. */
const FIRST_CAPTURE_REQUEST: ForwardBackwardRequest = {
  model_id: "stub-session-1:train:0",
  seq_id: 1,
  data: [
    {
      model_input: { chunks: [{ type: "encoded_text", tokens: [1, 2, 3, 4] }] },
      loss_fn_inputs: {
        weights: { data: [0, 1, 1, 1], dtype: "float32", shape: [4] },
        target_tokens: { data: [2, 3, 4, 5], dtype: "int64", shape: [4] },
      },
    },
  ],
  loss_fn: "cross_entropy",
};

describe("ForwardBackwardRequest vs. the official client 0.25.0", () => {
  it("finds the forward_backward captures in the conformance files", () => {
    expect(FILE_CAPTURES.length).toBe(3);
  });

  it("encodes the hand-written first request exactly as captured", () => {
    const bytes = encodeForwardBackwardRequest(FIRST_CAPTURE_REQUEST);
    expect(forwardBackwardRequestToProtoJson(bytes)).toEqual(INLINE_CAPTURES[0].body);
    expect(bytes.length).toBe(159);
  });

  for (const capture of [...INLINE_CAPTURES, ...FILE_CAPTURES]) {
    describe(capture.source, () => {
      const request = requestFromProtoJson(capture.body);
      const bytes = encodeForwardBackwardRequest(request);

      it("encodes to the captured message, field by field", () => {
        expect(forwardBackwardRequestToProtoJson(bytes)).toEqual(capture.body);
      });

      it("has the captured byte length (Content-Length, no compression)", () => {
        expect(bytes.length).toBe(capture.contentLength);
      });

      it("decodes and re-encodes byte-identically", () => {
        const decoded = decodeForwardBackwardRequest(bytes);
        expect(decoded).toEqual({ ...request, loss_fn_config: {}, forward_only: false });
        expect(hex(encodeForwardBackwardRequest(decoded))).toBe(hex(bytes));
      });
    });
  }
});

// ---- features the captures do not cover ----

const RICH_REQUEST: ForwardBackwardRequest = {
  model_id: "s:train:1",
  seq_id: 7,
  loss_fn: "ppo",
  loss_fn_config: { clip_low_threshold: 0.8, clip_high_threshold: 1.2, zero: 0 },
  forward_only: true,
  data: [
    {
      model_input: {
        chunks: [
          { type: "encoded_text", tokens: [0, -1, 2147483647, -2147483648] },
          { type: "image", data: "iVBORw0KGgo=", format: "png", expected_tokens: 0 },
          { type: "image", data: "/9j/", format: "jpeg" },
          { type: "dmel", dmel: "AQID" },
          { type: "encoded_text", tokens: [] },
        ],
      },
      loss_fn_inputs: {
        target_tokens: { data: [5, -6, 2 ** 40], dtype: "int64", shape: [3] },
        advantages: { data: [0.5, -0.25, 1e30], dtype: "float32" },
        weights: {
          data: [1, 0.5],
          dtype: "float32",
          shape: [2, 3],
          sparse_crow_indices: [0, 1, 2],
          sparse_col_indices: [2, 0],
        },
        empty: { data: [], dtype: "float32", shape: [0] },
      },
    },
    { model_input: { chunks: [] }, loss_fn_inputs: {} },
  ],
};

describe("ForwardBackwardRequest beyond the captures", () => {
  const bytes = encodeForwardBackwardRequest(RICH_REQUEST);

  it("writes every field as proto3 JSON expects", () => {
    const b64 = (values: number[], kind: "i32" | "i64" | "f32") => {
      const buf = Buffer.alloc(values.length * (kind === "i64" ? 8 : 4));
      values.forEach((v, i) => {
        if (kind === "i32") buf.writeInt32LE(v, i * 4);
        else if (kind === "i64") buf.writeBigInt64LE(BigInt(v), i * 8);
        else buf.writeFloatLE(v, i * 4);
      });
      return buf.toString("base64");
    };
    expect(forwardBackwardRequestToProtoJson(bytes)).toEqual({
      model_id: "s:train:1",
      seq_id: 7,
      loss_fn: "ppo",
      loss_fn_config: { clip_low_threshold: 0.8, clip_high_threshold: 1.2, zero: 0 },
      forward_only: true,
      // Since 0.26.2 every entry also goes to field 7; a number member is written even when 0.
      loss_fn_config_v2: {
        clip_low_threshold: { number: 0.8 },
        clip_high_threshold: { number: 1.2 },
        zero: { number: 0 },
      },
      data: [
        {
          model_input: [
            { encoded_text: { tokens: b64([0, -1, 2147483647, -2147483648], "i32") } },
            // expected_tokens is `optional`: present even though it is 0.
            { image: { data: "iVBORw0KGgo=", format: "png", expected_tokens: 0 } },
            { image: { data: "/9j/", format: "jpeg" } },
            { dmel: { dmel: "AQID" } },
            // An empty chunk still sets the oneof.
            { encoded_text: {} },
          ],
          loss_fn_inputs: {
            target_tokens: { dense: b64([5, -6, 2 ** 40], "i64"), dtype: "DTYPE_INT64", shape: ["3"] },
            advantages: { dense: b64([0.5, -0.25, 1e30], "f32"), dtype: "DTYPE_FLOAT32" },
            weights: {
              sparse_csr: {
                values: b64([1, 0.5], "f32"),
                crow_indices: b64([0, 1, 2], "i64"),
                col_indices: b64([2, 0], "i64"),
              },
              dtype: "DTYPE_FLOAT32",
              shape: ["2", "3"],
            },
            // `dense` is a oneof member: written (and dumped) even when empty.
            empty: { dense: "", dtype: "DTYPE_FLOAT32", shape: ["0"] },
          },
        },
        {},
      ],
    });
  });

  it("decodes back to the request (float32 rounding aside) and re-encodes byte-identically", () => {
    const decoded = decodeForwardBackwardRequest(bytes);
    const inputs = RICH_REQUEST.data[0].loss_fn_inputs;
    expect(decoded).toEqual({
      ...RICH_REQUEST,
      data: [
        {
          ...RICH_REQUEST.data[0],
          loss_fn_inputs: {
            ...inputs,
            advantages: { data: [0.5, -0.25, Math.fround(1e30)], dtype: "float32" },
          },
        },
        RICH_REQUEST.data[1],
      ],
    });
    expect(hex(encodeForwardBackwardRequest(decoded))).toBe(hex(bytes));
  });

  it("sends seq_id 0 when it is unset, like the official client", () => {
    const request = { model_id: "m", seq_id: undefined as unknown as number, data: [], loss_fn: "ce" };
    expect(hex(encodeForwardBackwardRequest(request))).toBe("0a016d22026365");
  });

  it("omits proto3 defaults: empty config, forward_only false, seq_id 0, empty strings", () => {
    const minimal = encodeForwardBackwardRequest({
      model_id: "",
      seq_id: 0,
      data: [],
      loss_fn: "",
      loss_fn_config: {},
      forward_only: false,
    });
    expect(minimal.length).toBe(0);
    expect(decodeForwardBackwardRequest(minimal)).toEqual({
      model_id: "",
      seq_id: 0,
      data: [],
      loss_fn: "",
      loss_fn_config: {},
      forward_only: false,
    });
  });

  it("matches hand-computed bytes", () => {
    const bytes = encodeForwardBackwardRequest({
      model_id: "m",
      seq_id: -1,
      data: [
        {
          model_input: { chunks: [{ type: "encoded_text", tokens: [258] }] },
          loss_fn_inputs: { w: { data: [1], dtype: "float32", shape: [1] } },
        },
      ],
      loss_fn: "ce",
      loss_fn_config: { a: 0 },
      forward_only: true,
    });
    expect(hex(bytes)).toBe(
      [
        "0a 01 6d", // 1: model_id "m"
        "10 ff ff ff ff ff ff ff ff ff 01", // 2: seq_id -1, sign-extended to 10 bytes
        "1a 1c", // 3: data, 28 bytes
        "  0a 08 0a 06 0a 04 02 01 00 00", //   1: Chunk { encoded_text { tokens = int32 LE 258 } }
        "  12 10 0a 01 77", //   2: loss_fn_inputs entry, key "w"
        "    12 0b 0a 04 00 00 80 3f 18 01 22 01 01", //     value Tensor { dense 1.0f, dtype FLOAT32, shape packed [1] }
        "22 02 63 65", // 4: loss_fn "ce"
        "2a 0c 0a 01 61 11 00 00 00 00 00 00 00 00", // 5: loss_fn_config entry {"a": 0.0}, value still written
        "30 01", // 6: forward_only
        "3a 0e 0a 01 61 12 09 09 00 00 00 00 00 00 00 00", // 7: loss_fn_config_v2 {"a": {number: 0.0}}
      ]
        .join(" ")
        .replace(/\s+/g, ""),
    );
  });

  it("ignores unknown fields and accepts unpacked repeated shape", () => {
    const bytes = fromHex(
      [
        "0a 01 6d", // model_id "m"
        "f8 01 05", // unknown field 31, varint
        "1a 14", // data, 20 bytes
        "  12 12 0a 01 74", //   loss_fn_inputs entry "t"
        "    12 0d 0a 00 18 02 20 02 20 03 2d 00 00 00 00", //     Tensor { dense "", INT64, shape 2, shape 3 (unpacked), unknown fixed32 }
      ].join(" "),
    );
    expect(decodeForwardBackwardRequest(bytes)).toEqual({
      model_id: "m",
      seq_id: 0,
      data: [
        {
          model_input: { chunks: [] },
          loss_fn_inputs: { t: { data: [], dtype: "int64", shape: [2, 3] } },
        },
      ],
      loss_fn: "",
      loss_fn_config: {},
      forward_only: false,
    });
  });

  it("widens INT32 / BFLOAT16 tensors sent by other encoders", () => {
    const bytes = fromHex(
      [
        "1a 26",
        "  12 11 0a 01 69", //   entry "i"
        "    12 0c 0a 08 ff ff ff ff 07 00 00 00 18 03", //     INT32 [-1, 7]
        "  12 11 0a 01 62", //   entry "b"
        "    12 0c 0a 04 80 3f 00 c0 18 04 22 02 02 01", //     BFLOAT16 [1.0, -2.0], shape [2, 1]
      ].join(" "),
    );
    expect(decodeForwardBackwardRequest(bytes).data[0].loss_fn_inputs).toEqual({
      i: { data: [-1, 7], dtype: "int64" },
      b: { data: [1, -2], dtype: "float32", shape: [2, 1] },
    });
  });

  it("keeps a map key named __proto__ as an ordinary key", () => {
    const bytes = encodeForwardBackwardRequest({
      model_id: "m",
      seq_id: 1,
      data: [],
      loss_fn: "dro",
      loss_fn_config: JSON.parse('{"__proto__": 2}') as Record<string, number>,
    });
    const decoded = decodeForwardBackwardRequest(bytes);
    expect(Object.keys(decoded.loss_fn_config ?? {})).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(decoded.loss_fn_config)).toBe(Object.prototype);
  });
});

// ---- errors ----

function encodeError(request: ForwardBackwardRequest): ProtobufEncodeError {
  try {
    encodeForwardBackwardRequest(request);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtobufEncodeError);
    return error as ProtobufEncodeError;
  }
  throw new Error("expected encodeForwardBackwardRequest to throw");
}

const withDatum = (datum: ForwardBackwardRequest["data"][number]): ForwardBackwardRequest => ({
  model_id: "m",
  seq_id: 1,
  data: [datum],
  loss_fn: "cross_entropy",
});

describe("ForwardBackwardRequest encode errors", () => {
  it("rejects image_asset_pointer chunks with a clear message", () => {
    const error = encodeError(
      withDatum({
        model_input: {
          chunks: [
            { type: "encoded_text", tokens: [1] },
            { type: "image_asset_pointer", format: "png", location: "s3://bucket/cat.png" },
          ],
        },
        loss_fn_inputs: {},
      }),
    );
    expect(error.message).toMatch(/data\[0\]\.model_input\.chunks\[1\].*image_asset_pointer/);
  });

  it("rejects tokens outside int32", () => {
    for (const token of [2 ** 31, -(2 ** 31) - 1, 1.5, Number.NaN]) {
      const error = encodeError(
        withDatum({
          model_input: { chunks: [{ type: "encoded_text", tokens: [1, token] }] },
          loss_fn_inputs: {},
        }),
      );
      expect(error.message).toMatch(/chunks\[0\]\.tokens\[1\].*32-bit/);
    }
  });

  it("rejects int64 values that are not safe integers", () => {
    const error = encodeError(
      withDatum({
        model_input: { chunks: [] },
        loss_fn_inputs: { target_tokens: { data: [1, 2.5], dtype: "int64" } },
      }),
    );
    expect(error.message).toContain('loss_fn_inputs["target_tokens"].data[1]');
  });

  it("rejects bad base64, half-set CSR indices, bad dtypes, bad shapes and bad seq_id", () => {
    encodeError(
      withDatum({
        model_input: { chunks: [{ type: "image", data: "not base64!", format: "png" }] },
        loss_fn_inputs: {},
      }),
    );
    encodeError(
      withDatum({
        model_input: { chunks: [] },
        loss_fn_inputs: { w: { data: [1], dtype: "float32", shape: [1, 1], sparse_crow_indices: [0, 1] } },
      }),
    );
    encodeError(
      withDatum({
        model_input: { chunks: [] },
        loss_fn_inputs: { w: { data: [1], dtype: "float64" as never } },
      }),
    );
    encodeError(
      withDatum({
        model_input: { chunks: [] },
        loss_fn_inputs: { w: { data: [1], dtype: "float32", shape: [-1] } },
      }),
    );
    expect(() =>
      encodeForwardBackwardRequest({
        ...withDatum({ model_input: { chunks: [] }, loss_fn_inputs: {} }),
        seq_id: 2 ** 31,
      }),
    ).toThrow(ProtobufEncodeError);
    expect(() =>
      encodeForwardBackwardRequest({
        ...withDatum({ model_input: { chunks: [] }, loss_fn_inputs: {} }),
        model_id: undefined as never,
      }),
    ).toThrow(/model_id: expected a string/);
  });
});

describe("ForwardBackwardRequest decode errors", () => {
  const bytes = encodeForwardBackwardRequest(RICH_REQUEST);

  it("rejects input truncated inside a field", () => {
    // Cut inside `data` (field 3): its length prefix promises more bytes than remain.
    const dataStart = bytes.indexOf(0x1a);
    expect(() => decodeForwardBackwardRequest(bytes.subarray(0, dataStart + 10))).toThrow(
      ProtobufDecodeError,
    );
    expect(() => decodeForwardBackwardRequest(bytes.subarray(0, dataStart + 10))).toThrow(/truncated/);
    expect(() => decodeForwardBackwardRequest(fromHex("0a 05 61 62"))).toThrow(/truncated/);
    expect(() => decodeForwardBackwardRequest(fromHex("10 ff ff"))).toThrow(/truncated varint/);
  });

  it("throws only ProtobufDecodeError for every prefix and for corrupted bytes", () => {
    for (let end = 0; end < bytes.length; end++) {
      try {
        decodeForwardBackwardRequest(bytes.subarray(0, end));
      } catch (error) {
        expect(error).toBeInstanceOf(ProtobufDecodeError);
      }
    }
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 500; round++) {
      const corrupted = bytes.slice();
      corrupted[random() % corrupted.length] = random() & 0xff;
      try {
        decodeForwardBackwardRequest(corrupted);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtobufDecodeError);
      }
    }
  });

  it("rejects wrong wire types, empty chunks, unknown dtypes and image formats", () => {
    expect(() => decodeForwardBackwardRequest(fromHex("08 01"))).toThrow(
      /model_id: expected length-delimited/,
    );
    expect(() => decodeForwardBackwardRequest(fromHex("1a 02 0a 00"))).toThrow(/chunk has none of/);
    expect(() => decodeForwardBackwardRequest(fromHex("1a 08 12 06 0a 01 77 12 01 00"))).toThrow(
      ProtobufDecodeError,
    );
    expect(() => decodeForwardBackwardRequest(fromHex("1a 0b 12 09 0a 01 77 12 04 0a 00 18 09"))).toThrow(
      /unsupported DType value 9/,
    );
    expect(() => decodeForwardBackwardRequest(fromHex("1a 09 0a 07 12 05 12 03 67 69 66"))).toThrow(
      /expected "png" or "jpeg"/,
    );
    expect(() =>
      decodeForwardBackwardRequest(
        fromHex("1a 15 12 13 0a 01 77 12 0e 18 01 22 0a ff ff ff ff ff ff ff ff ff 01"),
      ),
    ).toThrow(/shape: negative dimension/);
    expect(() => decodeForwardBackwardRequest(fromHex("1a 07 0a 05 0a 03 0a 01 00"))).toThrow(
      /tokens: 1 bytes is not a whole number/,
    );
  });
});
