/**
 * The safetensors format (https://huggingface.co/docs/safetensors), F32 tensors only, web-standard:
 *
 *   bytes 0..7   u64 little-endian N, the byte length of the header
 *   8..8+N       UTF-8 JSON: { "__metadata__": {string: string}, "<name>": { "dtype": "F32",
 *                "shape": [..], "data_offsets": [begin, end] }, … }, padded with spaces to a
 *                multiple of 8 so the data that follows is aligned
 *   8+N..        the tensors' raw little-endian bytes; offsets are relative to this point
 */

export interface SafetensorInput {
  name: string;
  shape: number[];
  /** Row-major values; written as float32. */
  data: ArrayLike<number>;
}

export interface Safetensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {}

export function encodeSafetensors(
  tensors: readonly SafetensorInput[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (count !== tensor.data.length) {
      throw new SafetensorsError(
        `tensor ${tensor.name}: shape [${tensor.shape}] needs ${count} values, got ${tensor.data.length}`,
      );
    }
    if (tensor.name === "__metadata__" || tensor.name in header) {
      throw new SafetensorsError(`duplicate or reserved tensor name ${tensor.name}`);
    }
    header[tensor.name] = { dtype: "F32", shape: tensor.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  let json = JSON.stringify(header);
  const jsonLength = new TextEncoder().encode(json).length;
  json += " ".repeat((8 - (jsonLength % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const tensor of tensors) {
    for (let i = 0; i < tensor.data.length; i++) {
      view.setFloat32(position, tensor.data[i], true);
      position += 4;
    }
  }
  return out;
}

/** The tensors (F32 only) and metadata of a safetensors file, validating offsets. */
export function decodeSafetensors(bytes: Uint8Array): {
  tensors: Safetensor[];
  metadata: Record<string, string>;
} {
  if (bytes.length < 8) throw new SafetensorsError("file too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new SafetensorsError("header length exceeds the file");
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw new SafetensorsError("header is not JSON");
  }
  const dataStart = 8 + headerLength;
  const tensors: Safetensor[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    if (info.dtype !== "F32") throw new SafetensorsError(`tensor ${name}: unsupported dtype ${info.dtype}`);
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4 || dataStart + end > bytes.length || begin < 0) {
      throw new SafetensorsError(`tensor ${name}: bad data_offsets`);
    }
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(dataStart + begin + i * 4, true);
    tensors.push({ name, dtype: info.dtype, shape: info.shape, data });
  }
  return { tensors, metadata };
}
