import type { Db } from './db';

/** One inbox row as the webhook stores it. */
export interface InboxRow {
  webhook_event_id: string;
  event_type: string;
  source_user_id: string | null;
  payload: string;
  payload_original: string | null;
}

interface Waiting {
  rows: InboxRow[];
  resolve: (newIds: number[]) => void;
  reject: (err: unknown) => void;
}

export interface InboxWriterOptions {
  /** INSERTs in flight at once; requests that arrive meanwhile wait and go in the next one. */
  concurrency?: number;
  /** Rows per INSERT at most. */
  maxRows?: number;
  /** After each committed INSERT, with the ids of every new row it stored (e.g. to enqueue them in one call). */
  onStored?: (ids: number[]) => void;
}

/**
 * Group commit for the webhook inbox. Each webhook request is answered only after its events are
 * committed, and the cost of a commit is mostly its WAL flush, the same for one row or hundreds. So
 * requests that arrive while an INSERT is committing wait for it to finish and then share the next
 * one: under load, one multi-row INSERT (one transaction, one flush) stores the events of many
 * requests, each request's promise resolving when that INSERT has committed. With no load, a
 * request's INSERT starts at once (no timer, no added latency).
 */
export class InboxWriter {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private readonly concurrency: number;
  private readonly maxRows: number;
  /** Committed INSERT statements (for tests and benchmarks). */
  batches = 0;

  constructor(
    private readonly db: Db,
    private readonly opts: InboxWriterOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 2;
    this.maxRows = opts.maxRows ?? 1000;
  }

  /** Stores a request's events (deduplicated by webhookEventId); resolves with the ids of those new to the inbox. */
  store(rows: InboxRow[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const batch: Waiting[] = [];
      let n = 0;
      while (this.queue.length > 0 && (batch.length === 0 || n + this.queue[0]!.rows.length <= this.maxRows)) {
        const w = this.queue.shift()!;
        batch.push(w);
        n += w.rows.length;
      }
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(batch: Waiting[]): Promise<void> {
    try {
      const ids = await this.insert(batch.flatMap((w) => w.rows));
      this.batches++;
      this.settle(batch, ids);
    } catch (err) {
      if (batch.length === 1 || !isDataError(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      // A value PostgreSQL refuses must fail its own request only: store the others one by one.
      for (const w of batch) {
        try {
          this.settle([w], await this.insert(w.rows));
          this.batches++;
        } catch (e) {
          w.reject(e);
        }
      }
    }
  }

  /** One INSERT; returns webhookEventId → id for the rows that were new. */
  private async insert(rows: InboxRow[]): Promise<Map<string, number>> {
    // A webhookEventId twice in one batch (LINE redelivering while the first is in flight) is one row.
    const unique = [...new Map(rows.map((r) => [r.webhook_event_id, r])).values()];
    const stored = await this.db('line_events')
      .insert(unique)
      .onConflict('webhook_event_id')
      .ignore()
      .returning(['id', 'webhook_event_id']);
    return new Map((stored as Array<{ id: number; webhook_event_id: string }>).map((r) => [r.webhook_event_id, r.id]));
  }

  private settle(batch: Waiting[], ids: Map<string, number>): void {
    const all: number[] = [];
    for (const w of batch) {
      const mine: number[] = [];
      for (const r of w.rows) {
        const id = ids.get(r.webhook_event_id);
        if (id !== undefined) {
          mine.push(id);
          ids.delete(r.webhook_event_id); // a duplicate in a later request of the batch is not new
        }
      }
      all.push(...mine);
      w.resolve(mine);
    }
    if (all.length && this.opts.onStored) this.opts.onStored(all);
  }
}

/** SQLSTATE class 22: the data itself was refused (not an outage). */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('22');
}
