/**
 * The local backend's seq_id rules (PROTOCOL.md §6.2), spoken to directly over its fetch handler:
 * out-of-order arrivals wait for their turn, a repeated (model_id, seq_id) with the same request is a
 * retry that maps to the first request id, and a conflicting reuse is refused.
 */
import { describe, expect, it } from "vitest";
import { createLocalTinker } from "../src/local/index.js";

const local = createLocalTinker({ longPollMs: 2_000 });

async function call(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await local.fetch(
    new Request(`http://local/api/v1/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "tml-test" },
      body: JSON.stringify(body),
    }),
  );
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function result(requestId: unknown): Promise<Record<string, unknown>> {
  for (;;) {
    const { json } = await call("retrieve_future", { request_id: requestId });
    if (json.type !== "try_again") return json;
  }
}

async function newModel(): Promise<string> {
  const { json: session } = await call("create_session", {
    tags: [],
    user_metadata: {},
    sdk_version: "0.25.0",
  });
  const { json: created } = await call("create_model", {
    session_id: session.session_id,
    model_seq_id: 0,
    base_model: "tinker-ts/byte-lm-tiny",
    lora_config: { rank: 2 },
  });
  return (await result(created.request_id)).model_id as string;
}

const adam = (lr: number) => ({
  learning_rate: lr,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weight_decay: 0,
  grad_clip_norm: 0,
});

describe("seq_id ordering and replay in the local backend", () => {
  it("runs a later seq_id only after the earlier one arrives", async () => {
    const modelId = await newModel();
    const second = await call("optim_step", { model_id: modelId, seq_id: 2, adam_params: adam(1e-3) });
    const early = await call("retrieve_future", { request_id: second.json.request_id });
    expect(early.json.type).toBe("try_again");
    const first = await call("optim_step", { model_id: modelId, seq_id: 1, adam_params: adam(1e-3) });
    expect(await result(first.json.request_id)).toMatchObject({ type: "optim_step" });
    expect(await result(second.json.request_id)).toMatchObject({ type: "optim_step" });
  });

  it("maps a retried seq_id to the original request and refuses a conflicting one", async () => {
    const modelId = await newModel();
    const body = { model_id: modelId, seq_id: 1, adam_params: adam(1e-3) };
    const original = await call("optim_step", body);
    const retry = await call("optim_step", body);
    expect(retry.status).toBe(200);
    expect(retry.json.request_id).toBe(original.json.request_id);
    const conflicting = await call("optim_step", { ...body, adam_params: adam(5e-1) });
    expect(conflicting.status).toBe(400);
    expect(String(conflicting.json.detail)).toMatch(/already used by a different request/);
    const behind = await call("optim_step", { model_id: modelId, seq_id: 0, adam_params: adam(1e-3) });
    expect(behind.status).toBe(400);
  });
});
