/**
 * A minimal POSIX ustar (tar) writer and reader, web-standard (Uint8Array and TextEncoder only), for
 * checkpoint archives. The writer emits regular files and directories; the reader reports every
 * entry's type so that a caller can refuse links and other special entries before extracting.
 *
 * Header layout (512 bytes, numbers in octal ASCII): name[100]@0, mode[8]@100, uid[8]@108,
 * gid[8]@116, size[12]@124, mtime[12]@136, chksum[8]@148, typeflag@156, linkname[100]@157,
 * magic "ustar\0"@257, version "00"@263, uname[32]@265, gname[32]@297, devmajor[8]@329,
 * devminor[8]@337, prefix[155]@345. Data follows in 512-byte blocks; two zero blocks end the archive.
 */

const BLOCK = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface TarFileInput {
  /** Path inside the archive, `/`-separated, relative. */
  name: string;
  /** File contents; omit for a directory. */
  data?: Uint8Array;
  /** Default 0o644 for files, 0o755 for directories. */
  mode?: number;
  /** Modification time. Default: the Unix epoch (reproducible archives). */
  mtime?: Date;
}

export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** The raw type flag character ("0", "5", "2", …). */
  typeflag: string;
  mode: number;
  size: number;
  mtime: Date;
  linkname: string;
  /** Contents (empty for everything but files). A view into the archive bytes. */
  data: Uint8Array;
}

export class TarError extends Error {}

/** A ustar archive of `files`, in order. */
export function writeTar(files: readonly TarFileInput[]): Uint8Array {
  let total = 2 * BLOCK;
  for (const file of files) total += BLOCK + padded(file.data?.length ?? 0);
  const out = new Uint8Array(total);
  let position = 0;
  for (const file of files) {
    const isDirectory = file.data === undefined;
    const data = file.data ?? new Uint8Array(0);
    const name = isDirectory && !file.name.endsWith("/") ? `${file.name}/` : file.name;
    writeHeader(out.subarray(position, position + BLOCK), {
      name,
      mode: file.mode ?? (isDirectory ? 0o755 : 0o644),
      size: data.length,
      mtime: Math.floor((file.mtime?.getTime() ?? 0) / 1000),
      typeflag: isDirectory ? "5" : "0",
    });
    position += BLOCK;
    out.set(data, position);
    position += padded(data.length);
  }
  return out;
}

/** A raw header, for tests that need to craft unusual (e.g. malicious) archives. */
export function tarHeader(fields: {
  name: string;
  size: number;
  typeflag?: string;
  linkname?: string;
  mode?: number;
}): Uint8Array {
  const header = new Uint8Array(BLOCK);
  writeHeader(header, {
    name: fields.name,
    mode: fields.mode ?? 0o644,
    size: fields.size,
    mtime: 0,
    typeflag: fields.typeflag ?? "0",
    linkname: fields.linkname,
  });
  return header;
}

function writeHeader(
  header: Uint8Array,
  fields: { name: string; mode: number; size: number; mtime: number; typeflag: string; linkname?: string },
): void {
  const [prefix, name] = splitName(fields.name);
  putString(header, 0, 100, name);
  putOctal(header, 100, 8, fields.mode);
  putOctal(header, 108, 8, 0);
  putOctal(header, 116, 8, 0);
  putOctal(header, 124, 12, fields.size);
  putOctal(header, 136, 12, fields.mtime);
  header.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  putString(header, 156, 1, fields.typeflag);
  putString(header, 157, 100, fields.linkname ?? "");
  putString(header, 257, 6, "ustar\0");
  putString(header, 263, 2, "00");
  putString(header, 345, 155, prefix);
  let sum = 0;
  for (const byte of header) sum += byte;
  putString(header, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
}

/** ustar keeps names over 100 bytes as prefix (≤155) + "/" + name (≤100). */
function splitName(fullName: string): [prefix: string, name: string] {
  const bytes = encoder.encode(fullName).length;
  if (bytes <= 100) return ["", fullName];
  for (let i = fullName.lastIndexOf("/"); i > 0; i = fullName.lastIndexOf("/", i - 1)) {
    const prefix = fullName.slice(0, i);
    const name = fullName.slice(i + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(name).length <= 100 && name !== "") {
      return [prefix, name];
    }
  }
  throw new TarError(`name too long for a ustar archive: ${fullName}`);
}

function putString(header: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new TarError(`tar header field too long: ${text}`);
  header.set(bytes, offset);
}

function putOctal(header: Uint8Array, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, "0");
  if (digits.length > length - 1) throw new TarError(`value ${value} does not fit a tar header`);
  putString(header, offset, length, `${digits}\0`);
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/**
 * Every entry of a tar archive (ustar, with GNU long names and pax `path`/`linkpath`/`size`
 * records applied to the entry they describe). Checks each header's checksum.
 */
export function readTar(bytes: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  let position = 0;
  let pending: { path?: string; linkpath?: string; size?: number } = {};
  while (position + BLOCK <= bytes.length) {
    const header = bytes.subarray(position, position + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    verifyChecksum(header, position);
    const typeflag = String.fromCharCode(header[156] || 0x30);
    let size = readOctal(header, 124, 12);
    if (pending.size !== undefined) size = pending.size;
    const dataStart = position + BLOCK;
    if (dataStart + size > bytes.length) throw new TarError("truncated tar archive");
    const data = bytes.subarray(dataStart, dataStart + size);
    position = dataStart + padded(size);
    if (typeflag === "L") {
      pending.path = readString(data, 0, data.length);
      continue;
    }
    if (typeflag === "K") {
      pending.linkpath = readString(data, 0, data.length);
      continue;
    }
    if (typeflag === "x") {
      pending = { ...pending, ...parsePax(data) };
      continue;
    }
    if (typeflag === "g") continue;
    const prefix = readString(header, 345, 155);
    const shortName = readString(header, 0, 100);
    const name = pending.path ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const linkname = pending.linkpath ?? readString(header, 157, 100);
    pending = {};
    entries.push({
      name,
      type: entryType(typeflag, name),
      typeflag,
      mode: readOctal(header, 100, 8),
      size,
      mtime: new Date(readOctal(header, 136, 12) * 1000),
      linkname,
      data: typeflag === "0" || typeflag === "7" ? data : new Uint8Array(0),
    });
  }
  return entries;
}

function entryType(typeflag: string, name: string): TarEntryType {
  switch (typeflag) {
    case "0":
    case "7":
      return name.endsWith("/") ? "directory" : "file";
    case "5":
      return "directory";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    default:
      return "other";
  }
}

function verifyChecksum(header: Uint8Array, position: number): void {
  const stored = readOctal(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  if (sum !== stored) throw new TarError(`bad tar header checksum at byte ${position}`);
}

function readString(bytes: Uint8Array, offset: number, length: number): string {
  const field = bytes.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

function readOctal(header: Uint8Array, offset: number, length: number): number {
  const text = readString(header, offset, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`bad number in tar header: ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

/** pax extended header records: "<len> <key>=<value>\n". */
function parsePax(data: Uint8Array): { path?: string; linkpath?: string; size?: number } {
  const result: { path?: string; linkpath?: string; size?: number } = {};
  const text = decoder.decode(data);
  let position = 0;
  while (position < text.length) {
    const space = text.indexOf(" ", position);
    if (space < 0) break;
    const length = Number(text.slice(position, space));
    if (!Number.isInteger(length) || length <= 0) throw new TarError("bad pax header");
    const record = text.slice(space + 1, position + length - 1);
    const equals = record.indexOf("=");
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === "path") result.path = value;
    else if (key === "linkpath") result.linkpath = value;
    else if (key === "size") result.size = Number(value);
    position += length;
  }
  return result;
}
