import crypto from 'node:crypto';
import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { withTransaction } from '../../data/db';
import { GatewayError, isPaymentMethod, METHOD_INFO, PaymentMethod } from '../../gateways/payment-gateway';
import type { PaymentInstructions } from '../notices';
import { lockOrder, Order, OrderItems, orderItems, orderLines } from '../orders';
import { availableMethods, PaymentContext } from './context';
import { DEADLINE_GRACE_MS, newTradeNo, PAID_STATES, PaymentAttempt, PreparedPayment } from './types';

/** What choosing a payment method came to, for the chat (line/) or a page to show. */
export type PaymentChoice =
  | { kind: 'unavailable' }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'stale'; orderNo: string; status: string }
  /** The attempt is payable: its account, code or link. */
  | { kind: 'instructions'; instructions: PaymentInstructions }
  /** Nothing new to pay (a repeated tap on a settled attempt): the order as it stands. */
  | { kind: 'order'; order: Order; items: OrderItems; methods: PaymentMethod[] }
  /** The bank did not create the trade: the order with its methods, to try again or pick another. */
  | { kind: 'create-failed'; order: Order; items: OrderItems; methods: PaymentMethod[] };

/**
 * Payment attempts: one bank trade number per try. Choosing a method runs in two phases: before
 * the caller's transaction the attempt row is claimed and the bank asked to create the trade (no
 * transaction open during the HTTP call); inside it, the outcome is recorded and the hold follows
 * the method.
 */
export class PaymentAttempts {
  constructor(private readonly ctx: PaymentContext) {}

  availableMethods(): PaymentMethod[] {
    return availableMethods(this.ctx);
  }

  // Phase 1 (before the event transaction, may call the bank).
  async preparePayment(args: { userId: string; orderNo: string; method: string; requestKey: string }): Promise<PreparedPayment> {
    const { db, config, gateways, log } = this.ctx;
    const { orderNo } = args;
    if (!isPaymentMethod(args.method) || !this.availableMethods().includes(args.method)) return { kind: 'unavailable', orderNo };
    const method = args.method;
    const provider = METHOD_INFO[method].provider;
    const gateway = gateways[provider]!;
    const holdExpiresAt = new Date(Date.now() + config.holdMinutes[METHOD_INFO[method].kind] * 60_000);

    const start = await withTransaction(db, async (trx) => {
      const order = await lockOrder(trx, { order_no: orderNo });
      if (!order || order.line_user_id !== args.userId) return { kind: 'not-found' as const };
      const existing = await trx('payment_attempts').where({ request_key: args.requestKey }).first<PaymentAttempt>();
      if (existing && existing.status !== 'creating') return { kind: 'existing' as const, attempt: existing };
      if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) {
        return { kind: 'stale' as const, status: order.status };
      }
      if (existing) return { kind: 'go' as const, order, attempt: existing };
      const [attempt] = await trx('payment_attempts')
        .insert({
          order_id: order.id,
          provider,
          method,
          trade_no: newTradeNo(provider),
          public_ref: crypto.randomBytes(18).toString('base64url'),
          request_key: args.requestKey,
          amount: order.total,
          status: 'creating',
        })
        .returning<PaymentAttempt[]>('*');
      return { kind: 'go' as const, order, attempt: attempt! };
    });
    if (start.kind === 'not-found') return { kind: 'not-found', orderNo };
    if (start.kind === 'stale') return { kind: 'stale', orderNo, status: start.status };
    if (start.kind === 'existing') return { kind: 'existing', orderNo, attemptId: start.attempt.id };

    const { order, attempt } = start;
    const lines = await orderLines(db, order.id);
    try {
      const result = await gateway.createPayment({
        tradeNo: attempt.trade_no,
        method,
        amount: attempt.amount,
        orderNo: order.order_no,
        itemLines: lines.map((l) => `${l.name} x${l.qty}`),
        holdExpiresAt,
        publicRef: attempt.public_ref,
      });
      return { kind: 'ready', orderId: order.id, orderNo, attemptId: attempt.id, method, result, holdExpiresAt };
    } catch (err) {
      const code = err instanceof GatewayError ? err.code : 'UNEXPECTED';
      log.warn({ err: err instanceof Error ? err.message : String(err), code, tradeNo: attempt.trade_no }, 'payment creation failed');
      return { kind: 'failed', orderId: order.id, orderNo, attemptId: attempt.id, method, code };
    }
  }

  // Phase 2 (inside the caller's transaction): record the outcome.
  async completePayment(trx: Trx, p: PreparedPayment, after: AfterCommit): Promise<PaymentChoice> {
    switch (p.kind) {
      case 'unavailable':
        return { kind: 'unavailable' };
      case 'not-found':
        return { kind: 'not-found', orderNo: p.orderNo };
      case 'stale':
        return { kind: 'stale', orderNo: p.orderNo, status: p.status };
      case 'existing': {
        const attempt = (await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>())!;
        const order = (await trx('orders').where({ id: attempt.order_id }).first<Order>())!;
        if (attempt.status === 'pending' && order.status === 'pending_payment') {
          return { kind: 'instructions', instructions: this.instructions(order, attempt) };
        }
        return { kind: 'order', order, items: await orderItems(trx, order.id), methods: this.availableMethods() };
      }
      case 'failed': {
        await trx('payment_attempts')
          .where({ id: p.attemptId, status: 'creating' })
          .update({ status: 'failed', details: JSON.stringify({ error: p.code }), updated_at: trx.fn.now() });
        const order = (await trx('orders').where({ id: p.orderId }).first<Order>())!;
        return { kind: 'create-failed', order, items: await orderItems(trx, order.id), methods: this.availableMethods() };
      }
      case 'ready': {
        const order = await lockOrder(trx, { id: p.orderId });
        const r = p.result;
        const details: Record<string, unknown> =
          r.kind === 'virtual-account'
            ? { kind: r.kind, bankCode: r.bankCode, account: r.account, deadline: r.expiresAt.toISOString() }
            : { kind: r.kind, url: r.url };
        // The bank's own answer as verified (SinoPac: the decrypted, Sign-checked OrderCreate message;
        // no key material is in it), kept for support and disputes.
        if (r.raw && typeof r.raw === 'object') details.bank = r.raw;
        if (!order || order.status !== 'pending_payment') {
          await trx('payment_attempts').where({ id: p.attemptId }).update({ status: 'superseded', details: JSON.stringify(details), updated_at: trx.fn.now() });
          return { kind: 'stale', orderNo: p.orderNo, status: order?.status ?? 'expired' };
        }
        const hold = r.kind === 'virtual-account' ? new Date(r.expiresAt.getTime() + DEADLINE_GRACE_MS) : p.holdExpiresAt;
        // Only one payable attempt: switching method supersedes the earlier ones.
        await trx('payment_attempts')
          .where({ order_id: order.id })
          .whereIn('status', ['pending', 'creating'])
          .whereNot({ id: p.attemptId })
          .update({ status: 'superseded', updated_at: trx.fn.now() });
        await trx('payment_attempts').where({ id: p.attemptId }).update({
          status: 'pending',
          gateway_trade_id: r.gatewayTradeId,
          details: JSON.stringify(details),
          expires_at: hold,
          updated_at: trx.fn.now(),
        });
        await setHold(this.ctx, trx, order, hold, p.method, after);
        const attempt = (await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>())!;
        return { kind: 'instructions', instructions: this.instructions({ ...order, hold_expires_at: hold }, attempt) };
      }
    }
  }

  /** How to pay this attempt, with the other methods the shopper could switch to. */
  instructions(order: Order, attempt: PaymentAttempt): PaymentInstructions {
    return { order, attempt, otherMethods: this.availableMethods().filter((m) => m !== attempt.method) };
  }

  /** What a result page should say about a trade, from our own records (never from the browser post). */
  async tradeState(provider: PaymentAttempt['provider'], tradeNo: string): Promise<'paid' | 'failed' | 'processing' | 'unknown'> {
    const attempt = await this.ctx.db('payment_attempts').where({ provider, trade_no: tradeNo }).first<PaymentAttempt>();
    if (!attempt) return 'unknown';
    if (attempt.status === 'paid') return 'paid';
    if (attempt.status === 'failed') return 'failed';
    return 'processing';
  }

  /** "Pay again" from a failed card page: a fresh attempt with the same method, straight to the bank's page. */
  async retryCardPayment(publicRef: string): Promise<{ kind: 'redirect'; url: string } | { kind: 'not-found' | 'paid' | 'expired' | 'failed' }> {
    const { db, uow } = this.ctx;
    const old = await db('payment_attempts').where({ public_ref: publicRef }).first<PaymentAttempt>();
    if (!old || METHOD_INFO[old.method].kind !== 'card') return { kind: 'not-found' };
    const order = (await db('orders').where({ id: old.order_id }).first<Order>())!;
    if (!['pending_payment', 'expired', 'cancelled'].includes(order.status)) return { kind: 'paid' };
    if (order.status !== 'pending_payment') return { kind: 'expired' };
    const prepared = await this.preparePayment({ userId: order.line_user_id, orderNo: order.order_no, method: old.method, requestKey: `retry:${publicRef}:${Date.now()}` });
    await uow.run((trx, after) => this.completePayment(trx, prepared, after));
    if (prepared.kind !== 'ready') return { kind: prepared.kind === 'stale' ? 'expired' : 'failed' };
    if (prepared.result.kind !== 'redirect') return { kind: 'failed' };
    return { kind: 'redirect', url: prepared.result.url };
  }

  /** The ECPay checkout page for an attempt: a form, or the reason there is none. */
  async ecpayCheckoutPage(publicRef: string): Promise<{ kind: 'form'; html: string } | { kind: 'not-found' | 'expired' | 'paid' | 'superseded' }> {
    const { db, gateways } = this.ctx;
    const ec = gateways.ecpay;
    if (!ec) return { kind: 'not-found' };
    const attempt = await db('payment_attempts').where({ public_ref: publicRef, provider: 'ecpay' }).first<PaymentAttempt>();
    if (!attempt) return { kind: 'not-found' };
    const order = (await db('orders').where({ id: attempt.order_id }).first<Order>())!;
    if ((PAID_STATES as readonly string[]).includes(order.status)) return { kind: 'paid' };
    if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) return { kind: 'expired' };
    if (attempt.status !== 'pending') return { kind: attempt.status === 'paid' ? 'paid' : 'superseded' };
    // ECPay refuses a MerchantTradeNo it has seen: a reopened link posts a fresh trade number.
    let trade = attempt;
    const opened = await db('payment_attempts')
      .where({ id: attempt.id })
      // Not the jsonb `?` operator: knex would take it for a binding placeholder.
      .whereRaw("details->>'openedAt' IS NULL")
      .update({ details: db.raw(`details || ?::jsonb`, [JSON.stringify({ openedAt: new Date().toISOString() })]) });
    if (opened === 0) {
      const [fresh] = await db('payment_attempts')
        .insert({
          order_id: attempt.order_id,
          provider: 'ecpay',
          method: attempt.method,
          trade_no: newTradeNo('ecpay'),
          public_ref: crypto.randomBytes(18).toString('base64url'),
          amount: attempt.amount,
          status: 'pending',
          details: JSON.stringify({ ...attempt.details, reopenedFrom: attempt.id, openedAt: new Date().toISOString() }),
          expires_at: attempt.expires_at,
        })
        .returning<PaymentAttempt[]>('*');
      trade = fresh!;
    }
    const lines = await orderLines(db, order.id);
    const html = ec.checkoutPage({
      tradeNo: trade.trade_no,
      method: trade.method,
      amount: trade.amount,
      itemLines: lines.map((l) => `${l.name} x${l.qty}`),
      holdExpiresAt: order.hold_expires_at,
      orderNo: order.order_no,
      now: new Date(),
    });
    return { kind: 'form', html };
  }
}

/** Moves an unpaid order's hold (and its reservations') to a method's deadline; the expiry job follows. */
export async function setHold(ctx: PaymentContext, trx: Trx, order: Order, hold: Date, method: PaymentMethod, after: AfterCommit): Promise<void> {
  await trx('orders').where({ id: order.id, status: 'pending_payment' }).update({ hold_expires_at: hold, payment_method: method, updated_at: trx.fn.now() });
  await trx('reservations').where({ order_id: order.id, status: 'held' }).update({ expires_at: hold });
  after.tasks.push(() => ctx.queues.scheduleExpiry(order.id, hold));
}
