/**
 * Console URLs (PROTOCOL.md §S2): the exported builders percent-encode ids with no safe characters
 * (`:` of run ids, `/` of checkpoint ids and paths), and the clients' getConsoleUrl use them with the
 * ids the local backend really hands out.
 */
import { describe, expect, it } from "vitest";
import {
  CONSOLE_BASE_URL,
  checkpointConsoleUrl,
  playgroundConsoleUrl,
  samplerWeightsConsoleUrl,
  sessionConsoleUrl,
  trainingRunConsoleUrl,
  ValidationError,
} from "../src/index.js";
import { closeAfterEach, localService } from "./helpers.js";

const closers = closeAfterEach();

describe("console URL builders", () => {
  it("build each page under the console's base URL", () => {
    expect(CONSOLE_BASE_URL).toBe("https://tinker.thinkingmachines.ai");
    expect(sessionConsoleUrl(undefined)).toBe("https://tinker.thinkingmachines.ai/sessions");
    expect(sessionConsoleUrl("session-1")).toBe("https://tinker.thinkingmachines.ai/sessions/session-1");
    expect(trainingRunConsoleUrl("s:train:0")).toBe(
      "https://tinker.thinkingmachines.ai/training_runs/s%3Atrain%3A0",
    );
    expect(samplerWeightsConsoleUrl("s:train:0")).toBe(
      "https://tinker.thinkingmachines.ai/checkpoints/s%3Atrain%3A0/sampler_weights",
    );
  });

  it("encode the run id and the checkpoint id, '/' included, from a tinker path", () => {
    expect(checkpointConsoleUrl("tinker://s:train:0/weights/step-10")).toBe(
      "https://tinker.thinkingmachines.ai/checkpoints/s%3Atrain%3A0/weights%2Fstep-10",
    );
    expect(checkpointConsoleUrl("tinker://s:train:0/sampler_weights/final")).toBe(
      "https://tinker.thinkingmachines.ai/checkpoints/s%3Atrain%3A0/sampler_weights%2Ffinal",
    );
    expect(() => checkpointConsoleUrl("s:train:0/weights/x")).toThrow(ValidationError);
  });

  it("encode the whole tinker path in the playground query", () => {
    expect(playgroundConsoleUrl("tinker://s:train:0/sampler_weights/final")).toBe(
      "https://tinker.thinkingmachines.ai/playground?mode=checkpoint&checkpoint=tinker%3A%2F%2Fs%3Atrain%3A0%2Fsampler_weights%2Ffinal",
    );
  });

  it("leave only the unreserved characters as they are", () => {
    expect(trainingRunConsoleUrl("a-b_c.d~e")).toBe(`${CONSOLE_BASE_URL}/training_runs/a-b_c.d~e`);
    expect(trainingRunConsoleUrl("x!'()* ?#&=+é")).toBe(
      `${CONSOLE_BASE_URL}/training_runs/x%21%27%28%29%2A%20%3F%23%26%3D%2B%C3%A9`,
    );
  });
});

describe("getConsoleUrl", () => {
  it("links the session once it exists, and the training run", async () => {
    const t = localService();
    closers.add(t.close);
    expect(t.service.getConsoleUrl()).toBe(`${CONSOLE_BASE_URL}/sessions`);
    const training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 2 });
    const sessionId = training.modelId.split(":train:")[0]!;
    expect(t.service.getConsoleUrl()).toBe(`${CONSOLE_BASE_URL}/sessions/${sessionId}`);
    expect(training.getConsoleUrl()).toBe(`${CONSOLE_BASE_URL}/training_runs/${sessionId}%3Atrain%3A0`);
  });
});
