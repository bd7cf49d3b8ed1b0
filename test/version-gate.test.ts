/**
 * The service's version gate (PROTOCOL.md §G1): a stub front door in front of the real local backend
 * refuses `create_session` below a floor, with the hosted service's status and words. The SDK must
 * pass a floor at or below its protocol level, and fail fast, typed and with guidance above it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  PROTOCOL_SDK_VERSION,
  SdkVersionUnsupportedError,
  ServiceClient,
  TinkerError,
  ValidationError,
} from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { compareVersions } from "../src/local/version-floor.js";
import { closeAfterEach, jsonBody, recordingFetch } from "./helpers.js";

const cleanup = closeAfterEach();
const REFUSAL = "Your Tinker SDK version is no longer supported. Please upgrade to the latest version.";

/** A front door that answers create_session below `floor` as the hosted service does. */
function gatedService(floor: string, clientOptions: Record<string, unknown> = {}) {
  const local = createLocalTinker({ longPollMs: 1_000 });
  const gate = async (request: Request): Promise<Response> => {
    if (new URL(request.url).pathname.endsWith("/create_session")) {
      const body = (await request.clone().json()) as { sdk_version?: string };
      if (compareVersions(body.sdk_version ?? "0.0.0", floor) < 0) {
        return Response.json({ detail: REFUSAL }, { status: 400 });
      }
    }
    return local.fetch(request);
  };
  const recorder = recordingFetch(gate);
  const service = new ServiceClient({
    apiKey: "tml-test-key",
    baseURL: "http://front.door",
    fetch: recorder.fetch,
    telemetry: false,
    ...clientOptions,
  });
  cleanup.add(() => local.close());
  cleanup.add(() => service.close());
  const sessions = () => recorder.requests.filter((r) => r.path.endsWith("/create_session"));
  return { service, sessions };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("version gate", () => {
  it("reports the implemented protocol level, 0.39.0, and passes a 0.33.0 floor", async () => {
    expect(PROTOCOL_SDK_VERSION).toBe("0.39.0");
    const { service, sessions } = gatedService("0.33.0");
    const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    expect(training.modelId).toContain(":train:");
    expect(sessions()).toHaveLength(1);
    const body = jsonBody(sessions()[0]!) as Record<string, unknown>;
    expect(body).toMatchObject({ sdk_version: "0.39.0", type: "create_session" });
  });

  it("fails fast with a typed error, the server's words and guidance when the floor is above it", async () => {
    const { service, sessions } = gatedService("0.40.0");
    const started = Date.now();
    const error = await service
      .createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 })
      .catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(SdkVersionUnsupportedError);
    expect(error).toBeInstanceOf(TinkerError);
    const refusal = error as SdkVersionUnsupportedError;
    expect(refusal.status).toBe(400);
    expect(refusal.sdkVersion).toBe("0.39.0");
    expect(refusal.message).toContain(REFUSAL);
    expect(refusal.message).toContain("upgrade tinker-ts");
    expect(refusal.message).toContain("TINKER_SDK_VERSION");
    expect(elapsed).toBeLessThan(10_000);
    expect(sessions().length).toBeGreaterThanOrEqual(1);
    expect(sessions().length).toBeLessThanOrEqual(3);
  });

  it("reports the sdkVersion option, or TINKER_SDK_VERSION, instead", async () => {
    const viaOption = gatedService("0.40.0", { sdkVersion: "0.40.1" });
    await viaOption.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    expect(jsonBody(viaOption.sessions()[0]!)).toMatchObject({ sdk_version: "0.40.1" });

    vi.stubEnv("TINKER_SDK_VERSION", "0.41.0");
    const viaEnv = gatedService("0.40.0");
    await viaEnv.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    expect(jsonBody(viaEnv.sessions()[0]!)).toMatchObject({ sdk_version: "0.41.0" });
  });

  it("names the override when an overridden version is refused", async () => {
    const { service } = gatedService("0.33.0", { sdkVersion: "0.30.0" });
    const error = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkVersionUnsupportedError);
    expect((error as Error).message).toContain("sdk_version 0.30.0");
    expect((error as Error).message).toContain("override");
  });

  it("rejects a malformed override before anything is sent", () => {
    expect(() => new ServiceClient({ apiKey: "tml-x", sdkVersion: "latest" })).toThrow(ValidationError);
  });

  it("the local backend reproduces the gate with minSdkVersion", async () => {
    const local = createLocalTinker({ minSdkVersion: "0.40.0" });
    cleanup.add(() => local.close());
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: local.fetch,
      telemetry: false,
    });
    cleanup.add(() => service.close());
    const error = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkVersionUnsupportedError);
  });

  it("hands create_session's warning to the logger", async () => {
    const local = createLocalTinker();
    cleanup.add(() => local.close());
    const warnings: string[] = [];
    const withWarning = async (request: Request): Promise<Response> => {
      const response = await local.fetch(request);
      if (!new URL(request.url).pathname.endsWith("/create_session")) return response;
      const body = (await response.json()) as Record<string, unknown>;
      return Response.json({ ...body, warning_message: "SDK 0.39 will stop working on 2027-01-01." });
    };
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://local.tinker",
      fetch: withWarning,
      telemetry: false,
      logger: { info: () => {}, warn: (m) => warnings.push(m), error: () => {} },
    });
    cleanup.add(() => service.close());
    await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    expect(warnings).toEqual(["SDK 0.39 will stop working on 2027-01-01."]);
  });
});
