/**
 * Paged list calls as one value that is both awaitable and async-iterable, in the manner of
 * openai-node's PagePromise:
 *
 *   const page = await rest.listTrainingRuns({ limit: 50 });      // one page, as the server sent it
 *   for await (const run of rest.listTrainingRuns()) { ... }      // every run, fetching pages as needed
 *
 * A page starts at a position: an offset for the list endpoints, a cursor for checkpoint search.
 *
 * The first request is sent when the value is first awaited or iterated (not before, so an unused
 * result cannot turn into an unhandled rejection), and that first page is shared by both uses.
 */

/** How to walk one list endpoint; `Position` is where a page starts (an offset unless said otherwise). */
export interface Paging<Page, Item, Position = number> {
  /** Fetches the page that starts at `offset`. */
  fetchPage(offset: Position): Promise<Page>;
  /** The items of a page, in order. */
  items(page: Page): readonly Item[];
  /** Where the page after `page` (which started at `offset`) starts, or undefined if it was the last. */
  nextOffset(page: Page, offset: Position): Position | undefined;
}

export class PagePromise<Page, Item, Position = number> implements PromiseLike<Page>, AsyncIterable<Item> {
  readonly #paging: Paging<Page, Item, Position>;
  readonly #start: Position;
  #firstPage: Promise<Page> | undefined;

  /** `start`: where the first page starts; 0 for offset paging. */
  constructor(paging: Paging<Page, Item, Position>, start: Position = 0 as Position) {
    this.#paging = paging;
    this.#start = start;
  }

  // biome-ignore lint/suspicious/noThenProperty: being awaitable is the point of this class.
  then<A = Page, B = never>(
    onFulfilled?: ((page: Page) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#first().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Page | B> {
    return this.#first().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Page> {
    return this.#first().finally(onFinally);
  }

  /** Every page from the starting position to the end, each fetched when the previous one is consumed. */
  async *pages(): AsyncGenerator<Page, void, undefined> {
    let offset = this.#start;
    let page = await this.#first();
    for (;;) {
      yield page;
      const next = this.#paging.nextOffset(page, offset);
      if (next === undefined) return;
      offset = next;
      page = await this.#paging.fetchPage(offset);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Item, void, undefined> {
    for await (const page of this.pages()) yield* this.#paging.items(page);
  }

  #first(): Promise<Page> {
    this.#firstPage ??= this.#paging.fetchPage(this.#start);
    return this.#firstPage;
  }
}

/** A page's position in the whole list, as the Tinker list endpoints report it. */
export interface OffsetCursor {
  offset: number;
  limit: number;
  total_count: number;
}

/**
 * Next offset for endpoints with a cursor: continue after the items received while they fall short
 * of `total_count`. Counting received items (rather than trusting `limit`) also copes with a server
 * that caps the page size; an empty page always ends the walk.
 */
export function nextOffsetFromCursor(
  cursor: OffsetCursor | null | undefined,
  received: number,
): number | undefined {
  if (!cursor || received === 0) return undefined;
  const next = cursor.offset + received;
  return next < cursor.total_count ? next : undefined;
}

/** Next offset for endpoints without a cursor: a page shorter than the limit is the last one. */
export function nextOffsetByPageSize(offset: number, received: number, limit: number): number | undefined {
  return received === 0 || received < limit ? undefined : offset + received;
}
