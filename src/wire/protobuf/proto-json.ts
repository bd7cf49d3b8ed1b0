/**
 * Test support: dumps raw protobuf bytes in the proto3-JSON form used by the conformance captures
 * (`body` of the recorded forward_backward requests), i.e. what Python's
 * `MessageToDict(msg, preserving_proto_field_name=True)` prints:
 * original field names, bytes as standard base64, 64-bit integers as decimal strings, enums by
 * name, maps as objects, and fields equal to their proto3 default left out (unless the field has
 * explicit presence: `optional`, oneof members and messages).
 *
 * It is driven by a small schema table rather than by the typed decoders, so comparing our
 * encoder's output through it with a capture of the official client is an independent check.
 */

import { encodeBase64 } from "./base64.js";
import { ProtobufDecodeError } from "./errors.js";
import { expectWireType, ProtoReader, type Tag } from "./reader.js";
import {
  ArrayRecordField,
  BatchedTensorField,
  ChunkField,
  DatumField,
  DmelChunkField,
  EncodedTextChunkField,
  ForwardBackwardOutputField,
  ForwardBackwardRequestField,
  ImageChunkField,
  LossConfigValueField,
  MapEntryField,
  PromptAltTokensField,
  ProvenanceSpanField,
  ProvenanceSpanRangeField,
  SampledSequenceField,
  SampleResponseField,
  SparseCsrField,
  TensorField,
  TopkLogprobsField,
  WireType,
} from "./schema.js";

type ScalarType = "string" | "bytes" | "bool" | "int32" | "uint32" | "int64" | "uint64" | "double" | "float";

type EnumName = keyof typeof ENUMS;

export type MessageName =
  | "ForwardBackwardRequest"
  | "LossConfigValue"
  | "Datum"
  | "ProvenanceSpan"
  | "PromptProvenanceSpan"
  | "SampledProvenanceSpan"
  | "Chunk"
  | "EncodedTextChunk"
  | "ImageChunk"
  | "DmelChunk"
  | "Tensor"
  | "SparseCsr"
  | "SampleResponse"
  | "SampledSequence"
  | "TopkLogprobs"
  | "PromptAltTokens"
  | "ForwardBackwardOutput"
  | "ArrayRecord"
  | "BatchedTensor";

type ScalarOptions = { repeated?: boolean; explicit?: boolean; oneof?: string };
type MessageOptions = { repeated?: boolean; oneof?: string };

type FieldSpec =
  | ({ kind: "scalar"; name: string; type: ScalarType } & ScalarOptions)
  | { kind: "enum"; name: string; type: EnumName; explicit?: boolean }
  | ({ kind: "message"; name: string; type: MessageName } & MessageOptions)
  | { kind: "map"; name: string; value: ScalarType | MessageName };

const ENUMS = {
  DType: ["DTYPE_UNSPECIFIED", "DTYPE_FLOAT32", "DTYPE_INT64", "DTYPE_INT32", "DTYPE_BFLOAT16"],
  StopReason: ["STOP_REASON_STOP", "STOP_REASON_LENGTH"],
} as const;

function scalar(name: string, type: ScalarType, options: ScalarOptions = {}): FieldSpec {
  return { kind: "scalar", name, type, ...options };
}

function message(name: string, type: MessageName, options: MessageOptions = {}): FieldSpec {
  return { kind: "message", name, type, ...options };
}

/** The same fields for PromptProvenanceSpan and SampledProvenanceSpan. */
const PROVENANCE_RANGE: Record<number, FieldSpec> = {
  [ProvenanceSpanRangeField.sequence_id]: scalar("sequence_id", "string"),
  [ProvenanceSpanRangeField.offset]: scalar("offset", "int64"),
  [ProvenanceSpanRangeField.length]: scalar("length", "int64"),
};

/**
 * The `tinker_public` messages that travel on the wire: those of 0.25.0 (PROTOCOL.md §8.1) and
 * the additions up to 0.31 (UPSTREAM.md §11), under the newest names.
 */
const MESSAGES: Record<MessageName, Record<number, FieldSpec>> = {
  ForwardBackwardRequest: {
    [ForwardBackwardRequestField.model_id]: scalar("model_id", "string"),
    [ForwardBackwardRequestField.seq_id]: scalar("seq_id", "int32"),
    [ForwardBackwardRequestField.data]: message("data", "Datum", { repeated: true }),
    [ForwardBackwardRequestField.loss_fn]: scalar("loss_fn", "string"),
    [ForwardBackwardRequestField.loss_fn_config]: { kind: "map", name: "loss_fn_config", value: "double" },
    [ForwardBackwardRequestField.forward_only]: scalar("forward_only", "bool"),
    [ForwardBackwardRequestField.loss_fn_config_v2]: {
      kind: "map",
      name: "loss_fn_config_v2",
      value: "LossConfigValue",
    },
  },
  LossConfigValue: {
    [LossConfigValueField.number]: scalar("number", "double", { explicit: true, oneof: "value" }),
    [LossConfigValueField.text]: scalar("text", "string", { explicit: true, oneof: "value" }),
  },
  Datum: {
    [DatumField.model_input]: message("model_input", "Chunk", { repeated: true }),
    [DatumField.loss_fn_inputs]: { kind: "map", name: "loss_fn_inputs", value: "Tensor" },
    [DatumField.model_input_spans]: message("model_input_spans", "ProvenanceSpan", { repeated: true }),
    [DatumField.loss_fn_input_spans]: message("loss_fn_input_spans", "ProvenanceSpan", { repeated: true }),
  },
  ProvenanceSpan: {
    [ProvenanceSpanField.prompt_tokens]: message("prompt_tokens", "PromptProvenanceSpan", { oneof: "span" }),
    [ProvenanceSpanField.sampled_tokens]: message("sampled_tokens", "SampledProvenanceSpan", {
      oneof: "span",
    }),
  },
  PromptProvenanceSpan: PROVENANCE_RANGE,
  SampledProvenanceSpan: PROVENANCE_RANGE,
  Chunk: {
    [ChunkField.encoded_text]: message("encoded_text", "EncodedTextChunk", { oneof: "chunk" }),
    [ChunkField.image]: message("image", "ImageChunk", { oneof: "chunk" }),
    [ChunkField.dmel]: message("dmel", "DmelChunk", { oneof: "chunk" }),
  },
  EncodedTextChunk: { [EncodedTextChunkField.tokens]: scalar("tokens", "bytes") },
  ImageChunk: {
    [ImageChunkField.data]: scalar("data", "bytes"),
    [ImageChunkField.format]: scalar("format", "string"),
    [ImageChunkField.expected_tokens]: scalar("expected_tokens", "int32", { explicit: true }),
  },
  DmelChunk: { [DmelChunkField.dmel]: scalar("dmel", "bytes") },
  Tensor: {
    [TensorField.dense]: scalar("dense", "bytes", { explicit: true, oneof: "encoding" }),
    [TensorField.sparse_csr]: message("sparse_csr", "SparseCsr", { oneof: "encoding" }),
    [TensorField.dtype]: { kind: "enum", name: "dtype", type: "DType" },
    [TensorField.shape]: scalar("shape", "int64", { repeated: true }),
  },
  SparseCsr: {
    [SparseCsrField.values]: scalar("values", "bytes"),
    [SparseCsrField.crow_indices]: scalar("crow_indices", "bytes"),
    [SparseCsrField.col_indices]: scalar("col_indices", "bytes"),
  },
  SampleResponse: {
    [SampleResponseField.sequences]: message("sequences", "SampledSequence", { repeated: true }),
    [SampleResponseField.prompt_logprobs]: scalar("prompt_logprobs", "bytes", { explicit: true }),
    [SampleResponseField.topk_prompt_logprobs]: message("topk_prompt_logprobs", "TopkLogprobs"),
    [SampleResponseField.prompt_cache_hit_tokens]: scalar("prompt_cache_hit_tokens", "int32"),
    [SampleResponseField.target_prompt_logprobs]: message("target_prompt_logprobs", "Tensor"),
    [SampleResponseField.prompt_alt_tokens]: message("prompt_alt_tokens", "PromptAltTokens"),
  },
  SampledSequence: {
    [SampledSequenceField.stop_reason]: { kind: "enum", name: "stop_reason", type: "StopReason" },
    [SampledSequenceField.tokens]: scalar("tokens", "bytes"),
    [SampledSequenceField.logprobs]: scalar("logprobs", "bytes", { explicit: true }),
    [SampledSequenceField.topk_sampled_logprobs]: message("topk_sampled_logprobs", "TopkLogprobs"),
  },
  TopkLogprobs: {
    [TopkLogprobsField.token_ids]: scalar("token_ids", "bytes"),
    [TopkLogprobsField.logprobs]: scalar("logprobs", "bytes"),
    [TopkLogprobsField.k]: scalar("k", "uint32"),
    [TopkLogprobsField.length]: scalar("length", "uint32"),
  },
  PromptAltTokens: {
    [PromptAltTokensField.tokens]: message("tokens", "Tensor"),
    [PromptAltTokensField.logprobs]: message("logprobs", "Tensor"),
  },
  ForwardBackwardOutput: {
    [ForwardBackwardOutputField.loss_fn_output_type]: scalar("loss_fn_output_type", "string"),
    [ForwardBackwardOutputField.loss_fn_outputs]: message("loss_fn_outputs", "ArrayRecord", {
      repeated: true,
    }),
    [ForwardBackwardOutputField.metrics]: { kind: "map", name: "metrics", value: "double" },
  },
  ArrayRecord: {
    [ArrayRecordField.type_tag]: scalar("type_tag", "string"),
    [ArrayRecordField.fields]: { kind: "map", name: "fields", value: "BatchedTensor" },
    [ArrayRecordField.num_datums]: scalar("num_datums", "int64"),
  },
  BatchedTensor: {
    [BatchedTensorField.data]: scalar("data", "bytes"),
    [BatchedTensorField.offsets]: scalar("offsets", "bytes"),
    [BatchedTensorField.dtype]: { kind: "enum", name: "dtype", type: "DType" },
    [BatchedTensorField.trailing_shape]: scalar("trailing_shape", "int64", { repeated: true }),
  },
};

type JsonObject = Record<string, unknown>;

const WIRE_TYPE_OF: Record<ScalarType, WireType> = {
  string: WireType.LengthDelimited,
  bytes: WireType.LengthDelimited,
  bool: WireType.Varint,
  int32: WireType.Varint,
  uint32: WireType.Varint,
  int64: WireType.Varint,
  uint64: WireType.Varint,
  double: WireType.Fixed64,
  float: WireType.Fixed32,
};

/** Decodes `bytes` as message `name` into its proto3-JSON object. */
export function protoToJson(bytes: Uint8Array, name: MessageName): JsonObject {
  return decodeInto(new ProtoReader(bytes), name, {});
}

export function forwardBackwardRequestToProtoJson(bytes: Uint8Array): JsonObject {
  return protoToJson(bytes, "ForwardBackwardRequest");
}

function isMessageName(name: string): name is MessageName {
  return Object.hasOwn(MESSAGES, name);
}

/** Setting a property with defineProperty keeps keys such as "__proto__" ordinary. */
function put(target: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Decodes fields into `target`, so a repeated occurrence of a message merges as protobuf requires. */
function decodeInto(r: ProtoReader, name: MessageName, target: JsonObject): JsonObject {
  const fields: Record<number, FieldSpec> = MESSAGES[name];
  while (!r.done) {
    const tag = r.tag();
    const spec = fields[tag.fieldNumber];
    if (spec === undefined) {
      r.skip(tag);
      continue;
    }
    const path = `${name}.${spec.name}`;
    if ("oneof" in spec && spec.oneof !== undefined) {
      // Setting one member of a oneof clears the others.
      for (const other of Object.values(fields)) {
        if (other !== spec && "oneof" in other && other.oneof === spec.oneof) delete target[other.name];
      }
    }
    switch (spec.kind) {
      case "map": {
        expectWireType(tag, WireType.LengthDelimited, path);
        const map = (target[spec.name] ?? {}) as JsonObject;
        target[spec.name] = map;
        const [key, value] = readMapEntry(r.message(), spec.value, path);
        put(map, key, value);
        break;
      }
      case "message": {
        expectWireType(tag, WireType.LengthDelimited, path);
        if (spec.repeated) {
          const list = (target[spec.name] ?? []) as unknown[];
          target[spec.name] = list;
          list.push(decodeInto(r.message(), spec.type, {}));
        } else {
          const existing = target[spec.name] as JsonObject | undefined;
          target[spec.name] = decodeInto(r.message(), spec.type, existing ?? {});
        }
        break;
      }
      case "enum": {
        expectWireType(tag, WireType.Varint, path);
        const code = r.int32();
        const names: readonly string[] = ENUMS[spec.type];
        if (code === 0 && !spec.explicit) delete target[spec.name];
        else target[spec.name] = names[code] ?? code;
        break;
      }
      case "scalar": {
        if (spec.repeated) {
          const list = (target[spec.name] ?? []) as unknown[];
          target[spec.name] = list;
          readRepeated(r, tag, spec.type, path, list);
          break;
        }
        expectWireType(tag, WIRE_TYPE_OF[spec.type], path);
        const value = readScalar(r, spec.type);
        if (!spec.explicit && isDefault(value, spec.type)) delete target[spec.name];
        else target[spec.name] = value;
        break;
      }
    }
  }
  return target;
}

function readRepeated(r: ProtoReader, tag: Tag, type: ScalarType, path: string, out: unknown[]): void {
  const wireType = WIRE_TYPE_OF[type];
  if (tag.wireType === WireType.LengthDelimited && wireType !== WireType.LengthDelimited) {
    // Packed run of numeric values.
    const run = r.message();
    while (!run.done) out.push(readScalar(run, type));
    return;
  }
  expectWireType(tag, wireType, path);
  out.push(readScalar(r, type));
}

function readMapEntry(r: ProtoReader, valueType: ScalarType | MessageName, path: string): [string, unknown] {
  let key = "";
  let value: unknown;
  while (!r.done) {
    const tag = r.tag();
    if (tag.fieldNumber === MapEntryField.key) {
      expectWireType(tag, WireType.LengthDelimited, `${path} key`);
      key = r.string();
    } else if (tag.fieldNumber === MapEntryField.value) {
      if (isMessageName(valueType)) {
        expectWireType(tag, WireType.LengthDelimited, `${path} value`);
        value = decodeInto(r.message(), valueType, (value as JsonObject | undefined) ?? {});
      } else {
        expectWireType(tag, WIRE_TYPE_OF[valueType], `${path} value`);
        value = readScalar(r, valueType);
      }
    } else {
      r.skip(tag);
    }
  }
  if (value === undefined) value = isMessageName(valueType) ? {} : defaultOf(valueType);
  return [key, value];
}

function readScalar(r: ProtoReader, type: ScalarType): unknown {
  switch (type) {
    case "string":
      return r.string();
    case "bytes":
      return encodeBase64(r.bytes());
    case "bool":
      return r.bool();
    case "int32":
      return r.int32();
    case "uint32":
      return r.uint32();
    case "int64":
      return r.bigint64(true).toString();
    case "uint64":
      return r.bigint64(false).toString();
    case "double":
      return jsonNumber(r.double());
    case "float":
      return jsonNumber(shortestFloat32(r.float()));
    default:
      throw new ProtobufDecodeError(`unknown scalar type ${String(type)}`);
  }
}

function defaultOf(type: ScalarType): unknown {
  switch (type) {
    case "string":
    case "bytes":
      return "";
    case "bool":
      return false;
    case "int64":
    case "uint64":
      return "0";
    default:
      return 0;
  }
}

function isDefault(value: unknown, type: ScalarType): boolean {
  return value === defaultOf(type);
}

/** proto3 JSON spells non-finite doubles as strings. */
function jsonNumber(value: number): number | string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "Infinity";
  if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
  return value;
}

/** The shortest decimal that reads back as the same float32, as Python's json_format prints floats. */
function shortestFloat32(value: number): number {
  if (!Number.isFinite(value)) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}
