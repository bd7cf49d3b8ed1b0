/**
 * A base model plus LoRA adapters and their optimizer state: the object behind one Tinker
 * training client. Gradients accumulate across forwardBackward calls until optimStep consumes
 * them, as in Tinker (and PyTorch), so a large batch may be split into several calls. The
 * optimizer family (AdamW or Dimuon) is chosen at construction and never changes.
 */

import type { BaseModel } from "./base-model.js";
import type { ModelConfig } from "./config.js";
import { EngineError, OptimizerMismatchError } from "./errors.js";
import {
  accumulateAdapterGradients,
  adapterParameters,
  createAdapters,
  createGradSinks,
  type LoraAdapter,
  type LoraSettings,
  mergeAdapters,
  type Parameter,
  type ResolvedLoraSettings,
  resolveLoraSettings,
  sinkOf,
} from "./lora.js";
import { evaluateLoss, type PreparedLossInputs, prepareLossInputs, requireLossFunction } from "./losses.js";
import {
  createOptimizerState,
  type OptimizerFamily,
  type OptimizerSettings,
  type OptimizerState,
  optimizerStep,
  optimizerStepCount,
  optimizerTensors,
  resetOptimizerState,
  restoreOptimizerState,
} from "./optimizer.js";
import { type InferenceModel, TransformerInferenceModel } from "./sampler.js";
import { decodeState, encodeState, type StateHeader } from "./state.js";
import { backwardPass, forwardPass } from "./transformer.js";
import type { ModelWeights } from "./weights.js";

export interface EngineDatum {
  /** Model input tokens (length N). */
  tokens: readonly number[];
  /** Per-position loss inputs of length N, e.g. target_tokens, weights, logprobs, advantages. */
  lossFnInputs: Readonly<Record<string, ArrayLike<number>>>;
}

export interface ForwardBackwardResult {
  /** Per datum: log p(target_tokens[i] | tokens[0..i]) under the current weights. */
  logprobs: Float32Array[];
  /** "name:reduction" keys; always includes "loss:sum". */
  metrics: Record<string, number>;
}

export interface TrainableModelOptions {
  /** The run's optimizer family; default "adamw". */
  optimizer?: OptimizerFamily;
}

function configsEqual(a: ModelConfig, b: ModelConfig): boolean {
  const keys: (keyof ModelConfig)[] = [
    "vocabSize",
    "dModel",
    "nLayers",
    "nHeads",
    "dFF",
    "maxSeqLen",
    "ropeBase",
  ];
  return keys.every((key) => a[key] === b[key]);
}

export class TrainableModel {
  readonly base: BaseModel;
  readonly lora: ResolvedLoraSettings;
  private readonly adapters: LoraAdapter[];
  private readonly params: Parameter[];
  private readonly optimizerState: OptimizerState;

  constructor(base: BaseModel, lora: LoraSettings, options: TrainableModelOptions = {}) {
    this.base = base;
    this.lora = resolveLoraSettings(lora);
    this.adapters = createAdapters(base.config, this.lora);
    this.params = adapterParameters(this.adapters);
    this.optimizerState = createOptimizerState(options.optimizer ?? "adamw", this.params);
  }

  get config(): ModelConfig {
    return this.base.config;
  }

  /** The optimizer family fixed at construction. */
  get optimizer(): OptimizerFamily {
    return this.optimizerState.family;
  }

  /** Optimizer steps taken. */
  get step(): number {
    return optimizerStepCount(this.optimizerState);
  }

  /** The adapter output scale alpha / rank. */
  get loraScale(): number {
    return this.lora.alpha / this.lora.rank;
  }

  /**
   * The trainable tensors (live views: writing to `value` changes the model). Exposed for
   * inspection and gradient checking; training code should not need it.
   */
  parameters(): readonly Parameter[] {
    return this.params;
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    return this.params.reduce((sum, p) => sum + p.value.length, 0);
  }

  private mergedWeights(): ModelWeights {
    return mergeAdapters(this.base.weights, this.adapters, this.loraScale);
  }

  private validateBatch(batch: readonly EngineDatum[], lossFn: ReturnType<typeof requireLossFunction>) {
    const { vocabSize, maxSeqLen } = this.config;
    return batch.map((datum, index): PreparedLossInputs => {
      const { tokens } = datum;
      if (tokens.length > maxSeqLen) {
        throw new EngineError(
          `datum ${index}: ${tokens.length} tokens exceed the model's context of ${maxSeqLen}`,
        );
      }
      for (let i = 0; i < tokens.length; i++) {
        const token = tokens[i];
        if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
          throw new EngineError(
            `datum ${index}: token ${i} (${token}) is outside the vocabulary [0, ${vocabSize})`,
          );
        }
      }
      return prepareLossInputs(lossFn, datum.lossFnInputs ?? {}, tokens.length, index, vocabSize);
    });
  }

  /**
   * Runs the forward pass and, unless `forwardOnly`, adds the gradient of the loss (summed over
   * the batch) to the LoRA gradients.
   */
  forwardBackward(
    batch: readonly EngineDatum[],
    lossFn: string,
    lossFnConfig: Readonly<Record<string, number>> | undefined,
    forwardOnly: boolean,
  ): ForwardBackwardResult {
    const lossName = requireLossFunction(lossFn);
    const prepared = this.validateBatch(batch, lossName);
    if (batch.length === 0) return { logprobs: [], metrics: { "loss:sum": 0 } };

    const weights = this.mergedWeights();
    const { logprobs, trace } = forwardPass(
      weights,
      batch.map((datum) => datum.tokens),
      prepared.map((inputs) => inputs.targetTokens),
      !forwardOnly,
    );
    let lossSum = 0;
    const dLogprobs: Float64Array[] = [];
    for (let index = 0; index < batch.length; index++) {
      const result = evaluateLoss(lossName, logprobs[index], prepared[index], lossFnConfig);
      lossSum += result.loss;
      dLogprobs.push(result.dLogprobs);
    }

    if (trace !== null && this.adapters.length > 0) {
      const sinks = createGradSinks(this.config, this.adapters);
      backwardPass(weights, trace, dLogprobs, sinks);
      for (const adapter of this.adapters) {
        accumulateAdapterGradients(adapter, sinkOf(sinks, adapter), this.loraScale);
      }
    }
    return {
      logprobs: logprobs.map((values) => Float32Array.from(values)),
      metrics: { "loss:sum": lossSum },
    };
  }

  /**
   * One step of the run's optimizer over the accumulated gradients, which are then zeroed.
   * Settings of the other family (`type` absent means "adamw") throw OptimizerMismatchError.
   */
  optimStep(settings: OptimizerSettings): Record<string, number> {
    const report = optimizerStep(this.optimizerState, this.params, settings, this.lora.rank);
    return {
      "grad_norm:mean": report.gradNorm,
      "learning_rate:mean": settings.learningRate,
    };
  }

  /** Discards accumulated gradients without stepping. */
  zeroGradients(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  /** An inference view of the current weights; later training does not affect it. */
  snapshot(): InferenceModel {
    // mergeAdapters allocates fresh arrays for every adapted matrix and shares only the frozen
    // base ones, so the snapshot is already independent of future updates.
    return new TransformerInferenceModel(this.mergedWeights());
  }

  /**
   * LoRA tensors (+ the optimizer's tensors and step unless withOptimizer is false) as bytes.
   * The optimizer family is recorded either way.
   */
  exportState(opts: { withOptimizer?: boolean } = {}): Uint8Array {
    const withOptimizer = opts.withOptimizer ?? true;
    const header: StateHeader = {
      modelConfig: { ...this.config },
      baseSeed: this.base.seed.toString(),
      lora: { ...this.lora, seed: this.lora.seed.toString() },
      optimizer: this.optimizer,
      step: withOptimizer ? this.step : 0,
      hasOptimizer: withOptimizer,
      tensors: this.params.map((p) => ({ name: p.name, length: p.value.length })),
    };
    return encodeState({
      header,
      values: this.params.map((p) => p.value),
      optimizerGroups: withOptimizer ? optimizerTensors(this.optimizerState) : undefined,
    });
  }

  /**
   * Loads a state written by exportState. `withOptimizer: false` loads the weights only and
   * restarts this run's optimizer (fresh moments, step 0), whatever family saved them.
   * `withOptimizer: true` needs a state of this run's family (else OptimizerMismatchError): build
   * the model with `inspectState(bytes).optimizer` to resume a checkpoint's optimizer. Pending
   * gradients are discarded either way.
   */
  importState(bytes: Uint8Array, opts: { withOptimizer: boolean }): void {
    const contents = decodeState(bytes);
    const { header } = contents;
    if (!configsEqual(header.modelConfig, this.config) || header.baseSeed !== this.base.seed.toString()) {
      throw new EngineError("model state was saved from a different base model");
    }
    const { lora } = header;
    if (
      lora.rank !== this.lora.rank ||
      lora.alpha !== this.lora.alpha ||
      lora.trainAttn !== this.lora.trainAttn ||
      lora.trainMlp !== this.lora.trainMlp ||
      lora.trainUnembed !== this.lora.trainUnembed
    ) {
      throw new EngineError(
        `model state has LoRA rank ${lora.rank} (attn=${lora.trainAttn}, mlp=${lora.trainMlp}, unembed=${lora.trainUnembed}); ` +
          `this model has rank ${this.lora.rank} (attn=${this.lora.trainAttn}, mlp=${this.lora.trainMlp}, unembed=${this.lora.trainUnembed})`,
      );
    }
    const tensorsMatch =
      header.tensors.length === this.params.length &&
      header.tensors.every(
        (t, i) => t.name === this.params[i].name && t.length === this.params[i].value.length,
      );
    if (!tensorsMatch) throw new EngineError("model state tensors do not match this model's adapters");
    if (opts.withOptimizer && !header.hasOptimizer) {
      throw new EngineError("model state has no optimizer state (it was saved weights-only)");
    }
    if (opts.withOptimizer && header.optimizer !== this.optimizer) {
      throw new OptimizerMismatchError(
        this.optimizer,
        header.optimizer,
        `model state holds ${header.optimizer} optimizer state; this training run uses ${this.optimizer}`,
      );
    }
    this.params.forEach((p, i) => {
      p.value.set(contents.values[i]);
      p.grad.fill(0);
    });
    if (opts.withOptimizer && contents.optimizerGroups) {
      restoreOptimizerState(this.optimizerState, contents.optimizerGroups, header.step);
    } else {
      resetOptimizerState(this.optimizerState);
    }
  }
}
