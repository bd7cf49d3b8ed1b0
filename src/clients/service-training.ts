/**
 * ServiceClient's training side: creating training runs (new, or from a checkpoint by both flows of
 * PROTOCOL.md §7.4), `getWeightsInfo` and `copyWeights`, with the training client and the training
 * endpoints' declarations they need, and `futures.retrieve`'s decoders (every future is a training
 * or sampling operation's). ServiceClient imports this module with the first such call
 * (src/clients/service.ts), so an app that only samples never downloads it, nor the training
 * client's encoders, custom loss and chunking (docs/PERFORMANCE.md (e)). Every function checks its
 * input first, so bad input is still a ValidationError before any request.
 */

// For the bundle's layout only; the same import opens ./rest/calls.ts and ./tokenizer-loader.ts,
// the other modules the SDK loads on first use. The package's index reaches every module an app's
// main chunk can hold, so with this import every lazily loaded module reaches the same ones, and
// esbuild's code splitting keeps them in one shared chunk. Without it, it cuts them into one chunk
// per combination of lazy modules that use them, each downloaded and gzipped on its own: 2 KB more
// for an app that only samples, 3 KB more for the whole SDK (docs/PERFORMANCE.md (e)). In an app
// that imports `tinker-ts` the index is loaded already, so this evaluates nothing new.
import "../index.js";

import * as v from "valibot";
import { ValidationError, type ValidationIssue } from "../core/errors.js";
import { describeValue } from "../internal/describe.js";
import { CALL_OPTION_SHAPE, optionShape } from "../lib/strict-options.js";
import { parseBody } from "../wire/endpoints/define.js";
import {
  DEFAULT_OPTIMIZER_CONFIG,
  LORA_DEFAULTS,
  OPTIMIZER_TYPES,
  type OptimizerConfig,
  OptimizerConfigSchema,
} from "../wire/endpoints/fields.js";
import * as training from "../wire/endpoints/training.js";
import type { WeightsInfoResponse } from "../wire/schemas.js";
import { call, poll, send } from "./call.js";
import { type CallOptions, checkCall, withTimeout } from "./call-options.js";
import type { Connection } from "./connection.js";
import type {
  CopyWeightsOptions,
  FromStateOptions,
  LoraTrainingOptions,
  WeightsInfoOptions,
} from "./service.js";
import { TrainingClient } from "./training.js";

export { futureEndpoint } from "../wire/endpoints/future-endpoint.js";

// The keys and kinds of each options type, checked at method entry (plain JavaScript included).
const LORA_TRAINING_OPTIONS_SHAPE = optionShape<LoraTrainingOptions>({
  ...CALL_OPTION_SHAPE,
  rank: "number",
  seed: "number",
  trainMlp: "boolean",
  trainAttn: "boolean",
  trainUnembed: "boolean",
  userMetadata: "object",
  optimizer: "object",
});
const FROM_STATE_OPTIONS_SHAPE = optionShape<FromStateOptions>({
  ...CALL_OPTION_SHAPE,
  baseModel: "string",
  userMetadata: "object",
  weightsAccessToken: "string",
  optimizer: "object",
});
const COPY_WEIGHTS_OPTIONS_SHAPE = optionShape<CopyWeightsOptions>({
  ...CALL_OPTION_SHAPE,
  ttlSeconds: "number",
  weightsAccessToken: "string",
});
const WEIGHTS_INFO_OPTIONS_SHAPE = optionShape<WeightsInfoOptions>({
  ...CALL_OPTION_SHAPE,
  weightsAccessToken: "string",
});

export async function createLoraTrainingClient(
  connection: Connection,
  baseModel: string,
  options: LoraTrainingOptions,
): Promise<TrainingClient> {
  checkCall(connection, "createLoraTrainingClient", options, LORA_TRAINING_OPTIONS_SHAPE);
  const lora_config = loraConfig(options);
  const optimizer = optimizerConfig(options.optimizer);
  if (typeof baseModel !== "string" || baseModel === "") {
    throw new ValidationError([{ path: "base_model", message: "must be a non-empty string" }]);
  }
  return createModel(connection, baseModel, lora_config, optimizer, options.userMetadata, options);
}

export async function createTrainingClientFromState(
  connection: Connection,
  path: string,
  withOptimizer: boolean,
  options: FromStateOptions,
): Promise<TrainingClient> {
  const where = withOptimizer
    ? "createTrainingClientFromStateWithOptimizer"
    : "createTrainingClientFromState";
  checkCall(connection, where, options, FROM_STATE_OPTIONS_SHAPE);
  if (typeof path !== "string" || !/^tinker:\/\/[^/]+\/weights\/[^/]+$/.test(path)) {
    throw new ValidationError([
      {
        path: "path",
        message: `must be a training checkpoint tinker://<run>/weights/<name>, got ${JSON.stringify(path)}`,
      },
    ]);
  }
  const requested = options.optimizer === undefined ? undefined : optimizerConfig(options.optimizer);
  const signal = withTimeout(options);
  const flags = await connection.clientConfig(signal);
  if (flags.create_model_via_load_weights) {
    const sessionId = await connection.session(signal);
    const modelSeqId = connection.nextModelSeqId();
    const body = {
      session_id: sessionId,
      model_seq_id: modelSeqId,
      base_model: options.baseModel,
      user_metadata: options.userMetadata,
      path,
      optimizer: withOptimizer,
      // With the optimizer state the checkpoint's family is kept (null); else the caller's.
      optimizer_config: withOptimizer ? null : (requested ?? DEFAULT_OPTIMIZER_CONFIG),
      weights_access_token: options.weightsAccessToken,
    };
    const submitted = await send(connection, training.loadWeights, { body, signal });
    await poll(connection, training.loadWeights, submitted.request_id, { signal });
    // The id is derived, as the official client does: the load was the model's request 0.
    await connection.prefetchCapabilities();
    return new TrainingClient(connection, `${sessionId}:train:${modelSeqId}`, {
      baseModel: options.baseModel,
      optimizer: withOptimizer ? undefined : (requested ?? DEFAULT_OPTIMIZER_CONFIG),
    });
  }
  const info = await weightsInfo(connection, path, options.weightsAccessToken, signal);
  const lora = {
    rank: info.lora_rank ?? LORA_DEFAULTS.rank,
    train_unembed: info.train_unembed ?? LORA_DEFAULTS.train_unembed,
    train_mlp: info.train_mlp ?? LORA_DEFAULTS.train_mlp,
    train_attn: info.train_attn ?? LORA_DEFAULTS.train_attn,
  };
  const saved = optimizerConfig((info.optimizer_config ?? DEFAULT_OPTIMIZER_CONFIG) as OptimizerConfig);
  const optimizer = withOptimizer ? saved : (requested ?? DEFAULT_OPTIMIZER_CONFIG);
  const client = await createModel(
    connection,
    options.baseModel ?? info.base_model,
    lora,
    optimizer,
    options.userMetadata,
    { signal },
  );
  const loadOptions = { signal, weightsAccessToken: options.weightsAccessToken };
  const load = withOptimizer
    ? client.loadStateWithOptimizer(path, loadOptions)
    : client.loadState(path, loadOptions);
  await load;
  return client;
}

export async function getWeightsInfo(
  connection: Connection,
  path: string,
  options: WeightsInfoOptions,
): Promise<WeightsInfoResponse> {
  checkCall(connection, "getWeightsInfo", options, WEIGHTS_INFO_OPTIONS_SHAPE);
  return weightsInfo(connection, path, options.weightsAccessToken, withTimeout(options));
}

export async function copyWeights(
  connection: Connection,
  path: string,
  options: CopyWeightsOptions,
): Promise<string> {
  checkCall(connection, "copyWeights", options, COPY_WEIGHTS_OPTIONS_SHAPE);
  const body = (sessionId: string, modelSeqId: number) => ({
    session_id: sessionId,
    model_seq_id: modelSeqId,
    source_path: path,
    ttl_seconds: options.ttlSeconds,
    weights_access_token: options.weightsAccessToken,
  });
  // Checked before the session's model counter is taken, so bad input leaves no gap in it.
  const checked = parseBody(training.copyWeights, body("-", 0));
  if (!checked.ok) throw new ValidationError(checked.issues);
  const signal = withTimeout(options);
  const sessionId = await connection.session(signal);
  const answer = await call(connection, training.copyWeights, {
    body: body(sessionId, connection.nextModelSeqId()),
    signal,
  });
  return answer.tinker_path;
}

async function createModel(
  connection: Connection,
  baseModel: string,
  loraConfigBody: Record<string, unknown>,
  optimizer: OptimizerConfig,
  userMetadata: Record<string, string> | undefined,
  options: CallOptions,
): Promise<TrainingClient> {
  const signal = withTimeout(options);
  const sessionId = await connection.session(signal);
  const body = {
    session_id: sessionId,
    model_seq_id: connection.nextModelSeqId(),
    base_model: baseModel,
    user_metadata: userMetadata,
    lora_config: loraConfigBody,
    optimizer_config: optimizer,
  };
  const startedAt = Date.now();
  const submitted = await send(connection, training.createModel, { body, signal });
  const created = await poll(connection, training.createModel, submitted.request_id, {
    signal,
    roundtripSeconds: (Date.now() - startedAt) / 1000,
  });
  // Known context lengths let the clients reject overlong inputs before sending them.
  await connection.prefetchCapabilities();
  return new TrainingClient(connection, created.model_id, { baseModel, optimizer });
}

async function weightsInfo(
  connection: Connection,
  path: string,
  credential: string | undefined,
  signal: AbortSignal | undefined,
): Promise<WeightsInfoResponse> {
  await connection.clientConfig(signal);
  return call(connection, training.weightsInfo, { body: { tinker_path: path }, credential, signal });
}

function optimizerConfig(value: OptimizerConfig | undefined): OptimizerConfig {
  if (value === undefined) return DEFAULT_OPTIMIZER_CONFIG;
  const type = (value as { type?: unknown })?.type;
  if (!OPTIMIZER_TYPES.includes(type as (typeof OPTIMIZER_TYPES)[number])) {
    throw new ValidationError([
      {
        path: "optimizer.type",
        message: `must be one of ${OPTIMIZER_TYPES.join(", ")}, got ${describeValue(type)}`,
      },
    ]);
  }
  // The rest (Dimuon's version) by the declaration's schema, before any counter is taken.
  const parsed = v.safeParse(OptimizerConfigSchema, value);
  if (!parsed.success) {
    throw new ValidationError(
      parsed.issues.map((issue) => ({
        path: ["optimizer", v.getDotPath(issue)].filter(Boolean).join("."),
        message: issue.message,
      })),
    );
  }
  return parsed.output;
}

function loraConfig(options: LoraTrainingOptions): Record<string, unknown> {
  const rank = options.rank ?? LORA_DEFAULTS.rank;
  const issues: ValidationIssue[] = [];
  if (!Number.isInteger(rank) || rank < 1)
    issues.push({ path: "rank", message: `must be a positive integer, got ${describeValue(rank)}` });
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    issues.push({ path: "seed", message: `must be an integer, got ${describeValue(options.seed)}` });
  }
  const train_unembed = options.trainUnembed ?? LORA_DEFAULTS.train_unembed;
  const train_mlp = options.trainMlp ?? LORA_DEFAULTS.train_mlp;
  const train_attn = options.trainAttn ?? LORA_DEFAULTS.train_attn;
  if (!train_unembed && !train_mlp && !train_attn) {
    issues.push({
      path: "trainMlp",
      message: "at least one of trainMlp, trainAttn, trainUnembed must be true",
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  const config: Record<string, unknown> = { rank };
  if (options.seed !== undefined) config.seed = options.seed;
  return { ...config, train_unembed, train_mlp, train_attn };
}
