/**
 * Links into the Tinker console (PROTOCOL.md §S2): a session, a training run, a checkpoint, the
 * playground. Built client-side; nothing is fetched. Ids are percent-encoded with no safe characters
 * (run ids hold `:`), as the official client does.
 */
import { parseTinkerPath } from "./tinker-path.js";

export const CONSOLE_BASE_URL = "https://tinker.thinkingmachines.ai";

/** Percent-encodes everything but the unreserved characters (RFC 3986 §2.3). */
function encodeSegment(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The session's page, or the sessions list before a session exists. */
export function sessionConsoleUrl(sessionId: string | undefined): string {
  return sessionId === undefined
    ? `${CONSOLE_BASE_URL}/sessions`
    : `${CONSOLE_BASE_URL}/sessions/${encodeSegment(sessionId)}`;
}

export function trainingRunConsoleUrl(trainingRunId: string): string {
  return `${CONSOLE_BASE_URL}/training_runs/${encodeSegment(trainingRunId)}`;
}

/** A checkpoint's page, from its `tinker://` path (e.g. a save's result `path`). */
export function checkpointConsoleUrl(tinkerPath: string): string {
  const { trainingRunId, checkpointId } = parseTinkerPath(tinkerPath);
  return `${CONSOLE_BASE_URL}/checkpoints/${encodeSegment(trainingRunId)}/${encodeSegment(checkpointId)}`;
}

/** The sampler checkpoints of a run. */
export function samplerWeightsConsoleUrl(trainingRunId: string): string {
  return `${CONSOLE_BASE_URL}/checkpoints/${encodeSegment(trainingRunId)}/sampler_weights`;
}

/** The playground, sampling from a checkpoint. */
export function playgroundConsoleUrl(tinkerPath: string): string {
  return `${CONSOLE_BASE_URL}/playground?mode=checkpoint&checkpoint=${encodeSegment(tinkerPath)}`;
}
