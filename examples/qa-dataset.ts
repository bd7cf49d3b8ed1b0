/**
 * The quickstart's built-in data: a dozen question → answer pairs, rendered as byte tokens the way
 * the quickstart, the engine benchmark and the learning tests all train on them.
 */
import { BOS_TOKEN, encodeText } from "tinker-ts/local";

export const QA_PAIRS: readonly { question: string; answer: string }[] = [
  { question: "What is the capital of France?", answer: "Paris" },
  { question: "What color is the sky?", answer: "Blue" },
  { question: "How many legs does a spider have?", answer: "Eight" },
  { question: "What is 2 + 2?", answer: "Four" },
  { question: "Who wrote Hamlet?", answer: "Shakespeare" },
  { question: "What is the largest planet?", answer: "Jupiter" },
  { question: "What do bees make?", answer: "Honey" },
  { question: "What is frozen water called?", answer: "Ice" },
  { question: "Which animal says moo?", answer: "Cow" },
  { question: "What is the opposite of hot?", answer: "Cold" },
  { question: "How many days are in a week?", answer: "Seven" },
  { question: "What gas do plants absorb?", answer: "Carbon dioxide" },
];

/** `<|bos|>Q: …\nA:` as token ids: what the model sees before answering. */
export function promptTokens(question: string): number[] {
  return [BOS_TOKEN, ...encodeText(`Q: ${question}\nA:`)];
}

/**
 * A next-token example: input = tokens[:-1], target = tokens[1:], weight 1 only where the target
 * is part of the answer (` <answer>\n`), so the loss is on the answer alone.
 */
export function supervisedExample(
  question: string,
  answer: string,
): { input: number[]; targets: number[]; weights: number[] } {
  const prompt = promptTokens(question);
  const tokens = [...prompt, ...encodeText(` ${answer}\n`)];
  const targets = tokens.slice(1);
  return {
    input: tokens.slice(0, -1),
    targets,
    weights: targets.map((_, i) => (i + 1 < prompt.length ? 0 : 1)),
  };
}
