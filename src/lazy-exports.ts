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
 * positions work as with a class. The package's declarations of this module re-export the originals
 * (scripts/build-types.mjs), so users see the classes and constants themselves, with their docs;
 * hence no doc comments here, and each constant is named as what it stands for.
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

export const TrainingClient = TrainingClientClass;
export type TrainingClient = TrainingClientClass;

export const DEFAULT_ADAM_PARAMS = trainingAdamDefaults;

export const forwardBackwardCustom = customStep;

export const CUSTOM_LOSS_METRIC = customLossMetric;

export const SURROGATE_LOSS_METRIC = surrogateLossMetric;

export const ByteLevelTokenizer = ByteLevelTokenizerClass;
export type ByteLevelTokenizer = ByteLevelTokenizerClass;

export const BYTE_LEVEL_TOKENIZER_ID = byteLevelTokenizerId;

export const TokenizerError = TokenizerErrorClass;
export type TokenizerError = TokenizerErrorClass;

export const loadTokenizer = load;
export const clearTokenizerCache = clearCache;
export const resolveTokenizerId = resolveId;
export const tokenizerFromJSON = fromJSON;
