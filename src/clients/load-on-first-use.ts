/**
 * A part of the SDK that loads with its first call (the training side, the REST methods, the
 * tokenizer loader: docs/PERFORMANCE.md (e)). In a browser it is a code chunk fetched then, so it
 * can fail as a request can; such a failure is an APIConnectionError naming the part, like any
 * other failure to reach the network, and the next call tries again (`lazyImport`).
 */
import { APIConnectionError } from "../core/errors.js";
import { lazyImport } from "../internal/lazy-import.js";

export function loadOnFirstUse<T>(part: string, load: () => Promise<T>): () => Promise<T> {
  return lazyImport(() =>
    load().catch((error: unknown) => {
      const why = error instanceof Error ? error.message : String(error);
      throw new APIConnectionError(`Could not load tinker-ts's ${part} (loaded on first use): ${why}`, {
        cause: error,
      });
    }),
  );
}
