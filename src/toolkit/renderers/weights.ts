/**
 * Loss weights of a rendered conversation by `trainOnWhat`, as the Tinker cookbook assigns them: the
 * header of a message (`<|im_start|>assistant\n`, what the generation prompt supplies) is never
 * trained; its content and end-of-turn token are.
 */

import { ValidationError } from "../../core/errors.js";
import type { RenderedTokens } from "./token-builder.js";
import type { MultimodalMessage, SupervisedExample, TrainOnWhat } from "./types.js";

const TRAIN_ON_WHAT: readonly TrainOnWhat[] = [
  "last_assistant_message",
  "all_assistant_messages",
  "all_messages",
  "all_tokens",
];

export function checkTrainOnWhat(value: unknown): TrainOnWhat {
  if (value === undefined) return "last_assistant_message";
  if (!TRAIN_ON_WHAT.includes(value as TrainOnWhat)) {
    throw new ValidationError([
      {
        path: "options.trainOnWhat",
        message: `must be one of ${TRAIN_ON_WHAT.join(", ")}; got ${String(value)}`,
      },
    ]);
  }
  return value as TrainOnWhat;
}

/** Which messages' content is trained, as a predicate over message indices. */
export function trainedMessages(
  messages: readonly MultimodalMessage[],
  trainOnWhat: TrainOnWhat,
): (index: number) => boolean {
  if (trainOnWhat === "all_messages" || trainOnWhat === "all_tokens") return () => true;
  let lastAssistant = -1;
  for (let i = 0; i < messages.length; i++) if (messages[i]!.role === "assistant") lastAssistant = i;
  if (lastAssistant < 0) {
    throw new ValidationError([
      { path: "messages", message: `trainOnWhat "${trainOnWhat}" needs an assistant message to train on` },
    ]);
  }
  if (trainOnWhat === "last_assistant_message") return (index) => index === lastAssistant;
  return (index) => messages[index]?.role === "assistant";
}

export function supervisedExampleOf(
  rendered: RenderedTokens,
  messages: readonly MultimodalMessage[],
  trainOnWhat: TrainOnWhat,
): SupervisedExample {
  const tokens = rendered.tokens;
  if (trainOnWhat === "all_tokens") return { tokens, weights: tokens.map(() => 1) };
  const trained = trainedMessages(messages, trainOnWhat);
  const weights = tokens.map((_, i) => (rendered.isContent[i] && trained(rendered.messageOf[i]!) ? 1 : 0));
  return { tokens, weights };
}
