/**
 * ForwardBackwardRequest `loss_fn_config_v2` (field 7, 0.26.2, UPSTREAM.md T1): every entry goes
 * to field 7, numeric ones are mirrored to legacy field 5; decoding prefers field 7.
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
import type { ForwardBackwardRequest, LossFnConfig } from "../src/wire/types.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const joinHex = (parts: string[]) => parts.join(" ").replace(/\s+/g, "");

const request = (config: LossFnConfig | undefined): ForwardBackwardRequest => ({
  model_id: "",
  seq_id: 0,
  data: [],
  loss_fn: "",
  loss_fn_config: config,
});

/** A request body holding only config map entries, built field by field. */
function configBody(build: (w: ProtoWriter) => void): Uint8Array {
  const w = new ProtoWriter();
  build(w);
  return w.finish();
}

const legacyEntry = (w: ProtoWriter, key: string, value: number) =>
  w.messageField(5, (e) => {
    e.stringField(1, key);
    e.doubleField(2, value);
  });

const v2Entry = (w: ProtoWriter, key: string, value?: (v: ProtoWriter) => void) =>
  w.messageField(7, (e) => {
    e.stringField(1, key);
    if (value) e.messageField(2, value);
  });

describe("loss_fn_config encoding", () => {
  it("writes numbers to fields 5 and 7 and strings to field 7 only (hand-computed bytes)", () => {
    const bytes = encodeForwardBackwardRequest({ ...request({ a: 1, m: "x" }), forward_only: true });
    expect(hex(bytes)).toBe(
      joinHex([
        "2a 0c 0a 01 61 11 00 00 00 00 00 00 f0 3f", // 5: loss_fn_config {"a": 1.0} (double LE)
        "30 01", // 6: forward_only, between the two maps (field-number order)
        "3a 0e 0a 01 61 12 09 09 00 00 00 00 00 00 f0 3f", // 7: {"a": LossConfigValue{number (1, fixed64) = 1.0}}
        "3a 08 0a 01 6d 12 03 12 01 78", // 7: {"m": LossConfigValue{text (2, bytes) = "x"}}
      ]),
    );
  });

  it("writes the oneof member even for 0 and the empty string", () => {
    expect(hex(encodeForwardBackwardRequest(request({ z: 0, e: "" })))).toBe(
      joinHex([
        "2a 0c 0a 01 7a 11 00 00 00 00 00 00 00 00", // 5: {"z": 0.0}
        "3a 0e 0a 01 7a 12 09 09 00 00 00 00 00 00 00 00", // 7: {"z": number 0.0}
        "3a 07 0a 01 65 12 02 12 00", // 7: {"e": text ""}
      ]),
    );
  });

  it("a string-only config leaves legacy field 5 out", () => {
    const json = forwardBackwardRequestToProtoJson(encodeForwardBackwardRequest(request({ mode: "token" })));
    expect(json).toEqual({ loss_fn_config_v2: { mode: { text: "token" } } });
  });

  it("an empty or absent config writes neither field", () => {
    expect(encodeForwardBackwardRequest(request({})).length).toBe(0);
    expect(encodeForwardBackwardRequest(request(undefined)).length).toBe(0);
  });

  it("round-trips numbers and strings, including non-finite numbers and a __proto__ key", () => {
    const config: LossFnConfig = { clip_low_threshold: 0.8, mode: "token", big: 1e300, inf: -Infinity };
    Object.defineProperty(config, "__proto__", { value: "kept", enumerable: true });
    const decoded = decodeForwardBackwardRequest(encodeForwardBackwardRequest(request(config)));
    expect(decoded.loss_fn_config).toEqual(config);
    expect(Object.getPrototypeOf(decoded.loss_fn_config)).toBe(Object.prototype);
    expect(Object.hasOwn(decoded.loss_fn_config!, "__proto__")).toBe(true);
  });

  it("rejects values that are neither numbers nor strings, naming the key", () => {
    for (const value of [true, null, [1], { number: 1 }]) {
      const bad = request({ flag: value as unknown as number });
      expect(() => encodeForwardBackwardRequest(bad)).toThrow(ProtobufEncodeError);
      expect(() => encodeForwardBackwardRequest(bad)).toThrow(
        /loss_fn_config\["flag"\]: .* not a number or a string/,
      );
    }
    expect(() => encodeForwardBackwardRequest(request([] as unknown as LossFnConfig))).toThrow(
      /loss_fn_config: expected an object/,
    );
  });
});

describe("loss_fn_config decoding", () => {
  it("reads legacy field 5 when field 7 is absent (0.25 clients)", () => {
    const body = configBody((w) => {
      legacyEntry(w, "beta", 0.5);
      legacyEntry(w, "clip_low_threshold", 0.8);
    });
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({ beta: 0.5, clip_low_threshold: 0.8 });
  });

  it("prefers field 7 as a whole when present: its values win and field-5-only keys are not merged in", () => {
    const body = configBody((w) => {
      legacyEntry(w, "clip_low_threshold", 0.7);
      legacyEntry(w, "legacy_only", 3);
      v2Entry(w, "clip_low_threshold", (v) => v.doubleField(1, 0.8));
      v2Entry(w, "note", (v) => v.stringField(2, "x"));
    });
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({ clip_low_threshold: 0.8, note: "x" });
  });

  it("does not depend on the order of the two fields on the wire", () => {
    const body = configBody((w) => {
      v2Entry(w, "a", (v) => v.doubleField(1, 2));
      legacyEntry(w, "a", 1);
    });
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({ a: 2 });
  });

  it("skips an entry whose LossConfigValue has no member: empty, absent, or of an unknown future kind", () => {
    const body = configBody((w) => {
      legacyEntry(w, "a", 1);
      v2Entry(w, "a", (v) => v.doubleField(1, 1));
      v2Entry(w, "empty", () => {});
      v2Entry(w, "absent");
      v2Entry(w, "future", (v) => v.boolField(3, true));
    });
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({ a: 1 });
  });

  it("field 7 with only empty entries still wins over field 5 (it was sent, by a newer client)", () => {
    const body = configBody((w) => {
      legacyEntry(w, "a", 1);
      v2Entry(w, "b", () => {});
    });
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({});
  });

  it("takes the last value of a repeated key; a later empty value removes the key", () => {
    const body = configBody((w) => {
      v2Entry(w, "k", (v) => v.doubleField(1, 1));
      v2Entry(w, "k", (v) => v.stringField(2, "two"));
      v2Entry(w, "gone", (v) => v.doubleField(1, 1));
      v2Entry(w, "gone", () => {});
    });
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({ k: "two" });
  });

  it("within one value, the last member on the wire wins, and unknown fields are skipped", () => {
    const body = configBody((w) =>
      v2Entry(w, "k", (v) => {
        v.stringField(2, "first");
        v.int32Field(9, 5);
        v.doubleField(1, 4);
      }),
    );
    expect(decodeForwardBackwardRequest(body).loss_fn_config).toEqual({ k: 4 });
  });

  it("rejects a member with the wrong wire type, naming the key", () => {
    const body = configBody((w) => v2Entry(w, "k", (v) => v.int32Field(1, 4)));
    expect(() => decodeForwardBackwardRequest(body)).toThrow(ProtobufDecodeError);
    expect(() => decodeForwardBackwardRequest(body)).toThrow(
      /loss_fn_config_v2\["k"\]\.number: expected fixed64/,
    );
  });
});
