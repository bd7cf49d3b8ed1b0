/**
 * The dynamic config is re-read in the background every max(refresh_interval_sec, 10) s (PROTOCOL.md
 * §1.4 step 4), so flags such as sample_cancel_enabled (§F2) follow the server during a run, and the
 * refresh stops with close().
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { connectionOf } from "../src/clients/service-connection.js";
import { ServiceClient } from "../src/index.js";
import { createLocalTinker } from "../src/local/index.js";
import { closeAfterEach } from "./helpers.js";

const cleanup = closeAfterEach();

afterEach(() => {
  vi.useRealTimers();
});

describe("dynamic config refresh", () => {
  it("follows the server's flags every refresh interval, and stops at close", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const local = createLocalTinker();
    cleanup.add(() => local.close());
    let cancelEnabled = false;
    let reads = 0;
    const front = async (request: Request): Promise<Response> => {
      if (!new URL(request.url).pathname.endsWith("/client/dynamic_config")) return local.fetch(request);
      reads++;
      return Response.json({ refresh_interval_sec: 3, sample_cancel_enabled: cancelEnabled });
    };
    const service = new ServiceClient({
      apiKey: "tml-test-key",
      baseURL: "http://l",
      fetch: front,
      telemetry: false,
    });
    await service.getServerCapabilities();
    expect(reads).toBe(1);

    cancelEnabled = true;
    // The interval the server asked for (3 s) is raised to the 10 s floor.
    await vi.advanceTimersByTimeAsync(9_000);
    expect(reads).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reads).toBe(2);
    // What the sampling clients read to decide whether to cancel abandoned samples (§F2).
    expect(connectionOf(service)?.dynamicFlags).toMatchObject({ sample_cancel_enabled: true });

    await service.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(reads).toBe(2);
  });
});
