/**
 * Public API of the local backend's engine: a tiny but real transformer language model in pure
 * TypeScript (web-standard APIs only), trained with LoRA + AdamW or Dimuon and sampled with a KV cache.
 * Everything is deterministic for given seeds.
 */

export { type AdamSettings, DEFAULT_ADAM_SETTINGS } from "./adamw.js";
export { type BaseModel, createBaseModel } from "./base-model.js";
export { DEFAULT_MODEL_CONFIG, defaultModelConfig, type ModelConfig, validateModelConfig } from "./config.js";
export {
  DEFAULT_DIMUON_DAMPING,
  DEFAULT_DIMUON_RANK_LR_CORRECTION_EXPONENT,
  DEFAULT_DIMUON_SETTINGS,
  DIMUON_REFERENCE_RANK,
  type DimuonSettings,
} from "./dimuon.js";
export { EngineError, OptimizerMismatchError } from "./errors.js";
export {
  DEFAULT_LORA_ALPHA,
  type LoraSettings,
  MAX_LORA_RANK,
  type Parameter,
  type ResolvedLoraSettings,
} from "./lora.js";
export {
  DEFAULT_CLIP_HIGH,
  DEFAULT_CLIP_LOW,
  DEFAULT_DRO_BETA,
  isLossFunctionName,
  LOSS_FUNCTIONS,
  type LossFunctionName,
} from "./losses.js";
export {
  isOptimizerFamily,
  OPTIMIZER_FAMILIES,
  type OptimizerFamily,
  type OptimizerSettings,
} from "./optimizer.js";
export {
  MAX_PROMPT_ALT_TOKENS_K,
  type Matrix,
  type PromptOutputRequest,
  type PromptOutputs,
  validatePromptOutputRequest,
} from "./prompt-outputs.js";
export { hashSeed, type Seed } from "./rng.js";
export {
  createInferenceModel,
  type InferenceModel,
  type PromptLogprobs,
  type SampleAndScoreResult,
  type SampledSequence,
  type SampledToken,
  type SampleOptions,
  type StopReason,
} from "./sampler.js";
export { inspectState, type StateInfo } from "./state.js";
export {
  BOS_TOKEN,
  decodeTokens,
  EOS_TOKEN,
  encodeText,
  isValidToken,
  TOKENIZER_ID,
  VOCAB_SIZE,
} from "./tokenizer.js";
export {
  type EngineDatum,
  type ForwardBackwardResult,
  TrainableModel,
  type TrainableModelOptions,
} from "./trainable-model.js";
