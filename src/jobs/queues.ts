import { JobsOptions, Queue } from 'bullmq';
import type { Redis } from '../data/redis';
import type { AfterCommit, EffectRunner } from '../data/unit-of-work';
import type { Logger } from '../logger';

/**
 * Queue names, job ids and producers. Job ids are deterministic so a second enqueue of the same
 * work is a no-op while the first job exists; the database's own unique keys and state guards
 * remain the real guarantee once a job has been removed.
 */

export const QUEUE_NAMES = {
  events: 'line-events',
  deliveries: 'deliveries',
  orders: 'orders',
  maintenance: 'maintenance',
} as const;

export type OrdersJob =
  | { name: 'expire-order'; data: { orderId: number } }
  | { name: 'payment-notification'; data: { notificationId: number } }
  | { name: 'refund'; data: { refundId: number } }
  | { name: 'reconcile-attempt'; data: { attemptId: number } };

export const MAINTENANCE_JOBS = {
  inboxSweep: 'inbox-sweep',
  outboxSweep: 'outbox-sweep',
  expirySweep: 'expiry-sweep',
  reconcileSweep: 'reconcile-sweep',
  dailySummary: 'daily-summary',
} as const;

const retrying = (attempts: number, delay: number): JobsOptions => ({
  attempts,
  backoff: { type: 'exponential', delay, jitter: 0.5 },
  removeOnComplete: { age: 24 * 3600, count: 5000 },
  removeOnFail: { age: 7 * 24 * 3600 },
});

export const JOB_DEFAULTS = {
  event: retrying(6, 1000),
  delivery: retrying(10, 1000),
  orders: retrying(8, 2000),
} as const;

export class Queues implements EffectRunner {
  readonly events: Queue;
  readonly deliveries: Queue;
  readonly orders: Queue;
  readonly maintenance: Queue;

  constructor(
    connection: Redis,
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    const opts = { connection, prefix };
    this.events = new Queue(QUEUE_NAMES.events, opts);
    this.deliveries = new Queue(QUEUE_NAMES.deliveries, opts);
    this.orders = new Queue(QUEUE_NAMES.orders, opts);
    this.maintenance = new Queue(QUEUE_NAMES.maintenance, opts);
    for (const q of this.all()) q.on('error', (err) => this.log.debug({ err: err.message, queue: q.name }, 'queue connection error'));
  }

  all(): Queue[] {
    return [this.events, this.deliveries, this.orders, this.maintenance];
  }

  async enqueueEvents(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.events.addBulk(ids.map((id) => ({ name: 'event', data: { id }, opts: { ...JOB_DEFAULTS.event, jobId: `evt-${id}` } })));
  }

  async enqueueDeliveries(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.deliveries.addBulk(
      ids.map((id) => ({ name: 'deliver', data: { id }, opts: { ...JOB_DEFAULTS.delivery, jobId: `msg-${id}` } })),
    );
  }

  /** Enqueue that never throws: if Redis is away, the sweepers pick the work up from PostgreSQL. */
  async tryEnqueue(what: string, fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err), what }, 'enqueue failed; the sweeper will retry');
      return false;
    }
  }

  /** After COMMIT: deliver the outbox rows and run the enqueue tasks; a failure leaves the work to the sweepers. */
  async runAfterCommit(after: AfterCommit): Promise<void> {
    await this.tryEnqueue('deliveries', () => this.enqueueDeliveries(after.outboxIds));
    for (const t of after.tasks) await this.tryEnqueue('after-commit task', t);
  }

  async scheduleExpiry(orderId: number, at: Date): Promise<void> {
    const delay = Math.max(0, at.getTime() - Date.now());
    await this.orders.add('expire-order', { orderId }, { ...JOB_DEFAULTS.orders, delay, jobId: `expire-${orderId}-${at.getTime()}` });
  }

  async enqueuePaymentNotification(notificationId: number): Promise<void> {
    await this.orders.add('payment-notification', { notificationId }, { ...JOB_DEFAULTS.orders, jobId: `pn-${notificationId}` });
  }

  async enqueueRefund(refundId: number): Promise<void> {
    await this.orders.add('refund', { refundId }, { ...JOB_DEFAULTS.orders, attempts: 5, jobId: `refund-${refundId}` });
  }

  async enqueueReconcile(attemptId: number, bucket: number): Promise<void> {
    await this.orders.add('reconcile-attempt', { attemptId }, { ...JOB_DEFAULTS.orders, attempts: 3, jobId: `rec-${attemptId}-${bucket}` });
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}
