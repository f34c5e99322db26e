import crypto from 'node:crypto';
import type { messagingApi } from '@line/bot-sdk';
import type { Config } from '../config';
import { Db, Trx, withTransaction } from '../data/db';
import { DeferJob } from '../errors';
import {
  CreatePaymentResult,
  GatewayError,
  isPaymentMethod,
  METHOD_INFO,
  MethodKind,
  PaymentGateway,
  PaymentMethod,
  PaymentProvider,
  PaymentStatus,
  PAYMENT_METHODS,
} from '../gateways/payment-gateway';
import type { Queues } from '../jobs/queues';
import { AfterCommit } from '../line/bot';
import * as V from '../line/views';
import type { Logger } from '../logger';
import { METHOD_LABEL, MISMATCH, STATUS_LABEL, T } from '../texts';
import { notifyOwners, notifyShopper } from './notifications';
import { confirmPayment, lockOrder, Order, orderLines, transition } from './orders';

type Message = messagingApi.Message;

/**
 * Payments for orders, independent of the bank: attempts, notifications, confirmation from the
 * bank, reconciliation and refunds. Banks are reached only through PaymentGateway (plus the
 * small bank-specific ports below for callbacks that only one bank has), and never inside a
 * database transaction.
 */

export interface PaymentAttempt {
  id: number;
  order_id: number;
  provider: PaymentProvider;
  method: PaymentMethod;
  trade_no: string;
  public_ref: string;
  request_key: string | null;
  amount: number;
  status: 'creating' | 'pending' | 'paid' | 'failed' | 'superseded';
  gateway_trade_id: string | null;
  details: Record<string, unknown>;
  expires_at: Date | null;
  created_at: Date;
  paid_at: Date | null;
}

/** SinoPac: the notification carries only a PayToken; the result comes from OrderPayQuery. */
export interface SinopacPort extends PaymentGateway {
  confirmPayToken(payToken: string): Promise<
    PaymentStatus & { confirmed: boolean; queryStatus: string; queryDescription: string; shopNo: string; payType: string; orderNoFromBank: string }
  >;
}

/** ECPay: callbacks are CheckMacValue-signed form posts; the checkout is a browser form post. */
export interface EcpayPort extends PaymentGateway {
  verifyCallback(body: Record<string, string>): { ok: true; fields: Record<string, string> } | { ok: false; reason: string };
  checkoutPage(input: {
    tradeNo: string;
    method: PaymentMethod;
    amount: number;
    itemLines: string[];
    holdExpiresAt: Date;
    orderNo: string;
    now: Date;
  }): string;
  parseDate(s: string): Date;
  readonly isProduction: boolean;
}

export interface Gateways {
  sinopac: SinopacPort | null;
  ecpay: EcpayPort | null;
}

export type PreparedPayment =
  | { kind: 'ready'; orderId: number; orderNo: string; attemptId: number; method: PaymentMethod; result: CreatePaymentResult; holdExpiresAt: Date }
  | { kind: 'failed'; orderId: number; orderNo: string; attemptId: number; method: PaymentMethod; code: string }
  | { kind: 'existing'; orderNo: string; attemptId: number }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'stale'; orderNo: string; status: string }
  | { kind: 'unavailable'; orderNo: string };

/** A bank's statement about one trade, from a verified notification, OrderPayQuery or a query API. */
export interface BankFacts {
  provider: PaymentProvider;
  tradeNo: string;
  status: PaymentStatus;
  /** Provider-specific identity checks already extracted (SinoPac ShopNo / PayType, ECPay MerchantID). */
  merchantOk: boolean;
  payTypeOk: boolean;
  source: string;
  notificationId?: number;
}

export type ApplyOutcome =
  | 'paid'
  | 'paid-late'
  | 'paid-no-stock'
  | 'duplicate'
  | 'double-payment'
  | 'failed'
  | 'pending'
  | 'unknown-trade'
  | 'mismatch'
  | 'simulated-rejected'
  /** SinoPac OrderPayQuery never answered Status S, on any attempt: closed with no state change. */
  | 'unconfirmed';

/** Grace after a bank's own payment deadline before the hold ends: notifications take a moment. */
const DEADLINE_GRACE_MS = 10 * 60_000;

/**
 * A fresh bank trade number: provider letter, base-36 milliseconds, 8 random hex digits (17
 * characters of [0-9A-Z]). A SinoPac one never ends in 9: the bank's real sandbox never auto-pays an
 * ATM order whose OrderNo ends in 9 (spec §7), and every order of ours should behave alike there.
 */
export function newTradeNo(provider: PaymentProvider): string {
  for (;;) {
    const tradeNo = (provider === 'sinopac' ? 'S' : 'E') + Date.now().toString(36).toUpperCase() + crypto.randomBytes(4).toString('hex').toUpperCase();
    if (provider !== 'sinopac' || !tradeNo.endsWith('9')) return tradeNo;
  }
}

export class PaymentService {
  constructor(
    private readonly db: Db,
    private readonly config: Config,
    private readonly gateways: Gateways,
    private readonly queues: Queues,
    private readonly log: Logger,
    private readonly runAfterCommit: (after: AfterCommit) => Promise<void>,
  ) {}

  gateway(provider: PaymentProvider): PaymentGateway | null {
    return this.gateways[provider];
  }

  availableMethods(): PaymentMethod[] {
    return PAYMENT_METHODS.filter((m) => this.gateways[METHOD_INFO[m].provider] !== null);
  }

  holdMinutesFor(kind: MethodKind): number {
    return this.config.holdMinutes[kind];
  }

  // -------------------------------------------------------------------------------------------
  // Choosing a method: phase 1 (before the event transaction, may call the bank)

  async preparePayment(args: { userId: string; orderNo: string; method: string; requestKey: string }): Promise<PreparedPayment> {
    const { orderNo } = args;
    if (!isPaymentMethod(args.method) || !this.availableMethods().includes(args.method)) return { kind: 'unavailable', orderNo };
    const method = args.method;
    const provider = METHOD_INFO[method].provider;
    const gateway = this.gateways[provider]!;
    const holdExpiresAt = new Date(Date.now() + this.holdMinutesFor(METHOD_INFO[method].kind) * 60_000);

    const start = await withTransaction(this.db, async (trx) => {
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
    const lines = await orderLines(this.db as unknown as Trx, order.id);
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
      this.log.warn({ err: err instanceof Error ? err.message : String(err), code, tradeNo: attempt.trade_no }, 'payment creation failed');
      return { kind: 'failed', orderId: order.id, orderNo, attemptId: attempt.id, method, code };
    }
  }

  // Phase 2 (inside the event transaction): record the outcome and answer the shopper.
  async completePayment(trx: Trx, p: PreparedPayment, after: AfterCommit): Promise<Message[]> {
    switch (p.kind) {
      case 'unavailable':
        return [V.text(T.methodUnavailable)];
      case 'not-found':
        return [V.text(T.orderUnknown(p.orderNo))];
      case 'stale':
        return [V.text(T.stalePayTap(p.orderNo, STATUS_LABEL[p.status] ?? p.status))];
      case 'existing': {
        const attempt = await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>();
        const order = await trx('orders').where({ id: attempt!.order_id }).first<Order>();
        if (attempt!.status === 'pending' && order!.status === 'pending_payment') return [this.attemptMessage(order!, attempt!)];
        return [V.orderDetailMessage(order!, await orderLines(trx, order!.id), this.availableMethods())];
      }
      case 'failed': {
        await trx('payment_attempts')
          .where({ id: p.attemptId, status: 'creating' })
          .update({ status: 'failed', details: JSON.stringify({ error: p.code }), updated_at: trx.fn.now() });
        const order = await trx('orders').where({ id: p.orderId }).first<Order>();
        return [V.text(T.paymentCreateFailed), V.orderDetailMessage(order!, await orderLines(trx, order!.id), this.availableMethods())];
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
          return [V.text(T.stalePayTap(p.orderNo, STATUS_LABEL[order?.status ?? 'expired'] ?? ''))];
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
        await this.setHold(trx, order, hold, p.method, after);
        const attempt = await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>();
        return [this.attemptMessage({ ...order, hold_expires_at: hold }, attempt!)];
      }
    }
  }

  private async setHold(trx: Trx, order: Order, hold: Date, method: PaymentMethod, after: AfterCommit): Promise<void> {
    await trx('orders').where({ id: order.id, status: 'pending_payment' }).update({ hold_expires_at: hold, payment_method: method, updated_at: trx.fn.now() });
    await trx('reservations').where({ order_id: order.id, status: 'held' }).update({ expires_at: hold });
    after.tasks.push(() => this.queues.scheduleExpiry(order.id, hold));
  }

  private attemptMessage(order: Order, attempt: PaymentAttempt): Message {
    const d = attempt.details as { kind?: string; bankCode?: string; account?: string; deadline?: string; url?: string; paymentNo?: string };
    const others = V.paymentButtons(order, this.availableMethods().filter((m) => m !== attempt.method));
    if (d.kind === 'virtual-account' || d.kind === 'ecpay-atm-code') {
      return V.virtualAccountMessage({
        orderNo: order.order_no,
        amount: attempt.amount,
        bankCode: d.bankCode!,
        account: d.account!,
        deadline: new Date(d.deadline!),
        otherMethods: others,
      });
    }
    if (d.kind === 'ecpay-cvs-code') {
      return V.cvsCodeMessage({ orderNo: order.order_no, amount: attempt.amount, code: d.paymentNo!, deadline: new Date(d.deadline!) });
    }
    return V.payLinkMessage({ orderNo: order.order_no, amount: attempt.amount, method: attempt.method, url: d.url! });
  }

  // -------------------------------------------------------------------------------------------
  // Notifications: record first (deduplicated), answer the bank, confirm and apply in a job.

  async recordNotification(args: {
    provider: PaymentProvider;
    dedupeKey: string;
    kind: string;
    tradeNo: string | null;
    payload: Record<string, unknown>;
    /** false: recorded as already processed (the caller applies it itself). */
    enqueue?: boolean;
  }): Promise<{ id: number; isNew: boolean; processed: boolean }> {
    const inserted = await this.db('payment_notifications')
      .insert({
        provider: args.provider,
        dedupe_key: args.dedupeKey,
        kind: args.kind,
        trade_no: args.tradeNo,
        payload: JSON.stringify(args.payload),
        ...(args.enqueue === false ? { processed_at: this.db.fn.now(), outcome: 'recorded' } : {}),
      })
      .onConflict(['provider', 'dedupe_key'])
      .ignore()
      .returning(['id']);
    if (inserted[0] && args.enqueue === false) return { id: inserted[0].id, isNew: true, processed: true };
    if (inserted[0]) {
      await this.queues.tryEnqueue('payment-notification', () => this.queues.enqueuePaymentNotification(inserted[0]!.id));
      return { id: inserted[0].id, isNew: true, processed: false };
    }
    const existing = await this.db('payment_notifications').where({ provider: args.provider, dedupe_key: args.dedupeKey }).first('id', 'processed_at');
    if (!existing.processed_at) {
      await this.queues.tryEnqueue('payment-notification', () => this.queues.enqueuePaymentNotification(existing.id));
    }
    return { id: existing.id, isNew: false, processed: Boolean(existing.processed_at) };
  }

  /** Job: confirm one recorded notification with the bank and apply the result. */
  async processNotification(notificationId: number, finalAttempt = false): Promise<ApplyOutcome | 'already' | 'missing'> {
    const n = await this.db('payment_notifications').where({ id: notificationId }).first();
    if (!n) return 'missing';
    if (n.processed_at) return 'already';
    const payload = n.payload as Record<string, string>;
    let facts: BankFacts;
    try {
      if (n.provider === 'sinopac') {
        const sp = this.gateways.sinopac;
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
          this.log.warn(
            { notificationId, status: st.queryStatus, description: st.queryDescription, tradeNo: st.orderNoFromBank || undefined },
            'SinoPac OrderPayQuery never answered Status S; notification closed unconfirmed, reconciliation will check the trade',
          );
          return this.closeNotification(notificationId, 'unconfirmed');
        }
        facts = {
          provider: 'sinopac',
          tradeNo: st.orderNoFromBank || st.tradeNo,
          status: st,
          merchantOk: st.shopNo === this.config.sinopac!.shopNo,
          payTypeOk: true, // checked against the attempt's method in apply()
          source: `sinopac-${n.kind}`,
          notificationId,
        };
        (facts as BankFacts & { payType?: string }).payType = st.payType;
      } else {
        const ec = this.gateways.ecpay;
        if (!ec) return this.closeNotification(notificationId, 'unknown-trade');
        const attempt = await this.db('payment_attempts').where({ trade_no: n.trade_no }).first<PaymentAttempt>();
        if (!attempt) return this.closeNotification(notificationId, 'unknown-trade');
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
      await this.noteGatewayError(err);
      // ECPay asked for a pause (HTTP 403): wait it out instead of spending the job's attempts.
      if (err instanceof GatewayError && err.retryable && err.retryAfterMs !== null) throw new DeferJob(err.retryAfterMs, `${n.provider} ${err.code}`);
      if (err instanceof GatewayError && !err.retryable) {
        this.log.error({ notificationId, code: err.code, err: err.message }, 'bank confirmation rejected');
        await this.alertOwners(`alert:notification:${notificationId}`, T.ownerMismatch(n.provider, n.trade_no ?? '-', MISMATCH.bankVerifyFailed(err.code)));
        return this.closeNotification(notificationId, 'mismatch');
      }
      throw err;
    }
    return this.applyBankFacts(facts);
  }

  private async closeNotification(id: number, outcome: ApplyOutcome): Promise<ApplyOutcome> {
    await this.db('payment_notifications').where({ id }).whereNull('processed_at').update({ processed_at: this.db.fn.now(), outcome });
    if (outcome === 'unknown-trade') this.log.warn({ notificationId: id }, 'payment notification for an unknown trade');
    return outcome;
  }

  /**
   * A bank that answered HTTP 403 and asked for a pause (ECPay: called too often, or our IP is not
   * allowed) holds back every confirmation and refund until it lets us in again: the owners are
   * told, once a day, so that a block that lasts is looked into.
   */
  private async noteGatewayError(err: unknown): Promise<void> {
    if (!(err instanceof GatewayError) || err.details.status !== 403 || err.retryAfterMs === null) return;
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date());
    await this.alertOwners(`alert:bank-paused:${day}`, T.ownerBankPaused(new Date(Date.now() + err.retryAfterMs))).catch((e: unknown) =>
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, 'bank pause alert not written'),
    );
  }

  async alertOwners(dedupeKey: string, message: string): Promise<void> {
    const after = new AfterCommit();
    await withTransaction(this.db, (trx) => notifyOwners(trx, after, this.config, dedupeKey, [V.text(message)]));
    await this.runAfterCommit(after);
  }

  /**
   * Applies what the bank said about one trade, exactly once: checks merchant, amount and pay type
   * against our attempt, then confirms the order's payment (receipt + owner push via the outbox).
   */
  async applyBankFacts(f: BankFacts): Promise<ApplyOutcome> {
    const after = new AfterCommit();
    const outcome = await withTransaction(this.db, async (trx): Promise<ApplyOutcome> => {
      after.outboxIds.length = 0;
      after.tasks.length = 0;
      const close = async (o: ApplyOutcome) => {
        if (f.notificationId) {
          await trx('payment_notifications').where({ id: f.notificationId }).whereNull('processed_at').update({ processed_at: trx.fn.now(), outcome: o });
        }
        return o;
      };
      if (!f.merchantOk) {
        // Another merchant's result (or a paid one naming none) is not ours to apply, paid or failed.
        this.log.error({ provider: f.provider, tradeNo: f.tradeNo, problems: [MISMATCH.merchant], source: f.source }, 'bank result does not match our attempt');
        await notifyOwners(trx, after, this.config, `alert:mismatch:${f.provider}:${f.tradeNo || '-'}:${f.notificationId ?? f.source}`, [
          V.text(T.ownerMismatch(f.provider, f.tradeNo || '-', MISMATCH.merchant)),
        ]);
        return close('mismatch');
      }
      const found = await trx('payment_attempts').where({ trade_no: f.tradeNo, provider: f.provider }).first<PaymentAttempt>();
      if (!found) {
        if (f.status.state === 'paid') {
          await notifyOwners(trx, after, this.config, `alert:unknown-trade:${f.provider}:${f.tradeNo}`, [
            V.text(T.ownerMismatch(f.provider, f.tradeNo, MISMATCH.unknownTrade)),
          ]);
        }
        this.log.warn({ provider: f.provider, tradeNo: f.tradeNo, source: f.source }, 'bank result for an unknown trade');
        return close('unknown-trade');
      }
      const order = (await lockOrder(trx, { id: found.order_id }))!;
      const attempt = (await trx('payment_attempts').where({ id: found.id }).forUpdate().first<PaymentAttempt>())!;
      await trx('payment_attempts').where({ id: attempt.id }).update({ last_checked_at: trx.fn.now(), check_count: trx.raw('check_count + 1') });

      if (f.status.state !== 'paid') {
        if (f.status.state === 'failed' && ['pending', 'creating'].includes(attempt.status)) {
          await trx('payment_attempts').where({ id: attempt.id }).update({ status: 'failed', updated_at: trx.fn.now() });
          if (order.status === 'pending_payment') {
            await notifyShopper(trx, after, order.line_user_id, `attempt:${attempt.id}:failed`, [
              V.text(T.paymentFailedShopper(order.order_no)),
              V.orderDetailMessage(order, await orderLines(trx, order.id), this.availableMethods()),
            ]);
          }
          return close('failed');
        }
        return close(f.status.state === 'failed' ? 'failed' : 'pending');
      }

      // Paid, says the bank. Check that it is the payment we asked for.
      const expectedPayType = attempt.method === 'sinopac-atm' ? 'A' : attempt.method === 'sinopac-card' ? 'C' : null;
      const payType = (f as BankFacts & { payType?: string }).payType;
      const problems: string[] = [];
      if (f.status.amount !== attempt.amount) problems.push(MISMATCH.amount(f.status.amount, attempt.amount));
      if (expectedPayType && payType !== undefined && payType !== expectedPayType) problems.push(MISMATCH.payType);
      if (!f.payTypeOk) problems.push(MISMATCH.payType);
      if (problems.length) {
        this.log.error({ tradeNo: f.tradeNo, problems, source: f.source }, 'bank result does not match our attempt');
        await notifyOwners(trx, after, this.config, `alert:mismatch:${f.provider}:${f.tradeNo}:${f.notificationId ?? f.source}`, [
          V.text(T.ownerMismatch(f.provider, f.tradeNo, problems.join('、'))),
        ]);
        return close('mismatch');
      }
      // QueryTradeInfo carries no SimulatePaid: a recorded ECPay callback for this trade that said
      // SimulatePaid=1 still makes it simulated (else reconciliation would take it for money).
      const simulated =
        f.status.simulated ||
        (f.provider === 'ecpay' &&
          this.gateways.ecpay?.isProduction === true &&
          (await trx('payment_notifications').where({ provider: 'ecpay', trade_no: f.tradeNo }).whereRaw("payload->>'SimulatePaid' = '1'").first('id')) !== undefined);
      if (simulated && this.gateways.ecpay?.isProduction) {
        await notifyOwners(trx, after, this.config, `alert:simulated:${f.tradeNo}`, [V.text(T.ownerSimulated(f.tradeNo))]);
        return close('simulated-rejected');
      }
      if (attempt.status === 'paid') return close('duplicate');

      const orderAlreadyPaid = !['pending_payment', 'expired', 'cancelled'].includes(order.status);
      if (orderAlreadyPaid) {
        // Money for an order that another attempt already paid: record it and ask the owner to refund.
        await trx('payment_attempts')
          .where({ id: attempt.id })
          .update({ details: trx.raw(`details || ?::jsonb`, [JSON.stringify({ doublePaid: true, amount: f.status.amount })]), updated_at: trx.fn.now() });
        await notifyOwners(trx, after, this.config, `alert:double:${attempt.id}`, [
          V.text(T.ownerMismatch(f.provider, f.tradeNo, MISMATCH.doublePayment(order.order_no))),
        ]);
        return close('double-payment');
      }

      await trx('payment_attempts')
        .where({ order_id: order.id })
        .whereIn('status', ['pending', 'creating'])
        .whereNot({ id: attempt.id })
        .update({ status: 'superseded', updated_at: trx.fn.now() });
      await trx('payment_attempts')
        .where({ id: attempt.id })
        .update({ status: 'paid', paid_at: trx.fn.now(), gateway_trade_id: f.status.gatewayTradeId ?? attempt.gateway_trade_id, updated_at: trx.fn.now() });
      const r = await confirmPayment(trx, { orderId: order.id, amount: attempt.amount, method: attempt.method, reference: attempt.trade_no });
      const lines = await orderLines(trx, order.id);
      if (r.kind === 'paid') {
        await notifyShopper(trx, after, order.line_user_id, `order:${order.id}:paid`, [V.receiptMessage(r.order, lines, attempt.method, r.late)]);
        await notifyOwners(trx, after, this.config, `order:${order.id}:paid:owner`, [
          V.ownerPaidMessage(r.order, lines, attempt.method, r.late ? [T.lateRereserved] : []),
        ]);
        return close(r.late ? 'paid-late' : 'paid');
      }
      if (r.kind === 'paid-no-stock') {
        await notifyShopper(trx, after, order.line_user_id, `order:${order.id}:paid-no-stock`, [V.text(T.paidNoStockShopper(order.order_no))]);
        await notifyOwners(trx, after, this.config, `order:${order.id}:paid-no-stock:owner`, [V.text(T.ownerPaidNoStock(order.order_no, attempt.amount))]);
        return close('paid-no-stock');
      }
      throw new Error(`unexpected confirmation ${r.kind} for order ${order.id}`);
    });
    await this.runAfterCommit(after);
    return outcome;
  }

  ecpayPort(): EcpayPort | null {
    return this.gateways.ecpay;
  }

  /** A MAC-verified ECPay callback must name one of our trades, with exactly its amount. */
  async checkEcpayCallback(f: Record<string, string>): Promise<'ok' | 'UnknownMerchantTradeNo' | 'TradeAmtMismatch'> {
    const attempt = await this.db('payment_attempts').where({ provider: 'ecpay', trade_no: f.MerchantTradeNo ?? '' }).first<PaymentAttempt>();
    if (!attempt) return 'UnknownMerchantTradeNo';
    if (!/^\d+$/.test(f.TradeAmt ?? '') || Number(f.TradeAmt) !== attempt.amount) {
      await this.alertOwners(
        `alert:ecpay-amount:${attempt.trade_no}:${f.TradeAmt}`,
        T.ownerMismatch('ecpay', attempt.trade_no, MISMATCH.callbackAmount(f.TradeAmt ?? '', attempt.amount)),
      );
      return 'TradeAmtMismatch';
    }
    return 'ok';
  }

  /** For the SinoPac ReturnURL page: what OrderPayQuery says about this PayToken, right now. */
  async sinopacReturnState(payToken: string): Promise<{ state: 'paid' | 'failed' | 'processing'; retryRef: string | null }> {
    const sp = this.gateways.sinopac;
    if (!sp) return { state: 'processing', retryRef: null };
    const st = await sp.confirmPayToken(payToken);
    if (!st.confirmed) return { state: 'processing', retryRef: null };
    const attempt = await this.db('payment_attempts').where({ provider: 'sinopac', trade_no: st.orderNoFromBank || st.tradeNo }).first<PaymentAttempt>();
    if (!attempt || st.shopNo !== this.config.sinopac!.shopNo) return { state: 'processing', retryRef: null };
    if (st.state === 'paid' && st.amount === attempt.amount) return { state: 'paid', retryRef: null };
    if (st.state === 'failed') return { state: 'failed', retryRef: attempt.method === 'sinopac-card' ? attempt.public_ref : null };
    return { state: 'processing', retryRef: null };
  }

  /** "Pay again" from a failed card page: a fresh attempt with the same method, straight to the bank's page. */
  async retryCardPayment(publicRef: string): Promise<{ kind: 'redirect'; url: string } | { kind: 'not-found' | 'paid' | 'expired' | 'failed' }> {
    const old = await this.db('payment_attempts').where({ public_ref: publicRef }).first<PaymentAttempt>();
    if (!old || METHOD_INFO[old.method].kind !== 'card') return { kind: 'not-found' };
    const order = (await this.db('orders').where({ id: old.order_id }).first<Order>())!;
    if (!['pending_payment', 'expired', 'cancelled'].includes(order.status)) return { kind: 'paid' };
    if (order.status !== 'pending_payment') return { kind: 'expired' };
    const prepared = await this.preparePayment({ userId: order.line_user_id, orderNo: order.order_no, method: old.method, requestKey: `retry:${publicRef}:${Date.now()}` });
    const after = new AfterCommit();
    await withTransaction(this.db, async (trx) => {
      after.outboxIds.length = 0;
      after.tasks.length = 0;
      await this.completePayment(trx, prepared, after);
    });
    await this.runAfterCommit(after);
    if (prepared.kind !== 'ready') return { kind: prepared.kind === 'stale' ? 'expired' : 'failed' };
    if (prepared.result.kind !== 'redirect') return { kind: 'failed' };
    return { kind: 'redirect', url: prepared.result.url };
  }

  // -------------------------------------------------------------------------------------------
  // ECPay PaymentInfoURL: an ATM account or CVS code was issued; the hold follows its deadline.

  async applyEcpayPaymentInfo(fields: Record<string, string>): Promise<'ok' | 'unknown-trade' | 'mismatch'> {
    const ec = this.gateways.ecpay!;
    const after = new AfterCommit();
    const outcome = await withTransaction(this.db, async (trx) => {
      after.outboxIds.length = 0;
      after.tasks.length = 0;
      const found = await trx('payment_attempts').where({ trade_no: fields.MerchantTradeNo, provider: 'ecpay' }).first<PaymentAttempt>();
      if (!found) return 'unknown-trade' as const;
      if (Number(fields.TradeAmt) !== found.amount) return 'mismatch' as const;
      const order = (await lockOrder(trx, { id: found.order_id }))!;
      const issued = fields.RtnCode === '2' || fields.RtnCode === '10100073';
      if (!issued) {
        const failed = await trx('payment_attempts').where({ id: found.id }).whereIn('status', ['pending']).update({ status: 'failed', updated_at: trx.fn.now() });
        // No code, so nothing to pay with: say so and offer the methods again (the hold is unchanged).
        if (failed > 0 && order.status === 'pending_payment') {
          await notifyShopper(trx, after, order.line_user_id, `attempt:${found.id}:code-failed`, [
            V.text(T.codeIssueFailedShopper(order.order_no, METHOD_LABEL[found.method] ?? found.method)),
            V.orderDetailMessage(order, await orderLines(trx, order.id), this.availableMethods()),
          ]);
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
      const shownDeadline = deadline ?? order.hold_expires_at;
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
      if (order.status === 'pending_payment' && found.status === 'pending') {
        if (deadline !== null) await this.setHold(trx, order, new Date(deadline.getTime() + DEADLINE_GRACE_MS), found.method, after);
        const attempt = { ...found, details };
        await notifyShopper(trx, after, order.line_user_id, `attempt:${found.id}:payment-info`, [this.attemptMessage(order, attempt)]);
      }
      if (deadline === null) {
        this.log.error({ tradeNo: found.trade_no, expireDate: String(fields.ExpireDate ?? '').slice(0, 40) }, 'ECPay PaymentInfoURL with an unreadable ExpireDate');
        await notifyOwners(trx, after, this.config, `alert:ecpay-expire-date:${found.trade_no}`, [
          V.text(T.ownerBadExpireDate(order.order_no, found.trade_no, String(fields.ExpireDate ?? '').slice(0, 40), order.hold_expires_at)),
        ]);
      }
      return 'ok' as const;
    });
    await this.runAfterCommit(after);
    return outcome;
  }

  /** The ECPay checkout page for an attempt: a form, or the reason there is none. */
  async ecpayCheckoutPage(publicRef: string): Promise<{ kind: 'form'; html: string } | { kind: 'not-found' | 'expired' | 'paid' | 'superseded' }> {
    const ec = this.gateways.ecpay;
    if (!ec) return { kind: 'not-found' };
    const attempt = await this.db('payment_attempts').where({ public_ref: publicRef, provider: 'ecpay' }).first<PaymentAttempt>();
    if (!attempt) return { kind: 'not-found' };
    const order = (await this.db('orders').where({ id: attempt.order_id }).first<Order>())!;
    if (['paid', 'shipped', 'completed', 'paid_no_stock', 'refunded'].includes(order.status)) return { kind: 'paid' };
    if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) return { kind: 'expired' };
    if (attempt.status !== 'pending') return { kind: attempt.status === 'paid' ? 'paid' : 'superseded' };
    // ECPay refuses a MerchantTradeNo it has seen: a reopened link posts a fresh trade number.
    let trade = attempt;
    const opened = await this.db('payment_attempts')
      .where({ id: attempt.id })
      // Not the jsonb `?` operator: knex would take it for a binding placeholder.
      .whereRaw("details->>'openedAt' IS NULL")
      .update({ details: this.db.raw(`details || ?::jsonb`, [JSON.stringify({ openedAt: new Date().toISOString() })]) });
    if (opened === 0) {
      const [fresh] = await this.db('payment_attempts')
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
    const lines = await orderLines(this.db as unknown as Trx, order.id);
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

  /** What a result page should say about a trade, from our own records (never from the browser post). */
  async tradeState(provider: PaymentProvider, tradeNo: string): Promise<'paid' | 'failed' | 'processing' | 'unknown'> {
    const attempt = await this.db('payment_attempts').where({ provider, trade_no: tradeNo }).first<PaymentAttempt>();
    if (!attempt) return 'unknown';
    if (attempt.status === 'paid') return 'paid';
    if (attempt.status === 'failed') return 'failed';
    return 'processing';
  }

  // -------------------------------------------------------------------------------------------
  // Reconciliation: ask the bank about attempts still pending after RECONCILE_AFTER_MINUTES.

  /**
   * Attempts due for a query to their bank. ECPay ATM / CVS attempts whose code was issued are
   * offline payments that ECPay reports by ReturnURL; its guidance is that a daily query is enough
   * (spec §9.3), so those are asked at most once a day. Nothing goes to ECPay while it asked for a
   * pause (HTTP 403, spec §11).
   */
  async reconcileCandidates(limit = 200): Promise<number[]> {
    const every = this.config.reconcileEveryMinutes;
    const ecpayPausedMs = (await this.gateways.ecpay?.callsPausedForMs?.()) ?? 0;
    const rows = await this.db('payment_attempts')
      // A superseded or declined attempt stays payable at the bank until its own deadline (a SinoPac
      // virtual account cannot be withdrawn, a card page can be tried again), so its money must be found too.
      .where((q) => q.where('status', 'pending').orWhere((s) => s.whereIn('status', ['superseded', 'failed']).whereRaw(`expires_at > now() - interval '1 day'`)))
      .whereRaw(`created_at < now() - (? * interval '1 minute')`, [this.config.reconcileAfterMinutes])
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

  async reconcileSweep(limit = 200): Promise<number> {
    const every = this.config.reconcileEveryMinutes;
    const rows = await this.reconcileCandidates(limit);
    const bucket = Math.floor(Date.now() / (every * 60_000));
    for (const id of rows) await this.queues.enqueueReconcile(id, bucket);
    // Notifications whose job never ran (Redis was away) are re-enqueued too.
    const stuck = await this.db('payment_notifications')
      .whereNull('processed_at')
      .whereRaw(`received_at < now() - interval '1 minute'`)
      .orderBy('id')
      .limit(limit)
      .select('id');
    for (const n of stuck) await this.queues.enqueuePaymentNotification(n.id);
    return rows.length;
  }

  async reconcileAttempt(attemptId: number): Promise<ApplyOutcome | 'skipped' | 'paused'> {
    const attempt = await this.db('payment_attempts').where({ id: attemptId }).first<PaymentAttempt>();
    if (!attempt || !['pending', 'superseded', 'failed'].includes(attempt.status)) return 'skipped';
    const gw = this.gateways[attempt.provider];
    if (!gw) return 'skipped';
    let status: PaymentStatus;
    try {
      status = await gw.queryPayment({ tradeNo: attempt.trade_no, method: attempt.method, createdAt: attempt.created_at });
    } catch (err) {
      await this.noteGatewayError(err);
      // The bank asked for a pause: a later sweep asks again (the attempt stays due).
      if (err instanceof GatewayError && err.retryAfterMs !== null) {
        this.log.warn({ attemptId, code: err.code, retryAfterMs: err.retryAfterMs }, 'reconciliation paused by the bank');
        return 'paused';
      }
      throw err;
    }
    if (status.state !== 'paid' && status.state !== 'failed' && attempt.expires_at && attempt.expires_at.getTime() + 24 * 3600_000 < Date.now()) {
      // Long past its deadline and still unpaid at the bank: stop asking.
      await this.db('payment_attempts').where({ id: attempt.id, status: 'pending' }).update({ status: 'failed', last_checked_at: this.db.fn.now(), updated_at: this.db.fn.now() });
      return 'failed';
    }
    return this.applyBankFacts({
      provider: attempt.provider,
      tradeNo: attempt.trade_no,
      status,
      merchantOk: true,
      payTypeOk: true,
      source: 'reconcile',
    });
  }

  // -------------------------------------------------------------------------------------------
  // Refunds (ECPay credit card): requested in a transaction, executed by a job, recorded per order.

  async refundByOwner(trx: Trx, ownerId: string, orderNo: string, amount: number | null, after: AfterCommit): Promise<Message[]> {
    const r = await this.requestRefund(trx, { orderNo, amount, requestedBy: `owner:${ownerId}` }, after);
    switch (r.kind) {
      case 'not-found':
        return [V.text(T.orderUnknown(orderNo))];
      case 'not-paid':
        return [V.text(T.ownerRefundNotPaid(orderNo, STATUS_LABEL[r.status] ?? r.status))];
      case 'not-card':
        return [V.text(T.ownerRefundNotCard)];
      case 'too-much':
        return [V.text(T.ownerRefundTooMuch(orderNo, r.refundable))];
      case 'requested':
        return [V.text(T.ownerRefundRequested(orderNo, METHOD_LABEL[r.method] ?? r.method, r.amount))];
    }
  }

  async requestRefund(
    trx: Trx,
    args: { orderNo: string; amount: number | null; requestedBy: string },
    after: AfterCommit,
  ): Promise<
    | { kind: 'requested'; refundId: number; amount: number; method: string }
    | { kind: 'not-found' }
    | { kind: 'not-paid'; status: string }
    | { kind: 'not-card' }
    | { kind: 'too-much'; refundable: number }
  > {
    const order = await lockOrder(trx, { order_no: args.orderNo });
    if (!order) return { kind: 'not-found' };
    if (!['paid', 'shipped', 'completed', 'paid_no_stock'].includes(order.status)) return { kind: 'not-paid', status: order.status };
    const attempt = await trx('payment_attempts').where({ order_id: order.id, status: 'paid' }).first<PaymentAttempt>();
    const gw = attempt ? this.gateways[attempt.provider] : null;
    if (!attempt || attempt.method !== 'ecpay-credit' || !gw?.refund) return { kind: 'not-card' };
    const [{ sum }] = await trx('refunds').where({ order_id: order.id }).whereIn('status', ['pending', 'succeeded']).sum<{ sum: number | null }[]>({ sum: 'amount' });
    const refundable = order.paid_amount - Number(sum ?? 0);
    const amount = args.amount ?? refundable;
    if (amount < 1 || amount > refundable) return { kind: 'too-much', refundable: Math.max(0, refundable) };
    const [row] = await trx('refunds')
      .insert({ order_id: order.id, attempt_id: attempt.id, amount, status: 'pending', requested_by: args.requestedBy })
      .returning(['id']);
    after.tasks.push(() => this.queues.enqueueRefund(row!.id));
    return { kind: 'requested', refundId: row!.id, amount, method: attempt.method };
  }

  /** Job: executes one pending refund at the bank, then records the result. */
  async executeRefund(refundId: number, finalAttempt = false): Promise<'succeeded' | 'failed' | 'skipped' | 'unknown'> {
    const refund = await this.db('refunds').where({ id: refundId }).first();
    if (!refund || refund.status !== 'pending') return 'skipped';
    // Sent once with no answer: the bank may have refunded, so it is never sent again (owner checks).
    if (refund.gateway_response?.outcome === 'unknown') return 'skipped';
    const attempt = (await this.db('payment_attempts').where({ id: refund.attempt_id }).first<PaymentAttempt>())!;
    const order = (await this.db('orders').where({ id: refund.order_id }).first<Order>())!;
    const unknownOutcome = async (code: string, message: string) => {
      await this.db('refunds').where({ id: refundId, status: 'pending' }).update({ gateway_response: JSON.stringify({ outcome: 'unknown', code, message }) });
      await this.alertOwners(`refund:${refundId}:unknown`, T.ownerRefundUnknown(order.order_no, refund.amount));
      return 'unknown' as const;
    };
    // A time when the bank must not be asked (ECPay: its daily capture, 20:15–20:30 Taipei, or a
    // pause it asked for): the job waits in BullMQ's delayed set, unclaimed, and runs after it.
    const gw = this.gateways[attempt.provider]!;
    const waitMs = Math.max(gw.refundDelayMs?.() ?? 0, (await gw.callsPausedForMs?.()) ?? 0);
    if (waitMs > 0) throw new DeferJob(waitMs, `${attempt.provider} refunds not possible now`);
    // Claim before sending: a run that finds the claim already taken (a crash after DoAction,
    // before the answer was recorded) must not send again. An earlier try that got part of the
    // way (e.g. ECPay's C went through, its R did not) left its progress: the claim keeps it.
    const progress: unknown = refund.gateway_response?.outcome === 'retry' ? refund.gateway_response.progress : undefined;
    const claimed = await this.db('refunds')
      .where({ id: refundId, status: 'pending' })
      .andWhere((q) => q.whereNull('gateway_response').orWhereRaw("gateway_response->>'outcome' = 'retry'"))
      .update({ gateway_response: JSON.stringify({ outcome: 'sending', at: new Date().toISOString(), progress }) });
    if (claimed === 0) {
      this.log.error({ refundId }, 'refund was sent before without a recorded answer; not sending again');
      return unknownOutcome('INTERRUPTED', 'sent before, answer not recorded');
    }
    const [{ sum }] = await this.db('refunds').where({ order_id: order.id, status: 'succeeded' }).sum<{ sum: number | null }[]>({ sum: 'amount' });
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
      await this.noteGatewayError(err);
      // A refund is not idempotent. Retryable = the call that failed did not reach the bank: let
      // the job try again (from the progress the gateway reports, if earlier calls went through).
      // Otherwise (timeout, connection lost after sending) the outcome is unknown: a retry could refund twice.
      const retry = () =>
        JSON.stringify({ outcome: 'retry', progress: (err instanceof GatewayError ? err.details.progress : undefined) ?? progress });
      if (err instanceof GatewayError && err.retryable && err.retryAfterMs !== null) {
        // The bank said when to come back (capture window, HTTP 403 pause): release the claim and
        // wait, without spending one of the job's attempts.
        await this.db('refunds').where({ id: refundId, status: 'pending' }).update({ gateway_response: retry() });
        throw new DeferJob(err.retryAfterMs, `${err.code}: ${err.message}`);
      }
      if (!(err instanceof GatewayError) || err.retryable) {
        // Nothing reached the bank: release the claim so the job's retry may send; on the last try,
        // close it as failed so the amount is refundable again and the owner knows.
        if (finalAttempt) {
          const message = err instanceof Error ? err.message : String(err);
          await this.db('refunds').where({ id: refundId, status: 'pending' }).update({ status: 'failed', gateway_response: JSON.stringify({ outcome: 'unreachable', message }) });
          await this.alertOwners(`refund:${refundId}:owner`, T.ownerRefundUnreachable(order.order_no, refund.amount));
          return 'failed';
        }
        await this.db('refunds').where({ id: refundId, status: 'pending' }).update({ gateway_response: retry() });
        throw err;
      }
      this.log.error({ refundId, code: err.code, err: err.message }, 'refund outcome unknown');
      return unknownOutcome(err.code, err.message);
    }
    const after = new AfterCommit();
    const status = await withTransaction(this.db, async (trx) => {
      after.outboxIds.length = 0;
      after.tasks.length = 0;
      const locked = await lockOrder(trx, { id: order.id });
      const r = await trx('refunds').where({ id: refundId }).forUpdate().first();
      if (r.status !== 'pending') return 'skipped' as const;
      const owners = (msg: string) => notifyOwners(trx, after, this.config, `refund:${refundId}:owner`, [V.text(msg)]);
      if (!result.ok) {
        await trx('refunds').where({ id: refundId }).update({ status: 'failed', gateway_response: JSON.stringify(result.raw ?? { message: result.message }) });
        await owners(T.ownerRefundFailed);
        return 'failed' as const;
      }
      await trx('refunds').where({ id: refundId }).update({ status: 'succeeded', gateway_response: JSON.stringify(result.raw ?? {}) });
      const refunded = locked!.refunded_amount + refund.amount;
      await trx('orders').where({ id: order.id }).update({ refunded_amount: refunded, updated_at: trx.fn.now() });
      await trx('order_events').insert({
        order_id: order.id, from_status: locked!.status, to_status: locked!.status, reason: `refund ${refund.amount}`, actor: refund.requested_by,
        details: JSON.stringify({ refundId, amount: refund.amount }),
      });
      if (refunded >= locked!.paid_amount && ['paid', 'shipped', 'paid_no_stock'].includes(locked!.status)) {
        await transition(trx, locked!, 'refunded', 'fully refunded', refund.requested_by);
      }
      await notifyShopper(trx, after, order.line_user_id, `refund:${refundId}`, [V.text(T.refundShopper(order.order_no, refund.amount))]);
      await owners(T.ownerRefundDone(order.order_no, refund.amount, refunded));
      return 'succeeded' as const;
    });
    await this.runAfterCommit(after);
    return status;
  }
}
