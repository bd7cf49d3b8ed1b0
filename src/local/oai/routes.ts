/**
 * The OpenAI-compatible routes of the local backend, under `<base>/oai/api/v1/` as on the Tinker
 * service: `POST chat/completions` and `POST completions` (docs/PROTOCOL.md, "OpenAI-compatible
 * routes"). Every model is byte-level here, so chats are rendered with the toolkit's `role_colon`
 * renderer, the one recommended for the built-in model. A streamed answer is produced token by
 * token by the engine, on the backend's job lane like any sample, and written as each token is
 * drawn; a client that goes away stops it.
 */
import { ValidationError } from "../../core/errors.js";
import { ByteLevelTokenizer } from "../../lib/tokenizer/byte-level.js";
import { baseModelName, contextLengthOf, parseModelString } from "../../openai/model-string.js";
import {
  type OaiRequest,
  ParamError,
  parseChatRequest,
  parseCompletionRequest,
} from "../../openai/params.js";
import { ReplyAssembler, type SampledTokenInfo } from "../../openai/reply.js";
import {
  type AnswerShape,
  answerId,
  ChunkShaper,
  type DescribeToken,
  type ShapedChoice,
  usageOf,
  wholeAnswer,
} from "../../openai/shape.js";
import { SSE_HEADERS, toSSEStream } from "../../openai/sse.js";
import type { OpenAIErrorBody } from "../../openai/types.js";
import { RoleColonRenderer } from "../../toolkit/renderers/role-colon.js";
import type { LocalBackend } from "../backend.js";
import { EngineError, type InferenceModel, type SampleOptions } from "../engine/index.js";
import { LocalBackendError } from "../errors.js";
import { runInSlices } from "../time-slices.js";
import { OaiError } from "./errors.js";

/** The path prefix of these routes, before the route itself. */
export const OAI_PREFIX = "/oai/api/v1/";

const ROUTES: Readonly<Record<string, (body: unknown) => OaiRequest>> = {
  "chat/completions": parseChatRequest,
  completions: parseCompletionRequest,
};

export function oaiErrorResponse(error: OaiError): Response {
  const body: OpenAIErrorBody = {
    error: { message: error.message, type: error.type, param: error.param, code: error.code },
  };
  return Response.json(body, { status: error.status });
}

/** Handles `route` (the path after `/oai/api/v1/`) once the credential has been accepted. */
export function oaiRoutes(backend: LocalBackend) {
  const tokenizer = new ByteLevelTokenizer();
  const renderer = new RoleColonRenderer(tokenizer);
  const decode = (tokens: number[]) => tokenizer.decode(tokens, { skipSpecialTokens: true });
  const describe: DescribeToken = (token) => ({
    token: tokenizer.decode([token], { skipSpecialTokens: false }),
    // A byte-level token is one byte, even where it is only part of a character.
    bytes: token < 256 ? [token] : [],
  });

  return async function handleOai(request: Request, route: string): Promise<Response> {
    try {
      const parse = ROUTES[route];
      if (!parse) throw new OaiError(404, `no route ${request.method} ${OAI_PREFIX}${route}`);
      if (request.method !== "POST") throw new OaiError(405, `method ${request.method} not allowed`);
      const body = await request.json().catch(() => {
        throw new OaiError(400, "the request body must be JSON");
      });
      const oai = parse(body);
      const { model, context } = resolveModel(backend, oai.model);
      const prompt = promptTokens(oai);
      if (prompt.length >= context) {
        throw new OaiError(
          400,
          `the prompt is ${prompt.length} tokens; the model's context is ${context}`,
          oai.kind === "chat" ? "messages" : "prompt",
          "context_length_exceeded",
        );
      }
      const options: SampleOptions = {
        numSamples: oai.n,
        maxTokens: Math.min(oai.maxTokens ?? context, context - prompt.length),
        temperature: oai.temperature,
        topK: -1,
        topP: oai.topP,
        seed: oai.seed,
        stopStrings: oai.stop.length > 0 ? oai.stop : undefined,
        stopTokens: oai.kind === "chat" ? renderer.stopSequences() : undefined,
        topkSampleLogprobs: oai.logprobs ?? 0,
      };
      const shape: AnswerShape = {
        kind: oai.kind,
        id: answerId(oai.kind),
        created: Math.floor(Date.now() / 1000),
        model: oai.model,
        describe,
        ...(oai.logprobs === undefined ? {} : { logprobs: oai.logprobs }),
      };
      const echo = oai.echo ? decode(prompt) : "";
      const assembler = () => new ReplyAssembler(decode, renderer.stopSequences(), oai.stop);
      const run = { model, prompt, options, signal: request.signal };
      if (oai.stream) {
        const chunks = streamChunks(backend, run, shape, assembler, echo, oai.includeUsage);
        return new Response(toSSEStream(chunks), { headers: SSE_HEADERS });
      }
      return Response.json(await wholeCompletion(backend, run, shape, assembler, echo));
    } catch (error) {
      return oaiErrorResponse(asOaiError(error));
    }
  };

  function promptTokens(oai: OaiRequest): number[] {
    if (oai.kind === "chat") {
      try {
        return renderer.buildGenerationPrompt(oai.messages);
      } catch (error) {
        if (error instanceof ValidationError) throw new OaiError(400, error.message, "messages");
        throw error;
      }
    }
    if (typeof oai.prompt === "string") return tokenizer.encode(oai.prompt);
    const outside = oai.prompt.findIndex((t) => t >= tokenizer.vocabSize);
    if (outside >= 0) {
      throw new OaiError(400, `prompt[${outside}] is not a token of this model's vocabulary`, "prompt");
    }
    return oai.prompt;
  }
}

/** The inference model a `model` string names, and the context its request may fill. */
function resolveModel(backend: LocalBackend, model: string): { model: InferenceModel; context: number } {
  let spec: ReturnType<typeof parseModelString>;
  try {
    spec = parseModelString(model);
  } catch (error) {
    throw new OaiError(400, (error as Error).message, "model", "invalid_model");
  }
  const asked = spec.baseModel === undefined ? undefined : contextLengthOf(spec.baseModel);
  try {
    const resolved = backend.inferenceModel({
      baseModel: spec.baseModel === undefined ? undefined : baseModelName(spec.baseModel),
      checkpoint: spec.checkpoint,
    });
    const limit = resolved.model.maxSeqLen;
    if (asked !== undefined && asked > limit) {
      throw new OaiError(
        400,
        `${spec.baseModel} asks for a context of ${asked} tokens; this model has ${limit}`,
        "model",
        "invalid_model",
      );
    }
    return { model: resolved.model, context: asked ?? limit };
  } catch (error) {
    if (error instanceof LocalBackendError && error.kind === "not_found") {
      throw new OaiError(
        404,
        `the model ${model} does not exist: ${error.message}`,
        "model",
        "model_not_found",
      );
    }
    if (error instanceof LocalBackendError) throw new OaiError(400, error.message, "model", "invalid_model");
    throw error;
  }
}

function asOaiError(error: unknown): OaiError {
  if (error instanceof OaiError) return error;
  if (error instanceof ParamError) return new OaiError(400, error.message, error.param, error.code);
  // The engine checks what the request parsing cannot know (token ids, the context).
  if (error instanceof EngineError) return new OaiError(400, error.message);
  return new OaiError(500, error instanceof Error ? error.message : String(error));
}

interface SampleRun {
  model: InferenceModel;
  prompt: number[];
  options: SampleOptions;
  signal: AbortSignal;
}

/** Runs the sample on the job lane, in slices; undefined if the client went away meanwhile. */
function runSample(backend: LocalBackend, run: SampleRun, sliceMs?: number) {
  return backend.runOnJobLane(async () => {
    if (run.signal.aborted) return undefined;
    const steps = run.model.sampleAndScoreSteps(run.prompt, run.options);
    return runInSlices(steps, () => run.signal.aborted, sliceMs);
  });
}

async function wholeCompletion(
  backend: LocalBackend,
  run: SampleRun,
  shape: AnswerShape,
  assembler: () => ReplyAssembler,
  echo: string,
) {
  const result = await runSample(backend, run);
  if (result === undefined) throw new OaiError(499, "the client went away");
  let generated = 0;
  const choices: ShapedChoice[] = result.sequences.map((sequence) => {
    const reply = assembler();
    sequence.tokens.forEach((token, i) => {
      reply.push({ token, logprob: sequence.logprobs[i]!, topk: sequence.topk?.[i] });
    });
    const { finishReason } = reply.finish();
    generated += reply.generatedTokens;
    return { text: echo + reply.text, tokens: reply.tokens, finishReason };
  });
  return wholeAnswer(shape, choices, usageOf(run.prompt.length, generated));
}

/**
 * The chunks of a streamed answer as the engine draws the tokens: each choice's role chunk, its
 * text piece by piece, its finish chunk, then the usage chunk when asked for. The sample starts
 * when the stream is first read and stops if it is cancelled.
 */
async function* streamChunks(
  backend: LocalBackend,
  run: SampleRun,
  shape: AnswerShape,
  assembler: () => ReplyAssembler,
  echo: string,
  includeUsage: boolean,
): AsyncGenerator<unknown, void, undefined> {
  const shaper = new ChunkShaper(shape);
  const queue: unknown[] = [];
  let wake: (() => void) | undefined;
  const emit = (chunk: unknown) => {
    if (chunk === undefined) return;
    queue.push(chunk);
    wake?.();
  };
  let current: { index: number; reply: ReplyAssembler } | undefined;
  let generated = 0;
  const endChoice = () => {
    if (!current) return;
    const rest = current.reply.finish();
    emit(shaper.piece(current.index, rest.text, rest.tokens));
    emit(shaper.end(current.index, rest.finishReason));
    generated += current.reply.generatedTokens;
  };
  const startChoice = (index: number) => {
    current = { index, reply: assembler() };
    emit(shaper.start(index));
    if (echo !== "") emit(shaper.piece(index, echo, []));
  };
  const cancel = new AbortController();
  const signal = AbortSignal.any([run.signal, cancel.signal]);
  const onToken = (sampled: { sampleIndex: number } & SampledTokenInfo) => {
    if (current?.index !== sampled.sampleIndex) {
      endChoice();
      startChoice(sampled.sampleIndex);
    }
    const piece = current!.reply.push(sampled);
    emit(shaper.piece(sampled.sampleIndex, piece.text, piece.tokens));
  };
  let finished = false;
  let failure: unknown;
  const sampled = runSample(backend, { ...run, signal, options: { ...run.options, onToken } }, 0).then(
    () => {
      endChoice();
      if (includeUsage) emit(shaper.usage(usageOf(run.prompt.length, generated)));
    },
    (error) => {
      failure = error;
    },
  );
  void sampled.finally(() => {
    finished = true;
    wake?.();
  });
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift();
      if (finished) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    // Once streaming has begun the status is sent; a failure is the last event, in OpenAI's form.
    if (failure !== undefined) yield { error: oaiErrorBody(asOaiError(failure)) };
  } finally {
    cancel.abort();
  }
}

function oaiErrorBody(error: OaiError): OpenAIErrorBody["error"] {
  return { message: error.message, type: error.type, param: error.param, code: error.code };
}
