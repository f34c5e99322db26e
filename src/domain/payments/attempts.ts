import crypto from 'node:crypto';
import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { withTransaction } from '../../data/db';
import { CreatePaymentResult, GatewayError, isPaymentMethod, METHOD_INFO, PaymentMethod } from '../../gateways/payment-gateway';
import type { PaymentInstructions } from '../notices';
import { lockOrder, Order, OrderItems, orderItems, orderLines } from '../orders';
import { availableMethods, bankMethods, PaymentContext } from './context';
import type { TopupPayments } from './topups';
import { DEADLINE_GRACE_MS, newTradeNo, PAID_STATES, PaymentAttempt, PreparedPayment, ShopMethod, WalletTopup } from './types';

/** What choosing a payment method came to, for the chat (line/) or a page to show. */
export type PaymentChoice =
  | { kind: 'unavailable' }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'stale'; orderNo: string; status: string }
  /** Delivery details first (recipient, address or store): payment methods come after them. */
  | { kind: 'delivery-needed'; order: Order }
  /** The attempt is payable: its account, code or link. */
  | { kind: 'instructions'; instructions: PaymentInstructions }
  /** Nothing new to pay (a repeated tap on a settled attempt): the order as it stands. */
  | { kind: 'order'; order: Order; items: OrderItems; methods: ShopMethod[] }
  /** The bank did not create the trade: the order with its methods, to try again or pick another. */
  | { kind: 'create-failed'; order: Order; items: OrderItems; methods: ShopMethod[] };

/** What a bank attempt pays (an order or a wallet top-up), as its pages and the bank see it. */
export type Payable =
  | { kind: 'order'; order: Order; state: 'payable' | 'paid' | 'expired'; label: string; itemLines: string[]; holdExpiresAt: Date }
  | { kind: 'topup'; topup: WalletTopup; state: 'payable' | 'paid' | 'expired'; label: string; itemLines: string[]; holdExpiresAt: Date };

/**
 * Asks the bank to create the trade of a claimed attempt (no transaction open: an HTTP call).
 * A failure is an answer, not an exception: the caller records the attempt as failed.
 */
export async function createTrade(
  ctx: PaymentContext,
  attempt: PaymentAttempt,
  method: PaymentMethod,
  holdExpiresAt: Date,
  what: { label: string; itemLines: string[] },
): Promise<{ kind: 'ready'; result: CreatePaymentResult } | { kind: 'failed'; code: string }> {
  const gateway = ctx.gateways[METHOD_INFO[method].provider]!;
  try {
    const result = await gateway.createPayment({
      tradeNo: attempt.trade_no,
      method,
      amount: attempt.amount,
      orderNo: what.label,
      itemLines: what.itemLines,
      holdExpiresAt,
      publicRef: attempt.public_ref,
    });
    return { kind: 'ready', result };
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'UNEXPECTED';
    ctx.log.warn({ err: err instanceof Error ? err.message : String(err), code, tradeNo: attempt.trade_no }, 'payment creation failed');
    return { kind: 'failed', code };
  }
}

/** A new bank attempt row, claimed ('creating') before the bank is asked. */
export function newAttemptRow(method: PaymentMethod, amount: number, pays: { order_id: number } | { topup_id: number }, requestKey: string | null) {
  const provider = METHOD_INFO[method].provider;
  return {
    ...pays,
    provider,
    method,
    trade_no: newTradeNo(provider),
    public_ref: crypto.randomBytes(18).toString('base64url'),
    request_key: requestKey,
    amount,
    status: 'creating',
  };
}

/** The details an attempt keeps of the bank's answer (account, link, the verified message). */
export function tradeDetails(r: CreatePaymentResult): Record<string, unknown> {
  const details: Record<string, unknown> =
    r.kind === 'virtual-account'
      ? { kind: r.kind, bankCode: r.bankCode, account: r.account, deadline: r.expiresAt.toISOString() }
      : { kind: r.kind, url: r.url };
  // The bank's own answer as verified (SinoPac: the decrypted, Sign-checked OrderCreate message;
  // no key material is in it), kept for support and disputes.
  if (r.raw && typeof r.raw === 'object') details.bank = r.raw;
  return details;
}

/** Until when a created trade holds: a virtual account's own deadline (plus grace), else the method's hold. */
export function tradeHold(r: CreatePaymentResult, holdExpiresAt: Date): Date {
  return r.kind === 'virtual-account' ? new Date(r.expiresAt.getTime() + DEADLINE_GRACE_MS) : holdExpiresAt;
}

/**
 * Payment attempts: one bank trade number per try. Choosing a method runs in two phases: before
 * the caller's transaction the attempt row is claimed and the bank asked to create the trade (no
 * transaction open during the HTTP call); inside it, the outcome is recorded and the hold follows
 * the method.
 */
export class PaymentAttempts {
  constructor(
    private readonly ctx: PaymentContext,
    private readonly topups: TopupPayments,
  ) {}

  availableMethods(): ShopMethod[] {
    return availableMethods(this.ctx);
  }

  // Phase 1 (before the event transaction, may call the bank).
  async preparePayment(args: { userId: string; orderNo: string; method: string; requestKey: string }): Promise<PreparedPayment> {
    const { db, config } = this.ctx;
    const { orderNo } = args;
    if (!isPaymentMethod(args.method) || !bankMethods(this.ctx).includes(args.method)) return { kind: 'unavailable', orderNo };
    const method = args.method;
    const holdExpiresAt = new Date(Date.now() + config.holdMinutes[METHOD_INFO[method].kind] * 60_000);

    const start = await withTransaction(db, async (trx) => {
      const order = await lockOrder(trx, { order_no: orderNo });
      if (!order || order.line_user_id !== args.userId) return { kind: 'not-found' as const };
      const existing = await trx('payment_attempts').where({ request_key: args.requestKey }).first<PaymentAttempt>();
      if (existing && existing.status !== 'creating') return { kind: 'existing' as const, attempt: existing };
      if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) {
        return { kind: 'stale' as const, status: order.status };
      }
      // The bank is asked for the total with its delivery fee: the details come first.
      if (!order.delivery_ready_at) return { kind: 'delivery-needed' as const, orderId: order.id };
      if (existing) return { kind: 'go' as const, order, attempt: existing };
      const [attempt] = await trx('payment_attempts')
        .insert(newAttemptRow(method, order.total, { order_id: order.id }, args.requestKey))
        .returning<PaymentAttempt[]>('*');
      return { kind: 'go' as const, order, attempt: attempt! };
    });
    if (start.kind === 'not-found') return { kind: 'not-found', orderNo };
    if (start.kind === 'stale') return { kind: 'stale', orderNo, status: start.status };
    if (start.kind === 'delivery-needed') return { kind: 'delivery-needed', orderNo, orderId: start.orderId };
    if (start.kind === 'existing') return { kind: 'existing', orderNo, attemptId: start.attempt.id };

    const { order, attempt } = start;
    const lines = await orderLines(db, order.id);
    const made = await createTrade(this.ctx, attempt, method, holdExpiresAt, { label: order.order_no, itemLines: lines.map((l) => `${l.name} x${l.qty}`) });
    if (made.kind === 'failed') return { kind: 'failed', orderId: order.id, orderNo, attemptId: attempt.id, method, code: made.code };
    return { kind: 'ready', orderId: order.id, orderNo, attemptId: attempt.id, method, result: made.result, holdExpiresAt };
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
      case 'delivery-needed':
        return { kind: 'delivery-needed', order: (await trx('orders').where({ id: p.orderId }).first<Order>())! };
      case 'existing': {
        const attempt = (await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>())!;
        const order = (await trx('orders').where({ id: attempt.order_id! }).first<Order>())!;
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
        const details = tradeDetails(r);
        if (!order || order.status !== 'pending_payment') {
          await trx('payment_attempts').where({ id: p.attemptId }).update({ status: 'superseded', details: JSON.stringify(details), updated_at: trx.fn.now() });
          return { kind: 'stale', orderNo: p.orderNo, status: order?.status ?? 'expired' };
        }
        const hold = tradeHold(r, p.holdExpiresAt);
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

  /** What an attempt pays, and whether it can still be paid. */
  async payableOf(attempt: PaymentAttempt): Promise<Payable> {
    const { db } = this.ctx;
    if (attempt.topup_id !== null) return this.topups.payableOf(db, attempt);
    const order = (await db('orders').where({ id: attempt.order_id! }).first<Order>())!;
    const state = (PAID_STATES as readonly string[]).includes(order.status)
      ? 'paid'
      : order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()
        ? 'expired'
        : 'payable';
    const lines = await orderLines(db, order.id);
    return { kind: 'order', order, state, label: order.order_no, itemLines: lines.map((l) => `${l.name} x${l.qty}`), holdExpiresAt: order.hold_expires_at };
  }

  /** "Pay again" from a failed card page: a fresh attempt with the same method, straight to the bank's page. */
  async retryCardPayment(publicRef: string): Promise<{ kind: 'redirect'; url: string } | { kind: 'not-found' | 'paid' | 'expired' | 'failed' }> {
    const { db, uow } = this.ctx;
    const old = await db('payment_attempts').where({ public_ref: publicRef }).first<PaymentAttempt>();
    if (!old || !isPaymentMethod(old.method) || METHOD_INFO[old.method].kind !== 'card') return { kind: 'not-found' };
    const method = old.method;
    const payable = await this.payableOf(old);
    if (payable.state !== 'payable') return { kind: payable.state };
    const requestKey = `retry:${publicRef}:${Date.now()}`;
    let result: CreatePaymentResult | null;
    if (payable.kind === 'topup') {
      const prepared = await this.topups.prepare({ userId: payable.topup.line_user_id, topupId: payable.topup.id, method, requestKey });
      await uow.run((trx, after) => this.topups.complete(trx, prepared, after));
      if (prepared.kind === 'stale') return { kind: prepared.status };
      result = prepared.kind === 'ready' ? prepared.result : null;
    } else {
      const prepared = await this.preparePayment({ userId: payable.order.line_user_id, orderNo: payable.order.order_no, method, requestKey });
      await uow.run((trx, after) => this.completePayment(trx, prepared, after));
      if (prepared.kind === 'stale') return { kind: 'expired' };
      result = prepared.kind === 'ready' ? prepared.result : null;
    }
    if (result?.kind !== 'redirect') return { kind: 'failed' };
    return { kind: 'redirect', url: result.url };
  }

  /** The ECPay checkout page for an attempt: a form, or the reason there is none. */
  async ecpayCheckoutPage(publicRef: string): Promise<{ kind: 'form'; html: string } | { kind: 'not-found' | 'expired' | 'paid' | 'superseded' }> {
    const { db, gateways } = this.ctx;
    const ec = gateways.ecpay;
    if (!ec) return { kind: 'not-found' };
    const attempt = await db('payment_attempts').where({ public_ref: publicRef, provider: 'ecpay' }).first<PaymentAttempt>();
    if (!attempt || !isPaymentMethod(attempt.method)) return { kind: 'not-found' };
    const payable = await this.payableOf(attempt);
    if (payable.state === 'paid') return { kind: 'paid' };
    if (payable.state === 'expired') return { kind: 'expired' };
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
          topup_id: attempt.topup_id,
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
    const html = ec.checkoutPage({
      tradeNo: trade.trade_no,
      method: attempt.method,
      amount: trade.amount,
      itemLines: payable.itemLines,
      holdExpiresAt: payable.holdExpiresAt,
      orderNo: payable.label,
      now: new Date(),
    });
    return { kind: 'form', html };
  }
}

/** Moves an unpaid order's hold (and its reservations') to a method's deadline; the expiry job and the payment reminder follow. */
export async function setHold(ctx: PaymentContext, trx: Trx, order: Order, hold: Date, method: PaymentMethod, after: AfterCommit): Promise<void> {
  const [moved] = await trx('orders')
    .where({ id: order.id, status: 'pending_payment' })
    .update({ hold_expires_at: hold, hold_set_at: trx.fn.now(), payment_method: method, updated_at: trx.fn.now() })
    .returning<Order[]>(['id', 'payment_method', 'hold_expires_at', 'hold_set_at', 'created_at']);
  await trx('reservations').where({ order_id: order.id, status: 'held' }).update({ expires_at: hold });
  after.tasks.push(() => ctx.queues.scheduleExpiry(order.id, hold));
  if (moved) ctx.reminders.schedule(after, moved);
}
