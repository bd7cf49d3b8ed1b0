/**
 * A message's content as a run of pieces — text, and images as their caller-supplied token chunks —
 * for the families whose templates take content lists.
 */

import { pyLstrip, pyRstrip } from "./text.js";
import type { TokenBuilder, TokenLabel } from "./token-builder.js";
import type { MultimodalMessage } from "./types.js";

/** Text, or an image's token ids. */
export type Piece = string | { image: readonly number[] };

export function pieces(content: MultimodalMessage["content"]): Piece[] {
  if (typeof content === "string") return [content];
  // checkMessages has made sure every image carries its tokens.
  return content.map((part) => (part.type === "text" ? part.text : { image: part.tokens ?? [] }));
}

/** Python's `strip()` of the rendered content: whitespace at either end, up to the first image. */
export function trimPieces(run: readonly Piece[]): Piece[] {
  const out = [...run];
  while (typeof out[0] === "string" && pyLstrip(out[0]) === "") out.shift();
  if (typeof out[0] === "string") out[0] = pyLstrip(out[0]);
  while (typeof out.at(-1) === "string" && pyRstrip(out.at(-1) as string) === "") out.pop();
  if (typeof out.at(-1) === "string") out[out.length - 1] = pyRstrip(out.at(-1) as string);
  return out;
}

/** The text of a run when it has no images, else undefined. */
export function textOf(run: readonly Piece[]): string | undefined {
  return run.every((p) => typeof p === "string") ? run.join("") : undefined;
}

/** Writes a run; `wrap` gives an image's tokens with the family's markers around them (ids or text). */
export function writePieces(
  out: TokenBuilder,
  run: readonly Piece[],
  label: TokenLabel,
  wrap: (image: readonly number[]) => (readonly number[] | string)[],
): void {
  for (const piece of run) {
    if (typeof piece === "string") out.text(piece, label);
    else
      for (const part of wrap(piece.image))
        typeof part === "string" ? out.text(part, label) : out.ids(part, label);
  }
}
