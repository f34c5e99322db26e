import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { entriesWithPrefix } from '../members/ledger';
import { confirmPayment, Order, orderItems } from '../orders';
import type { PaymentContext } from './context';
import type { PaymentAttempt } from './types';

/**
 * An order's money is in (a bank's confirmed payment, or the wallet): its stock is committed and
 * it becomes paid (confirmPayment, exactly once), its listeners are told (member points), and the
 * shopper's receipt and the owners' notice are written, all in the caller's transaction with the
 * order row locked. A late payment whose stock is gone makes it paid_no_stock, for a refund.
 */
export async function settleOrderPayment(
  ctx: Pick<PaymentContext, 'events' | 'notifier'>,
  trx: Trx,
  after: AfterCommit,
  order: Order,
  attempt: Pick<PaymentAttempt, 'amount' | 'method' | 'trade_no'>,
): Promise<'paid' | 'paid-late' | 'paid-no-stock'> {
  const { notifier } = ctx;
  const r = await confirmPayment(trx, { orderId: order.id, amount: attempt.amount, method: attempt.method, reference: attempt.trade_no });
  const items = await orderItems(trx, order.id);
  if (r.kind === 'paid' || r.kind === 'paid-no-stock') {
    await ctx.events.paid(trx, after, { order: r.order, method: attempt.method, late: r.kind === 'paid' && r.late, noStock: r.kind === 'paid-no-stock' });
  }
  if (r.kind === 'paid') {
    const earned = (await entriesWithPrefix(trx, order.line_user_id, 'points', `order:${order.id}:earn`))[0]?.amount;
    await notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:paid`, {
      type: 'receipt', order: r.order, items, method: attempt.method, late: r.late, ...(earned ? { pointsEarned: earned } : {}),
    });
    await notifier.owners(trx, after, `order:${order.id}:paid:owner`, { type: 'paid', order: r.order, items, method: attempt.method, late: r.late });
    return r.late ? 'paid-late' : 'paid';
  }
  if (r.kind === 'paid-no-stock') {
    await notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:paid-no-stock`, { type: 'paid-no-stock', orderNo: order.order_no });
    await notifier.owners(trx, after, `order:${order.id}:paid-no-stock:owner`, { type: 'paid-no-stock', orderNo: order.order_no, amount: attempt.amount });
    return 'paid-no-stock';
  }
  throw new Error(`unexpected confirmation ${r.kind} for order ${order.id}`);
}
