import type { ModelInput } from "../../wire/types.js";
import { HttpError } from "../responses.js";

/** Clients before 0.18 omit the chunk `type`; a chunk with `tokens` is text. */
export function normalizeModelInput(value: unknown, path: string): ModelInput {
  const chunks = (value as { chunks?: unknown })?.chunks;
  if (!Array.isArray(chunks)) throw new HttpError(400, `${path}.chunks must be an array`);
  return {
    chunks: chunks.map((chunk: unknown, i) => {
      if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk)) {
        throw new HttpError(400, `${path}.chunks[${i}] must be an object`);
      }
      const { type, tokens } = chunk as { type?: unknown; tokens?: unknown };
      return type === undefined && Array.isArray(tokens)
        ? { type: "encoded_text", tokens: tokens as number[] }
        : (chunk as ModelInput["chunks"][number]);
    }),
  };
}

/** How many tokens a model input's text chunks hold (other chunks are refused later, by the engine). */
export function textTokenCount(input: ModelInput): number {
  let count = 0;
  for (const chunk of input.chunks) {
    const tokens = (chunk as { tokens?: unknown }).tokens;
    if (Array.isArray(tokens)) count += tokens.length;
  }
  return count;
}
