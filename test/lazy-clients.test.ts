/**
 * What ServiceClient loads on first use (docs/PERFORMANCE.md, "Loaded on first use") is the API
 * tinker-ts exports: the training client is the class `TrainingClient`, a RestClient has every
 * method before its implementation is loaded, and their errors are the exported classes.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { NotFoundError, RestClient, TrainingClient, ValidationError } from "../src/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/index.js";
import { localService } from "./helpers.js";

const t = localService({ client: { telemetry: false } });
afterAll(() => t.close());

describe("clients loaded on first use", () => {
  it("a new training run's client is an instance of the exported TrainingClient", async () => {
    const training = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 2 });
    expect(training).toBeInstanceOf(TrainingClient);
    const resumed = await t.service.createTrainingClientFromState(
      (await training.saveState("lazy-clients")).path,
    );
    expect(resumed).toBeInstanceOf(TrainingClient);
  });

  it("a RestClient has its methods at once, each named after itself; bad input sends nothing", async () => {
    const rest = t.service.createRestClient();
    expect(rest).toBeInstanceOf(RestClient);
    for (const name of ["getTrainingRun", "getSession", "whoami", "getCheckpointArchiveUrl"] as const) {
      expect(typeof rest[name]).toBe("function");
      expect(rest[name].name).toBe(name);
    }
    const sent = t.requests.length;
    await expect(rest.getTrainingRun("")).rejects.toThrow(ValidationError);
    expect(() => rest.listSessions({ limit: 0 })).toThrow(ValidationError);
    expect(t.requests).toHaveLength(sent);
    await expect(rest.getTrainingRun("no-such-run")).rejects.toThrow(NotFoundError);
  });

  it("a RestClient's composite calls go through its own methods, as before they loaded lazily", async () => {
    const training = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 2 });
    const saved = await training.saveState("lazy-clients-composite");
    const rest = t.service.createRestClient();
    const getTrainingRun = vi.spyOn(rest, "getTrainingRun");
    const run = await rest.getTrainingRunByTinkerPath(saved.path);
    expect(getTrainingRun).toHaveBeenCalledTimes(1);
    expect(getTrainingRun.mock.calls[0]![0]).toBe(run.training_run_id);
  });
});
