import { DeferJob } from '../../errors';
import { GatewayError, isPaymentMethod } from '../../gateways/payment-gateway';
import { LABEL } from '../../texts';
import type { PaymentProvider } from '../../gateways/payment-gateway';
import { lockOrder, orderItems } from '../orders';
import { setHold } from './attempts';
import type { BankFactsApplier } from './bank-facts';
import { lockTopup, TopupPayments } from './topups';
import { alertOwners, availableMethods, noteGatewayError, PaymentContext } from './context';
import { ApplyOutcome, BankFacts, DEADLINE_GRACE_MS, PaymentAttempt } from './types';

/**
 * Bank callbacks: recorded first (deduplicated by the bank's own key), answered, then confirmed
 * with the bank by a job and applied. A callback body is never believed on its own.
 */
export class BankNotifications {
  constructor(
    private readonly ctx: PaymentContext,
    private readonly facts: BankFactsApplier,
    private readonly topups: TopupPayments,
  ) {}

  async recordNotification(args: {
    provider: PaymentProvider;
    dedupeKey: string;
    kind: string;
    tradeNo: string | null;
    payload: Record<string, unknown>;
    /** false: recorded as already processed (the caller applies it itself). */
    enqueue?: boolean;
  }): Promise<{ id: number; isNew: boolean; processed: boolean }> {
    const { db, queues } = this.ctx;
    const inserted = await db('payment_notifications')
      .insert({
        provider: args.provider,
        dedupe_key: args.dedupeKey,
        kind: args.kind,
        trade_no: args.tradeNo,
        payload: JSON.stringify(args.payload),
        ...(args.enqueue === false ? { processed_at: db.fn.now(), outcome: 'recorded' } : {}),
      })
      .onConflict(['provider', 'dedupe_key'])
      .ignore()
      .returning(['id']);
    if (inserted[0] && args.enqueue === false) return { id: inserted[0].id, isNew: true, processed: true };
    if (inserted[0]) {
      await queues.tryEnqueue('payment-notification', () => queues.enqueuePaymentNotification(inserted[0]!.id));
      return { id: inserted[0].id, isNew: true, processed: false };
    }
    const existing = await db('payment_notifications').where({ provider: args.provider, dedupe_key: args.dedupeKey }).first('id', 'processed_at');
    if (!existing.processed_at) {
      await queues.tryEnqueue('payment-notification', () => queues.enqueuePaymentNotification(existing.id));
    }
    return { id: existing.id, isNew: false, processed: Boolean(existing.processed_at) };
  }

  /** Job: confirm one recorded notification with the bank and apply the result. */
  async processNotification(notificationId: number, finalAttempt = false): Promise<ApplyOutcome | 'already' | 'missing'> {
    const { db, gateways, config, log } = this.ctx;
    const n = await db('payment_notifications').where({ id: notificationId }).first();
    if (!n) return 'missing';
    if (n.processed_at) return 'already';
    const payload = n.payload as Record<string, string>;
    let facts: BankFacts;
    try {
      if (n.provider === 'sinopac') {
        const sp = gateways.sinopac;
        if (!sp) return this.closeNotification(notificationId, 'unknown-trade');
        const st = await sp.confirmPayToken(payload.PayToken!);
        if (!st.confirmed) {
          // The query itself failed. The bank already got {"Status":"S"} for its BackendURL call and
          // will not notify again, so ask again (job retry); only the last attempt gives up, changing
          // nothing: a real payment is then found by reconciliation.
          if (!finalAttempt) {
            throw new GatewayError('REJECTED', `SinoPac OrderPayQuery answered Status ${st.queryStatus || '(none)'}`, true, {
              service: 'OrderPayQuery',
              status: st.queryStatus,
              description: st.queryDescription,
            });
          }
          log.warn(
            { notificationId, status: st.queryStatus, description: st.queryDescription, tradeNo: st.orderNoFromBank || undefined },
            'SinoPac OrderPayQuery never answered Status S; notification closed unconfirmed, reconciliation will check the trade',
          );
          return this.closeNotification(notificationId, 'unconfirmed');
        }
        facts = {
          provider: 'sinopac',
          tradeNo: st.orderNoFromBank || st.tradeNo,
          status: st,
          merchantOk: st.shopNo === config.sinopac!.shopNo,
          payTypeOk: true, // checked against the attempt's method when applied
          payType: st.payType,
          source: `sinopac-${n.kind}`,
          notificationId,
        };
      } else {
        const ec = gateways.ecpay;
        if (!ec) return this.closeNotification(notificationId, 'unknown-trade');
        const attempt = await db('payment_attempts').where({ trade_no: n.trade_no }).first<PaymentAttempt>();
        if (!attempt || !isPaymentMethod(attempt.method)) return this.closeNotification(notificationId, 'unknown-trade');
        // The callback was MAC-verified; the result is still confirmed with QueryTradeInfo.
        const st = await ec.queryPayment({ tradeNo: attempt.trade_no, method: attempt.method, createdAt: attempt.created_at });
        const simulated = payload.SimulatePaid === '1';
        if (st.state === 'pending' && payload.RtnCode === '1' && !finalAttempt) {
          throw new GatewayError('BAD_RESPONSE', 'callback says paid but QueryTradeInfo not yet', true);
        }
        facts = {
          provider: 'ecpay',
          tradeNo: attempt.trade_no,
          status: { ...st, simulated: st.simulated ?? simulated },
          merchantOk: true,
          payTypeOk: true,
          source: `ecpay-${n.kind}`,
          notificationId,
        };
      }
    } catch (err) {
      await noteGatewayError(this.ctx, err);
      // ECPay asked for a pause (HTTP 403): wait it out instead of spending the job's attempts.
      if (err instanceof GatewayError && err.retryable && err.retryAfterMs !== null) throw new DeferJob(err.retryAfterMs, `${n.provider} ${err.code}`);
      if (err instanceof GatewayError && !err.retryable) {
        log.error({ notificationId, code: err.code, err: err.message }, 'bank confirmation rejected');
        await alertOwners(this.ctx, `alert:notification:${notificationId}`, {
          type: 'mismatch',
          provider: n.provider,
          tradeNo: n.trade_no ?? '-',
          problems: [{ kind: 'bank-verify-failed', code: err.code }],
        });
        return this.closeNotification(notificationId, 'mismatch');
      }
      throw err;
    }
    return this.facts.apply(facts);
  }

  private async closeNotification(id: number, outcome: ApplyOutcome): Promise<ApplyOutcome> {
    const { db, log } = this.ctx;
    await db('payment_notifications').where({ id }).whereNull('processed_at').update({ processed_at: db.fn.now(), outcome });
    if (outcome === 'unknown-trade') log.warn({ notificationId: id }, 'payment notification for an unknown trade');
    return outcome;
  }

  /** A MAC-verified ECPay callback must name one of our trades, with exactly its amount. */
  async checkEcpayCallback(f: Record<string, string>): Promise<'ok' | 'UnknownMerchantTradeNo' | 'TradeAmtMismatch'> {
    const attempt = await this.ctx.db('payment_attempts').where({ provider: 'ecpay', trade_no: f.MerchantTradeNo ?? '' }).first<PaymentAttempt>();
    if (!attempt) return 'UnknownMerchantTradeNo';
    if (!/^\d+$/.test(f.TradeAmt ?? '') || Number(f.TradeAmt) !== attempt.amount) {
      await alertOwners(this.ctx, `alert:ecpay-amount:${attempt.trade_no}:${f.TradeAmt}`, {
        type: 'mismatch',
        provider: 'ecpay',
        tradeNo: attempt.trade_no,
        problems: [{ kind: 'callback-amount', got: f.TradeAmt ?? '', ours: attempt.amount }],
      });
      return 'TradeAmtMismatch';
    }
    return 'ok';
  }

  /** For the SinoPac ReturnURL page: what OrderPayQuery says about this PayToken, right now. */
  async sinopacReturnState(payToken: string): Promise<{ state: 'paid' | 'failed' | 'processing'; retryRef: string | null }> {
    const { db, gateways, config } = this.ctx;
    const sp = gateways.sinopac;
    if (!sp) return { state: 'processing', retryRef: null };
    const st = await sp.confirmPayToken(payToken);
    if (!st.confirmed) return { state: 'processing', retryRef: null };
    const attempt = await db('payment_attempts').where({ provider: 'sinopac', trade_no: st.orderNoFromBank || st.tradeNo }).first<PaymentAttempt>();
    if (!attempt || st.shopNo !== config.sinopac!.shopNo) return { state: 'processing', retryRef: null };
    if (st.state === 'paid' && st.amount === attempt.amount) return { state: 'paid', retryRef: null };
    if (st.state === 'failed') return { state: 'failed', retryRef: attempt.method === 'sinopac-card' ? attempt.public_ref : null };
    return { state: 'processing', retryRef: null };
  }

  /** ECPay PaymentInfoURL: an ATM account or CVS code was issued; the hold follows its deadline. */
  async applyEcpayPaymentInfo(fields: Record<string, string>): Promise<'ok' | 'unknown-trade' | 'mismatch'> {
    const ctx = this.ctx;
    const ec = ctx.gateways.ecpay!;
    return ctx.uow.run(async (trx, after) => {
      const found = await trx('payment_attempts').where({ trade_no: fields.MerchantTradeNo, provider: 'ecpay' }).first<PaymentAttempt>();
      if (!found || !isPaymentMethod(found.method)) return 'unknown-trade' as const;
      if (Number(fields.TradeAmt) !== found.amount) return 'mismatch' as const;
      const method = found.method;
      // What the attempt pays (an order, or a wallet top-up), locked first as in every path.
      const topup = found.topup_id !== null ? (await lockTopup(trx, found.topup_id))! : null;
      const order = found.order_id !== null ? (await lockOrder(trx, { id: found.order_id }))! : null;
      const issued = fields.RtnCode === '2' || fields.RtnCode === '10100073';
      if (!issued) {
        const failed = await trx('payment_attempts').where({ id: found.id }).whereIn('status', ['pending']).update({ status: 'failed', updated_at: trx.fn.now() });
        // No code, so nothing to pay with: say so and offer the methods again (the hold is unchanged).
        if (failed > 0 && topup) await this.topups.failed(trx, after, topup, found);
        if (failed > 0 && order?.status === 'pending_payment') {
          await ctx.notifier.shopper(trx, after, order.line_user_id, `attempt:${found.id}:code-failed`, {
            type: 'code-issue-failed',
            order,
            items: await orderItems(trx, order.id),
            method,
            methods: availableMethods(ctx),
          });
        }
        return 'ok' as const;
      }
      let deadline: Date | null;
      try {
        deadline = ec.parseDate(fields.ExpireDate ?? '');
      } catch {
        // ECPay's message is genuine (MAC verified) but its deadline unreadable. Refusing it would
        // only make ECPay re-send the same body; take the code, keep our hold, ask the owner to check.
        deadline = null;
      }
      const isAtm = fields.RtnCode === '2';
      const hold = order?.hold_expires_at ?? found.expires_at ?? new Date();
      const shownDeadline = deadline ?? hold;
      const details = {
        ...(isAtm
          ? { kind: 'ecpay-atm-code', bankCode: fields.BankCode, account: fields.vAccount }
          : { kind: 'ecpay-cvs-code', paymentNo: fields.PaymentNo }),
        deadline: shownDeadline.toISOString(),
        tradeNo: fields.TradeNo,
        ...(deadline === null ? { unreadableExpireDate: fields.ExpireDate ?? null } : {}),
      };
      await trx('payment_attempts')
        .where({ id: found.id })
        .update({
          details: JSON.stringify(details),
          gateway_trade_id: fields.TradeNo ?? null,
          ...(deadline !== null ? { expires_at: new Date(deadline.getTime() + DEADLINE_GRACE_MS) } : {}),
          updated_at: trx.fn.now(),
        });
      const attempt = { ...found, details };
      if (topup?.status === 'pending' && found.status === 'pending') {
        await ctx.notifier.shopper(trx, after, topup.line_user_id, `attempt:${found.id}:payment-info`, {
          type: 'topup-instructions',
          instructions: this.topups.instructions(topup, attempt),
        });
      }
      if (order?.status === 'pending_payment' && found.status === 'pending') {
        if (deadline !== null) await setHold(ctx, trx, order, new Date(deadline.getTime() + DEADLINE_GRACE_MS), method, after);
        await ctx.notifier.shopper(trx, after, order.line_user_id, `attempt:${found.id}:payment-info`, {
          type: 'payment-instructions',
          instructions: { order, attempt, otherMethods: availableMethods(ctx).filter((m) => m !== method) },
        });
      }
      if (deadline === null) {
        ctx.log.error({ tradeNo: found.trade_no, expireDate: String(fields.ExpireDate ?? '').slice(0, 40) }, 'ECPay PaymentInfoURL with an unreadable ExpireDate');
        await ctx.notifier.owners(trx, after, `alert:ecpay-expire-date:${found.trade_no}`, {
          type: 'bad-expire-date',
          orderNo: order?.order_no ?? `${LABEL.topupRef}${found.topup_id}`,
          tradeNo: found.trade_no,
          got: String(fields.ExpireDate ?? '').slice(0, 40),
          hold,
        });
      }
      return 'ok' as const;
    });
  }
}
