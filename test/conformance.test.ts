/**
 * Conformance: the SDK's requests on the walking-skeleton path compared, field by field, with what
 * the official Python client 0.25.0 really sent (shared/conformance/requests-*0.25.0.jsonl, or its
 * copy in test/fixtures/conformance): paths, JSON bodies (key order included), decoded protobuf, and
 * the protocol headers.
 */
import { describe, expect, it } from "vitest";
import { ModelInput, PROTOCOL_SDK_VERSION, TensorData } from "../src/index.js";
import { forwardBackwardRequestToProtoJson } from "../src/wire/protobuf/proto-json.js";
import { localService, type RecordedRequest, readConformance } from "./helpers.js";

interface ConformanceLine {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** Our ids differ from the stub server's; map them onto the recorded ones before comparing. */
function normalize(text: string, sessionId: string): string {
  return text.split(sessionId).join("stub-session-1");
}

function decodedBody(request: RecordedRequest, sessionId: string): Record<string, unknown> {
  if (request.headers.get("content-type") === "application/x-protobuf") {
    const proto = forwardBackwardRequestToProtoJson(request.body);
    return JSON.parse(normalize(JSON.stringify(proto), sessionId));
  }
  return JSON.parse(normalize(new TextDecoder().decode(request.body), sessionId));
}

/** Headers whose values are protocol facts (not platform values) must match exactly. */
const EXACT_HEADERS = [
  "accept",
  "content-type",
  "x-stainless-read-timeout",
  "x-stainless-retry-count",
  "x-tinker-request-type",
  "x-tinker-request-iteration",
];
/** Headers that must be present (their values are per-client: platform, key, uuid, timing). */
const PRESENT_HEADERS = [
  "user-agent",
  "x-stainless-package-version",
  "x-stainless-os",
  "x-stainless-arch",
  "x-stainless-runtime",
  "x-stainless-runtime-version",
  "x-stainless-async",
  "x-api-key",
];

function compareHeaders(ours: Headers, theirs: Record<string, string>, where: string): void {
  const lowered = Object.fromEntries(Object.entries(theirs).map(([k, v]) => [k.toLowerCase(), v]));
  for (const name of EXACT_HEADERS) {
    expect(ours.get(name) ?? undefined, `${where}: header ${name}`).toBe(lowered[name]);
  }
  for (const name of PRESENT_HEADERS) {
    expect(ours.has(name), `${where}: header ${name} present`).toBe(name in lowered);
  }
  expect(ours.has("x-idempotency-key"), `${where}: idempotency key`).toBe("x-idempotency-key" in lowered);
  if (ours.has("x-idempotency-key"))
    expect(ours.get("x-idempotency-key")).toMatch(/^tinker-ts-retry-[0-9a-f-]{36}$/);
  expect(ours.has("x-tinker-create-promise-roundtrip-time"), `${where}: roundtrip header`).toBe(
    "x-tinker-create-promise-roundtrip-time" in lowered,
  );
}

/** Submissions and configuration calls, in order (polls are compared separately). */
function calls<T extends { path: string }>(list: T[]): T[] {
  return list.filter(
    (r) =>
      !r.path.endsWith("/retrieve_future") &&
      !r.path.endsWith("/telemetry") &&
      !r.path.endsWith("/session_heartbeat"),
  );
}

/** The first poll of each future, keyed by X-Tinker-Request-Type. */
function firstPolls<T extends { path: string }>(
  list: T[],
  typeOf: (r: T) => string | null,
  iterationOf: (r: T) => string | null,
) {
  const polls = new Map<string, T>();
  for (const r of list) {
    if (r.path.endsWith("/retrieve_future") && iterationOf(r) === "0") {
      const type = typeOf(r)!;
      if (!polls.has(type)) polls.set(type, r);
    }
  }
  return polls;
}

/**
 * What this SDK sends differently from the 0.25.0 recordings, on purpose (PROTOCOL.md §16): the
 * protocol level it reports, and the 0.26+ fields the official client always sends. Everything else
 * must match the recording exactly.
 */
const INTENDED_CHANGES: {
  what: string;
  applies(line: ConformanceLine): boolean;
  change(body: Record<string, unknown>): Record<string, unknown>;
}[] = [
  {
    what: "sdk_version is the implemented protocol level, 0.39.0 (§G1)",
    applies: (line) => "sdk_version" in line.body && !line.path.endsWith("/telemetry"),
    change: (body) => ({ ...body, sdk_version: PROTOCOL_SDK_VERSION }),
  },
  {
    what: "create_model always names the optimizer family, AdamW by default, before `type` (§O1)",
    applies: (line) => line.path.endsWith("/create_model"),
    change: ({ type, ...rest }) => ({ ...rest, optimizer_config: { type: "adamw" }, type }),
  },
];

function intended(line: ConformanceLine): ConformanceLine {
  let body = line.body;
  for (const change of INTENDED_CHANGES) if (change.applies(line)) body = change.change(body);
  return { ...line, body };
}

function compareRun(recorded: RecordedRequest[], recording: ConformanceLine[]): void {
  const expected = recording.map(intended);
  const sessionId = (
    JSON.parse(new TextDecoder().decode(recorded.find((r) => r.path.endsWith("/create_model"))!.body)) as {
      session_id: string;
    }
  ).session_id;
  // The SDK reads the capabilities once, after creating a model, to check inputs against the
  // model's context length before sending them; the official client does not. That one GET is the
  // only request it adds.
  const capabilityReads = recorded.filter((r) => r.path.endsWith("/get_server_capabilities"));
  expect(capabilityReads.length).toBeLessThanOrEqual(1);
  const ours = calls(recorded.filter((r) => !capabilityReads.includes(r)));
  const theirs = calls(expected);
  expect(ours.map((r) => `${r.method} ${r.path}`)).toEqual(theirs.map((r) => `${r.method} ${r.path}`));
  ours.forEach((request, i) => {
    const line = theirs[i]!;
    const where = `${line.method} ${line.path}`;
    const { _proto, ...expectedBody } = line.body;
    if (_proto) {
      // Protobuf map entries have no defined order (the Python runtime emits hash order).
      expect(decodedBody(request, sessionId), where).toEqual(expectedBody);
    } else {
      // JSON key order too, as the official client writes it.
      expect(JSON.stringify(decodedBody(request, sessionId)), where).toBe(JSON.stringify(expectedBody));
    }
    compareHeaders(request.headers, line.headers, where);
  });

  const ourPolls = firstPolls(
    recorded,
    (r) => r.headers.get("x-tinker-request-type"),
    (r) => r.headers.get("x-tinker-request-iteration"),
  );
  const theirPolls = firstPolls(
    expected,
    (l) => l.headers["X-Tinker-Request-Type"] ?? null,
    (l) => l.headers["X-Tinker-Request-Iteration"] ?? null,
  );
  expect([...ourPolls.keys()].sort()).toEqual([...theirPolls.keys()].sort());
  for (const [type, poll] of ourPolls) {
    const line = theirPolls.get(type)!;
    const body = JSON.parse(new TextDecoder().decode(poll.body)) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(Object.keys(line.body));
    expect(body.allow_metadata_only).toBe(true);
    expect(typeof body.request_id).toBe("string");
    compareHeaders(poll.headers, line.headers, `retrieve_future ${type}`);
  }
}

describe("conformance with the official client 0.25.0", () => {
  it("matches requests-0.25.0.jsonl: create a LoRA client and run forward_backward", async () => {
    const t = localService();
    try {
      const training = await t.service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 8 });
      await training.forwardBackward(
        [
          {
            model_input: ModelInput.fromInts([1, 2, 3, 4]),
            loss_fn_inputs: {
              target_tokens: TensorData.fromArray([2, 3, 4, 5], "int64"),
              weights: TensorData.fromArray([0, 1, 1, 1], "float32"),
            },
          },
        ],
        "cross_entropy",
      );
      compareRun(t.requests, readConformance<ConformanceLine>("requests-0.25.0.jsonl"));
    } finally {
      await t.close();
    }
  });

  it("matches requests-ext-0.25.0.jsonl: metadata, seed, optim_step, heartbeat", async () => {
    const t = localService({ client: { userMetadata: { who: "peer-check" }, heartbeatIntervalMs: 50 } });
    try {
      const training = await t.service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 8, seed: 7 });
      const batch = [
        {
          model_input: ModelInput.fromInts([1, 2, 3]),
          loss_fn_inputs: { target_tokens: TensorData.fromArray([2, 3, 4], "int64") },
        },
      ];
      await training.forwardBackward(batch, "cross_entropy");
      await training.optimStep();
      await training.forwardBackward(batch, "cross_entropy");
      await new Promise((resolve) => setTimeout(resolve, 120));
      const expected = readConformance<ConformanceLine>("requests-ext-0.25.0.jsonl");
      compareRun(t.requests, expected);

      const heartbeat = t.requests.find((r) => r.path.endsWith("/session_heartbeat"))!;
      const line = expected.find((l) => l.path.endsWith("/session_heartbeat"))!;
      const sessionId = (JSON.parse(new TextDecoder().decode(heartbeat.body)) as { session_id: string })
        .session_id;
      expect(JSON.stringify(decodedBody(heartbeat, sessionId))).toBe(JSON.stringify(line.body));
      compareHeaders(heartbeat.headers, line.headers, "session_heartbeat");
    } finally {
      await t.close();
    }
  });
});
