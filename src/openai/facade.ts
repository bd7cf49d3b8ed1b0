/**
 * The native facade: OpenAI-shaped chat and text completions answered by the native SamplingClient
 * and a renderer, for servers without the OpenAI-compatible routes and where the hosted routes fall
 * short. The prompt is rendered here with the renderer you give (the one the model was trained
 * with), the sampler is the one you created (so a LoRA checkpoint is always what answers), and
 * logprobs are the sampler's own, the untempered ones `computeLogprobs` gives for the same tokens.
 *
 * Streaming is what the native protocol gives: a sample arrives whole, so each choice is sent as
 * one chunk of text (after its role chunk), then its finish chunk.
 *
 * Stop strings: a chat ends at the renderer's end-of-turn tokens, sent as the native `stop`; the
 * OpenAI `stop` strings are applied to the reply here (the sampler may have generated past them;
 * usage counts what it generated). A text completion sends its stop strings to the sampler.
 */
import { ValidationError } from "../core/errors.js";
import { eitherSignal } from "../internal/abort.js";
import { ModelInput } from "../lib/model-input.js";
import type { Renderer } from "../toolkit/renderers/types.js";
import type { SampleResponse, SamplingParams, ModelInput as WireModelInput } from "../wire/types.js";
import type { ChatCompletions, Completions, OpenAIShapedClient, RequestOptions } from "./client.js";
import { type OaiRequest, ParamError, parseChatRequest, parseCompletionRequest } from "./params.js";
import { ReplyAssembler } from "./reply.js";
import {
  type AnswerShape,
  answerId,
  ChunkShaper,
  describeWith,
  type ShapedChoice,
  usageOf,
  wholeAnswer,
} from "./shape.js";
import { CompletionStream } from "./stream.js";

/** What the facade needs of a SamplingClient. */
export interface NativeSampler {
  sample(
    prompt: WireModelInput,
    numSamples: number,
    params: SamplingParams,
    options?: { topkSampleLogprobs?: number; signal?: AbortSignal },
  ): PromiseLike<SampleResponse>;
}

export interface NativeFacadeOptions {
  /** What answers report as `model`. Default `"native"`. */
  model?: string;
}

/**
 * An OpenAI-shaped client over `sampler`, rendering chats with `renderer` (the one the model was
 * trained with; `getRenderer(recommendedRendererName(baseModel), tokenizer)` otherwise). The
 * request's `model` is not used to choose the model: the sampler is the model.
 */
export function createNativeFacade(
  sampler: NativeSampler,
  renderer: Renderer,
  options: NativeFacadeOptions = {},
): OpenAIShapedClient {
  const tokenizer = renderer.tokenizer;
  const decode = (tokens: number[]) => tokenizer.decode(tokens, { skipSpecialTokens: true });
  const describe = describeWith((tokens) => tokenizer.decode(tokens));

  async function answer(request: OaiRequest, signal: AbortSignal | undefined) {
    const chat = request.kind === "chat";
    const prompt = chat
      ? renderer.buildGenerationPrompt(request.messages)
      : typeof request.prompt === "string"
        ? tokenizer.encode(request.prompt)
        : request.prompt;
    const params: SamplingParams = { temperature: request.temperature, top_p: request.topP };
    if (request.maxTokens !== undefined) params.max_tokens = request.maxTokens;
    if (request.seed !== undefined) params.seed = request.seed;
    if (chat) params.stop = renderer.stopSequences();
    else if (request.stop.length > 0) params.stop = request.stop;
    const topk = request.logprobs ?? 0;
    const response = await sampler.sample(ModelInput.fromInts(prompt), request.n, params, {
      ...(topk > 0 ? { topkSampleLogprobs: topk } : {}),
      ...(signal ? { signal } : {}),
    });
    const endTokens = chat
      ? renderer.stopSequences()
      : tokenizer.eosTokenId === null
        ? []
        : [tokenizer.eosTokenId];
    let generated = 0;
    const choices: ShapedChoice[] = response.sequences.map((sequence) => {
      const reply = new ReplyAssembler(decode, endTokens, request.stop);
      sequence.tokens.forEach((token, i) => {
        reply.push({
          token,
          logprob: sequence.logprobs?.[i] ?? Number.NaN,
          topk: sequence.topk_sampled_logprobs?.[i] ?? undefined,
        });
      });
      const { finishReason } = reply.finish();
      generated += reply.generatedTokens;
      const text = (request.echo ? decode(prompt) : "") + reply.text;
      return { text, tokens: reply.tokens, finishReason };
    });
    const shape: AnswerShape = {
      kind: request.kind,
      id: answerId(request.kind),
      created: Math.floor(Date.now() / 1000),
      model: options.model ?? "native",
      describe,
      ...(request.logprobs === undefined ? {} : { logprobs: request.logprobs }),
    };
    return { shape, choices, usage: usageOf(prompt.length, generated) };
  }

  function create(parse: (body: unknown) => OaiRequest) {
    return async (params: unknown, requestOptions: RequestOptions = {}) => {
      let request: OaiRequest;
      try {
        request = parse(params);
      } catch (error) {
        if (error instanceof ParamError) {
          throw new ValidationError([{ path: error.param ?? "params", message: error.message }]);
        }
        throw error;
      }
      if (!request.stream) {
        const { shape, choices, usage } = await answer(request, requestOptions.signal);
        return wholeAnswer(shape, choices, usage);
      }
      const controller = new AbortController();
      const signal = requestOptions.signal
        ? eitherSignal(requestOptions.signal, controller.signal)
        : controller.signal;
      const answered = answer(request, signal);
      async function* chunks() {
        const { shape, choices, usage } = await answered;
        const shaper = new ChunkShaper(shape);
        for (const [index, choice] of choices.entries()) {
          const start = shaper.start(index);
          if (start) yield start;
          const piece = shaper.piece(index, choice.text, choice.tokens);
          if (piece) yield piece;
          yield shaper.end(index, choice.finishReason);
        }
        if (request.includeUsage) yield shaper.usage(usage);
      }
      // A failure before the first chunk is the call's, as for a whole answer.
      await answered;
      return new CompletionStream(chunks(), controller);
    };
  }

  return {
    chat: { completions: { create: create(parseChatRequest) as ChatCompletions["create"] } },
    completions: { create: create(parseCompletionRequest) as Completions["create"] },
  };
}
