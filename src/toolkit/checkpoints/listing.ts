/** The step checkpoints (`<prefix>step-N`) of a run, as the server lists them. */
import type { CallOptions } from "../../clients/call-options.js";
import type { RestClient } from "../../clients/rest.js";
import { NotFoundError } from "../../core/errors.js";
import { stepFromCheckpointName } from "./names.js";

export interface SavedCheckpoint {
  /** The training run that saved it. */
  runId: string;
  /** `<prefix>step-000120`. */
  name: string;
  /** Steps completed when it was saved: resume continues with this step. */
  step: number;
  /** The training checkpoint (weights and optimizer state): `tinker://<run>/weights/<name>`. */
  path: string;
  /** The sampler weights saved next to it (`withSampler`), when there are any. */
  samplerPath?: string;
  /** When the server saved it (for a checkpoint just saved: when the save completed, on this host's clock). */
  time: Date;
  /** When the server deletes it; null: never. */
  expiresAt: Date | null;
  /** The metrics it was saved with, when the ledger has them. */
  metrics?: Record<string, number>;
  /** Pinned in the ledger; undefined when no ledger was consulted. */
  pinned?: boolean;
}

/**
 * The run's training checkpoints named `<prefix>step-N`, oldest step first, each with its sampler
 * twin of the same name if there is one. An unknown run has none (it may have been deleted).
 */
export async function listStepCheckpoints(
  rest: RestClient,
  runId: string,
  prefix: string,
  options: CallOptions = {},
): Promise<SavedCheckpoint[]> {
  let listed: Awaited<ReturnType<RestClient["listCheckpoints"]>>["checkpoints"];
  try {
    listed = (await rest.listCheckpoints(runId, options)).checkpoints;
  } catch (error) {
    if (error instanceof NotFoundError) return [];
    throw error;
  }
  const samplerNames = new Set(
    listed.filter((c) => c.checkpoint_type === "sampler").map((c) => nameOf(c.checkpoint_id)),
  );
  const found: SavedCheckpoint[] = [];
  for (const c of listed) {
    if (c.checkpoint_type !== "training") continue;
    const name = nameOf(c.checkpoint_id);
    const step = stepFromCheckpointName(name, prefix);
    if (step === undefined) continue;
    const saved: SavedCheckpoint = {
      runId,
      name,
      step,
      path: c.tinker_path,
      time: c.time,
      expiresAt: c.expires_at ?? null,
    };
    if (samplerNames.has(name)) saved.samplerPath = samplerPathOf(runId, name);
    found.push(saved);
  }
  return found.sort((a, b) => a.step - b.step || a.time.getTime() - b.time.getTime());
}

/** `weights/<name>` → `<name>`. */
export function nameOf(checkpointId: string): string {
  return checkpointId.slice(checkpointId.indexOf("/") + 1);
}

export function trainingPathOf(runId: string, name: string): string {
  return `tinker://${runId}/weights/${name}`;
}

export function samplerPathOf(runId: string, name: string): string {
  return `tinker://${runId}/sampler_weights/${name}`;
}
