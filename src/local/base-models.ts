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

  /** A trainable model rebuilt from engine state bytes (validated by the engine). */
  fromState(
    baseModel: string,
    lora: LoraSettings,
    state: Uint8Array,
    withOptimizer: boolean,
  ): TrainableModel {
    const model = new TrainableModel(this.get(baseModel), { ...lora, seed: inspectState(state).lora.seed });
    model.importState(state, { withOptimizer });
    return model;
  }
}
