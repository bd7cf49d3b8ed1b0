/**
 * JSONL input with web standards only: a `ReadableStream` (a `fetch` body, `Blob.stream()`, Node's
 * `Readable.toWeb(...)`), any (async) iterable of chunks, or a whole string. Records come out with
 * their line numbers, and every error names the line (1-based, blank lines counted), so a bad
 * record in a large file is found at once.
 */
import { ValidationError } from "../../core/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import type { Datum } from "../../wire/types.js";
import type { ChatMessage, Renderer } from "../renderers/index.js";
import {
  type BuiltDataset,
  buildDataset,
  type ConversationDatasetOptions,
  conversationDatum,
  type PromptCompletion,
  type PromptCompletionDatasetOptions,
  promptCompletionDatum,
} from "./builders.js";
import { validateDatasetOptions } from "./dataset.js";

/** Bytes or text, in chunks of any size (split into lines here), or one whole string. */
export type JsonlSource =
  | string
  | ReadableStream<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>;

export interface ReadJsonlOptions {
  /**
   * Each chunk is one line (as from a line reader such as Node's `readline`), not a piece of a
   * text to split at newlines. Default false.
   */
  linePerChunk?: boolean;
  /** Stops reading (the stream is cancelled) with the signal's reason. */
  signal?: AbortSignal;
}

export interface JsonlRecord {
  /** 1-based line number in the input. */
  line: number;
  value: unknown;
}

/**
 * The JSON value of every non-blank line. Invalid UTF-8 or JSON is a ValidationError whose path is
 * `line N`. A stream is read as the records are consumed, and released (cancelled) if the consumer
 * stops early.
 */
export async function* readJsonl(
  source: JsonlSource,
  options: ReadJsonlOptions = {},
): AsyncGenerator<JsonlRecord> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const encoder = new TextEncoder();
  let line = 0;
  // Lines are cut on the bytes, before decoding: a newline byte never occurs inside a multi-byte
  // UTF-8 character, and a line decoded on its own pins an encoding error to its line.
  const parse = (bytes: Uint8Array): JsonlRecord | undefined => {
    line++;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new ValidationError([{ path: `line ${line}`, message: "is not valid UTF-8" }]);
    }
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") return undefined;
    try {
      return { line, value: JSON.parse(text) };
    } catch (error) {
      throw new ValidationError([
        { path: `line ${line}`, message: `is not valid JSON (${(error as Error).message})` },
      ]);
    }
  };
  /** The current line's bytes from earlier chunks, joined once its newline arrives. */
  let carried: Uint8Array[] = [];
  const take = (tail: Uint8Array): Uint8Array => {
    if (carried.length === 0) return tail;
    const parts = [...carried, tail];
    carried = [];
    const joined = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let at = 0;
    for (const part of parts) {
      joined.set(part, at);
      at += part.length;
    }
    return joined;
  };
  for await (const chunk of chunksOf(source)) {
    options.signal?.throwIfAborted();
    if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) {
      throw new ValidationError([
        { path: "source", message: `must yield strings or Uint8Arrays, got ${describe(chunk)}` },
      ]);
    }
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    if (options.linePerChunk) {
      const record = parse(bytes.at(-1) === NEWLINE ? bytes.subarray(0, -1) : bytes);
      if (record) yield record;
      continue;
    }
    let start = 0;
    for (let newline = bytes.indexOf(NEWLINE); newline >= 0; newline = bytes.indexOf(NEWLINE, start)) {
      const record = parse(take(bytes.subarray(start, newline)));
      start = newline + 1;
      if (record) yield record;
    }
    if (start < bytes.length) carried.push(bytes.slice(start));
  }
  if (carried.length > 0) {
    const record = parse(take(new Uint8Array(0)));
    if (record) yield record;
  }
}

const NEWLINE = 0x0a;

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/**
 * The chunks of a source as an async iterable. A ReadableStream is read with a reader (async
 * iteration of streams is missing in some runtimes) and cancelled when the reading stops early.
 */
async function* chunksOf(source: JsonlSource): AsyncGenerator<Uint8Array | string> {
  if (typeof source === "string") {
    yield source;
    return;
  }
  if (typeof ReadableStream !== "undefined" && source instanceof ReadableStream) {
    const reader = source.getReader();
    let done = false;
    try {
      while (true) {
        const next = await reader.read();
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!done) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
  if (source !== null && typeof source === "object") {
    if (Symbol.asyncIterator in source) {
      yield* source as AsyncIterable<Uint8Array | string>;
      return;
    }
    if (Symbol.iterator in source) {
      yield* source as Iterable<Uint8Array | string>;
      return;
    }
  }
  throw new ValidationError([
    {
      path: "source",
      message: "must be a string, a ReadableStream, or an (async) iterable of strings or Uint8Arrays",
    },
  ]);
}

/** The messages of a conversation record, `{ "messages": [{ "role", "content" }, …] }`. */
export function conversationFromRecord(value: unknown): ChatMessage[] {
  const messages = (value as { messages?: unknown } | null)?.messages;
  if (typeof value !== "object" || value === null || !Array.isArray(messages)) {
    throw new ValidationError([{ path: "messages", message: 'must be an array: { "messages": [...] }' }]);
  }
  // The renderer checks each message's role and content, with paths like messages[1].role.
  return messages as ChatMessage[];
}

/** A prompt/completion record, `{ "prompt": "...", "completion": "..." }`. */
export function promptCompletionFromRecord(value: unknown): PromptCompletion {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError([{ path: "", message: 'must be an object { "prompt", "completion" }' }]);
  }
  const { prompt, completion } = value as Record<string, unknown>;
  const issues = [];
  if (typeof prompt !== "string") issues.push({ path: "prompt", message: "must be a string" });
  if (typeof completion !== "string") issues.push({ path: "completion", message: "must be a string" });
  if (issues.length > 0) throw new ValidationError(issues);
  return { prompt: prompt as string, completion: completion as string };
}

export type JsonlDatasetOptions = ReadJsonlOptions &
  (
    | ({
        /** `{ "messages": [...] }` lines, rendered with `renderer`. */
        format: "conversations";
        /** Renders the conversations (e.g. `getRenderer("role_colon", tokenizer)`). */
        renderer: Renderer;
      } & ConversationDatasetOptions)
    | ({
        /** `{ "prompt": "...", "completion": "..." }` lines, encoded with `tokenizer`. */
        format: "prompt_completion";
        /** Encodes prompts and completions. */
        tokenizer: Tokenizer;
      } & PromptCompletionDatasetOptions)
  );

/**
 * A dataset from a JSONL source: `format: "conversations"` reads `{ "messages": [...] }` lines and
 * renders them with `renderer`; `format: "prompt_completion"` reads `{ "prompt", "completion" }`
 * lines and encodes them with `tokenizer`. Options are checked before the source is read; a bad
 * line (JSON, record shape, or a datum that cannot be built) is a ValidationError naming it.
 */
export async function datasetFromJsonl(
  source: JsonlSource,
  options: JsonlDatasetOptions,
): Promise<BuiltDataset> {
  validateDatasetOptions(options);
  const toDatum = jsonlDatum(options);
  const records: { line: number; value: unknown }[] = [];
  for await (const record of readJsonl(source, options)) records.push(record);
  if (records.length === 0) {
    throw new ValidationError([{ path: "source", message: "has no records (every line is blank)" }]);
  }
  return buildDataset(
    records,
    (record) => toDatum(record.value),
    (i) => `line ${records[i]!.line}`,
    options,
  );
}

function jsonlDatum(options: JsonlDatasetOptions): (value: unknown) => Datum {
  if (options.format === "conversations") {
    if (typeof options.renderer?.buildSupervisedExample !== "function") {
      throw new ValidationError([{ path: "options.renderer", message: "must be a Renderer (getRenderer)" }]);
    }
    const build = conversationDatum(options.renderer, options);
    return (value) => build(conversationFromRecord(value));
  }
  if (options.format === "prompt_completion") {
    if (typeof options.tokenizer?.encode !== "function") {
      throw new ValidationError([{ path: "options.tokenizer", message: "must be a Tokenizer" }]);
    }
    const build = promptCompletionDatum(options.tokenizer, options);
    return (value) => build(promptCompletionFromRecord(value));
  }
  throw new ValidationError([
    {
      path: "options.format",
      message: `must be "conversations" or "prompt_completion", got ${String((options as { format?: unknown }).format)}`,
    },
  ]);
}
