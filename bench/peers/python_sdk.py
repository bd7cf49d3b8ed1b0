"""The Python half of bench/python.ts: one workload of the official Python SDK, in its own process.

    $TINKER_PY bench/peers/python_sdk.py fb-cpu   BASE_URL COUNT
    $TINKER_PY bench/peers/python_sdk.py samples  BASE_URL COUNT
    $TINKER_PY bench/peers/python_sdk.py encode   -        REPEATS

Prints one line `FIGURE {json}` that bench/python.ts reads; the TypeScript half (bench/peers/ts-sdk.ts)
runs the same workloads with tinker-ts and prints the same line.

  fb-cpu   client CPU (process time: every thread) per sequential forward_backward future, after a
           warm-up, on a 4-token datum (the engine is next to free and runs in the server process).
  samples  peak RSS (ru_maxrss) of a process that launches COUNT sample calls at once and waits for all.
  encode   wall time of building 64 datums of 4,096 tokens (targets, weights) and encoding the
           forward_backward request as the SDK sends it (protobuf), median of REPEATS.
"""

import json
import os
import resource
import statistics
import sys
import time

MODEL = "tinker-ts/byte-lm-tiny"
ENCODE_WARM_UP = int(os.environ.get("ENCODE_WARM_UP", "10"))


def figure(**values) -> None:
    print("FIGURE " + json.dumps(values), flush=True)


def fb_cpu(url: str, count: int) -> None:
    import tinker
    from tinker import types

    service = tinker.ServiceClient(base_url=url, api_key="tml-bench")
    training = service.create_lora_training_client(base_model=MODEL, rank=1)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([256, 72, 105, 33]),
        loss_fn_inputs={"target_tokens": [72, 105, 33, 10], "weights": [1.0, 1.0, 1.0, 1.0]},
    )
    for _ in range(count):  # warm-up as long as the run: connections, caches, the JIT of the TS half
        training.forward_backward([datum], "cross_entropy").result()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(count):
        training.forward_backward([datum], "cross_entropy").result()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    figure(cpu_us=cpu / count * 1e6, wall_us=wall / count * 1e6)


def samples(url: str, count: int) -> None:
    import tinker
    from tinker import types

    service = tinker.ServiceClient(base_url=url, api_key="tml-bench")
    sampler = service.create_sampling_client(base_model=MODEL)
    prompt = types.ModelInput.from_ints([256] + [72 + (i % 26) for i in range(63)])
    params = types.SamplingParams(max_tokens=1, seed=0)
    started = time.perf_counter()
    futures = [sampler.sample(prompt=prompt, num_samples=1, sampling_params=params) for _ in range(count)]
    done = sum(1 for f in futures if f.result().sequences)
    seconds = time.perf_counter() - started
    # Linux reports ru_maxrss in KiB.
    figure(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, done=done, seconds=seconds)


def encode(repeats: int) -> None:
    from tinker import types
    from tinker.proto.request_conv import forward_backward_request_to_proto

    batch, length, vocab = 64, 4096, 151_936

    def token_ids(seed: int) -> list[int]:
        x, out = seed | 1, []
        for _ in range(length):
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            out.append(x % vocab)
        return out

    plain = []
    for b in range(batch):
        tokens = token_ids(b + 1)
        plain.append((tokens, tokens[1:] + [0], [0.0 if i < length // 4 else 1.0 for i in range(length)]))

    def build_and_encode() -> int:
        data = [
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens),
                loss_fn_inputs={"target_tokens": targets, "weights": weights},
            )
            for tokens, targets, weights in plain
        ]
        request = types.ForwardBackwardRequest(
            forward_backward_input=types.ForwardBackwardInput(data=data, loss_fn="cross_entropy"),
            model_id="bench-session:train:0",
            seq_id=1,
        )
        return len(forward_backward_request_to_proto(request).SerializeToString())

    # As many warm-up calls as the TypeScript half (ts_encode.ts says why ten): both timed steady.
    for _ in range(ENCODE_WARM_UP):
        build_and_encode()
    times, size = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        size = build_and_encode()
        times.append((time.perf_counter() - t0) * 1000)
    figure(ms=statistics.median(times), bytes=size)


if __name__ == "__main__":
    workload, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if workload == "fb-cpu":
        fb_cpu(url, n)
    elif workload == "samples":
        samples(url, n)
    elif workload == "encode":
        encode(n)
    else:
        sys.exit(f"unknown workload {workload}")
