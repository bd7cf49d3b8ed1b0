/**
 * A minimal protobuf wire-format writer.
 *
 * Output is collected as a list of byte pieces: small writes (tags, varints, short strings) go to
 * a scratch buffer, large payloads (tensor bytes) are referenced rather than copied, and a nested
 * message is written into a child writer whose pieces are then spliced into the parent after its
 * length prefix. Every byte is therefore copied once more at most, in `finish()`, no matter how
 * deeply messages nest; this matters because forward_backward requests carry large tensors three
 * to four messages deep.
 *
 * The writer itself does not decide which fields to omit: proto3 leaves default-valued scalars
 * off the wire, and the message encoders make that call explicitly, field by field.
 */

import { ProtobufEncodeError } from "./errors.js";
import { describe, INT32_MAX, INT32_MIN, splitInt64, UINT32_MAX } from "./integers.js";
import { WireType } from "./schema.js";

const utf8 = new TextEncoder();

/** Byte payloads up to this size are copied into the scratch buffer instead of kept as a piece. */
const COPY_THRESHOLD = 256;
const MIN_SCRATCH = 64;
const MAX_SCRATCH = 64 * 1024;

/** The largest field number protobuf allows (2^29 - 1). */
const MAX_FIELD_NUMBER = 0x1fff_ffff;

export class ProtoWriter {
  readonly #pieces: Uint8Array[] = [];
  #piecesLength = 0;
  #scratch = new Uint8Array(MIN_SCRATCH);
  /** Start of the scratch bytes not yet moved to `#pieces`. */
  #start = 0;
  #pos = 0;

  /** Number of bytes written so far. */
  get length(): number {
    return this.#piecesLength + (this.#pos - this.#start);
  }

  // ---- raw values ----

  /** Unsigned varint of a non-negative safe integer (lengths, tags, uint32/uint64 values). */
  varint(value: number): this {
    if (value >= 0 && value <= INT32_MAX) {
      this.#reserve(5);
      const buf = this.#scratch;
      let v = value;
      while (v > 0x7f) {
        buf[this.#pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.#pos++] = v;
      return this;
    }
    if (!(value >= 0 && Number.isSafeInteger(value))) {
      throw new ProtobufEncodeError(`varint must be a non-negative safe integer, got ${describe(value)}`);
    }
    const [lo, hi] = splitInt64(value);
    return this.varint64(lo, hi);
  }

  /** Varint of a 64-bit value given as two unsigned 32-bit halves. */
  varint64(lo: number, hi: number): this {
    this.#reserve(10);
    const buf = this.#scratch;
    let low = lo >>> 0;
    let high = hi >>> 0;
    while (high !== 0 || low > 0x7f) {
      buf[this.#pos++] = (low & 0x7f) | 0x80;
      // Shift the 64-bit value right by 7: the low 7 bits of `high` move into the top of `low`.
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.#pos++] = low;
    return this;
  }

  /**
   * `int32` value. Negative numbers are sign-extended to 64 bits and take 10 bytes, as the
   * protobuf spec requires (readers treat int32 and int64 varints interchangeably).
   */
  int32(value: number): this {
    if (!(Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX)) {
      throw new ProtobufEncodeError(`int32 value out of range: ${describe(value)}`);
    }
    return value >= 0 ? this.varint(value) : this.varint64(value >>> 0, UINT32_MAX);
  }

  /** `int64` value from a safe integer (two's complement for negatives). */
  int64(value: number): this {
    if (!Number.isSafeInteger(value)) {
      throw new ProtobufEncodeError(`int64 value must be a safe integer, got ${describe(value)}`);
    }
    if (value >= 0) return this.varint(value);
    const [lo, hi] = splitInt64(value);
    return this.varint64(lo, hi);
  }

  /** `double` (fixed 64-bit, little-endian). */
  double(value: number): this {
    this.#reserve(8);
    new DataView(this.#scratch.buffer, this.#scratch.byteOffset).setFloat64(this.#pos, value, true);
    this.#pos += 8;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(value: Uint8Array): this {
    this.varint(value.length);
    return this.raw(value);
  }

  /** Length-prefixed UTF-8 string. */
  string(value: string): this {
    return this.bytes(utf8.encode(value));
  }

  /** Appends bytes without a prefix. Large arrays are kept by reference: do not mutate them later. */
  raw(value: Uint8Array): this {
    if (value.length <= COPY_THRESHOLD) {
      this.#reserve(value.length);
      this.#scratch.set(value, this.#pos);
      this.#pos += value.length;
    } else {
      this.#flush();
      this.#pieces.push(value);
      this.#piecesLength += value.length;
    }
    return this;
  }

  /** A field tag: `(field_number << 3) | wire_type`. */
  tag(fieldNumber: number, wireType: WireType): this {
    if (!(Number.isInteger(fieldNumber) && fieldNumber >= 1 && fieldNumber <= MAX_FIELD_NUMBER)) {
      throw new ProtobufEncodeError(`invalid field number ${describe(fieldNumber)}`);
    }
    // Multiply instead of shifting: field numbers above 2^28 would overflow a 32-bit shift.
    return this.varint(fieldNumber * 8 + wireType);
  }

  // ---- whole fields (tag + value); callers decide whether a default value is worth writing ----

  int32Field(fieldNumber: number, value: number): this {
    return this.tag(fieldNumber, WireType.Varint).int32(value);
  }

  uint32Field(fieldNumber: number, value: number): this {
    if (!(Number.isInteger(value) && value >= 0 && value <= UINT32_MAX)) {
      throw new ProtobufEncodeError(`uint32 value out of range: ${describe(value)}`);
    }
    return this.tag(fieldNumber, WireType.Varint).varint(value);
  }

  int64Field(fieldNumber: number, value: number): this {
    return this.tag(fieldNumber, WireType.Varint).int64(value);
  }

  /** Enum values are encoded like int32. */
  enumField(fieldNumber: number, value: number): this {
    return this.int32Field(fieldNumber, value);
  }

  boolField(fieldNumber: number, value: boolean): this {
    return this.tag(fieldNumber, WireType.Varint).varint(value ? 1 : 0);
  }

  doubleField(fieldNumber: number, value: number): this {
    return this.tag(fieldNumber, WireType.Fixed64).double(value);
  }

  bytesField(fieldNumber: number, value: Uint8Array): this {
    return this.tag(fieldNumber, WireType.LengthDelimited).bytes(value);
  }

  stringField(fieldNumber: number, value: string): this {
    return this.tag(fieldNumber, WireType.LengthDelimited).string(value);
  }

  /** `repeated int64` in the packed form proto3 uses by default (one length-delimited run). */
  packedInt64Field(fieldNumber: number, values: readonly number[]): this {
    return this.messageField(fieldNumber, (w) => {
      for (const value of values) w.int64(value);
    });
  }

  /** A nested message (also used for map entries and packed runs): tag, length, then its bytes. */
  messageField(fieldNumber: number, build: (writer: ProtoWriter) => void): this {
    const child = new ProtoWriter();
    build(child);
    this.tag(fieldNumber, WireType.LengthDelimited).varint(child.length);
    for (const piece of child.#takePieces()) this.raw(piece);
    return this;
  }

  /** The encoded message as one freshly allocated array (its `buffer` holds exactly these bytes). */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const piece of this.#takePieces()) {
      out.set(piece, offset);
      offset += piece.length;
    }
    return out;
  }

  #takePieces(): Uint8Array[] {
    this.#flush();
    return this.#pieces;
  }

  /** Makes room for `n` more scratch bytes, retiring the current scratch buffer when it is full. */
  #reserve(n: number): void {
    if (this.#pos + n <= this.#scratch.length) return;
    this.#flush();
    const size = Math.max(n, Math.min(this.#scratch.length * 2, MAX_SCRATCH));
    this.#scratch = new Uint8Array(size);
    this.#start = 0;
    this.#pos = 0;
  }

  /** Moves pending scratch bytes to the piece list (as a view: the scratch region is never reused). */
  #flush(): void {
    if (this.#pos > this.#start) {
      this.#pieces.push(this.#scratch.subarray(this.#start, this.#pos));
      this.#piecesLength += this.#pos - this.#start;
      this.#start = this.#pos;
    }
  }
}
