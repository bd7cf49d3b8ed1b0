import type { ModelInput } from "../../wire/types.js";
import { HttpError } from "../responses.js";

/** Clients before 0.18 omit the chunk `type`; a chunk with `tokens` is text. */
export function normalizeModelInput(value: unknown, path: string): ModelInput {
  const chunks = (value as { chunks?: unknown })?.chunks;
  if (!Array.isArray(chunks)) throw new HttpError(400, `${path}.chunks must be an array`);
  return {
    chunks: chunks.map((chunk: Record<string, unknown>) =>
      chunk.type === undefined && Array.isArray(chunk.tokens)
        ? { type: "encoded_text", tokens: chunk.tokens as number[] }
        : (chunk as unknown as ModelInput["chunks"][number]),
    ),
  };
}
