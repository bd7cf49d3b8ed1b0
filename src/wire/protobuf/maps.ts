/**
 * `map<string, V>` fields. On the wire a map is `repeated Entry { string key = 1; V value = 2; }`,
 * one entry message per pair. Like the official (upb) serializer, entries always carry both key
 * and value, even when they equal the defaults. On decode a repeated key keeps its first position
 * and takes the last value, and a missing key or value reads as its default.
 */

import { ProtobufEncodeError } from "./errors.js";
import { describe } from "./integers.js";
import { expectWireType, type ProtoReader } from "./reader.js";
import { MapEntryField, WireType } from "./schema.js";
import type { ProtoWriter } from "./writer.js";

/** Path segment for a map key in error messages, e.g. `loss_fn_inputs["weights"]`. */
export function keyPath(path: string, key: string): string {
  return `${path}[${JSON.stringify(key)}]`;
}

/** The entries of a map field's object, which must be a plain object. */
export function entriesOf<V>(map: Readonly<Record<string, V>>, path: string): [string, V][] {
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new ProtobufEncodeError(`${path}: expected an object, got ${describe(map)}`);
  }
  return Object.entries(map);
}

export function writeDoubleMap(
  w: ProtoWriter,
  fieldNumber: number,
  map: Readonly<Record<string, number>>,
  path: string,
): void {
  for (const [key, value] of entriesOf(map, path)) {
    if (typeof value !== "number") {
      throw new ProtobufEncodeError(`${keyPath(path, key)}: ${describe(value)} is not a number`);
    }
    w.messageField(fieldNumber, (entry) => {
      entry.stringField(MapEntryField.key, key);
      entry.doubleField(MapEntryField.value, value);
    });
  }
}

export function writeMessageMap<V>(
  w: ProtoWriter,
  fieldNumber: number,
  map: Readonly<Record<string, V>>,
  path: string,
  writeValue: (writer: ProtoWriter, value: V, path: string) => void,
): void {
  for (const [key, value] of entriesOf(map, path)) {
    w.messageField(fieldNumber, (entry) => {
      entry.stringField(MapEntryField.key, key);
      entry.messageField(MapEntryField.value, (message) => writeValue(message, value, keyPath(path, key)));
    });
  }
}

/** Reads one `map<string, double>` entry. */
export function readDoubleEntry(r: ProtoReader, path: string): [string, number] {
  let key = "";
  let value = 0;
  while (!r.done) {
    const tag = r.tag();
    if (tag.fieldNumber === MapEntryField.key) {
      expectWireType(tag, WireType.LengthDelimited, `${path} key`);
      key = r.string();
    } else if (tag.fieldNumber === MapEntryField.value) {
      expectWireType(tag, WireType.Fixed64, `${path} value`);
      value = r.double();
    } else {
      r.skip(tag);
    }
  }
  return [key, value];
}

/**
 * Reads one `map<string, Message>` entry. The value comes back as a reader over its bytes (or
 * undefined when absent, i.e. an empty message) so that the caller can decode it with the key in
 * its error path, whatever order key and value arrived in.
 */
export function readMessageEntry(r: ProtoReader, path: string): [string, ProtoReader | undefined] {
  let key = "";
  let value: ProtoReader | undefined;
  while (!r.done) {
    const tag = r.tag();
    if (tag.fieldNumber === MapEntryField.key) {
      expectWireType(tag, WireType.LengthDelimited, `${path} key`);
      key = r.string();
    } else if (tag.fieldNumber === MapEntryField.value) {
      expectWireType(tag, WireType.LengthDelimited, `${path} value`);
      value = r.message();
    } else {
      r.skip(tag);
    }
  }
  return [key, value];
}
