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
  | { name: 'remind-order'; data: { orderId: number } }
  | { name: 'payment-notification'; data: { notificationId: number } }
  | { name: 'refund'; data: { refundId: number } }
  | { name: 'reconcile-attempt'; data: { attemptId: number } }
  | { name: 'create-shipment'; data: { shipmentId: number } };

export const MAINTENANCE_JOBS = {
  inboxSweep: 'inbox-sweep',
  outboxSweep: 'outbox-sweep',
  expirySweep: 'expiry-sweep',
  reconcileSweep: 'reconcile-sweep',
  dailySummary: 'daily-summary',
  reminderSweep: 'reminder-sweep',
  stockAlerts: 'stock-alerts',
  logisticsReconcile: 'logistics-reconcile',
  prune: 'prune',
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

/**
 * Lock settings of the workers whose jobs race a reply token (LINE keeps one about a minute; we
 * use it for 50 s). A job's lock is renewed every lockRenewTime while it runs, however long it
 * runs, so a healthy slow job (a bank or LINE call up to its timeout) keeps its lock; only a worker
 * that died, or whose event loop or Redis link stalled for over 3.5 s (lockDuration − lockRenewTime),
 * loses it. A lost job is moved back to the queue by the stalled check about lockDuration +
 * stalledInterval after its last renewal (≤ 6 s here; up to 30 s + 2 × 30 s with BullMQ's
 * defaults, past the reply token's life). Running a job again is safe: events and deliveries are
 * guarded in PostgreSQL (processed_at under FOR UPDATE, the outbox claim) and at LINE (single-use
 * reply tokens, push retry keys). A job that stalls more than maxStalledCount times (a poison job
 * that kills its worker) fails for good. The stalled check (one Lua call per queue per interval,
 * shared by all workers) and the renewals (one call per worker per interval) cost Redis little.
 */
export const FAST_RECOVERY_LOCKS = { lockDuration: 5_000, lockRenewTime: 1_500, stalledInterval: 1_000, maxStalledCount: 3 } as const;

/**
 * The order queue's locks: payment confirmations, reconciliation, expiry, reminders, refunds and
 * shipment creation. None races a reply token, but a paid shopper waiting for the receipt should
 * not wait for BullMQ's default 30 s + 30 s after a worker dies (measured: 30–50 s in the
 * worker-kills test). Every one of these jobs is safe to run twice (state transitions guarded in
 * PostgreSQL; a refund or a shipment creation claimed in its row before any bank call), and they
 * call banks for up to their timeouts, so a longer margin than the event queue's: a job is lost
 * only by a worker whose event loop or Redis link stalled for over 7 s, and back in the queue
 * ≤ 15 s after its worker died.
 */
export const ORDER_QUEUE_LOCKS = { lockDuration: 10_000, lockRenewTime: 3_000, stalledInterval: 5_000, maxStalledCount: 3 } as const;

/** BullMQ's failedReason for a job that stalled more than maxStalledCount times. */
export const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

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

  async enqueueEvents(ids: number[], opts: { replaceFinished?: boolean } = {}): Promise<void> {
    if (ids.length === 0) return;
    if (opts.replaceFinished) await removeFinished(this.events, ids.map((id) => `evt-${id}`));
    await this.events.addBulk(ids.map((id) => ({ name: 'event', data: { id }, opts: { ...JOB_DEFAULTS.event, jobId: `evt-${id}` } })));
  }

  async enqueueDeliveries(ids: number[], opts: { replaceFinished?: boolean } = {}): Promise<void> {
    if (ids.length === 0) return;
    if (opts.replaceFinished) await removeFinished(this.deliveries, ids.map((id) => `msg-${id}`));
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

  /** The payment reminder of one hold: the id names the hold's reminder time, so a moved hold gets a job of its own. */
  async scheduleReminder(orderId: number, at: Date): Promise<void> {
    const delay = Math.max(0, at.getTime() - Date.now());
    await this.orders.add('remind-order', { orderId }, { ...JOB_DEFAULTS.orders, delay, jobId: `remind-${orderId}-${at.getTime()}` });
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

  /**
   * Creates one store-pickup shipment at ECPay. The id names the shipment row and its trade number:
   * the same attempt is enqueued once; a fresh trade number after a refusal is a new row anyway.
   */
  async enqueueShipmentCreation(shipmentId: number): Promise<void> {
    // Retries ask ECPay what became of the creation after 10, 20, 40, 80 s (jitter aside); then the sweep.
    await this.orders.add('create-shipment', { shipmentId }, { ...retrying(5, 10_000), jobId: `ship-${shipmentId}` });
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}

/**
 * Adding a job whose id still exists does nothing, even when that job is finished (kept for a day
 * when completed, a week when failed). The sweepers only pass rows that still need work, so a
 * finished job with such an id is stale (it stalled too often, or gave up before a crash-interrupted
 * attempt was recorded): remove it so the add that follows really enqueues. Waiting, delayed and
 * active jobs are left alone.
 */
async function removeFinished(queue: Queue, jobIds: string[]): Promise<void> {
  const states = await Promise.all(jobIds.map((id) => queue.getJobState(id)));
  for (const [i, state] of states.entries()) {
    if (state === 'completed' || state === 'failed') await queue.remove(jobIds[i]!);
  }
}
