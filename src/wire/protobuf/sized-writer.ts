/**
 * A protobuf writer over one buffer allocated up front at the message's exact size.
 *
 * `ProtoWriter` discovers nested lengths by writing children first and splicing them in; that is
 * flexible but copies every payload at least twice. For the forward_backward request, whose size
 * is dominated by a few large arrays whose byte lengths are known from their element counts,
 * the encoder computes every length first (`varintSize` below) and then writes each byte once,
 * straight into its final place. Payload writers live in `./payload.ts`.
 */

import { ProtobufEncodeError } from "./errors.js";
import { uninitializedBytes } from "./host.js";
import type { WireType } from "./schema.js";

/** Bytes of the unsigned varint encoding of a non-negative safe integer. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  let size = 5;
  // Beyond 2^35 the 32-bit operators no longer apply; divide instead.
  for (let v = Math.floor(value / 2 ** 35); v > 0; v = Math.floor(v / 128)) size++;
  return size;
}

/** Bytes of a length-delimited field (tag of a field number below 16, length, body). */
export function delimitedSize(bodySize: number): number {
  return 1 + varintSize(bodySize) + bodySize;
}

export class SizedWriter {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos = 0;

  /** `finish` checks that every byte was written, so the buffer need not start zeroed. */
  constructor(size: number) {
    this.bytes = uninitializedBytes(size);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Unsigned varint of a non-negative safe integer. */
  varint(value: number): void {
    const buf = this.bytes;
    let v = value;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  /** Tag of a field; the request's field numbers are all below 16, so one byte. */
  tag(fieldNumber: number, wireType: WireType): void {
    this.bytes[this.pos++] = (fieldNumber << 3) | wireType;
  }

  /** Tag and length of a length-delimited field whose body the caller writes next. */
  delimited(fieldNumber: number, bodySize: number): void {
    this.tag(fieldNumber, 2);
    this.varint(bodySize);
  }

  raw(value: Uint8Array): void {
    this.bytes.set(value, this.pos);
    this.pos += value.length;
  }

  /** Checks that the precomputed size was exact: a mismatch is a bug in a size function. */
  finish(): Uint8Array {
    if (this.pos !== this.bytes.length) {
      throw new ProtobufEncodeError(
        `internal error: wrote ${this.pos} bytes into a message sized ${this.bytes.length}`,
      );
    }
    return this.bytes;
  }
}
