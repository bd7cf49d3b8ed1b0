/**
 * The `encode` workload of bench/python.ts for tinker-ts: build 64 datums of 4,096 tokens (targets,
 * weights as number[], as the Python half holds them) and encode the forward_backward request the
 * way TrainingClient does before sending (validate, chunk, protobuf), median of REPEATS.
 *
 *   node --import tsx bench/peers/ts_encode.ts REPEATS
 *
 * Both halves time a process in its steady state, after the same ten warm-up calls
 * (python_sdk.py's ENCODE_WARM_UP). The Python SDK is there after one call: reference counting
 * frees each call's memory as it returns, so the next call reuses it (ten warm-up calls leave its
 * median where it was). V8 frees a request's memory only at a garbage collection, the first of which
 * comes about eight calls of this size into a fresh process: until then each call writes its ~7 MB
 * (the datums' copies, the 4.2 MB request) into fresh pages, about 1,800 minor page faults a call
 * (process.resourceUsage().minorPageFault), which on the 2-core VM doubles the figure. A training
 * loop pays that once per process, not per step. The fresh-process figure (one warm-up call) is
 * reported beside this one in docs/PERFORMANCE.md.
 */
import { chunkData, DEFAULT_CHUNK_LIMITS } from "../../src/lib/chunking.js";
import { datum, ModelInput } from "../../src/lib/model-input.js";
import { validateForwardBackwardInput } from "../../src/lib/validate.js";
import { encodeTrainingRequest } from "../../src/wire/protobuf/forward-backward-request.js";
import type { Datum } from "../../src/wire/types.js";
import { median } from "../lib/result.js";

const BATCH = 64;
const LENGTH = 4_096;
const VOCAB = 151_936;
const repeats = Number(process.argv[2] ?? 5);
// ENCODE_WARM_UP=1 gives the fresh-process figure; the Python half reads the same variable.
const WARM_UP = Number(process.env.ENCODE_WARM_UP ?? 10);

/** The same xorshift token ids as the Python half. */
function tokenIds(seed: number): number[] {
  let x = seed | 1;
  const out: number[] = [];
  for (let i = 0; i < LENGTH; i++) {
    x ^= (x << 13) >>> 0;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= (x << 5) >>> 0;
    x >>>= 0;
    out.push(x % VOCAB);
  }
  return out;
}

const plain = Array.from({ length: BATCH }, (_, b) => {
  const tokens = tokenIds(b + 1);
  return {
    tokens,
    targets: [...tokens.slice(1), 0],
    weights: tokens.map((_, i) => (i < LENGTH / 4 ? 0 : 1)),
  };
});

function buildAndEncode(): number {
  const data = plain.map(({ tokens, targets, weights }) =>
    datum(ModelInput.fromInts(tokens), { target_tokens: targets, weights }),
  );
  validateForwardBackwardInput(data, "cross_entropy", undefined, {}, { scanPlainArrays: false });
  const chunks = chunkData(data as Datum[], DEFAULT_CHUNK_LIMITS);
  let bytes = 0;
  for (const chunk of chunks) {
    bytes += encodeTrainingRequest({
      model_id: "bench-session:train:0",
      seq_id: 1,
      data: chunk,
      loss_fn: "cross_entropy",
      forward_only: false,
    }).length;
  }
  return bytes;
}

for (let i = 0; i < WARM_UP; i++) buildAndEncode();
const times: number[] = [];
let size = 0;
for (let i = 0; i < repeats; i++) {
  const t0 = performance.now();
  size = buildAndEncode();
  times.push(performance.now() - t0);
}
console.log(`FIGURE ${JSON.stringify({ ms: median(times), bytes: size })}`);
