/**
 * `loss_fn_config` of ForwardBackwardRequest, which since 0.26.2 travels in two map fields (T1):
 *
 *   map<string, double> loss_fn_config = 5;                 // legacy: numbers only
 *   map<string, LossConfigValue> loss_fn_config_v2 = 7;     // every entry
 *   message LossConfigValue { oneof value { double number = 1; string text = 2; } }
 *
 * Senders write every entry to field 7 and mirror the numeric ones to field 5, so a server that
 * predates field 7 still sees the numbers; receivers read field 7 when it is present at all and
 * fall back to field 5 otherwise.
 */

import type { LossFnConfig } from "../types.js";
import { ProtobufEncodeError } from "./errors.js";
import { describe } from "./integers.js";
import { entriesOf, keyPath, readMessageEntry, writeDoubleMap } from "./maps.js";
import { expectWireType, type ProtoReader } from "./reader.js";
import { ForwardBackwardRequestField, LossConfigValueField, MapEntryField, WireType } from "./schema.js";
import type { ProtoWriter } from "./writer.js";

/** Checks a config for encoding: a plain object of numbers and strings. */
export function lossConfigEntries(config: LossFnConfig, path: string): [string, number | string][] {
  const entries = entriesOf(config, path);
  for (const [key, value] of entries) {
    if (typeof value !== "number" && typeof value !== "string") {
      throw new ProtobufEncodeError(`${keyPath(path, key)}: ${describe(value)} is not a number or a string`);
    }
  }
  return entries;
}

/** Field 5: the numeric entries, for servers that predate field 7. */
export function writeLegacyLossConfig(w: ProtoWriter, entries: readonly [string, number | string][]): void {
  // fromEntries defines own properties, so a key such as "__proto__" stays an ordinary key.
  const numeric = Object.fromEntries(
    entries.filter((entry): entry is [string, number] => typeof entry[1] === "number"),
  );
  writeDoubleMap(w, ForwardBackwardRequestField.loss_fn_config, numeric, "loss_fn_config");
}

/** Field 7: every entry. The oneof member is written even when it holds 0 or "" (it has presence). */
export function writeLossConfigV2(w: ProtoWriter, entries: readonly [string, number | string][]): void {
  for (const [key, value] of entries) {
    w.messageField(ForwardBackwardRequestField.loss_fn_config_v2, (entry) => {
      entry.stringField(MapEntryField.key, key);
      entry.messageField(MapEntryField.value, (v) => {
        if (typeof value === "number") v.doubleField(LossConfigValueField.number, value);
        else v.stringField(LossConfigValueField.text, value);
      });
    });
  }
}

/**
 * Reads one field-7 map entry. The value is undefined when the LossConfigValue has no member set:
 * an absent value, an empty message, or a member this decoder does not know (a value kind added
 * after 0.31 arrives as an unknown field, leaving the oneof empty). The caller drops such entries,
 * so the loss sees the key as unset and uses its default, the nearest meaning there is for "no
 * value"; failing the whole request instead would make every future value kind a hard error.
 */
export function readLossConfigV2Entry(r: ProtoReader, path: string): [string, number | string | undefined] {
  const [key, valueReader] = readMessageEntry(r, path);
  let value: number | string | undefined;
  if (valueReader !== undefined) {
    const valuePath = keyPath(path, key);
    while (!valueReader.done) {
      const tag = valueReader.tag();
      switch (tag.fieldNumber) {
        case LossConfigValueField.number:
          expectWireType(tag, WireType.Fixed64, `${valuePath}.number`);
          value = valueReader.double();
          break;
        case LossConfigValueField.text:
          expectWireType(tag, WireType.LengthDelimited, `${valuePath}.text`);
          value = valueReader.string();
          break;
        default:
          valueReader.skip(tag);
      }
    }
  }
  return [key, value];
}
