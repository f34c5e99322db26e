import { GatewayError, isPaymentMethod, PaymentStatus } from '../../gateways/payment-gateway';
import type { BankFactsApplier } from './bank-facts';
import { noteGatewayError, PaymentContext } from './context';
import { ApplyOutcome, PaymentAttempt, WALLET } from './types';

/** Asks the bank about attempts still pending after RECONCILE_AFTER_MINUTES (missed or lost callbacks). */
export class Reconciliation {
  constructor(
    private readonly ctx: PaymentContext,
    private readonly facts: BankFactsApplier,
  ) {}

  /**
   * Attempts due for a query to their bank. ECPay ATM / CVS attempts whose code was issued are
   * offline payments that ECPay reports by ReturnURL; its guidance is that a daily query is enough
   * (spec §9.3), so those are asked at most once a day. Nothing goes to ECPay while it asked for a
   * pause (HTTP 403, spec §11).
   */
  async candidates(limit = 200): Promise<number[]> {
    const { db, config, gateways } = this.ctx;
    const every = config.reconcileEveryMinutes;
    const ecpayPausedMs = (await gateways.ecpay?.callsPausedForMs?.()) ?? 0;
    const rows = await db('payment_attempts')
      // A superseded or declined attempt stays payable at the bank until its own deadline (a SinoPac
      // virtual account cannot be withdrawn, a card page can be tried again), so its money must be found too.
      .where((q) => q.where('status', 'pending').orWhere((s) => s.whereIn('status', ['superseded', 'failed']).whereRaw(`expires_at > now() - interval '1 day'`)))
      .whereRaw(`created_at < now() - (? * interval '1 minute')`, [config.reconcileAfterMinutes])
      .whereRaw(`created_at > now() - interval '30 days'`)
      .andWhere((q) =>
        q.whereNull('last_checked_at').orWhereRaw(
          `last_checked_at < now() - CASE WHEN provider = 'ecpay' AND details->>'kind' IN ('ecpay-atm-code', 'ecpay-cvs-code')
             THEN interval '1 day' ELSE (? * interval '1 minute') END`,
          [every],
        ),
      )
      .modify((q) => {
        if (ecpayPausedMs > 0) q.whereNot('provider', 'ecpay');
      })
      .orderBy('id')
      .limit(limit)
      .select('id');
    return rows.map((r: { id: number }) => r.id);
  }

  async sweep(limit = 200): Promise<number> {
    const { db, config, queues } = this.ctx;
    const every = config.reconcileEveryMinutes;
    const rows = await this.candidates(limit);
    const bucket = Math.floor(Date.now() / (every * 60_000));
    for (const id of rows) await queues.enqueueReconcile(id, bucket);
    // Notifications whose job never ran (Redis was away) are re-enqueued too.
    const stuck = await db('payment_notifications')
      .whereNull('processed_at')
      .whereRaw(`received_at < now() - interval '1 minute'`)
      .orderBy('id')
      .limit(limit)
      .select('id');
    for (const n of stuck) await queues.enqueuePaymentNotification(n.id);
    return rows.length;
  }

  async attempt(attemptId: number): Promise<ApplyOutcome | 'skipped' | 'paused'> {
    const { db, gateways, log } = this.ctx;
    const attempt = await db('payment_attempts').where({ id: attemptId }).first<PaymentAttempt>();
    // Wallet payments never reach a bank: nothing to ask.
    if (!attempt || !['pending', 'superseded', 'failed'].includes(attempt.status) || attempt.provider === WALLET || !isPaymentMethod(attempt.method)) return 'skipped';
    const provider = attempt.provider;
    const gw = gateways[provider];
    if (!gw) return 'skipped';
    let status: PaymentStatus;
    try {
      status = await gw.queryPayment({ tradeNo: attempt.trade_no, method: attempt.method, createdAt: attempt.created_at });
    } catch (err) {
      await noteGatewayError(this.ctx, err);
      // The bank asked for a pause: a later sweep asks again (the attempt stays due).
      if (err instanceof GatewayError && err.retryAfterMs !== null) {
        log.warn({ attemptId, code: err.code, retryAfterMs: err.retryAfterMs }, 'reconciliation paused by the bank');
        return 'paused';
      }
      throw err;
    }
    if (status.state !== 'paid' && status.state !== 'failed' && attempt.expires_at && attempt.expires_at.getTime() + 24 * 3600_000 < Date.now()) {
      // Long past its deadline and still unpaid at the bank: stop asking.
      await db('payment_attempts').where({ id: attempt.id, status: 'pending' }).update({ status: 'failed', last_checked_at: db.fn.now(), updated_at: db.fn.now() });
      return 'failed';
    }
    return this.facts.apply({
      provider,
      tradeNo: attempt.trade_no,
      status,
      merchantOk: true,
      payTypeOk: true,
      source: 'reconcile',
    });
  }
}
