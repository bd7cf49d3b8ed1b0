/**
 * Supervised datasets: a fixed list of datums cut into batches, reshuffled every epoch.
 *
 * The batch of a step is a pure function of (seed, epoch, index in the epoch): no iterator state,
 * nothing to save. A run resumed at step k asks for the same batches the uninterrupted run got from
 * step k on, and a checkpoint's step count is all the "dataset position" there is
 * (`position(step)` gives the epoch and the batch within it).
 */
import { ValidationError, type ValidationIssue } from "../../core/errors.js";
import { mulberry32 } from "../../internal/random.js";
import type { Datum } from "../../wire/types.js";

export interface SupervisedDatasetOptions {
  /** Datums per batch (per training step). */
  batchSize: number;
  /** Seed of the per-epoch shuffles (and of the held-out split of the builders). Default 0. */
  seed?: number;
  /** Reshuffle every epoch (default true); false keeps the given order in every epoch. */
  shuffle?: boolean;
  /**
   * Leave out an epoch's last batch when it would be smaller than `batchSize` (default false: it is
   * a smaller batch). With shuffling, different examples are left out in different epochs.
   */
  dropLast?: boolean;
}

/** Where a step is in the data: its epoch and the index of its batch within that epoch. */
export interface DatasetPosition {
  epoch: number;
  batch: number;
}

/** One step's batch, as `batches` yields it. */
export interface DatasetBatch extends DatasetPosition {
  /** The step index over the whole run: epoch · batchesPerEpoch + batch. */
  step: number;
  data: Datum[];
}

export interface SupervisedDataset {
  readonly examples: readonly Datum[];
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  /** Steps per epoch: ⌈examples / batchSize⌉, or ⌊…⌋ with dropLast. At least 1. */
  readonly batchesPerEpoch: number;
  /** The order of the examples in an epoch (indices into `examples`). */
  order(epoch: number): number[];
  /** The `index`-th batch of epoch `epoch`. */
  batch(epoch: number, index: number): Datum[];
  /** The epoch and batch of step `step` (0-based, counted over the run). */
  position(step: number): DatasetPosition;
  /** The batches of steps `fromStep` … `toStep - 1`, in order, across epoch boundaries. */
  batches(fromStep: number, toStep: number): Generator<DatasetBatch>;
}

/** Seed streams, so the held-out split and the epoch orders never draw the same numbers. */
const EPOCH_STREAM = 1;
const SPLIT_STREAM = 2;

/** Mixes integers into one 32-bit PRNG seed (murmur3's finaliser over each part in turn). */
function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    // Both halves of a safe integer count, so seeds above 2^32 are not folded onto small ones.
    for (const word of [part >>> 0, Math.floor(part / 2 ** 32) >>> 0]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** A seeded permutation of 0 … n-1 (Fisher–Yates). */
export function seededPermutation(n: number, seed: number, ...stream: number[]): number[] {
  const random = mulberry32(mixSeed(seed, ...stream));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function datasetOptionIssues(options: SupervisedDatasetOptions): ValidationIssue[] {
  if (typeof options !== "object" || options === null) {
    return [{ path: "options", message: "must be an object with batchSize" }];
  }
  const issues: ValidationIssue[] = [];
  const { batchSize, seed, shuffle, dropLast } = options;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1)) {
    issues.push({ path: "options.batchSize", message: `must be an integer ≥ 1, got ${String(batchSize)}` });
  }
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) {
    issues.push({ path: "options.seed", message: `must be an integer ≥ 0, got ${String(seed)}` });
  }
  if (shuffle !== undefined && typeof shuffle !== "boolean") {
    issues.push({ path: "options.shuffle", message: "must be a boolean" });
  }
  if (dropLast !== undefined && typeof dropLast !== "boolean") {
    issues.push({ path: "options.dropLast", message: "must be a boolean" });
  }
  return issues;
}

/** Checks dataset options on their own (the builders call it before reading any input). */
export function validateDatasetOptions(options: SupervisedDatasetOptions): void {
  const issues = datasetOptionIssues(options);
  if (issues.length > 0) throw new ValidationError(issues);
}

function checkIndex(value: number, name: string, below?: number): void {
  if (!(Number.isSafeInteger(value) && value >= 0 && (below === undefined || value < below))) {
    const range = below === undefined ? "≥ 0" : `in [0, ${below - 1}]`;
    throw new ValidationError([{ path: name, message: `must be an integer ${range}, got ${String(value)}` }]);
  }
}

/** A dataset over `examples` (kept as given; the datums are not copied). */
export function supervisedDataset(
  examples: readonly Datum[],
  options: SupervisedDatasetOptions,
): SupervisedDataset {
  const issues = datasetOptionIssues(options);
  if (!Array.isArray(examples) || examples.length === 0) {
    issues.unshift({ path: "examples", message: "must be a non-empty array of datums" });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  const { batchSize, seed = 0, shuffle = true, dropLast = false } = options;
  const n = examples.length;
  const batchesPerEpoch = dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  if (batchesPerEpoch === 0) {
    throw new ValidationError([
      {
        path: "options.batchSize",
        message: `is ${batchSize} but there are only ${n} examples: with dropLast an epoch has no batch`,
      },
    ]);
  }
  // The last epoch's order is kept: a run asks for the batches of one epoch in a row.
  let cached: { epoch: number; order: number[] } | undefined;
  const orderOf = (epoch: number): readonly number[] => {
    checkIndex(epoch, "epoch");
    if (cached?.epoch !== epoch) {
      const drawn = shuffle
        ? seededPermutation(n, seed, EPOCH_STREAM, epoch)
        : Array.from({ length: n }, (_, i) => i);
      cached = { epoch, order: drawn };
    }
    return cached.order;
  };
  const batch = (epoch: number, index: number): Datum[] => {
    checkIndex(index, "index", batchesPerEpoch);
    const indices = orderOf(epoch).slice(index * batchSize, (index + 1) * batchSize);
    return indices.map((i) => examples[i]!);
  };
  const position = (step: number): DatasetPosition => {
    checkIndex(step, "step");
    return { epoch: Math.floor(step / batchesPerEpoch), batch: step % batchesPerEpoch };
  };
  return {
    examples,
    batchSize,
    seed,
    shuffle,
    dropLast,
    batchesPerEpoch,
    order: (epoch) => [...orderOf(epoch)],
    batch,
    position,
    *batches(fromStep: number, toStep: number): Generator<DatasetBatch> {
      checkIndex(fromStep, "fromStep");
      checkIndex(toStep, "toStep");
      for (let step = fromStep; step < toStep; step++) {
        const { epoch, batch: index } = position(step);
        yield { step, epoch, batch: index, data: batch(epoch, index) };
      }
    },
  };
}

/** A held-out split: a count of examples, or a fraction of them (rounded, at least 1). */
export type HeldOut = number | { fraction: number };

/**
 * Splits `items` into a training part and a held-out part of the size `heldOut` says, chosen by a
 * seeded draw; both parts keep the items' original order. Both must end up non-empty.
 */
export function splitHeldOut<T>(
  items: readonly T[],
  heldOut: HeldOut,
  seed = 0,
): { train: T[]; heldOut: T[] } {
  if (!(Number.isSafeInteger(seed) && seed >= 0)) {
    throw new ValidationError([{ path: "seed", message: `must be an integer ≥ 0, got ${String(seed)}` }]);
  }
  const count = heldOutCount(items.length, heldOut);
  const chosen = new Set(seededPermutation(items.length, seed, SPLIT_STREAM).slice(0, count));
  const train: T[] = [];
  const held: T[] = [];
  items.forEach((item, i) => {
    (chosen.has(i) ? held : train).push(item);
  });
  return { train, heldOut: held };
}

function heldOutCount(total: number, heldOut: HeldOut): number {
  if (typeof heldOut === "number") {
    if (!(Number.isSafeInteger(heldOut) && heldOut >= 1 && heldOut < total)) {
      throw new ValidationError([
        {
          path: "options.heldOut",
          message: `must be an integer in [1, ${total - 1}] (there are ${total} examples), got ${String(heldOut)}`,
        },
      ]);
    }
    return heldOut;
  }
  const fraction = heldOut?.fraction;
  if (!(typeof fraction === "number" && fraction > 0 && fraction < 1)) {
    throw new ValidationError([
      { path: "options.heldOut.fraction", message: `must be a number in (0, 1), got ${String(fraction)}` },
    ]);
  }
  const count = Math.max(1, Math.round(total * fraction));
  if (count >= total) {
    throw new ValidationError([
      {
        path: "options.heldOut.fraction",
        message: `leaves no training example out of ${total} (held out: ${count})`,
      },
    ]);
  }
  return count;
}
