/**
 * `tinker://` checkpoint paths (PROTOCOL.md §3.9): `tinker://<training_run_id>/<kind>/<name>`, where
 * `kind` is `weights` (a training checkpoint, with optimizer state), `sampler_weights` (inference
 * weights) or `external_weights` (an HF/PEFT-format adapter, §W2). The REST endpoints address a checkpoint by run id and `<kind>/<name>`, so every
 * path-based RestClient call starts here.
 */
import { ValidationError } from "../core/errors.js";
import { type CheckpointType, checkpointTypeOfSegment } from "../wire/checkpoint-kinds.js";

export type { CheckpointType };

export interface ParsedTinkerPath {
  /** The path as given. */
  tinkerPath: string;
  /** The run that saved the checkpoint, e.g. `<session>:train:0`. */
  trainingRunId: string;
  checkpointType: CheckpointType;
  /** `weights/<name>` or `sampler_weights/<name>`: the id the REST endpoints expect. */
  checkpointId: string;
}

const SCHEME = "tinker://";

/**
 * Splits a checkpoint path with the official client's rules: exactly three `/`-separated parts after
 * `tinker://`, the second naming the kind. Unlike the official parser it also
 * rejects empty parts, which would only produce a request for a URL that cannot exist.
 */
export function parseTinkerPath(tinkerPath: string): ParsedTinkerPath {
  const invalid = (reason: string) =>
    new ValidationError([
      { path: "tinkerPath", message: `invalid tinker path ${JSON.stringify(tinkerPath)}: ${reason}` },
    ]);
  if (typeof tinkerPath !== "string" || !tinkerPath.startsWith(SCHEME)) {
    throw invalid(`it must start with ${SCHEME}`);
  }
  const parts = tinkerPath.slice(SCHEME.length).split("/");
  if (parts.length !== 3) throw invalid("expected tinker://<training_run_id>/<kind>/<name>");
  const [trainingRunId, kind, name] = parts as [string, string, string];
  const checkpointType = checkpointTypeOfSegment(kind);
  if (checkpointType === undefined) {
    throw invalid(
      `the kind must be "weights", "sampler_weights" or "external_weights", not ${JSON.stringify(kind)}`,
    );
  }
  if (trainingRunId === "" || name === "") throw invalid("the run id and the name must not be empty");
  return {
    tinkerPath,
    trainingRunId,
    checkpointType,
    checkpointId: `${kind}/${name}`,
  };
}
