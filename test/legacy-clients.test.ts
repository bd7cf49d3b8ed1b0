/**
 * Old official Python clients against the real local backend, in-process (acceptance: the backend
 * serves 0.6.3 and 0.18.x as well as 0.25.0). Two parts per version:
 *
 * 1. The requests those clients really sent (shared/conformance/requests-<version>.jsonl) replayed in
 *    order — JSON bodies and headers as recorded, the stub server's ids replaced by the ones our
 *    backend hands out — with every answer checked against what that client's response models
 *    accept (PROTOCOL.md §12): create_session, create_model, polling retrieve_future until done,
 *    the legacy JSON forward_backward and its JSON ForwardBackwardOutput.
 * 2. The rest of a train-and-sample loop with bodies of the shape the same client versions sent in a
 *    live run against `tinker-ts serve`: 0.6.3 omits defaults and `type` (chunks without `type`,
 *    `adam_params` with only `learning_rate`, explicit nulls), uses `/api/v1/forward` and wants JSON
 *    results; 0.18.x sends defaults and `type`, 0.18.1 asks for protobuf Sample/ForwardBackward
 *    results (`Accept: application/x-protobuf, application/json`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { createLocalTinker, type LocalTinker } from "../src/local/index.js";
import { decodeForwardBackwardOutput, decodeSampleResponse } from "../src/wire/protobuf/index.js";
import { readConformance } from "./helpers.js";

type Json = Record<string, unknown>;

interface RecordedLine {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Json | null;
  status: number;
  response: unknown;
}

function readRecorded(version: string): RecordedLine[] {
  return readConformance<RecordedLine>(`requests-${version}.jsonl`);
}

/** Transport headers are the HTTP stack's business; every other recorded header is replayed. */
const TRANSPORT_HEADERS = new Set(["host", "content-length", "connection", "accept-encoding"]);
/** Fields whose values are server-assigned ids: learned from answers, substituted into bodies. */
const ID_KEYS = ["session_id", "request_id", "model_id", "sampling_session_id"];
const PROTOBUF = "application/x-protobuf";
/** What 0.18.1+ sends when polling a Sample or ForwardBackward future (api_future_impl.py). */
const ACCEPT_PROTOBUF = "application/x-protobuf, application/json";

interface Answer {
  status: number;
  contentType: string;
  bytes: Uint8Array;
  json: Json | undefined;
}

/** Speaks to the in-process backend the way a recorded client did, with ids mapped live. */
class Replayer {
  readonly ids = new Map<string, string>();
  recordedSession: string | undefined;
  liveSession: string | undefined;

  constructor(readonly local: LocalTinker) {}

  /** Recorded ids → live ids, exact matches first, then the session id inside composite ids. */
  substitute(value: unknown): unknown {
    if (typeof value === "string") {
      const exact = this.ids.get(value);
      if (exact !== undefined) return exact;
      if (this.recordedSession && this.liveSession && value.includes(this.recordedSession))
        return value.split(this.recordedSession).join(this.liveSession);
      return value;
    }
    if (Array.isArray(value)) return value.map((entry) => this.substitute(entry));
    if (value !== null && typeof value === "object")
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.substitute(v)]));
    return value;
  }

  learn(recorded: unknown, live: Json | undefined): void {
    if (!live || recorded === null || typeof recorded !== "object") return;
    for (const key of ID_KEYS) {
      const before = (recorded as Json)[key];
      const after = live[key];
      if (typeof before === "string" && typeof after === "string" && before !== after) {
        this.ids.set(before, after);
        if (key === "session_id") {
          this.recordedSession = before;
          this.liveSession = after;
        }
      }
    }
  }

  async send(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<Answer> {
    const sent = new Headers();
    for (const [name, value] of Object.entries(headers))
      if (!TRANSPORT_HEADERS.has(name.toLowerCase())) sent.set(name, value);
    if (body !== null && body !== undefined) sent.set("content-type", "application/json");
    const response = await this.local.fetch(
      new Request(`http://127.0.0.1:18000${path}`, {
        method,
        headers: sent,
        body: body === null || body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    const contentType = response.headers.get("content-type") ?? "";
    let json: Json | undefined;
    if (contentType.includes("application/json")) json = JSON.parse(new TextDecoder().decode(bytes)) as Json;
    return { status: response.status, contentType, bytes, json };
  }

  /** Polls one future until it is no longer try_again; each try_again must be a valid one. */
  async poll(body: Json, headers: Record<string, string>, where: string): Promise<Answer> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const answer = await this.send("POST", "/api/v1/retrieve_future", body, {
        ...headers,
        "X-Tinker-Request-Iteration": String(attempt),
      });
      expect(answer.status, `${where}: retrieve status`).toBe(200);
      if (answer.json?.type !== "try_again") return answer;
      expectTryAgain(answer.json, body.request_id as string, where);
    }
    throw new Error(`${where}: future ${String(body.request_id)} never finished`);
  }
}

// ---- what the old clients' response models accept (tinker/types/*.py of 0.6.3 and 0.18.x) ----

function expectJson(answer: Answer, where: string): Json {
  expect(answer.status, `${where}: status`).toBeGreaterThanOrEqual(200);
  expect(answer.status, `${where}: status`).toBeLessThan(300);
  expect(answer.contentType, `${where}: content type`).toContain("application/json");
  const json = answer.json as Json;
  expect(json, `${where}: JSON object`).toBeTypeOf("object");
  // Control answers the client would misread as failure, retry or metadata-only (PROTOCOL.md §13.8).
  expect(json, `${where}: no error`).not.toHaveProperty("error");
  expect(json.status, `${where}: not metadata-only`).not.toBe("complete_metadata");
  return json;
}

function expectTryAgain(json: Json, requestId: string, where: string): void {
  expect(json.request_id, `${where}: try_again.request_id`).toBe(requestId);
  expect(["active", "paused_capacity", "paused_rate_limit"], `${where}: queue_state`).toContain(
    json.queue_state,
  );
}

/** UntypedAPIFuture: `request_id` string, `model_id` optional. */
function expectFutureAccepted(json: Json, modelId: string | undefined, where: string): string {
  expect(json.request_id, `${where}: request_id`).toBeTypeOf("string");
  if (modelId !== undefined) expect(json.model_id, `${where}: model_id`).toBe(modelId);
  return json.request_id as string;
}

const TENSOR_KEYS = new Set(["data", "dtype", "shape", "sparse_crow_indices", "sparse_col_indices"]);

/** TensorData is a StrictBase (extra="forbid"): only its own fields, dtype int64|float32. */
function expectTensor(tensor: unknown, where: string): number[] {
  const record = tensor as Json;
  for (const key of Object.keys(record))
    expect(TENSOR_KEYS.has(key), `${where}: TensorData.${key}`).toBe(true);
  expect(["int64", "float32"], `${where}: dtype`).toContain(record.dtype);
  const data = record.data as number[];
  expect(Array.isArray(data), `${where}: data`).toBe(true);
  for (const value of data) expect(Number.isFinite(value), `${where}: data value ${value}`).toBe(true);
  if (record.shape != null) expect(record.shape, `${where}: shape`).toEqual([data.length]);
  return data;
}

/**
 * ForwardBackwardOutput as the client parses it, for one datum per entry of `datums`: one
 * `logprobs` per target token, metrics `name:reduction`, and `loss:sum` the plain Σ −w·logprob.
 */
function expectForwardBackwardOutput(
  json: Json,
  datums: { targets: number; weights: number[] }[],
  where: string,
): number {
  expect(json.loss_fn_output_type, `${where}: loss_fn_output_type`).toBeTypeOf("string");
  const outputs = json.loss_fn_outputs as Json[];
  expect(outputs, `${where}: loss_fn_outputs`).toHaveLength(datums.length);
  let expectedLoss = 0;
  outputs.forEach((output, i) => {
    const logprobs = expectTensor(output.logprobs, `${where}: outputs[${i}].logprobs`);
    expect(logprobs, `${where}: outputs[${i}].logprobs`).toHaveLength(datums[i]!.targets);
    for (const [key, tensor] of Object.entries(output))
      expectTensor(tensor, `${where}: outputs[${i}].${key}`);
    logprobs.forEach((lp, t) => {
      expect(lp, `${where}: logprob ≤ 0`).toBeLessThanOrEqual(0);
      expectedLoss -= lp * datums[i]!.weights[t]!;
    });
  });
  const metrics = json.metrics as Record<string, number>;
  for (const [name, value] of Object.entries(metrics)) {
    expect(name.split(":"), `${where}: metric ${name} is name:reduction`).toHaveLength(2);
    expect(Number.isFinite(value), `${where}: metric ${name}`).toBe(true);
  }
  const loss = metrics["loss:sum"];
  expect(loss, `${where}: loss:sum`).toBeTypeOf("number");
  expect(loss!).toBeCloseTo(expectedLoss, 3);
  return loss!;
}

/** SampleResponse: sequences with stop_reason length|stop, int tokens, float logprobs. */
function expectSampleResponse(json: Json, numSamples: number, maxTokens: number, where: string): number[] {
  if (json.type !== undefined) expect(json.type, `${where}: type`).toBe("sample");
  const sequences = json.sequences as Json[];
  expect(sequences, `${where}: sequences`).toHaveLength(numSamples);
  for (const sequence of sequences) {
    expect(["length", "stop"], `${where}: stop_reason`).toContain(sequence.stop_reason);
    const tokens = sequence.tokens as number[];
    expect(tokens.length, `${where}: token count`).toBeGreaterThan(0);
    expect(tokens.length, `${where}: token count`).toBeLessThanOrEqual(maxTokens);
    for (const token of tokens) expect(Number.isInteger(token), `${where}: token ${token}`).toBe(true);
    if (sequence.logprobs != null) expect(sequence.logprobs as number[]).toHaveLength(tokens.length);
  }
  return sequences[0]!.tokens as number[];
}

// ---- the replay ----

interface VersionCase {
  version: string;
  /** 0.6.3 omits defaults and `type`, keeps explicit nulls; 0.18.x sends both (PROTOCOL.md §12.1). */
  legacyShape: boolean;
  /** 0.18.1 asks for protobuf Sample/ForwardBackward results (and still accepts JSON). */
  protobufResults: boolean;
}

const CASES: VersionCase[] = [
  { version: "0.6.3", legacyShape: true, protobufResults: false },
  { version: "0.18.0", legacyShape: false, protobufResults: false },
  { version: "0.18.1", legacyShape: false, protobufResults: true },
];

let local: LocalTinker | undefined;
afterEach(() => {
  local?.close();
  local = undefined;
});

function datumShape(body: Json): { targets: number; weights: number[] }[] {
  const input = (body.forward_backward_input ?? body.forward_input) as { data: Json[] };
  return input.data.map((datum) => {
    const inputs = datum.loss_fn_inputs as Record<string, { data: number[] }>;
    return { targets: inputs.target_tokens!.data.length, weights: inputs.weights!.data };
  });
}

/** Adds `type` the way 0.18.x does; 0.6.3 sends none. */
function typed(shape: VersionCase, type: string, body: Json): Json {
  return shape.legacyShape ? body : { ...body, type };
}

describe.each(CASES)("official client $version against the local backend", (shape) => {
  it("replays the recorded requests in order; every answer is one the client accepts", async () => {
    const recorded = readRecorded(shape.version);
    expect(recorded.length).toBeGreaterThan(0);
    local = createLocalTinker({ longPollMs: 200 });
    const replay = new Replayer(local);
    let modelId: string | undefined;
    let fwdDatums: { targets: number; weights: number[] }[] = [];
    const seen: string[] = [];

    for (let i = 0; i < recorded.length; i++) {
      const line = recorded[i]!;
      const route = line.path.replace(/^.*\/api\/v1\//, "");
      const where = `${shape.version} #${i} ${route}`;
      seen.push(route);
      const body = replay.substitute(line.body) as Json | null;

      if (route === "retrieve_future") {
        // The recorded try_again answers were the stub's; poll this future until it is done and
        // skip the recorded repeats of the same poll.
        while (
          recorded[i + 1]?.path === line.path &&
          recorded[i + 1]!.body?.request_id === line.body?.request_id
        )
          i++;
        const finalRecorded = recorded[i]!.response as Json;
        const answer = await replay.poll(body as Json, line.headers, where);
        const json = expectJson(answer, where);
        replay.learn(finalRecorded, json);
        if (finalRecorded.type === "create_model") {
          expect(json.type ?? "create_model", `${where}: type`).toBe("create_model");
          expect(json.model_id, `${where}: model_id`).toBeTypeOf("string");
          expect(json.model_id as string).toContain(replay.liveSession!);
          modelId = json.model_id as string;
        } else if ("loss_fn_outputs" in finalRecorded) {
          expectForwardBackwardOutput(json, fwdDatums, where);
        } else {
          throw new Error(`${where}: unexpected recorded result ${JSON.stringify(finalRecorded)}`);
        }
        continue;
      }

      const answer = await replay.send(line.method, line.path, body, line.headers);
      const json = expectJson(answer, where);
      replay.learn(line.response, json);
      switch (route) {
        case "client/config":
          // ClientConfigResponse: every field has a default; pjwt_auth_enabled must be a bool.
          expect(json.pjwt_auth_enabled, `${where}: pjwt_auth_enabled`).toBe(false);
          break;
        case "create_session":
          expect(json.type ?? "create_session", `${where}: type`).toBe("create_session");
          expect(json.session_id, `${where}: session_id`).toBeTypeOf("string");
          expect(json.error_message ?? null, `${where}: error_message`).toBeNull();
          break;
        case "create_model":
          expectFutureAccepted(json, undefined, where);
          break;
        case "forward_backward":
          expect(body?.forward_backward_input, `${where}: legacy JSON body`).toBeDefined();
          fwdDatums = datumShape(body as Json);
          expectFutureAccepted(json, modelId, where);
          break;
        default:
          throw new Error(`${where}: no check for ${route}`);
      }
    }
    expect(seen).toContain("create_session");
    expect(seen).toContain("forward_backward");
    if (shape.version !== "0.6.3") expect(seen[0], "0.18.x calls client/config first").toBe("client/config");
  });

  it("completes a train-and-sample loop with that client's body shapes", async () => {
    const recorded = readRecorded(shape.version);
    local = createLocalTinker({ longPollMs: 200 });
    const replay = new Replayer(local);
    // Headers as recorded for that route; routes past the recording take forward_backward's.
    const headersOf = (route: string) =>
      (
        recorded.find((line) => line.path.endsWith(`/${route}`)) ??
        recorded.find((line) => line.path.endsWith("/forward_backward"))!
      ).headers;
    const submit = async (route: string, body: Json, where: string) => {
      const json = expectJson(await replay.send("POST", `/api/v1/${route}`, body, headersOf(route)), where);
      return json;
    };
    const result = (requestId: string, where: string, accept?: string) =>
      replay.poll(
        // 0.6.3 sends only the id; 0.14+ add allow_metadata_only.
        shape.legacyShape ? { request_id: requestId } : { request_id: requestId, allow_metadata_only: true },
        accept ? { ...headersOf("retrieve_future"), Accept: accept } : headersOf("retrieve_future"),
        where,
      );

    // Session and model exactly as recorded (0.18.x fetch client/config first).
    for (const line of recorded) {
      const route = line.path.replace(/^.*\/api\/v1\//, "");
      if (route !== "client/config" && route !== "create_session") continue;
      replay.learn(
        line.response,
        expectJson(await replay.send(line.method, line.path, line.body, line.headers), route),
      );
    }
    const createModel = recorded.find((line) => line.path.endsWith("/create_model"))!;
    const created = await submit("create_model", replay.substitute(createModel.body) as Json, "create_model");
    const modelJson = expectJson(
      await result(expectFutureAccepted(created, undefined, "create_model"), "create_model"),
      "create_model",
    );
    const modelId = modelJson.model_id as string;
    expect(modelId).toBeTypeOf("string");

    // forward_backward + optim_step rounds: the recorded legacy JSON body, seq_ids in order.
    const fwdBody = replay.substitute(
      recorded.find((line) => line.path.endsWith("/forward_backward"))!.body,
    ) as Json;
    fwdBody.model_id = modelId;
    const datums = datumShape(fwdBody);
    const adam = shape.legacyShape
      ? { learning_rate: 0.01 }
      : { learning_rate: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-12, weight_decay: 0.0, grad_clip_norm: 0.0 };
    let seqId = 1;
    const losses: number[] = [];
    for (let round = 0; round < 6; round++) {
      const where = `round ${round}`;
      const fb = await submit(
        "forward_backward",
        { ...fwdBody, seq_id: seqId++ },
        `${where} forward_backward`,
      );
      const opt = await submit(
        "optim_step",
        typed(shape, "optim_step", { adam_params: adam, model_id: modelId, seq_id: seqId++ }),
        `${where} optim_step`,
      );
      const fbAnswer = await result(expectFutureAccepted(fb, modelId, where), `${where} fwd result`);
      losses.push(expectForwardBackwardOutput(expectJson(fbAnswer, where), datums, `${where} fwd result`));
      const optJson = expectJson(
        await result(expectFutureAccepted(opt, modelId, where), `${where} optim result`),
        where,
      );
      // OptimStepResponse: metrics optional, Dict[str, float].
      for (const value of Object.values((optJson.metrics ?? {}) as Record<string, number>))
        expect(Number.isFinite(value)).toBe(true);
    }
    expect(losses.at(-1)!, `loss falls: ${losses.join(" → ")}`).toBeLessThan(losses[0]!);

    if (shape.protobufResults) {
      // What 0.18.1 really asks for: protobuf, which it decodes (JSON would also be accepted).
      const fb = await submit("forward_backward", { ...fwdBody, seq_id: seqId++ }, "protobuf fwd");
      const answer = await result(
        expectFutureAccepted(fb, modelId, "protobuf fwd"),
        "protobuf fwd",
        ACCEPT_PROTOBUF,
      );
      expect(answer.contentType).toContain(PROTOBUF);
      const decoded = decodeForwardBackwardOutput(answer.bytes);
      expect(decoded.loss_fn_outputs).toHaveLength(datums.length);
      expect(decoded.metrics["loss:sum"]).toBeLessThan(losses[0]!);
    }

    // Forward only: 0.6.3–0.24 send the JSON `forward_input` to /api/v1/forward.
    const { forward_backward_input: fwdInput, ...fwdRest } = fwdBody;
    const fwdOnly = await submit(
      "forward",
      { forward_input: fwdInput, ...fwdRest, seq_id: seqId++ },
      "forward",
    );
    const fwdJson = expectJson(
      await result(expectFutureAccepted(fwdOnly, modelId, "forward"), "forward result"),
      "forward",
    );
    const forwardLoss = expectForwardBackwardOutput(fwdJson, datums, "forward result");
    expect(forwardLoss).toBeLessThan(losses[0]!);

    // save_weights_and_get_sampling_client: an unnamed save with a sampling_session_seq_id. 0.6.3
    // asserts the result has no `path` and a `sampling_session_id`.
    const save = await submit(
      "save_weights_for_sampler",
      typed(shape, "save_weights_for_sampler", {
        model_id: modelId,
        sampling_session_seq_id: 0,
        seq_id: seqId++,
      }),
      "save_weights_for_sampler",
    );
    const saved = expectJson(
      await result(expectFutureAccepted(save, modelId, "save"), "save result"),
      "save result",
    );
    expect(saved.path ?? null).toBeNull();
    expect(saved.sampling_session_id).toBeTypeOf("string");
    if (saved.type != null) expect(saved.type).toBe("save_weights_for_sampler");

    // Sample the trained prompt: 0.6.3's params carry only what the user set, chunks lack `type`.
    const prompt = (fwdInput as { data: { model_input: Json }[] }).data[0]!.model_input;
    const samplingParams = shape.legacyShape
      ? { max_tokens: 4, stop: null, temperature: 0.0 }
      : { max_tokens: 4, temperature: 0.0, top_k: -1, top_p: 1.0 };
    const sample = await submit(
      "asample",
      typed(shape, "sample", {
        num_samples: 1,
        prompt,
        sampling_params: samplingParams,
        sampling_session_id: saved.sampling_session_id,
        seq_id: 0,
        prompt_logprobs: false,
        topk_prompt_logprobs: 0,
      }),
      "asample",
    );
    const sampleId = sample.request_id as string;
    expect(sampleId).toBeTypeOf("string");
    const sampleJson = expectJson(await result(sampleId, "sample result"), "sample result");
    const tokens = expectSampleResponse(sampleJson, 1, 4, "sample result");
    if (shape.protobufResults) {
      const answer = await result(sampleId, "protobuf sample", ACCEPT_PROTOBUF);
      expect(answer.contentType).toContain(PROTOBUF);
      expect(decodeSampleResponse(answer.bytes).sequences[0]!.tokens).toEqual(tokens);
    }

    // Named checkpoint, load it back, and a sampler by path (0.6.3 sends base_model: null).
    const named = await submit(
      "save_weights",
      typed(shape, "save_weights", { model_id: modelId, path: "legacy-ckpt", seq_id: seqId++ }),
      "save_weights",
    );
    const namedJson = expectJson(
      await result(expectFutureAccepted(named, modelId, "save_weights"), "save_weights"),
      "save_weights",
    );
    expect(namedJson.path).toMatch(/^tinker:\/\/.+\/weights\/legacy-ckpt$/);

    // Archive URL: before 0.22.2 the client sends a second accept line, `application/gzip`, does
    // not follow redirects and takes only a 302 with Location (+ Expires as an HTTP-date); a 200
    // crashed it. Newer clients (accept: application/json only) keep the 200 JSON answer.
    const archivePath = `/api/v1/training_runs/${modelId}/checkpoints/weights/legacy-ckpt/archive`;
    const archiveHeaders = { ...headersOf("forward_backward"), Accept: "application/json, application/gzip" };
    const archive = await local.fetch(
      new Request(`http://127.0.0.1:18000${archivePath}`, { headers: archiveHeaders }),
    );
    expect(archive.status).toBe(302);
    const location = archive.headers.get("location");
    expect(location).toMatch(/^http:\/\/127\.0\.0\.1:18000\/.+/);
    const expires = archive.headers.get("expires") ?? "";
    expect(expires).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Date.parse(expires)).toBeGreaterThan(Date.now());
    const current = await replay.send("GET", archivePath, null, { "X-API-Key": "tml-local-stub-key" });
    expect(current.status).toBe(200);
    expect(current.json?.url).toBeTypeOf("string");

    const load = await submit(
      "load_weights",
      typed(shape, "load_weights", {
        model_id: modelId,
        path: namedJson.path,
        optimizer: false,
        seq_id: seqId++,
      }),
      "load_weights",
    );
    expectJson(
      await result(expectFutureAccepted(load, modelId, "load_weights"), "load_weights"),
      "load_weights",
    );
    const forSampler = await submit(
      "save_weights_for_sampler",
      typed(shape, "save_weights_for_sampler", {
        model_id: modelId,
        path: "legacy-sampler",
        seq_id: seqId++,
      }),
      "named save_weights_for_sampler",
    );
    const samplerPath = expectJson(
      await result(expectFutureAccepted(forSampler, modelId, "named sampler"), "named sampler"),
      "named sampler",
    ).path as string;
    expect(samplerPath).toMatch(/^tinker:\/\/.+\/sampler_weights\/legacy-sampler$/);
    const session = await submit(
      "create_sampling_session",
      typed(
        shape,
        "create_sampling_session",
        shape.legacyShape
          ? {
              session_id: replay.liveSession,
              sampling_session_seq_id: 1,
              base_model: null,
              model_path: samplerPath,
            }
          : { session_id: replay.liveSession, sampling_session_seq_id: 1, model_path: samplerPath },
      ),
      "create_sampling_session",
    );
    expect(session.type ?? "create_sampling_session").toBe("create_sampling_session");
    expect(session.sampling_session_id).toBeTypeOf("string");
  });
});
