/**
 * What the local backend accepts at most, so that no single request can exhaust its memory or its
 * event loop. These are the backend's own limits, not protocol facts (the protocol's own bounds,
 * which the SDK checks too, are in src/wire/endpoints/fields.ts); each refusal is a 4xx naming the
 * field, before any work starts.
 */
import { DEFAULT_MODEL_CONFIG } from "./engine/index.js";
import { HttpError } from "./responses.js";

export const LOCAL_LIMITS = {
  /**
   * Request body bytes (413 beyond). The local model's largest real bodies — a forward_backward
   * chunk of 1024 datums of 256 tokens, an uploaded adapter — are a few MiB.
   */
  maxBodyBytes: 64 * 1024 * 1024,
  /** Nesting of a JSON body; the protocol's deepest (a datum's tensors) is under ten levels. */
  maxJsonDepth: 64,
  /**
   * Sequences per sample request. Each one is a full generation, so this bounds the work one request
   * can ask for (a 2,000-sample request once held the backend for half a minute).
   */
  maxNumSamples: 256,
  /** LoRA rank; the local model is 64 wide, so a higher rank only costs memory. */
  maxLoraRank: 256,
  /** Prompt tokens: the model's context. */
  maxPromptTokens: DEFAULT_MODEL_CONFIG.maxSeqLen,
  /** Dimensions of one tensor. */
  maxTensorRank: 8,
  /** Cells one tensor may describe (its shape's product), dense or sparse. */
  maxTensorElements: 1 << 24,
} as const;

/** 400 naming `field` unless `value` is at most `max`. */
export function checkAtMost(field: string, value: number, max: number, unit = ""): void {
  if (value > max)
    throw new HttpError(
      400,
      `${field}: ${value}${unit} is more than the local backend's limit of ${max}${unit}`,
    );
}

/**
 * 400 naming `path` unless a tensor's shape is a list of at most `maxTensorRank` non-negative safe
 * integers whose product is at most `maxTensorElements` (a sparse tensor's shape can claim any size
 * whatever its body holds, and densifying it would allocate that).
 */
export function checkTensorShape(shape: unknown, path: string): void {
  if (shape === undefined || shape === null) return;
  if (!Array.isArray(shape)) throw new HttpError(400, `${path}.shape: must be an array of dimensions`);
  checkAtMost(`${path}.shape`, shape.length, LOCAL_LIMITS.maxTensorRank, " dimensions");
  let cells = 1;
  for (const [i, dim] of shape.entries()) {
    if (!Number.isSafeInteger(dim) || (dim as number) < 0) {
      throw new HttpError(400, `${path}.shape[${i}]: ${JSON.stringify(dim)} is not a valid dimension`);
    }
    cells *= dim as number;
  }
  checkAtMost(`${path}.shape`, cells, LOCAL_LIMITS.maxTensorElements, " cells");
}

/**
 * Whether `text` (JSON) nests arrays and objects deeper than `max`. A linear scan that skips
 * strings, so the check itself cannot overflow the stack on hostile input.
 */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** Thrown (as a 413) when a body grows past the limit while it is read. */
export class BodyTooLargeError extends HttpError {
  constructor(limit: number) {
    super(413, `request body is larger than the local backend's limit of ${limit} bytes`);
  }
}

/**
 * The request with its body counted as it streams: past `limit` bytes the stream fails and
 * `exceeded()` turns true, so whatever was reading it is answered 413 — without the body ever being
 * held whole. A declared Content-Length above the limit is refused before anything is read.
 */
export function limitBody(request: Request, limit: number): { request: Request; exceeded(): boolean } {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw new BodyTooLargeError(limit);
  if (request.body === null) return { request, exceeded: () => false };
  let seen = 0;
  let exceeded = false;
  const counted = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) {
          exceeded = true;
          controller.error(new BodyTooLargeError(limit));
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
  const limited = new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: counted,
    signal: request.signal,
    // Required by the fetch spec for a streamed request body.
    duplex: "half",
  } as RequestInit);
  return { request: limited, exceeded: () => exceeded };
}
