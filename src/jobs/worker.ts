import { DelayedError, Job, Worker } from 'bullmq';
import type { Container } from '../container';
import { createRedis, Redis } from '../data/redis';
import { DeferJob, isDatabaseUnavailable } from '../errors';
import { pruneExpired } from '../domain/housekeeping';
import { RateLimitedDelivery } from '../line/delivery';
import { expireOrderAndNotify } from '../domain/expiry';
import { dailyFigures } from '../domain/reports';
import { storeLowStockThreshold } from '../domain/stock-alerts';
import { FAST_RECOVERY_LOCKS, MAINTENANCE_JOBS, ORDER_QUEUE_LOCKS, QUEUE_NAMES, STALLED_TOO_OFTEN } from './queues';

export interface WorkerOptions {
  /** How often the sweepers look for work that missed its job (Redis outage, crash). */
  sweepEveryMs?: number;
  /** Only sweep rows older than this, so fresh work gets to its own job first. */
  sweepGraceMs?: number;
  concurrency?: number;
  /** Deliveries to LINE in flight per worker process (HTTP-bound, so more than the other queues). */
  deliveryConcurrency?: number;
  /** Off in tests that drive one sweep by hand. */
  schedules?: boolean;
}

const isFinal = (job: Job) => job.attemptsMade + 1 >= (job.opts.attempts ?? 1);

/**
 * Whether an event whose job failed is given up for good (failed_at: no sweeper takes it again).
 * Only when its last attempt failed for a reason of its own: an event that failed because the
 * database was away (a PostgreSQL outage longer than the job's retries) stays unprocessed, and the
 * inbox sweeper runs it again once the database is back.
 */
export const failsForGood = (job: Pick<Job, 'attemptsMade' | 'opts'>, err: unknown): boolean => isFinal(job as Job) && !isDatabaseUnavailable(err);

/** Expires one order if its hold has passed: stock released once, shopper told after commit. */
export const runExpiry = (c: Container, orderId: number): Promise<boolean> => expireOrderAndNotify(c.uow, c.notifier, c.orderEvents, orderId);

export class Sweeper {
  constructor(private readonly c: Container, private readonly graceMs: number) {}

  /** Re-enqueues unprocessed events; a finished job left under the same id is replaced. */
  async inbox(graceMs = this.graceMs): Promise<number> {
    const rows = await this.c.db('line_events')
      .whereNull('processed_at')
      .whereNull('failed_at')
      .whereRaw(`received_at < now() - (? * interval '1 millisecond')`, [graceMs])
      .orderBy('id')
      .limit(1000)
      .select('id');
    await this.c.queues.enqueueEvents(rows.map((r) => r.id), { replaceFinished: true });
    return rows.length;
  }

  /** Re-enqueues undelivered messages; a finished job left under the same id is replaced. */
  async outbox(graceMs = this.graceMs): Promise<number> {
    const rows = await this.c.db('outbox_messages')
      .where((q) => q.where('status', 'pending').orWhere((q2) => q2.where('status', 'sending').andWhere('claimed_until', '<', this.c.db.fn.now())))
      .whereRaw(`created_at < now() - (? * interval '1 millisecond')`, [graceMs])
      .orderBy('id')
      .limit(1000)
      .select('id');
    await this.c.queues.enqueueDeliveries(rows.map((r) => r.id), { replaceFinished: true });
    return rows.length;
  }

  async expiry(): Promise<number> {
    const rows = await this.c.db('orders')
      .where('status', 'pending_payment')
      .where('hold_expires_at', '<', this.c.db.fn.now())
      .orderBy('id')
      .limit(500)
      .select('id');
    let n = 0;
    for (const r of rows) if (await runExpiry(this.c, r.id)) n++;
    return n;
  }

  /**
   * The owner's daily summary, once per Taipei day (the outbox key `summary:<date>`, whichever
   * worker runs it): the day's figures, the members' side of it, and LINE's count of this month's
   * messages (asked before the transaction: no HTTP call inside one).
   */
  async dailySummary(): Promise<boolean> {
    if (!this.c.config.ownerNotify.includes('summary')) return false;
    const quota = await this.c.line.messageQuota();
    const figures = await dailyFigures(this.c.db, this.c.config.lowStockThreshold);
    const members = await this.c.members.day(this.c.db, figures.date);
    await this.c.uow.run((trx, after) => this.c.notifier.owners(trx, after, `summary:${figures.date}`, { type: 'daily-summary', figures, quota, members }));
    return true;
  }
}

/** DAILY_SUMMARY_AT as a BullMQ repeat pattern (seconds first), Taipei time. */
export function dailySummarySchedule(config: Container['config']): { pattern: string; tz: string } {
  return { pattern: `0 ${config.dailySummaryAt.minute} ${config.dailySummaryAt.hour} * * *`, tz: 'Asia/Taipei' };
}

/** Starts every BullMQ worker of the shop. close() stops taking jobs and waits for running ones. */
export async function startWorkers(c: Container, opts: WorkerOptions = {}): Promise<{ close(): Promise<void>; sweeper: Sweeper }> {
  const connection: Redis = createRedis(c.config.redisUrl, 'worker');
  const prefix = c.config.queuePrefix;
  const concurrency = opts.concurrency ?? 8;
  const sweeper = new Sweeper(c, opts.sweepGraceMs ?? 10_000);
  const log = c.log;
  // The crossing trigger reads the threshold from the database: one value for every process's checkouts.
  // A database that is away at start does not stop the worker: the schedule tick tries again.
  let thresholdStored = false;
  const storeThreshold = () =>
    storeLowStockThreshold(c.db, c.config.lowStockThreshold).then(
      () => void (thresholdStored = true),
      (err) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'low-stock threshold not stored yet'),
    );
  await storeThreshold();

  // The event's reply goes out from its own job right after COMMIT. A job run again after a stall
  // finding its event done means the run that lost its lock died after that COMMIT, maybe while
  // replying: deliver the reply now, taking over that run's claim (a delivery job would wait for it
  // to time out, past the reply token's life).
  const resumeReply = async (inboxId: number) => {
    const event = await c.db('line_events').where({ id: inboxId }).first('webhook_event_id');
    const outboxId = event ? await c.delivery.undeliveredEventReply(event.webhook_event_id) : null;
    if (outboxId === null) return;
    await c.delivery
      .deliver(outboxId, false, { takeOverClaim: true })
      .catch(() => c.queues.tryEnqueue('deliveries', () => c.queues.enqueueDeliveries([outboxId])));
  };

  const events = new Worker(
    QUEUE_NAMES.events,
    async (job: Job<{ id: number }>) => {
      try {
        const outcome = await c.bot.processInboxEvent(job.data.id);
        if (outcome === 'already' && job.stalledCounter > 0) await resumeReply(job.data.id);
        return outcome;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await c.db('line_events')
          .where({ id: job.data.id })
          .update({ attempts: c.db.raw('attempts + 1'), last_error: message.slice(0, 500), ...(failsForGood(job, err) ? { failed_at: c.db.fn.now() } : {}) })
          .catch(() => undefined);
        throw err;
      }
    },
    { connection, prefix, concurrency, ...FAST_RECOVERY_LOCKS },
  );
  events.on('failed', (job, err) => {
    // Stalled too often (it keeps killing its worker): given up like a job out of attempts, so
    // the sweeper stops re-enqueueing it.
    if (!job || err.message !== STALLED_TOO_OFTEN) return;
    log.error({ inboxId: job.data.id }, 'event given up: its job stalled too often');
    void c.db('line_events')
      .where({ id: job.data.id })
      .whereNull('processed_at')
      .update({ failed_at: c.db.fn.now(), last_error: STALLED_TOO_OFTEN })
      .catch(() => undefined);
  });

  // Sends to LINE stay under its rate limit (2,000/s per endpoint) for all workers together: BullMQ's
  // limiter is kept in Redis. A 429 all the same pauses the whole queue briefly and puts the job
  // back without using one of its attempts. A job run again after a stall was abandoned by a run
  // that lost its lock (a dead worker): it may take over that run's outbox claim at once instead
  // of waiting for the claim to time out.
  const deliveries: Worker = new Worker(
    QUEUE_NAMES.deliveries,
    async (job: Job<{ id: number }>) => {
      try {
        return await c.delivery.deliver(job.data.id, isFinal(job), { takeOverClaim: job.stalledCounter > 0 });
      } catch (err) {
        if (!(err instanceof RateLimitedDelivery)) throw err;
        await deliveries.rateLimit(err.waitMs);
        throw Worker.RateLimitError();
      }
    },
    {
      connection,
      prefix,
      concurrency: opts.deliveryConcurrency ?? Math.max(concurrency, 32),
      limiter: { max: c.config.line.messagesPerSecond, duration: 1000 },
      ...FAST_RECOVERY_LOCKS,
    },
  );

  const runOrdersJob = async (job: Job) => {
    switch (job.name) {
      case 'expire-order':
        return runExpiry(c, job.data.orderId);
      case 'remind-order':
        return c.reminders.remind(job.data.orderId);
      case 'payment-notification':
        return c.payments.processNotification(job.data.notificationId, isFinal(job));
      case 'reconcile-attempt':
        return c.payments.reconcileAttempt(job.data.attemptId);
      case 'refund':
        return c.payments.executeRefund(job.data.refundId, isFinal(job));
      case 'create-shipment': {
        // An outcome left unknown (no answer from ECPay, even to the query): the job asks again with
        // backoff (the run only ever queries before creating again), then the logistics sweep does.
        const outcome = await c.shipments.runCreation(job.data.shipmentId);
        if (outcome === 'unknown' && !isFinal(job)) throw new Error('shipment creation outcome still unknown; asking ECPay again');
        return outcome;
      }
      default:
        throw new Error(`unknown orders job ${job.name}`);
    }
  };
  const orders = new Worker(
    QUEUE_NAMES.orders,
    async (job: Job, token?: string) => {
      try {
        return await runOrdersJob(job);
      } catch (err) {
        if (!(err instanceof DeferJob) || !token) throw err;
        // Not now, later: back to the delayed set without using an attempt (the worker is not blocked).
        log.info({ job: job.name, id: job.id, delayMs: err.delayMs, reason: err.reason }, 'job deferred');
        await job.moveToDelayed(Date.now() + err.delayMs, token);
        throw new DelayedError();
      }
    },
    { connection, prefix, concurrency, ...ORDER_QUEUE_LOCKS },
  );

  const maintenance = new Worker(
    QUEUE_NAMES.maintenance,
    async (job: Job) => {
      switch (job.name) {
        case MAINTENANCE_JOBS.inboxSweep:
          return sweeper.inbox();
        case MAINTENANCE_JOBS.outboxSweep:
          return sweeper.outbox();
        case MAINTENANCE_JOBS.expirySweep:
          return sweeper.expiry();
        case MAINTENANCE_JOBS.reconcileSweep:
          return c.payments.reconcileSweep();
        case MAINTENANCE_JOBS.dailySummary:
          return sweeper.dailySummary();
        case MAINTENANCE_JOBS.reminderSweep:
          return c.reminders.sweep();
        case MAINTENANCE_JOBS.stockAlerts:
          return c.stockAlerts.sendPending();
        case MAINTENANCE_JOBS.logisticsReconcile:
          return c.shipments.reconcileSweep();
        case MAINTENANCE_JOBS.prune:
          return pruneExpired(c.db);
        default:
          return null;
      }
    },
    { connection, prefix, concurrency: 1 },
  );

  const workers = [events, deliveries, orders, maintenance];
  for (const w of workers) {
    w.on('failed', (job, err) => log.warn({ queue: w.name, job: job?.name, id: job?.id, attempts: job?.attemptsMade, err: err.message }, 'job failed'));
    w.on('error', (err) => log.debug({ queue: w.name, err: err.message }, 'worker connection error'));
  }

  let scheduleTimer: NodeJS.Timeout | null = null;
  if (opts.schedules !== false) {
    // A worker that starts may be replacing one that crashed between a commit and its enqueue:
    // sweep once now, without the grace (re-adding a job id that exists changes nothing).
    void Promise.all([sweeper.inbox(0), sweeper.outbox(0)]).catch((err) =>
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'start-up sweep failed; the scheduled sweeps will retry'),
    );
    const every = opts.sweepEveryMs ?? 15_000;
    const m = c.queues.maintenance;
    // Upserting is idempotent; re-asserting after a reconnect restores schedules lost with a Redis
    // that restarted without persistence (production should run AOF, see README).
    const ensureSchedules = async () => {
      await m.upsertJobScheduler(MAINTENANCE_JOBS.inboxSweep, { every }, { name: MAINTENANCE_JOBS.inboxSweep });
      await m.upsertJobScheduler(MAINTENANCE_JOBS.outboxSweep, { every }, { name: MAINTENANCE_JOBS.outboxSweep });
      await m.upsertJobScheduler(MAINTENANCE_JOBS.expirySweep, { every: Math.max(every, 1000) }, { name: MAINTENANCE_JOBS.expirySweep });
      await m.upsertJobScheduler(
        MAINTENANCE_JOBS.reconcileSweep,
        { every: Math.round(c.config.reconcileEveryMinutes * 60_000) },
        { name: MAINTENANCE_JOBS.reconcileSweep },
      );
      await m.upsertJobScheduler(MAINTENANCE_JOBS.reminderSweep, { every: Math.max(every, 1000) }, { name: MAINTENANCE_JOBS.reminderSweep });
      await m.upsertJobScheduler(MAINTENANCE_JOBS.stockAlerts, { every }, { name: MAINTENANCE_JOBS.stockAlerts });
      await m.upsertJobScheduler(
        MAINTENANCE_JOBS.logisticsReconcile,
        { every: Math.max(1000, Math.round(c.config.logisticsReconcile.everyMinutes * 60_000)) },
        { name: MAINTENANCE_JOBS.logisticsReconcile },
      );
      await m.upsertJobScheduler(MAINTENANCE_JOBS.dailySummary, dailySummarySchedule(c.config), { name: MAINTENANCE_JOBS.dailySummary });
      await m.upsertJobScheduler(MAINTENANCE_JOBS.prune, { every: 3_600_000 }, { name: MAINTENANCE_JOBS.prune });
    };
    await ensureSchedules();
    scheduleTimer = setInterval(() => {
      if (!thresholdStored) void storeThreshold();
      ensureSchedules().catch((err) => log.debug({ err: err instanceof Error ? err.message : String(err) }, 'schedules not asserted'));
    }, Math.max(every, 5_000));
    scheduleTimer.unref();
  }

  return {
    sweeper,
    async close() {
      if (scheduleTimer) clearInterval(scheduleTimer);
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}
