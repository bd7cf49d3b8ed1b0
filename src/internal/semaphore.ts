/**
 * Counting semaphore and byte budget for client-side concurrency caps (PROTOCOL.md §10). Waiters are
 * served in arrival order, and a waiter whose signal fires leaves the queue.
 */
import { abortError } from "./sleep.js";

interface Waiter {
  amount: number;
  grant: () => void;
}

/**
 * A budget of `capacity` units. `acquire(n)` waits until `n` units are free; like the official byte
 * semaphore, a request larger than the whole budget still runs once the budget is untouched, so a
 * single huge prompt cannot deadlock.
 */
export class Budget {
  #available: number;
  readonly #capacity: number;
  readonly #queue: Waiter[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#available = capacity;
  }

  get available(): number {
    return this.#available;
  }

  async acquire(amount = 1, signal?: AbortSignal): Promise<() => void> {
    const release = () => this.#release(amount);
    if (this.#queue.length === 0 && this.#fits(amount)) {
      this.#available -= amount;
      return release;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        amount,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(abortError(signal!));
        this.#drain();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
    });
    return release;
  }

  /** Runs `task` holding `amount` units. */
  async with<T>(amount: number, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(amount, signal);
    try {
      return await task();
    } finally {
      release();
    }
  }

  #fits(amount: number): boolean {
    return amount <= this.#available || this.#available === this.#capacity;
  }

  #release(amount: number): void {
    this.#available += amount;
    this.#drain();
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#fits(this.#queue[0]!.amount)) {
      const waiter = this.#queue.shift()!;
      this.#available -= waiter.amount;
      waiter.grant();
    }
  }
}
