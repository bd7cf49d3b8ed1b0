/** Wire primitives of the protobuf codec: varints, 64-bit values, fixed widths, skipping, base64, LE arrays. */
import { describe, expect, it } from "vitest";
import { decodeBase64, encodeBase64 } from "../src/wire/protobuf/base64.js";
import { ProtobufDecodeError, ProtobufEncodeError } from "../src/wire/protobuf/errors.js";
import {
  decodeBfloat16s,
  decodeFloat32s,
  decodeInt32s,
  decodeInt64s,
  encodeFloat32s,
  encodeInt32s,
  encodeInt64s,
} from "../src/wire/protobuf/little-endian.js";
import { ProtoReader } from "../src/wire/protobuf/reader.js";
import { ProtoWriter } from "../src/wire/protobuf/writer.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));

describe("varints", () => {
  const unsigned: [number, string][] = [
    [0, "00"],
    [1, "01"],
    [127, "7f"],
    [128, "8001"],
    [300, "ac02"],
    [2 ** 31 - 1, "ffffffff07"],
    [2 ** 31, "8080808008"],
    [2 ** 32, "8080808010"],
    [2 ** 53 - 1, "ffffffffffffff0f"],
  ];
  it.each(unsigned)("unsigned %d <-> %s", (value, expected) => {
    const bytes = new ProtoWriter().varint(value).finish();
    expect(hex(bytes)).toBe(expected);
    expect(new ProtoReader(bytes).uint64()).toBe(value);
  });

  const signed: [number, string][] = [
    [-1, "ffffffffffffffffff01"],
    [-2, "feffffffffffffffff01"],
    [-(2 ** 31), "80808080f8ffffffff01"],
    [-(2 ** 32), "80808080f0ffffffff01"],
    [-(2 ** 53 - 1), "81808080808080f0ff01"],
  ];
  it.each(signed)("int64 %d <-> %s", (value, expected) => {
    const bytes = new ProtoWriter().int64(value).finish();
    expect(hex(bytes)).toBe(expected);
    expect(new ProtoReader(bytes).int64()).toBe(value);
    expect(new ProtoReader(bytes).bigint64(true)).toBe(BigInt(value));
  });

  it("int32 negatives take 10 bytes and read back through the low 32 bits", () => {
    const bytes = new ProtoWriter().int32(-5).finish();
    expect(bytes.length).toBe(10);
    expect(new ProtoReader(bytes).int32()).toBe(-5);
    expect(new ProtoReader(bytes).int64()).toBe(-5);
    expect(() => new ProtoWriter().int32(2 ** 31)).toThrow(ProtobufEncodeError);
    expect(() => new ProtoWriter().int32(0.5)).toThrow(ProtobufEncodeError);
  });

  it("uint32 truncates wider values, as protobuf parsers do", () => {
    expect(new ProtoReader(fromHex("8080808010")).uint32()).toBe(0);
    expect(new ProtoReader(fromHex("ffffffff0f")).uint32()).toBe(2 ** 32 - 1);
  });

  it("64-bit values beyond 2^53: exact as BigInt, rejected as numbers", () => {
    const max = fromHex("ffffffffffffffff7f"); // 2^63 - 1
    expect(new ProtoReader(max).bigint64(true)).toBe(2n ** 63n - 1n);
    expect(() => new ProtoReader(max).int64()).toThrow(/does not fit a JavaScript number exactly/);
    const min = fromHex("80808080808080808001"); // -2^63
    expect(new ProtoReader(min).bigint64(true)).toBe(-(2n ** 63n));
    expect(new ProtoReader(fromHex("ffffffffffffffffff01")).bigint64(false)).toBe(2n ** 64n - 1n);
    expect(() => new ProtoWriter().int64(2 ** 53)).toThrow(ProtobufEncodeError);
    expect(() => new ProtoWriter().varint(-1)).toThrow(ProtobufEncodeError);
  });

  it("rejects truncated and over-long varints", () => {
    expect(() => new ProtoReader(fromHex("80")).uint32()).toThrow(/truncated varint/);
    expect(() => new ProtoReader(fromHex("ffffffffffffffffffff01")).uint32()).toThrow(/malformed varint/);
  });
});

describe("tags, fixed widths, strings, nesting", () => {
  it("writes and reads each field kind", () => {
    const w = new ProtoWriter();
    w.doubleField(1, 3.1)
      .stringField(2, "héllo ✓")
      .boolField(3, true)
      .uint32Field(4, 2 ** 32 - 1)
      .packedInt64Field(5, [1, -1, 2 ** 40])
      .int64Field(2 ** 29 - 1, 7);
    const r = new ProtoReader(w.finish());
    expect(r.tag()).toEqual({ fieldNumber: 1, wireType: 1 });
    expect(r.double()).toBe(3.1);
    expect(r.tag()).toEqual({ fieldNumber: 2, wireType: 2 });
    expect(r.string()).toBe("héllo ✓");
    expect(r.tag()).toEqual({ fieldNumber: 3, wireType: 0 });
    expect(r.bool()).toBe(true);
    expect(r.tag()).toEqual({ fieldNumber: 4, wireType: 0 });
    expect(r.uint32()).toBe(2 ** 32 - 1);
    const shape: number[] = [];
    r.repeatedInt64(r.tag(), "shape", shape);
    expect(shape).toEqual([1, -1, 2 ** 40]);
    expect(r.tag()).toEqual({ fieldNumber: 2 ** 29 - 1, wireType: 0 });
    expect(r.int64()).toBe(7);
    expect(r.done).toBe(true);
  });

  it("doubles are little-endian whatever the platform", () => {
    expect(hex(new ProtoWriter().double(1).finish())).toBe("000000000000f03f");
    expect(new ProtoReader(fromHex("0000803f")).float()).toBe(1);
  });

  it("rejects invalid tags and bad field numbers", () => {
    expect(() => new ProtoReader(fromHex("00")).tag()).toThrow(/field number 0/);
    expect(() => new ProtoReader(fromHex("0e")).tag()).toThrow(/invalid wire type 6/);
    expect(() => new ProtoWriter().tag(0, 0)).toThrow(ProtobufEncodeError);
    expect(() => new ProtoWriter().tag(2 ** 29, 0)).toThrow(ProtobufEncodeError);
  });

  it("rejects invalid UTF-8 and lengths past the end", () => {
    expect(() => new ProtoReader(fromHex("02 c3 28")).string()).toThrow(/invalid UTF-8/);
    expect(() => new ProtoReader(fromHex("05 61 62")).bytes()).toThrow(/truncated input: length 5/);
    expect(() => new ProtoReader(fromHex("0000")).double()).toThrow(/truncated input: needed 8 bytes/);
  });

  it("skips unknown fields of every wire type, including groups", () => {
    const bytes = fromHex(
      [
        "08 96 01", // 1: varint
        "11 0102030405060708", // 2: fixed64
        "1a 03 616263", // 3: length-delimited
        "25 01020304", // 4: fixed32
        "2b 08 01 33 38 02 34 2c", // 5: group { 1: 1, group 6 { 7: 2 } }
        "30 2a", // 6: varint 42, the field we want
      ].join(" "),
    );
    const r = new ProtoReader(bytes);
    for (let i = 0; i < 5; i++) r.skip(r.tag());
    expect(r.tag()).toEqual({ fieldNumber: 6, wireType: 0 });
    expect(r.int32()).toBe(42);
    expect(r.done).toBe(true);
    expect(() => new ProtoReader(fromHex("2b 08 01")).skip({ fieldNumber: 5, wireType: 3 })).toThrow(
      /truncated group/,
    );
    expect(() => new ProtoReader(fromHex("2c")).skip(new ProtoReader(fromHex("2c")).tag())).toThrow(
      /end-group/,
    );
  });

  it("nests messages with large payloads and any number of scratch refills", () => {
    const big = new Uint8Array(100_000).map((_, i) => i % 251);
    const strings = Array.from({ length: 5000 }, (_, i) => `s${i}`);
    const w = new ProtoWriter();
    w.messageField(1, (a) => {
      a.messageField(2, (b) => b.bytesField(3, big));
      for (const s of strings) a.stringField(4, s);
    });
    const r = new ProtoReader(w.finish());
    expect(r.tag().fieldNumber).toBe(1);
    const a = r.message();
    expect(a.tag().fieldNumber).toBe(2);
    const b = a.message();
    expect(b.tag().fieldNumber).toBe(3);
    expect(Buffer.compare(b.bytes(), big)).toBe(0); // (toEqual on 100k elements is slow)
    const read: string[] = [];
    while (!a.done) {
      a.tag();
      read.push(a.string());
    }
    expect(read).toEqual(strings);
    expect(r.done).toBe(true);
  });

  it("finish() returns an array that owns exactly its bytes", () => {
    const bytes = new ProtoWriter().stringField(1, "x").finish();
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.length);
  });
});

describe("little-endian arrays", () => {
  it("int32, int64, float32 match Node's Buffer layout", () => {
    const i32 = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)];
    const i32buf = Buffer.alloc(20);
    i32.forEach((v, i) => {
      i32buf.writeInt32LE(v, i * 4);
    });
    expect(hex(encodeInt32s(i32, "x"))).toBe(i32buf.toString("hex"));
    expect(decodeInt32s(new Uint8Array(i32buf), "x")).toEqual(i32);

    const i64 = [0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 32, -(2 ** 32)];
    const i64buf = Buffer.alloc(i64.length * 8);
    i64.forEach((v, i) => {
      i64buf.writeBigInt64LE(BigInt(v), i * 8);
    });
    expect(hex(encodeInt64s(i64, "x"))).toBe(i64buf.toString("hex"));
    expect(decodeInt64s(new Uint8Array(i64buf), "x")).toEqual(i64);

    const f32 = [0, -0, 1.5, -2.25, Number.POSITIVE_INFINITY, 1e-40];
    const f32buf = Buffer.alloc(f32.length * 4);
    f32.forEach((v, i) => {
      f32buf.writeFloatLE(v, i * 4);
    });
    expect(hex(encodeFloat32s(f32, "x"))).toBe(f32buf.toString("hex"));
    expect(decodeFloat32s(new Uint8Array(f32buf), "x")).toEqual(f32.map(Math.fround));
  });

  it("reads from misaligned views", () => {
    const padded = new Uint8Array(9);
    padded.set(encodeInt64s([-3], "x"), 1);
    expect(decodeInt64s(padded.subarray(1), "x")).toEqual([-3]);
  });

  it("int64 values beyond 2^53 decode to the nearest double", () => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(2n ** 62n + 1n);
    expect(decodeInt64s(new Uint8Array(buf), "x")).toEqual([2 ** 62]);
  });

  it("bfloat16 widens to the float32 with the same upper bits", () => {
    expect(decodeBfloat16s(fromHex("803f 00c0 c07f 0000"), "x")).toEqual([1, -2, Number.NaN, 0]);
  });

  it("rejects partial elements and non-integer / non-number values", () => {
    expect(() => decodeFloat32s(new Uint8Array(5), "v")).toThrow(ProtobufDecodeError);
    expect(() => decodeInt64s(new Uint8Array(12), "v")).toThrow(/v: 12 bytes/);
    expect(() => encodeInt32s([1, 2.5], "tokens")).toThrow(/tokens\[1\]/);
    expect(() => encodeInt64s([Number.NaN], "ids")).toThrow(/ids\[0\]/);
    expect(() => encodeFloat32s(["1" as unknown as number], "w")).toThrow(/w\[0\]: "1" is not a number/);
    expect(() => encodeFloat32s("abc" as unknown as number[], "w")).toThrow(/expected an array/);
  });
});

describe("base64", () => {
  it("matches Node's encoder for every length and byte value", () => {
    for (let length = 0; length < 70; length++) {
      const bytes = new Uint8Array(length).map((_, i) => (i * 97 + length * 31) & 0xff);
      const expected = Buffer.from(bytes).toString("base64");
      expect(encodeBase64(bytes)).toBe(expected);
      expect(decodeBase64(expected)).toEqual(bytes);
      expect(decodeBase64(expected.replace(/=+$/, ""))).toEqual(bytes);
    }
  });

  it("rejects what is not standard base64", () => {
    for (const text of ["a", "ab=c", "ab$c", "-_-_", "YQ===", "é"])
      expect(decodeBase64(text)).toBeUndefined();
  });
});
