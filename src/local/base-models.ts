/**
 * The base models a local backend serves: the built-in one, and (unless restricted) any other name,
 * each mapped to the same tiny architecture with weights fixed by its name.
 */
import {
  type BaseModel,
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  EngineError,
  hashSeed,
  inspectState,
  type OptimizerFamily,
  TrainableModel,
} from "./engine/index.js";
import type { LoraSettings } from "./state.js";

/** The model this backend ships. Any other name gets the same architecture with its own fixed weights. */
export const BUILTIN_BASE_MODEL = "tinker-ts/byte-lm-tiny";

export class BaseModels {
  readonly #loaded = new Map<string, BaseModel>();

  /** `listed`: the only names accepted besides the built-in one; else `acceptAny` decides. */
  constructor(
    readonly listed: string[] | undefined,
    readonly acceptAny: boolean,
  ) {}

  /** The names `get_server_capabilities` reports. */
  supported(): string[] {
    return this.listed ?? [BUILTIN_BASE_MODEL];
  }

  /** The base model called `name`; an EngineError (the caller's fault) if this backend does not serve it. */
  get(name: string): BaseModel {
    let base = this.#loaded.get(name);
    if (!base) {
      const accepted =
        name === BUILTIN_BASE_MODEL || (this.listed ? this.listed.includes(name) : this.acceptAny);
      if (!accepted) {
        const served = this.listed
          ? [BUILTIN_BASE_MODEL, ...this.listed.filter((m) => m !== BUILTIN_BASE_MODEL)]
          : [BUILTIN_BASE_MODEL];
        throw new EngineError(`unknown base model "${name}"; this backend serves ${served.join(", ")}`);
      }
      base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed(name));
      this.#loaded.set(name, base);
    }
    return base;
  }

  /** A fresh trainable model: LoRA adapters at their initialisation, the given optimizer family. */
  create(
    baseModel: string,
    lora: LoraSettings,
    seed: number | bigint,
    optimizer: OptimizerFamily,
  ): TrainableModel {
    return new TrainableModel(this.get(baseModel), { ...lora, seed }, { optimizer });
  }

  /**
   * A trainable model rebuilt from engine state bytes (validated by the engine). Its optimizer
   * family is `optimizer`, by default the one the state records — which loading with the optimizer
   * state needs (§O4); a state of another family then fails with OptimizerMismatchError.
   */
  fromState(
    baseModel: string,
    lora: LoraSettings,
    state: Uint8Array,
    withOptimizer: boolean,
    optimizer?: OptimizerFamily,
  ): TrainableModel {
    const info = inspectState(state);
    const model = this.create(baseModel, lora, info.lora.seed, optimizer ?? info.optimizer);
    model.importState(state, { withOptimizer });
    return model;
  }
}
