import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from './data/db';
import type { Queues } from './jobs/queues';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5];

/**
 * The shop's Prometheus metrics, one registry per process (tests run several shops in one process,
 * so nothing goes to prom-client's global registry). Counters and latencies are counted where the
 * work happens; queue depths and inbox/outbox lag are read from Redis and PostgreSQL when scraped,
 * so any web process reports the whole shop's backlog.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly webhookRequests = new Counter({
    name: 'lineshop_webhook_requests_total',
    help: 'LINE webhook requests answered, by HTTP status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly webhookEvents = new Counter({
    name: 'lineshop_webhook_events_total',
    help: 'LINE webhook events stored in the inbox (new, not redelivered duplicates)',
    registers: [this.registry],
  });
  readonly inboxInserts = new Counter({
    name: 'lineshop_inbox_inserts_total',
    help: 'Committed inbox INSERTs that stored new events (several webhook requests share one under load)',
    registers: [this.registry],
  });
  readonly webhookSeconds = new Histogram({
    name: 'lineshop_webhook_duration_seconds',
    help: 'Time from a webhook request to its answer',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly callbacks = new Counter({
    name: 'lineshop_bank_callbacks_total',
    help: 'Bank and logistics callbacks answered, by route and HTTP status',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly callbackSeconds = new Histogram({
    name: 'lineshop_bank_callback_duration_seconds',
    help: 'Time to answer a bank or logistics callback, by route',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'lineshop_line_deliveries_total',
    help: 'Outbox deliveries to LINE by way (reply, push), outcome (sent, retry, undeliverable, failed) and LINE HTTP status',
    labelNames: ['via', 'result', 'status'] as const,
    registers: [this.registry],
  });

  constructor(opts: { db?: Db; queues?: Queues; defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'lineshop_' });
    const { db, queues } = opts;
    if (queues) {
      new Gauge({
        name: 'lineshop_queue_jobs',
        help: 'BullMQ jobs per queue and state',
        labelNames: ['queue', 'state'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          await Promise.all(
            queues.all().map(async (q) => {
              const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized').catch(() => null);
              if (counts) for (const [state, n] of Object.entries(counts)) this.set({ queue: q.name, state }, n);
            }),
          );
        },
      });
    }
    if (db) {
      const lag = (name: string, help: string, sql: string) =>
        new Gauge({
          name,
          help,
          labelNames: ['what'] as const,
          registers: [this.registry],
          async collect() {
            const r = await db.raw<{ rows: Array<{ n: number; age: number | null }> }>(sql).catch(() => null);
            if (!r) return;
            this.set({ what: 'count' }, Number(r.rows[0]!.n));
            this.set({ what: 'oldest_seconds' }, Number(r.rows[0]!.age ?? 0));
          },
        });
      lag(
        'lineshop_inbox_backlog',
        'LINE events stored but not processed yet: how many, and the age of the oldest',
        `SELECT count(*)::int AS n, extract(epoch FROM now() - min(received_at))::float AS age
           FROM line_events WHERE processed_at IS NULL AND failed_at IS NULL`,
      );
      lag(
        'lineshop_outbox_backlog',
        'Messages written but not delivered yet: how many, and the age of the oldest',
        `SELECT count(*)::int AS n, extract(epoch FROM now() - min(created_at))::float AS age
           FROM outbox_messages WHERE status IN ('pending', 'sending')`,
      );
    }
  }
}
