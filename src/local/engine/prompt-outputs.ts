/**
 * What a sample request can ask about its prompt, all read from the logits of its one prefill
 * pass, whose row i is the model's next-token distribution after prompt[0..i] — its prediction
 * for prompt position i + 1:
 *
 * - `logprobs` (prompt_logprobs): log p(prompt[i] | prompt[0..i)) per position, null at 0;
 * - `topK` (topk_prompt_logprobs): the k most likely [token, logprob] pairs per position, null at 0;
 * - `targets` (target_prompt_logprobs): a [len − 1, K] matrix of token ids; cell [i][j] asks for
 *   the logprob of that id at position i + 1, −1 skips the cell (its answer is 0.0);
 * - `altTokensK` (prompt_alt_tokens_k): k independent draws per position i + 1 at the request's
 *   temperature, with their logprobs.
 *
 * Every logprob is untempered (log-softmax of the raw logits), as everywhere in the engine. The
 * alternative tokens are drawn from softmax(logits / temperature) over the whole vocabulary:
 * top_k and top_p shape generation only. Temperature 0 means greedy, as for generation: all k
 * draws are the argmax. The draws come from their own stream of the request's seed (label
 * PROMPT_ALT_TOKENS_STREAM), so they are reproducible and do not change the generated samples.
 */

import { EngineError } from "./errors.js";
import { logSoftmax } from "./linalg.js";
import { argmax, topEntries } from "./ranking.js";
import { deriveSeed, Rng, type Seed } from "./rng.js";

/** A row-major matrix. */
export interface Matrix<Data extends ArrayLike<number>> {
  readonly rows: number;
  readonly cols: number;
  readonly data: Data;
}

export interface PromptOutputRequest {
  /** prompt_logprobs. */
  logprobs?: boolean;
  /** topk_prompt_logprobs; 0 = none. */
  topK?: number;
  /** target_prompt_logprobs: token ids [len(prompt) − 1, K], −1 = skip. */
  targets?: Matrix<ArrayLike<number>>;
  /** prompt_alt_tokens_k; 0 = none. */
  altTokensK?: number;
}

export interface PromptOutputs {
  logprobs?: (number | null)[];
  topk?: ([number, number][] | null)[];
  /** Same shape as the request's targets; 0.0 in the −1 cells. */
  targetLogprobs?: Matrix<Float64Array>;
  /** tokens and their untempered logprobs, both [len(prompt) − 1, k]. */
  altTokens?: { tokens: Matrix<Int32Array>; logprobs: Matrix<Float64Array> };
}

/** The randomness of the alternative-token draws: the request's temperature and (resolved) seed. */
export interface DrawSettings {
  temperature: number;
  seed: Seed;
}

/** Upper bound on prompt_alt_tokens_k, so one request cannot allocate without limit. */
export const MAX_PROMPT_ALT_TOKENS_K = 1024;

/**
 * The seed-derivation label of the alternative-token stream. deriveSeed reduces it to 2^64 − 1,
 * a label no sample index (the labels of the generation streams) ever reaches.
 */
export const PROMPT_ALT_TOKENS_STREAM = -1;

const SKIP = -1;

/** Checks a request against the prompt before any model work; throws EngineError. */
export function validatePromptOutputRequest(
  request: PromptOutputRequest,
  promptLength: number,
  vocabSize: number,
): void {
  const { topK = 0, altTokensK = 0, targets } = request;
  if (!Number.isInteger(topK) || topK < 0) {
    throw new EngineError(`topk_prompt_logprobs must be a non-negative integer, got ${topK}`);
  }
  if (!Number.isInteger(altTokensK) || altTokensK < 0 || altTokensK > MAX_PROMPT_ALT_TOKENS_K) {
    throw new EngineError(
      `prompt_alt_tokens_k must be an integer in [0, ${MAX_PROMPT_ALT_TOKENS_K}], got ${altTokensK}`,
    );
  }
  if (targets !== undefined) validateTargets(targets, promptLength, vocabSize);
}

function validateTargets(targets: Matrix<ArrayLike<number>>, promptLength: number, vocabSize: number) {
  const { rows, cols, data } = targets;
  const fail = (reason: string) => new EngineError(`target_prompt_logprobs: ${reason}`);
  if (rows !== promptLength - 1) {
    throw fail(
      `needs len(prompt) - 1 = ${promptLength - 1} rows (one per position after the first), got ${rows}`,
    );
  }
  if (!Number.isInteger(cols) || cols < 1) throw fail(`needs at least one column, got ${cols}`);
  if (data.length !== rows * cols)
    throw fail(`shape [${rows}, ${cols}] does not match ${data.length} values`);
  let named = 0;
  for (let cell = 0; cell < data.length; cell++) {
    const id = data[cell];
    if (id === SKIP) continue;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      const at = `[${Math.floor(cell / cols)}][${cell % cols}]`;
      throw fail(`cell ${at} is ${id}, neither -1 (skip) nor a token id in [0, ${vocabSize})`);
    }
    named++;
  }
  if (named === 0) throw fail("names no token id (every cell is -1)");
}

/** Whether the request needs the logits of every prompt position (not just the last). */
export function needsPromptRows(request: PromptOutputRequest): boolean {
  return (
    request.logprobs === true ||
    (request.topK ?? 0) > 0 ||
    request.targets !== undefined ||
    (request.altTokensK ?? 0) > 0
  );
}

/**
 * `count` draws from softmax(row / temperature) into tokens/logprobs at `at`. The arithmetic —
 * weights exp((logit − max) / T) summed in id order, u = uniform · total, first id whose running
 * sum exceeds u — is the sampler's (chooseToken without top-k/top-p), so the same stream gives
 * the same tokens; the running sums are kept so each draw is a binary search.
 */
function drawFromRow(
  logits: Float64Array,
  offset: number,
  vocabSize: number,
  logprobRow: Float64Array,
  settings: DrawSettings,
  rng: Rng | null,
  count: number,
  tokens: Int32Array,
  logprobs: Float64Array,
  at: number,
): void {
  const best = argmax(logits, offset, vocabSize);
  if (settings.temperature === 0 || rng === null) {
    tokens.fill(best, at, at + count);
    logprobs.fill(logprobRow[best], at, at + count);
    return;
  }
  const cumulative = new Float64Array(vocabSize);
  const maxLogit = logits[offset + best];
  let total = 0;
  for (let i = 0; i < vocabSize; i++) {
    total += Math.exp((logits[offset + i] - maxLogit) / settings.temperature);
    cumulative[i] = total;
  }
  for (let d = 0; d < count; d++) {
    const u = rng.nextFloat() * total;
    // Smallest id with u < cumulative[id]; the last id if rounding leaves none (as the sampler).
    let low = 0;
    let high = vocabSize - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (u < cumulative[mid]) high = mid;
      else low = mid + 1;
    }
    tokens[at + d] = low;
    logprobs[at + d] = logprobRow[low];
  }
}

/**
 * The requested outputs from prefill logits [len(prompt), vocabSize] (one row per prompt
 * position). `request` must have passed validatePromptOutputRequest; `draw` is needed only for
 * alternative tokens.
 */
export function promptOutputs(
  logits: Float64Array,
  prompt: readonly number[],
  vocabSize: number,
  request: PromptOutputRequest,
  draw?: DrawSettings,
): PromptOutputs {
  const V = vocabSize;
  const positions = prompt.length - 1; // positions after the first
  const topK = request.topK ?? 0;
  const altK = request.altTokensK ?? 0;
  const { targets } = request;
  const outputs: PromptOutputs = {};
  if (request.logprobs) outputs.logprobs = [null];
  if (topK > 0) outputs.topk = [null];
  const targetData = targets ? new Float64Array(targets.rows * targets.cols) : null;
  const altTokens = new Int32Array(positions * altK);
  const altLogprobs = new Float64Array(positions * altK);
  let rng: Rng | null = null;
  if (altK > 0) {
    if (!draw) throw new Error("internal: alternative tokens need draw settings");
    if (draw.temperature > 0) rng = new Rng(deriveSeed(draw.seed, PROMPT_ALT_TOKENS_STREAM));
  }

  const row = new Float64Array(V);
  for (let i = 0; i < positions; i++) {
    let rowTargets = false;
    if (targets) {
      for (let j = 0; j < targets.cols && !rowTargets; j++)
        rowTargets = targets.data[i * targets.cols + j] !== SKIP;
    }
    // Rows that no output reads (e.g. before the first target id) are not scored.
    if (!request.logprobs && topK === 0 && altK === 0 && !rowTargets) continue;
    logSoftmax(logits, i * V, V, row, 0);
    outputs.logprobs?.push(row[prompt[i + 1]]);
    outputs.topk?.push(topEntries(row, topK));
    if (targets && targetData && rowTargets) {
      for (let j = 0; j < targets.cols; j++) {
        const id = targets.data[i * targets.cols + j];
        if (id !== SKIP) targetData[i * targets.cols + j] = row[id];
      }
    }
    if (altK > 0) drawFromRow(logits, i * V, V, row, draw!, rng, altK, altTokens, altLogprobs, i * altK);
  }

  if (targets && targetData)
    outputs.targetLogprobs = { rows: targets.rows, cols: targets.cols, data: targetData };
  if (altK > 0) {
    outputs.altTokens = {
      tokens: { rows: positions, cols: altK, data: altTokens },
      logprobs: { rows: positions, cols: altK, data: altLogprobs },
    };
  }
  return outputs;
}
