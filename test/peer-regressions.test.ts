/**
 * Regressions found by driving the local backend with the unmodified official Python SDK
 * (tinker 0.25.0, /work/scratch/pyclient/full_surface.py), reproduced against the fetch handler.
 */
import { describe, expect, it } from "vitest";
import { createLocalTinker } from "../src/local/index.js";

const local = createLocalTinker({ longPollMs: 2_000 });

async function send(
  method: string,
  url: string,
  body?: unknown,
  apiKey: string | null = "tml-test",
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (apiKey) headers["x-api-key"] = apiKey;
  const response = await local.fetch(
    new Request(url.startsWith("http") ? url : `http://local/api/v1/${url}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe("peer regressions (Python SDK 0.25.0)", () => {
  it("export_session_trace returns a signed URL that a plain GET without the API key can fetch", async () => {
    const { json: session } = await send("POST", "create_session", {
      tags: [],
      user_metadata: {},
      sdk_version: "0.25.0",
    });
    const sessionId = session.session_id as string;
    const { json: created } = await send("POST", "create_model", {
      session_id: sessionId,
      model_seq_id: 0,
      base_model: "tinker-ts/byte-lm-tiny",
      lora_config: { rank: 2 },
    });
    for (;;) {
      const { json } = await send("POST", "retrieve_future", { request_id: created.request_id });
      if (json.type !== "try_again") break;
    }
    let ready: Record<string, unknown> = {};
    for (let i = 0; i < 5 && ready.status !== "ready"; i++) {
      ready = (await send("GET", `sessions/${sessionId}/trace_export`)).json;
    }
    expect(ready.status).toBe("ready");
    const url = ready.url as string;
    expect(url).toMatch(/\/trace\?token=[\w.-]+$/);

    // The SDK hands this URL to the user as a download link: no credentials go with it.
    const download = await send("GET", url, undefined, null);
    expect(download.status).toBe(200);
    expect(Array.isArray(download.json.traceEvents)).toBe(true);

    // Without (or with a tampered, or another session's) token the route still needs the API key.
    const plain = url.slice(0, url.indexOf("?"));
    expect((await send("GET", plain, undefined, null)).status).toBe(401);
    expect((await send("GET", `${plain}?token=${url.split("token=")[1]}x`, undefined, null)).status).toBe(
      401,
    );
    const other = url.replace(`/sessions/${encodeURIComponent(sessionId)}/`, "/sessions/session-other/");
    expect((await send("GET", other, undefined, null)).status).toBe(401);
    expect((await send("GET", plain)).status).toBe(200);
  });
});
