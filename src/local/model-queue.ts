/**
 * Executes one model's requests strictly in seq_id order (PROTOCOL.md §6.2). Submissions may arrive
 * out of order (the official client sends chunk 1 of a forward_backward last) and are buffered until
 * their turn; a repeated seq_id is the same logical request and maps to the first request id, so a
 * retried submission is never applied twice.
 */

interface QueuedJob {
  requestId: string;
  run: () => Promise<void> | void;
}

/** What was submitted under a seq_id: its request id and a fingerprint of its content. */
export interface Submitted {
  requestId: string;
  fingerprint: string;
}

export class ModelQueue {
  #nextSeqId: number;
  readonly #waiting = new Map<number, QueuedJob>();
  readonly #seen = new Map<number, Submitted>();
  #draining = false;

  constructor(firstSeqId = 1) {
    this.#nextSeqId = firstSeqId;
  }

  /** What was already submitted under this seq_id, if anything. */
  submitted(seqId: number): Submitted | undefined {
    return this.#seen.get(seqId);
  }

  get nextSeqId(): number {
    return this.#nextSeqId;
  }

  /**
   * Records a submission made before a restart (its job already ran), so that a retry of it maps
   * to its request id instead of being refused as behind.
   */
  remember(seqId: number, submitted: Submitted): void {
    this.#seen.set(seqId, submitted);
  }

  /** Queues a job; it runs when every lower seq_id has run. */
  submit(seqId: number, requestId: string, fingerprint: string, run: QueuedJob["run"]): void {
    this.#seen.set(seqId, { requestId, fingerprint });
    this.#waiting.set(seqId, { requestId, run });
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (;;) {
        const job = this.#waiting.get(this.#nextSeqId);
        if (!job) return;
        this.#waiting.delete(this.#nextSeqId);
        this.#nextSeqId++;
        // Yield first so the submission's answer goes out before the (synchronous) compute starts.
        await new Promise((resolve) => setTimeout(resolve, 0));
        await job.run();
      }
    } finally {
      this.#draining = false;
    }
  }
}
