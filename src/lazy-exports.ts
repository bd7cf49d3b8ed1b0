/**
 * The values of `tinker-ts` whose modules an app loads only when it uses them: `ServiceClient`
 * imports the training client with its first training client (src/clients/service.ts), and the
 * custom loss comes with it; the clients' `getTokenizer()` imports the tokenizer loader
 * (src/clients/tokenizer.ts). src/index.ts exports them from here, as constants.
 *
 * Why constants, not `export { TrainingClient } from "./clients/training.js"`: esbuild's code
 * splitting assigns whole files to chunks, and puts a file into an app's eager chunks when it is
 * used anywhere (a lazy chunk included) and an eager file imports or re-exports it, whether or not
 * the app uses that binding. A plain re-export from the entry therefore put the training module,
 * and all it imports, back into the eager chunks of an app that only samples; a re-export through
 * another module does the same. A module whose statements are `const X = imported` is not used
 * while its constants are not, and so cuts that path; an app that uses one of them loads its module
 * eagerly, as before. The budgets of `app.sample-only.*` in .size-budget.json check it (`npm run
 * size -- --why` lists what each app holds).
 *
 * Each class is exported as a value and as its instance type, so `instanceof`, `new` and type
 * positions work as with a class.
 */
import {
  TrainingClient as TrainingClientClass,
  DEFAULT_ADAM_PARAMS as trainingAdamDefaults,
} from "./clients/training.js";
import {
  CUSTOM_LOSS_METRIC as customLossMetric,
  forwardBackwardCustom as customStep,
  SURROGATE_LOSS_METRIC as surrogateLossMetric,
} from "./lib/custom-loss.js";
import {
  ByteLevelTokenizer as ByteLevelTokenizerClass,
  BYTE_LEVEL_TOKENIZER_ID as byteLevelTokenizerId,
  clearTokenizerCache as clearCache,
  tokenizerFromJSON as fromJSON,
  loadTokenizer as load,
  resolveTokenizerId as resolveId,
  TokenizerError as TokenizerErrorClass,
} from "./lib/tokenizer/index.js";

/** One LoRA training run; created by `ServiceClient`'s training factories (src/clients/training.ts). */
export const TrainingClient = TrainingClientClass;
export type TrainingClient = TrainingClientClass;

/** The official AdamW defaults (PROTOCOL.md §3.5). */
export const DEFAULT_ADAM_PARAMS = trainingAdamDefaults;

// A function keeps its own doc comment through the constant; a class or a string does not.
export const forwardBackwardCustom = customStep;

/** The metric under which a custom step's result reports the custom loss (PROTOCOL.md §T2). */
export const CUSTOM_LOSS_METRIC = customLossMetric;

/** Where a custom step's result keeps the server's surrogate `loss:sum` (PROTOCOL.md §T2). */
export const SURROGATE_LOSS_METRIC = surrogateLossMetric;

// Tokenizers (src/lib/tokenizer).

/** Byte-level tokenizer of the local backend (`tinker-ts/byte-level`): ids 0–255 are UTF-8 bytes. */
export const ByteLevelTokenizer = ByteLevelTokenizerClass;
export type ByteLevelTokenizer = ByteLevelTokenizerClass;

/** The id of the local backend's byte-level tokenizer. */
export const BYTE_LEVEL_TOKENIZER_ID = byteLevelTokenizerId;

/** A tokenizer could not be resolved or loaded. `cause` holds the underlying error, if any. */
export const TokenizerError = TokenizerErrorClass;
export type TokenizerError = TokenizerErrorClass;

export const loadTokenizer = load;
export const clearTokenizerCache = clearCache;
export const resolveTokenizerId = resolveId;
export const tokenizerFromJSON = fromJSON;
