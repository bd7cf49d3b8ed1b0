/**
 * A lazily imported optional module: imported on first use, then shared. A failed import is not
 * kept, so a later call tries again (the package may have been installed since, or the network of
 * a browser's chunk load may be back).
 */
export function lazyImport<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
