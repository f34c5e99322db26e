import crypto from 'node:crypto';
import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { post } from '../members/ledger';
import { lockOrder, Order, OrderItems, orderItems } from '../orders';
import { availableMethods, PaymentContext } from './context';
import { settleOrderPayment } from './settle';
import { PaymentAttempt, ShopMethod, WALLET } from './types';

export type WalletPayResult =
  | { kind: 'paid'; order: Order; balance: number }
  /** The wallet holds less than the order's total: nothing changed. */
  | { kind: 'insufficient'; order: Order; items: OrderItems; balance: number; methods: ShopMethod[] }
  | { kind: 'not-found'; orderNo: string }
  /** Not payable any more (paid, expired, cancelled, or its hold has just passed). */
  | { kind: 'stale'; orderNo: string; status: string }
  /** Delivery details first: nothing was debited. */
  | { kind: 'delivery-needed'; order: Order };

/** The ledger source of a wallet payment: an order is paid from the wallet at most once. */
export const walletPaySource = (orderId: number) => `order:${orderId}:pay`;

/**
 * Paying an order from the wallet: no bank, one transaction. The order row is locked; the wallet
 * is debited with a conditional update that never takes it below 0 (a short balance is refused
 * cleanly, nothing changed); a paid attempt with method `wallet` is recorded (so an order still has
 * at most one paid attempt, whatever paid it); and the order is settled through the same path as a
 * bank's confirmed payment (stock committed, points earned, receipts).
 */
export class WalletPayments {
  constructor(private readonly ctx: PaymentContext) {}

  async payOrder(trx: Trx, after: AfterCommit, args: { userId: string; orderNo: string; requestKey: string }): Promise<WalletPayResult> {
    const order = await lockOrder(trx, { order_no: args.orderNo });
    if (!order || order.line_user_id !== args.userId) return { kind: 'not-found', orderNo: args.orderNo };
    if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) {
      return { kind: 'stale', orderNo: order.order_no, status: order.status };
    }
    if (!order.delivery_ready_at) return { kind: 'delivery-needed', order };
    const debit = await post(trx, {
      userId: args.userId, account: 'wallet', kind: 'pay', amount: -order.total, source: walletPaySource(order.id), details: { orderNo: order.order_no },
    });
    if (debit.outcome === 'insufficient') {
      return { kind: 'insufficient', order, items: await orderItems(trx, order.id), balance: debit.balance, methods: availableMethods(this.ctx) };
    }
    // A pending order with its wallet payment already posted cannot be (the order row is locked).
    if (debit.outcome === 'duplicate') throw new Error(`order ${order.id}: wallet payment posted for an unpaid order`);
    const [attempt] = await trx('payment_attempts')
      .insert({
        order_id: order.id,
        provider: WALLET,
        method: WALLET,
        trade_no: `W${Date.now().toString(36).toUpperCase()}${crypto.randomBytes(4).toString('hex').toUpperCase()}`,
        public_ref: crypto.randomBytes(18).toString('base64url'),
        request_key: args.requestKey,
        amount: order.total,
        status: 'paid',
        paid_at: trx.fn.now(),
        details: JSON.stringify({ kind: 'wallet', ledgerEntryId: debit.entryId, balanceAfter: debit.balance }),
      })
      .returning<PaymentAttempt[]>('*');
    // A bank code or link handed out before stays payable at the bank; money for it is then a
    // double payment, which the owner is asked to refund (as when two bank methods were used).
    await trx('payment_attempts')
      .where({ order_id: order.id })
      .whereIn('status', ['pending', 'creating'])
      .update({ status: 'superseded', updated_at: trx.fn.now() });
    await settleOrderPayment(this.ctx, trx, after, order, attempt!);
    const paid = (await trx('orders').where({ id: order.id }).first<Order>())!;
    return { kind: 'paid', order: paid, balance: debit.balance };
  }
}
