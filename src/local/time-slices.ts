/**
 * Long computations in short slices. The local backend computes on the thread that answers
 * requests, so a big sample run in one go would leave heartbeats, health checks and polls
 * unanswered until it ends (a 2,000-sample request once held it for half a minute and let sessions
 * expire). Work written as a generator of steps is run here with a macrotask pause whenever a slice
 * has lasted SLICE_MS; the result is the same however it is sliced.
 */

/** How long one slice may hold the event loop. */
const SLICE_MS = 10;

/** A pause that lets timers and I/O run (web-standard; Node's minimum delay is about 1 ms). */
const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Runs `steps` to its result, pausing between slices; undefined if `cancelled()` turns true at a
 * pause (the rest of the work is then skipped). `sliceMs` 0 pauses at every step: a streamed
 * answer steps once per token, so that each token is written before the next is computed.
 */
export async function runInSlices<T>(
  steps: Generator<void, T, void>,
  cancelled: () => boolean = () => false,
  sliceMs = SLICE_MS,
): Promise<T | undefined> {
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await pause();
      if (cancelled()) {
        steps.return(undefined as never);
        return undefined;
      }
      sliceStart = performance.now();
    }
  }
}
