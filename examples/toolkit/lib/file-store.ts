/**
 * Where the toolkit examples keep a training job's state between processes: the CheckpointManager's
 * ledger (the job's runs, the metrics keep-best compares, the pins) and the current run id, as one
 * JSON file. Used by sft-chat.ts and sft-driver.ts for `--state FILE` / `--resume`.
 *
 * The toolkit itself never touches the file system (a `CheckpointStore` is the caller's); this is
 * the Node side of it, for scripts that must survive a SIGKILL.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import type { CheckpointLedger, CheckpointStore } from "tinker-ts/toolkit";

export interface RunState {
  /** The CheckpointManager's ledger store. */
  store: CheckpointStore;
  /** Records the run being trained (a resume creates a new run). */
  setRunId(runId: string): Promise<void>;
}

/** State kept in this process only: nothing to resume from after it exits. */
export function memoryState(): RunState {
  let ledger: CheckpointLedger | undefined;
  return {
    store: {
      load: () => ledger,
      save: (next) => {
        ledger = next;
      },
    },
    setRunId: async () => {},
  };
}

/**
 * The file store: `{ runId, ledger }` as JSON, replaced atomically (write a temporary file, then
 * rename) so that a kill mid-write leaves the previous version. A missing file is an empty state.
 */
export async function fileState(file: string): Promise<RunState> {
  let contents: { runId?: string; ledger?: CheckpointLedger } = {};
  try {
    contents = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const write = async () => {
    await writeFile(`${file}.tmp`, `${JSON.stringify(contents, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  };
  return {
    store: {
      load: () => contents.ledger,
      save: async (ledger) => {
        contents = { ...contents, ledger };
        await write();
      },
    },
    setRunId: async (runId) => {
      contents = { ...contents, runId };
      await write();
    },
  };
}
