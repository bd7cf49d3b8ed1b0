/**
 * tinker-ts/openai: OpenAI-shaped chat and text completions for Tinker models, small enough for
 * browsers and edge runtimes (no OpenAI SDK behind it).
 *
 *   - `TinkerOpenAI`: a client of the OpenAI-compatible routes (`<service>/oai/api/v1`, or
 *     `tinker-ts serve`), whole or streamed answers;
 *   - `createNativeFacade`: the same calls answered by a native SamplingClient and a renderer;
 *   - `CompletionStream`: a streamed answer, iterable, passed on as SSE (`toReadableStream()`) and
 *     read back (`CompletionStream.fromSSE`);
 *   - model strings: `checkpointModel`, `withContextLength`, `parseModelString`.
 *
 * See docs/OPENAI.md.
 */

export {
  type ChatCompletions,
  type Completions,
  OPENAI_COMPAT_PATH,
  type OpenAIShapedClient,
  type RequestOptions,
  TinkerOpenAI,
  type TinkerOpenAIOptions,
} from "./client.js";
export { createNativeFacade, type NativeFacadeOptions, type NativeSampler } from "./facade.js";
export {
  baseModelName,
  checkpointModel,
  contextLengthOf,
  type ModelSpec,
  parseModelString,
  withContextLength,
} from "./model-string.js";
export { encodeSSE, readSSE, SSE_DONE, SSE_HEADERS } from "./sse.js";
export { CompletionStream, chunkText } from "./stream.js";
export type * from "./types.js";
