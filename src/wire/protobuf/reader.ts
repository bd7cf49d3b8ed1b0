/**
 * A minimal protobuf wire-format reader over a byte range.
 *
 * Every read checks the bounds and throws `ProtobufDecodeError` on truncated or malformed input,
 * so decoders can read optimistically. Byte and string fields are returned as views into the
 * input (no copy); the array codecs copy the values out as numbers.
 */

import { ProtobufDecodeError } from "./errors.js";
import { joinInt64 } from "./integers.js";
import { WireType } from "./schema.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export interface Tag {
  readonly fieldNumber: number;
  readonly wireType: number;
}

const WIRE_TYPE_NAMES = ["varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32"];

function wireTypeName(wireType: number): string {
  return WIRE_TYPE_NAMES[wireType] ?? `wire type ${wireType}`;
}

/** Fails unless a known field arrived with the wire type its schema implies. */
export function expectWireType(tag: Tag, expected: WireType, field: string): void {
  if (tag.wireType !== expected) {
    throw new ProtobufDecodeError(
      `${field}: expected ${wireTypeName(expected)} encoding, got ${wireTypeName(tag.wireType)}`,
    );
  }
}

export class ProtoReader {
  readonly #buf: Uint8Array;
  readonly #end: number;
  #pos: number;
  #view: DataView | undefined;
  // Halves of the last varint read; kept on the instance so varint reads allocate nothing.
  #lo = 0;
  #hi = 0;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  /** True when the whole range has been consumed. */
  get done(): boolean {
    return this.#pos >= this.#end;
  }

  /** Current position, relative to the start of the underlying array (for error messages). */
  get offset(): number {
    return this.#pos;
  }

  tag(): Tag {
    const start = this.#pos;
    const value = this.uint32();
    const fieldNumber = value >>> 3;
    const wireType = value & 7;
    if (fieldNumber === 0) throw new ProtobufDecodeError(`invalid field number 0 at byte ${start}`);
    if (wireType > WireType.Fixed32) {
      throw new ProtobufDecodeError(`invalid wire type ${wireType} at byte ${start}`);
    }
    return { fieldNumber, wireType };
  }

  /** `uint32`: the low 32 bits of the varint, unsigned (protobuf truncates wider values). */
  uint32(): number {
    this.#readVarint();
    return this.#lo >>> 0;
  }

  /** `int32` and enums: the low 32 bits, signed (negative values arrive sign-extended to 64 bits). */
  int32(): number {
    this.#readVarint();
    return this.#lo | 0;
  }

  /** `int64` as a number; values beyond ±2^53 cannot be represented exactly and are rejected. */
  int64(): number {
    this.#readVarint();
    return this.#exact(joinInt64(this.#lo, this.#hi, true), "int64");
  }

  /** `uint64` as a number, rejected above 2^53 like `int64`. */
  uint64(): number {
    this.#readVarint();
    return this.#exact(joinInt64(this.#lo, this.#hi, false), "uint64");
  }

  /** A 64-bit varint as a BigInt, exact for the whole range (used for proto3-JSON int64 strings). */
  bigint64(signed: boolean): bigint {
    this.#readVarint();
    const unsigned = (BigInt(this.#hi >>> 0) << 32n) | BigInt(this.#lo >>> 0);
    return signed ? BigInt.asIntN(64, unsigned) : unsigned;
  }

  bool(): boolean {
    this.#readVarint();
    return this.#lo !== 0 || this.#hi !== 0;
  }

  /** `double`: fixed 64-bit little-endian. */
  double(): number {
    const at = this.#advance(8);
    return this.#dataView().getFloat64(at, true);
  }

  /** `float`: fixed 32-bit little-endian. */
  float(): number {
    const at = this.#advance(4);
    return this.#dataView().getFloat32(at, true);
  }

  /** Length-delimited bytes, as a view into the input. */
  bytes(): Uint8Array {
    const length = this.#length();
    const at = this.#advance(length);
    return this.#buf.subarray(at, at + length);
  }

  string(): string {
    const start = this.#pos;
    try {
      return utf8.decode(this.bytes());
    } catch (error) {
      if (error instanceof ProtobufDecodeError) throw error;
      throw new ProtobufDecodeError(`invalid UTF-8 in string field at byte ${start}`);
    }
  }

  /** A reader over a length-delimited nested message (or a packed run). */
  message(): ProtoReader {
    const length = this.#length();
    const at = this.#advance(length);
    return new ProtoReader(this.#buf, at, at + length);
  }

  /**
   * Reads a `repeated int64` field occurrence into `out`: parsers must accept both the packed form
   * (one length-delimited run) and the unpacked form (one varint per occurrence).
   */
  repeatedInt64(tag: Tag, field: string, out: number[]): void {
    if (tag.wireType === WireType.LengthDelimited) {
      const run = this.message();
      while (!run.done) out.push(run.int64());
    } else {
      expectWireType(tag, WireType.Varint, field);
      out.push(this.int64());
    }
  }

  /** Skips the value of a field this decoder does not know (proto3 ignores unknown fields). */
  skip(tag: Tag): void {
    switch (tag.wireType) {
      case WireType.Varint:
        this.#readVarint();
        return;
      case WireType.Fixed64:
        this.#advance(8);
        return;
      case WireType.LengthDelimited:
        this.#advance(this.#length());
        return;
      case WireType.Fixed32:
        this.#advance(4);
        return;
      case WireType.StartGroup:
        this.#skipGroup(tag.fieldNumber);
        return;
      default:
        throw new ProtobufDecodeError(`unexpected end-group tag at byte ${this.#pos}`);
    }
  }

  /** Skips a (deprecated, proto2) group up to its matching end-group tag. */
  #skipGroup(fieldNumber: number): void {
    for (;;) {
      if (this.done) throw new ProtobufDecodeError(`truncated group for field ${fieldNumber}`);
      const inner = this.tag();
      if (inner.wireType === WireType.EndGroup) {
        if (inner.fieldNumber !== fieldNumber) {
          throw new ProtobufDecodeError(`mismatched end-group tag for field ${fieldNumber}`);
        }
        return;
      }
      this.skip(inner);
    }
  }

  /** Reads a varint of up to 10 bytes into `#lo` / `#hi`. */
  #readVarint(): void {
    const buf = this.#buf;
    const start = this.#pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) throw new ProtobufDecodeError(`truncated varint at byte ${start}`);
      const byte = buf[this.#pos++];
      const bits = byte & 0x7f;
      if (i < 4) {
        lo |= bits << (7 * i);
      } else if (i === 4) {
        // The fifth byte straddles the halves: 4 bits complete `lo`, 3 bits start `hi`.
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else {
        hi |= bits << (7 * i - 32);
      }
      if (byte < 0x80) {
        this.#lo = lo >>> 0;
        this.#hi = hi >>> 0;
        return;
      }
    }
    throw new ProtobufDecodeError(`malformed varint (more than 10 bytes) at byte ${start}`);
  }

  /** Reads a length prefix and checks that many bytes remain. */
  #length(): number {
    const start = this.#pos;
    this.#readVarint();
    const length = joinInt64(this.#lo, this.#hi, false);
    if (length > this.#end - this.#pos) {
      throw new ProtobufDecodeError(
        `truncated input: length ${length} at byte ${start} exceeds the ${this.#end - this.#pos} bytes left`,
      );
    }
    return length;
  }

  /** Consumes `n` bytes and returns where they start. */
  #advance(n: number): number {
    const at = this.#pos;
    if (n > this.#end - at) {
      throw new ProtobufDecodeError(
        `truncated input: needed ${n} bytes at byte ${at}, ${this.#end - at} left`,
      );
    }
    this.#pos = at + n;
    return at;
  }

  #exact(value: number, type: string): number {
    if (!Number.isSafeInteger(value)) {
      throw new ProtobufDecodeError(`${type} value ${value} does not fit a JavaScript number exactly`);
    }
    return value;
  }

  #dataView(): DataView {
    this.#view ??= new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    return this.#view;
  }
}
