import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { DeferJob } from '../../errors';
import { GatewayError, PaymentGateway } from '../../gateways/payment-gateway';
import { lockOrder, Order, transition } from '../orders';
import { alertOwners, noteGatewayError, PaymentContext } from './context';
import { post } from '../members/ledger';
import { PaymentAttempt, WALLET } from './types';

/** How long a refund waits for a sibling refund of the same trade that is at the bank. */
const SIBLING_WAIT_MS = 2000;

export type RefundRequest =
  | { kind: 'requested'; refundId: number; orderNo: string; amount: number; method: string }
  /** A wallet-paid order: refunded to the wallet at once, in the owner's transaction. */
  | { kind: 'refunded-to-wallet'; refundId: number; orderNo: string; amount: number; balance: number }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'not-paid'; orderNo: string; status: string }
  | { kind: 'not-card'; orderNo: string }
  | { kind: 'too-much'; orderNo: string; refundable: number };

/**
 * Refunds (ECPay credit card): requested in the owner's transaction, executed by a job, recorded
 * per order. Pending and succeeded refunds both count against what may still be refunded, so
 * concurrent requests (chat and back office) never exceed what was captured: each locks the order.
 * A wallet-paid order is refunded to the wallet at once, in the same transaction (no bank).
 */
export class Refunds {
  constructor(private readonly ctx: PaymentContext) {}

  async request(trx: Trx, args: { orderNo: string; amount: number | null; requestedBy: string }, after: AfterCommit): Promise<RefundRequest> {
    const { orderNo } = args;
    const order = await lockOrder(trx, { order_no: orderNo });
    if (!order) return { kind: 'not-found', orderNo };
    if (!['paid', 'shipped', 'at_store', 'returned', 'completed', 'paid_no_stock'].includes(order.status)) return { kind: 'not-paid', orderNo, status: order.status };
    const attempt = await trx('payment_attempts').where({ order_id: order.id, status: 'paid' }).first<PaymentAttempt>();
    const wallet = attempt?.provider === WALLET;
    const gw = attempt && attempt.provider !== WALLET ? this.ctx.gateways[attempt.provider] : null;
    if (!attempt || (!wallet && (attempt.method !== 'ecpay-credit' || !gw?.refund))) return { kind: 'not-card', orderNo };
    const [{ sum }] = await trx('refunds').where({ order_id: order.id }).whereIn('status', ['pending', 'succeeded']).sum<{ sum: number | null }[]>({ sum: 'amount' });
    const refundable = order.paid_amount - Number(sum ?? 0);
    const amount = args.amount ?? refundable;
    if (amount < 1 || amount > refundable) return { kind: 'too-much', orderNo, refundable: Math.max(0, refundable) };
    if (wallet) return this.refundToWallet(trx, after, order, attempt, amount, args.requestedBy);
    const [row] = await trx('refunds')
      .insert({ order_id: order.id, attempt_id: attempt.id, amount, status: 'pending', requested_by: args.requestedBy })
      .returning(['id']);
    after.tasks.push(() => this.ctx.queues.enqueueRefund(row!.id));
    return { kind: 'requested', refundId: row!.id, orderNo, amount, method: attempt.method };
  }

  /** Job: executes one pending refund at the bank, then records the result. */
  async execute(refundId: number, finalAttempt = false): Promise<'succeeded' | 'failed' | 'skipped' | 'unknown'> {
    const ctx = this.ctx;
    const { db, gateways, log, notifier } = ctx;
    const refund = await db('refunds').where({ id: refundId }).first();
    if (!refund || refund.status !== 'pending') return 'skipped';
    // Sent once with no answer: the bank may have refunded, so it is never sent again (owner checks).
    if (refund.gateway_response?.outcome === 'unknown') return 'skipped';
    const attempt = (await db('payment_attempts').where({ id: refund.attempt_id }).first<PaymentAttempt>())!;
    const order = (await db('orders').where({ id: refund.order_id }).first<Order>())!;
    const unknownOutcome = async (code: string, message: string) => {
      await db('refunds').where({ id: refundId, status: 'pending' }).update({ gateway_response: JSON.stringify({ outcome: 'unknown', code, message }) });
      await alertOwners(ctx, `refund:${refundId}:unknown`, { type: 'refund-unknown', orderNo: order.order_no, amount: refund.amount });
      return 'unknown' as const;
    };
    // A time when the bank must not be asked (ECPay: its daily capture, 20:15–20:30 Taipei, or a
    // pause it asked for): the job waits in BullMQ's delayed set, unclaimed, and runs after it.
    if (attempt.provider === WALLET) return 'skipped'; // settled when requested
    const gw = gateways[attempt.provider]!;
    const waitMs = Math.max(gw.refundDelayMs?.() ?? 0, (await gw.callsPausedForMs?.()) ?? 0);
    if (waitMs > 0) throw new DeferJob(waitMs, `${attempt.provider} refunds not possible now`);
    // Claim before sending: a run that finds the claim already taken (a crash after DoAction,
    // before the answer was recorded) must not send again. An earlier try that got part of the
    // way (e.g. ECPay's C went through, its R did not) left its progress: the claim keeps it.
    const progress: unknown = refund.gateway_response?.outcome === 'retry' ? refund.gateway_response.progress : undefined;
    // One refund of a trade at the bank at a time: each reads the trade's capture state to choose
    // its actions (a C for an authorised trade), so two at once would both send C and ECPay would
    // refuse the second. The trade's attempt row, locked, orders the claims; a refund that finds a
    // sibling in flight waits (not an attempt used) and then reads the state the sibling left.
    const claim = await db.transaction(async (trx) => {
      await trx('payment_attempts').where({ id: attempt.id }).forUpdate().first('id');
      const sibling = await trx('refunds')
        .where({ attempt_id: attempt.id, status: 'pending' })
        .whereNot({ id: refundId })
        .whereRaw("gateway_response->>'outcome' = 'sending'")
        .whereRaw("(gateway_response->>'at')::timestamptz > now() - interval '10 minutes'")
        .first('id');
      if (sibling) return 'busy' as const;
      const n = await trx('refunds')
        .where({ id: refundId, status: 'pending' })
        .andWhere((q) => q.whereNull('gateway_response').orWhereRaw("gateway_response->>'outcome' = 'retry'"))
        .update({ gateway_response: JSON.stringify({ outcome: 'sending', at: new Date().toISOString(), progress }) });
      return n === 1 ? ('claimed' as const) : ('taken' as const);
    });
    if (claim === 'busy') throw new DeferJob(SIBLING_WAIT_MS, 'another refund of this trade is at the bank');
    if (claim === 'taken') {
      log.error({ refundId }, 'refund was sent before without a recorded answer; not sending again');
      return unknownOutcome('INTERRUPTED', 'sent before, answer not recorded');
    }
    const [{ sum }] = await db('refunds').where({ order_id: order.id, status: 'succeeded' }).sum<{ sum: number | null }[]>({ sum: 'amount' });
    let result: Awaited<ReturnType<NonNullable<PaymentGateway['refund']>>>;
    try {
      result = await gw.refund!({
        tradeNo: attempt.trade_no,
        gatewayTradeId: attempt.gateway_trade_id ?? '',
        amount: refund.amount,
        capturedAmount: order.paid_amount,
        refundedBefore: Number(sum ?? 0),
        progress,
      });
    } catch (err) {
      await noteGatewayError(ctx, err);
      // A refund is not idempotent. Retryable = the call that failed did not reach the bank: let
      // the job try again (from the progress the gateway reports, if earlier calls went through).
      // Otherwise (timeout, connection lost after sending) the outcome is unknown: a retry could refund twice.
      const retry = () =>
        JSON.stringify({ outcome: 'retry', progress: (err instanceof GatewayError ? err.details.progress : undefined) ?? progress });
      if (err instanceof GatewayError && err.retryable && err.retryAfterMs !== null) {
        // The bank said when to come back (capture window, HTTP 403 pause): release the claim and
        // wait, without spending one of the job's attempts.
        await db('refunds').where({ id: refundId, status: 'pending' }).update({ gateway_response: retry() });
        throw new DeferJob(err.retryAfterMs, `${err.code}: ${err.message}`);
      }
      if (!(err instanceof GatewayError) || err.retryable) {
        // Nothing reached the bank: release the claim so the job's retry may send; on the last try,
        // close it as failed so the amount is refundable again and the owner knows.
        if (finalAttempt) {
          const message = err instanceof Error ? err.message : String(err);
          await db('refunds').where({ id: refundId, status: 'pending' }).update({ status: 'failed', gateway_response: JSON.stringify({ outcome: 'unreachable', message }) });
          await alertOwners(ctx, `refund:${refundId}:owner`, { type: 'refund-unreachable', orderNo: order.order_no, amount: refund.amount });
          return 'failed';
        }
        await db('refunds').where({ id: refundId, status: 'pending' }).update({ gateway_response: retry() });
        throw err;
      }
      log.error({ refundId, code: err.code, err: err.message }, 'refund outcome unknown');
      return unknownOutcome(err.code, err.message);
    }
    return ctx.uow.run(async (trx, after) => {
      const locked = (await lockOrder(trx, { id: order.id }))!;
      const r = await trx('refunds').where({ id: refundId }).forUpdate().first();
      if (r.status !== 'pending') return 'skipped' as const;
      if (!result.ok) {
        await trx('refunds').where({ id: refundId }).update({ status: 'failed', gateway_response: JSON.stringify(result.raw ?? { message: result.message }) });
        await notifier.owners(trx, after, `refund:${refundId}:owner`, { type: 'refund-failed', orderNo: order.order_no });
        return 'failed' as const;
      }
      await trx('refunds').where({ id: refundId }).update({ status: 'succeeded', gateway_response: JSON.stringify(result.raw ?? {}) });
      await this.recordSucceeded(trx, after, locked, { id: refundId, amount: refund.amount, requestedBy: refund.requested_by });
      return 'succeeded' as const;
    });
  }

  /**
   * A wallet-paid order's refund: the wallet is credited at once (ledger source `refund:<id>`) and
   * the refund recorded as succeeded, with the order row locked, so concurrent refunds never exceed
   * what the wallet paid.
   */
  private async refundToWallet(trx: Trx, after: AfterCommit, order: Order, attempt: PaymentAttempt, amount: number, requestedBy: string): Promise<RefundRequest> {
    const [row] = await trx('refunds')
      .insert({ order_id: order.id, attempt_id: attempt.id, amount, status: 'succeeded', requested_by: requestedBy, gateway_response: JSON.stringify({ wallet: true }) })
      .returning<Array<{ id: number }>>(['id']);
    const refundId = row!.id;
    const credit = await post(trx, {
      userId: order.line_user_id, account: 'wallet', kind: 'refund', amount, source: `refund:${refundId}`, details: { orderNo: order.order_no },
    });
    if (credit.outcome !== 'posted') throw new Error(`wallet refund ${refundId} was already credited`);
    await this.recordSucceeded(trx, after, order, { id: refundId, amount, requestedBy }, credit.balance);
    return { kind: 'refunded-to-wallet', refundId, orderNo: order.order_no, amount, balance: credit.balance };
  }

  /** What a succeeded refund changes on its (locked) order, whoever carried it out, and who is told. */
  private async recordSucceeded(trx: Trx, after: AfterCommit, locked: Order, refund: { id: number; amount: number; requestedBy: string }, walletBalance?: number): Promise<void> {
    const { notifier } = this.ctx;
    const refundId = refund.id;
    const refunded = locked.refunded_amount + refund.amount;
    await trx('orders').where({ id: locked.id }).update({ refunded_amount: refunded, updated_at: trx.fn.now() });
    await trx('order_events').insert({
      order_id: locked.id, from_status: locked.status, to_status: locked.status, reason: `refund ${refund.amount}`, actor: refund.requestedBy,
      details: JSON.stringify({ refundId, amount: refund.amount }),
    });
    if (refunded >= locked.paid_amount && ['paid', 'shipped', 'at_store', 'returned', 'paid_no_stock'].includes(locked.status)) {
      await transition(trx, locked, 'refunded', 'fully refunded', refund.requestedBy);
    }
    await this.ctx.events.refunded(trx, after, { order: { ...locked, refunded_amount: refunded }, refundId, amount: refund.amount, refundedTotal: refunded });
    await notifier.shopper(trx, after, locked.line_user_id, `refund:${refundId}`, {
      type: 'refunded',
      orderNo: locked.order_no,
      amount: refund.amount,
      method: locked.payment_method,
      full: refunded >= locked.paid_amount,
      ...(walletBalance !== undefined ? { walletBalance } : {}),
    });
    await notifier.owners(trx, after, `refund:${refundId}:owner`, { type: 'refund-done', orderNo: locked.order_no, amount: refund.amount, total: refunded });
  }
}
