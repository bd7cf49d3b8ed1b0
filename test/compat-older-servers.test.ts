/**
 * The SDK against servers that speak less than today's protocol (DESIGN.md §7, PROTOCOL.md §16):
 * a SkyRL-tx-like self-hosted server in front of the real local backend, that knows none of the
 * 0.26+ routes, flags and answer fields, has no dynamic config, answers failed futures with HTTP 400
 * `{"detail"}` and JSON results only. A full training and sampling scenario must still work, and
 * every feature the server lacks must fail with a clear error, not a crash or a hang.
 */
import { describe, expect, it } from "vitest";
import { ModelInput, NotFoundError, ServiceClient, TinkerError } from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { closeAfterEach, QA, qaDatum, recordingFetch } from "./helpers.js";

const cleanup = closeAfterEach();

/** Routes added to the protocol after 0.25 (PROTOCOL.md §16.0), plus dynamic config. */
const UNKNOWN_ROUTES = [
  /\/sessions\/[^/]+\/finish$/,
  /\/copy_weights$/,
  /\/retrieve_futures$/,
  /\/cancel_future$/,
  /\/join_sampling_session$/,
  /\/save_weights_external$/,
  /\/external_weights_urls$/,
  /\/external_weights_upload_(start|finish)$/,
  /\/checkpoints\/search$/,
  /\/billing\/usage\/checkpoints\/current$/,
  /\/client\/dynamic_config$/,
];

/** Answer fields added after 0.25, which an older server never sends. */
function stripNewFields(path: string, body: Record<string, unknown>): Record<string, unknown> {
  const { sample_sequence_ids: _ids, optimizer_config: _optimizer, ...rest } = body;
  if (path.endsWith("/client/config")) {
    return { pjwt_auth_enabled: false, use_pyqwest_transport: false };
  }
  return rest;
}

function olderServer() {
  const local = createLocalTinker({ longPollMs: 500 });
  cleanup.add(() => local.close());
  const front = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (UNKNOWN_ROUTES.some((route) => route.test(path))) {
      return Response.json({ detail: "Not Found" }, { status: 404 });
    }
    // JSON results only: the server ignores the client's protobuf preference.
    const headers = new Headers(request.headers);
    if (path.endsWith("/retrieve_future")) headers.set("accept", "application/json");
    const response = await local.fetch(new Request(request, { headers }));
    if (!(response.headers.get("content-type") ?? "").includes("json")) return response;
    const body = (await response.json()) as Record<string, unknown>;
    // Failed futures as HTTP 400 {"detail"} instead of 200 {error, category}.
    if (path.endsWith("/retrieve_future") && typeof body.error === "string") {
      return Response.json({ detail: body.error }, { status: 400 });
    }
    return Response.json(stripNewFields(path, body), { status: response.status });
  };
  const recorder = recordingFetch(front);
  const service = new ServiceClient({
    apiKey: "tml-test-key",
    baseURL: "http://skyrl.local",
    fetch: recorder.fetch,
    telemetry: false,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
  });
  cleanup.add(() => service.close());
  return { service, requests: recorder.requests };
}

describe("against a server without the 0.26+ protocol", () => {
  it("trains, saves, samples and scores as before", async () => {
    const { service, requests } = olderServer();
    const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 8, seed: 1 });
    const batch = QA.map(({ question, answer }) => qaDatum(question, answer));
    const first = await training.forwardBackward(batch, "cross_entropy");
    await training.optimStep({ learning_rate: 1e-2 });
    const second = await training.forwardBackward(batch, "cross_entropy");
    expect(second.metrics["loss:sum"]).toBeLessThan(first.metrics["loss:sum"]!);
    const { path } = await training.saveState("step-1");
    expect(path).toMatch(/^tinker:\/\/.+\/weights\/step-1$/);

    const sampler = await training.saveWeightsAndGetSamplingClient();
    const result = await sampler.sample(ModelInput.fromInts([256, 72]), 2, { max_tokens: 4, seed: 3 });
    expect(result.sequences).toHaveLength(2);
    // No ids from this server: the sequences simply have none.
    expect(result.sequences.every((s) => s.sequence_id === undefined)).toBe(true);
    const logprobs = await sampler.computeLogprobs(ModelInput.fromInts([256, 72, 105]));
    expect(logprobs).toHaveLength(3);

    // No request went to a route this server lacks, except the one dynamic-config probe.
    const unknown = requests.filter((r) => UNKNOWN_ROUTES.some((route) => route.test(r.path)));
    expect(unknown.map((r) => r.path)).toEqual(["/api/v1/client/dynamic_config"]);
  });

  it("a failed future answered as HTTP 400 {detail} is an error that names it", async () => {
    const { service } = olderServer();
    const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const error = await training
      .loadState("tinker://nowhere:train:0/weights/missing")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TinkerError);
    expect(String((error as Error).message)).toMatch(/missing|not found|unknown/i);
  });

  it("features the server lacks fail clearly: copyWeights is a NotFoundError, close only warns", async () => {
    const { service } = olderServer();
    const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const { path } = await training.saveState("to-copy");
    await expect(service.copyWeights(path)).rejects.toBeInstanceOf(NotFoundError);
    const rest = service.createRestClient();
    await expect(rest.listCheckpoints(training.modelId)).resolves.toBeDefined();
    // The finish route is missing: close() still stops everything and resolves.
    await expect(service.close("success")).resolves.toBeUndefined();
  });
});
