/**
 * Episodes turned into training sequences and datums for the policy-gradient losses.
 *
 * A multi-step episode whose every observation extends the previous observation + action (a growing
 * conversation) becomes ONE sequence: observation tokens get logprob 0, advantage 0 and mask 0 (the
 * policy did not choose them), action tokens their sampled logprob, the episode's advantage and
 * mask 1. An observation that does not extend the sequence so far (the env rewrote the context)
 * closes it and starts another, so nothing the policy did not see in that order is trained on.
 */
import { datum, ModelInput } from "../../lib/model-input.js";
import type { Datum } from "../../wire/types.js";
import type { Episode } from "./env.js";

/** One training sequence, every array aligned with `tokens` (before the input/target shift). */
export interface TrainingSequence {
  readonly tokens: readonly number[];
  /** Sampled logprob on action tokens, 0 elsewhere. */
  readonly logprobs: readonly number[];
  /** Per-token advantage: the episode's on action tokens (plus any KL shaping), 0 elsewhere. */
  readonly advantages: readonly number[];
  /** 1 on action tokens, 0 on observation tokens. */
  readonly mask: readonly number[];
}

function extendsSequence(sequence: readonly number[], observation: readonly number[]): boolean {
  if (observation.length < sequence.length) return false;
  for (let i = 0; i < sequence.length; i++) if (sequence[i] !== observation[i]) return false;
  return true;
}

/** The episode's training sequences, each action token carrying `advantage`. */
export function episodeToSequences(episode: Episode, advantage: number): TrainingSequence[] {
  const sequences: TrainingSequence[] = [];
  let tokens: number[] = [];
  let logprobs: number[] = [];
  let advantages: number[] = [];
  let mask: number[] = [];
  const close = () => {
    if (tokens.length > 0) sequences.push({ tokens, logprobs, advantages, mask });
    tokens = [];
    logprobs = [];
    advantages = [];
    mask = [];
  };
  for (const transition of episode.transitions) {
    let delta: readonly number[];
    if (extendsSequence(tokens, transition.observation)) {
      delta = transition.observation.slice(tokens.length);
    } else {
      close();
      delta = transition.observation;
    }
    const zeros = new Array<number>(delta.length).fill(0);
    const n = transition.action.length;
    tokens.push(...delta, ...transition.action);
    logprobs.push(...zeros, ...transition.logprobs);
    advantages.push(...zeros, ...new Array<number>(n).fill(advantage));
    mask.push(...zeros, ...new Array<number>(n).fill(1));
  }
  close();
  return sequences;
}

/**
 * The datum of a sequence: model_input = tokens[:-1], target_tokens = tokens[1:], and logprobs /
 * advantages shifted the same way (the first token is context only). Undefined for a sequence
 * with no action token among its targets: it would train nothing.
 */
export function sequenceToDatum(sequence: TrainingSequence): Datum | undefined {
  if (sequence.tokens.length < 2 || !sequence.mask.slice(1).some((m) => m > 0)) return undefined;
  return datum(ModelInput.fromInts(sequence.tokens.slice(0, -1)), {
    target_tokens: sequence.tokens.slice(1),
    logprobs: sequence.logprobs.slice(1),
    advantages: sequence.advantages.slice(1),
  });
}

/** Action tokens (mask 1) of the sequences. */
export function actionTokenCount(sequences: readonly TrainingSequence[]): number {
  let total = 0;
  for (const s of sequences) for (const m of s.mask) total += m;
  return total;
}
