import type { Db, Trx } from '../data/db';
import { AppError, InsufficientStockError } from '../errors';
import { orderAdjustments, OrderAdjustment } from './order-adjustments';

/**
 * Orders and their stock. State machine (README "Order states"):
 *   pending_payment → paid | expired | cancelled
 *   expired | cancelled → paid (late payment, stock re-reserved) | paid_no_stock (late payment, no stock)
 *   paid → shipped → completed;  paid | shipped | at_store | returned | paid_no_stock → refunded (full refund)
 *   store pickup: shipped → at_store (waits at the pickup store) → completed (picked up);
 *                 shipped | at_store → returned (never collected, back with the seller)
 * Every transition is a guarded UPDATE (only from the expected states) plus an order_events row.
 * Lock order, always: cart row, then order row, then stock slot rows by ascending (product id, slot).
 */

export type OrderStatus =
  | 'pending_payment'
  | 'paid'
  | 'shipped'
  | 'completed'
  | 'expired'
  | 'cancelled'
  | 'paid_no_stock'
  | 'refunded'
  /** Store pickup: the parcel waits at the pickup store. */
  | 'at_store'
  /** Store pickup: the parcel was not collected and went back to the seller. */
  | 'returned';

export const TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  pending_payment: ['paid', 'expired', 'cancelled'],
  expired: ['paid', 'paid_no_stock'],
  cancelled: ['paid', 'paid_no_stock'],
  paid: ['shipped', 'refunded'],
  shipped: ['completed', 'refunded', 'at_store', 'returned'],
  at_store: ['completed', 'returned', 'refunded'],
  returned: ['refunded'],
  paid_no_stock: ['refunded'],
  completed: [],
  refunded: [],
};

export interface Order extends OrderDeliveryColumns {
  id: number;
  order_no: string;
  line_user_id: string;
  status: OrderStatus;
  total: number;
  item_count: number;
  payment_method: string | null;
  hold_expires_at: Date;
  cart_id: number;
  cart_version: number;
  paid_amount: number;
  refunded_amount: number;
  tracking_no: string | null;
  created_at: Date;
  paid_at: Date | null;
  shipped_at: Date | null;
  /** When the current hold was set by choosing a method (null: it started with the order). */
  hold_set_at?: Date | null;
  /** When the shopper was reminded to pay (once per order). */
  reminded_at?: Date | null;
}

/** An order's delivery columns (migration 20261205000100; written by domain/delivery.ts). */
export interface OrderDeliveryColumns {
  delivery_method?: string | null;
  delivery_sub_type?: string | null;
  recipient_name?: string | null;
  recipient_phone?: string | null;
  recipient_zip?: string | null;
  recipient_address?: string | null;
  store_id?: string | null;
  store_name?: string | null;
  store_address?: string | null;
  store_outside?: boolean | null;
  /** Set once the delivery details are complete: payment methods are offered only after it. */
  delivery_ready_at?: Date | null;
}

export interface OrderLine {
  id: number;
  order_id: number;
  product_id: number;
  sku: string;
  name: string;
  unit_price: number;
  qty: number;
  line_total: number;
}

export { InsufficientStockError };

export async function lockOrder(trx: Trx, where: { id: number } | { order_no: string }): Promise<Order | undefined> {
  return trx('orders').where(where).forUpdate().first<Order>();
}

export async function orderLines(trx: Db | Trx, orderId: number): Promise<OrderLine[]> {
  return trx('order_lines').where({ order_id: orderId }).orderBy('id').select<OrderLine[]>('*');
}

/** What an order is made of: its goods lines and its adjustments (fees, discounts). Their sum is its total. */
export interface OrderItems {
  lines: OrderLine[];
  adjustments: OrderAdjustment[];
}

export async function orderItems(db: Db | Trx, orderId: number): Promise<OrderItems> {
  const [lines, adjustments] = [await orderLines(db, orderId), await orderAdjustments(db, orderId)];
  return { lines, adjustments };
}

/** Guarded transition: updates only if the order is still in `from`; records history. */
export async function transition(
  trx: Trx,
  order: Pick<Order, 'id' | 'status'>,
  to: OrderStatus,
  reason: string,
  actor: string,
  patch: Record<string, unknown> = {},
  details?: Record<string, unknown>,
): Promise<void> {
  if (!TRANSITIONS[order.status].includes(to)) {
    throw new AppError('ILLEGAL_TRANSITION', `order ${order.id}: ${order.status} → ${to} not allowed`, 409);
  }
  const n = await trx('orders')
    .where({ id: order.id, status: order.status })
    .update({ status: to, updated_at: trx.fn.now(), ...patch });
  if (n !== 1) throw new AppError('STALE_ORDER', `order ${order.id} changed concurrently`, 409);
  await trx('order_events').insert({
    order_id: order.id,
    from_status: order.status,
    to_status: to,
    reason,
    actor,
    details: details ? JSON.stringify(details) : null,
  });
}

// ---------------------------------------------------------------------------------------------
// Checkout

export type CheckoutResult =
  | { kind: 'created'; order: Order; items: OrderItems }
  | { kind: 'existing'; order: Order; items: OrderItems }
  | { kind: 'stale-cart' }
  | { kind: 'empty'; pending: Order | null }
  | { kind: 'inactive'; names: string[] };

/**
 * Creates the order from the shopper's cart and reserves its stock, in the caller's transaction.
 * Throws InsufficientStockError (roll back) when the cart cannot be ordered as of now.
 *
 * One round trip: `checkout_cart()` (migration 20261201000200) locks the cart row and, if every
 * line's product is active and available, writes the order, its lines, held reservations (one per
 * stock slot used) and the history row, and closes the cart. The units themselves are taken when
 * the caller COMMITs (deferred trigger), so a stock slot row is locked only during COMMIT. If
 * another checkout took the units in the meantime, COMMIT fails with STOCK_CONFLICT_SQLSTATE
 * (errors.ts); withTransaction retries, and the retry's availability check then refuses with
 * InsufficientStockError.
 */
export async function checkout(
  trx: Trx,
  args: { userId: string; cartVersion: number | null; holdMinutes: number },
): Promise<CheckoutResult> {
  const { rows } = await trx.raw<{
    rows: Array<
      Order & {
        kind: 'created' | 'stale-cart' | 'empty' | 'unavailable';
        locked_cart_id: number | null;
        lines: OrderLine[] | null;
        cart: Array<{ product_id: number; name: string; active: boolean; enough: boolean }> | null;
      }
    >;
  }>('SELECT r.kind, r.locked_cart_id, r.lines, r.cart, (r.ord).* FROM checkout_cart(?, ?, ?) r', [
    args.userId,
    args.cartVersion,
    Math.round(args.holdMinutes * 60_000),
  ]);
  const { kind, locked_cart_id: cartId, lines, cart, ...order } = rows[0]!;
  switch (kind) {
    case 'created':
      return { kind, order, items: { lines: lines!, adjustments: [] } };
    case 'stale-cart': {
      const prior = await trx('orders').where({ cart_id: cartId, cart_version: args.cartVersion }).first<Order>();
      if (prior) return { kind: 'existing', order: prior, items: await orderItems(trx, prior.id) };
      return { kind: 'stale-cart' };
    }
    case 'empty': {
      const pending = await trx('orders')
        .where({ line_user_id: args.userId, status: 'pending_payment' })
        .orderBy('id', 'desc')
        .first<Order>();
      return { kind: 'empty', pending: pending ?? null };
    }
    case 'unavailable': {
      const inactive = cart!.filter((l) => !l.active).map((l) => l.name);
      if (inactive.length) return { kind: 'inactive', names: inactive };
      throw new InsufficientStockError(cart!.filter((l) => !l.enough).map((l) => l.product_id));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Release (expiry, cancel) and commit (payment)

type SlotQty = { product_id: number; slot: number; qty: number };

/** Sums quantities per (product, slot), in lock order: ascending product id, then slot. */
function sumBySlot(rows: SlotQty[]): SlotQty[] {
  const m = new Map<string, SlotQty>();
  for (const r of rows) {
    const k = `${r.product_id}:${r.slot}`;
    const e = m.get(k);
    if (e) e.qty += r.qty;
    else m.set(k, { ...r });
  }
  return [...m.values()].sort((a, b) => a.product_id - b.product_id || a.slot - b.slot);
}

/**
 * Moves the order's held reservations to `to` and gives their units back to (released) or takes
 * them out of (committed) the slots they were reserved from. Returns how many reservations moved.
 */
async function settleHeld(trx: Trx, orderId: number, to: 'released' | 'committed'): Promise<number> {
  const stamp = to === 'released' ? 'released_at' : 'committed_at';
  const rows = await trx('reservations')
    .where({ order_id: orderId, status: 'held' })
    .update({ status: to, [stamp]: trx.fn.now() })
    .returning<SlotQty[]>(['product_id', 'slot', 'qty']);
  for (const r of sumBySlot(rows)) {
    await trx.raw(
      to === 'released'
        ? 'UPDATE stock_slots SET reserved = reserved - ? WHERE product_id = ? AND slot = ?'
        : 'UPDATE stock_slots SET reserved = reserved - ?, on_hand = on_hand - ? WHERE product_id = ? AND slot = ?',
      to === 'released' ? [r.qty, r.product_id, r.slot] : [r.qty, r.qty, r.product_id, r.slot],
    );
  }
  return rows.length;
}

/** Expires a pending order whose hold has passed; releases its stock exactly once. */
export async function expireOrder(trx: Trx, orderId: number): Promise<Order | null> {
  const order = await lockOrder(trx, { id: orderId });
  if (!order || order.status !== 'pending_payment') return null;
  const now = await trx.raw<{ rows: Array<{ now: Date }> }>('SELECT now() AS now');
  if (order.hold_expires_at.getTime() > now.rows[0]!.now.getTime()) return null;
  await settleHeld(trx, order.id, 'released');
  await transition(trx, order, 'expired', 'hold expired', 'system', { closed_at: trx.fn.now() });
  return { ...order, status: 'expired' };
}

export type CancelResult = { kind: 'cancelled'; order: Order } | { kind: 'not-found' } | { kind: 'not-allowed'; order: Order };

/** Cancels the shopper's own unpaid order and releases its stock. */
export async function cancelOrder(trx: Trx, userId: string, orderNo: string, actor = 'shopper'): Promise<CancelResult> {
  const order = await lockOrder(trx, { order_no: orderNo });
  if (!order || (actor === 'shopper' && order.line_user_id !== userId)) return { kind: 'not-found' };
  if (order.status !== 'pending_payment') return { kind: 'not-allowed', order };
  await settleHeld(trx, order.id, 'released');
  await transition(trx, order, 'cancelled', 'cancelled by ' + actor, actor, { closed_at: trx.fn.now() });
  return { kind: 'cancelled', order: { ...order, status: 'cancelled' } };
}

export type PaymentConfirmation =
  | { kind: 'paid'; order: Order; late: boolean }
  | { kind: 'paid-no-stock'; order: Order }
  | { kind: 'already-paid'; order: Order }
  | { kind: 'amount-mismatch'; order: Order }
  | { kind: 'not-found' };

/**
 * "Payment confirmed for order X, amount Y": commits the reservation exactly once and moves the
 * order to paid. A late payment (order already expired or cancelled) re-reserves if stock allows,
 * otherwise the order becomes paid_no_stock for the owner to refund. A second call changes nothing.
 */
export async function confirmPayment(
  trx: Trx,
  args: { orderId: number; amount: number; method: string; reference: string },
): Promise<PaymentConfirmation> {
  const order = await lockOrder(trx, { id: args.orderId });
  if (!order) return { kind: 'not-found' };
  if (!['pending_payment', 'expired', 'cancelled'].includes(order.status)) return { kind: 'already-paid', order };
  if (args.amount !== order.total) return { kind: 'amount-mismatch', order };
  const patch = { paid_amount: args.amount, paid_at: trx.fn.now(), payment_method: args.method };
  const details = { reference: args.reference, amount: args.amount, method: args.method };

  if (order.status === 'pending_payment') {
    await settleHeld(trx, order.id, 'committed');
    await transition(trx, order, 'paid', 'payment confirmed', 'bank', patch, details);
    return { kind: 'paid', order: { ...order, status: 'paid', paid_amount: args.amount, payment_method: args.method }, late: false };
  }

  // Late payment: take the stock again if it is still there, all lines or none (savepoint).
  const lines = await orderLines(trx, order.id);
  let reReserved = true;
  try {
    await trx.transaction(async (sp) => {
      const taken: Array<SlotQty & { order_line_id: number }> = [];
      for (const l of [...lines].sort((a, b) => a.product_id - b.product_id)) {
        const { rows } = await sp.raw<{ rows: Array<{ slot: number; qty: number }> }>('SELECT slot, qty FROM stock_take(?, ?)', [l.product_id, l.qty]);
        if (rows.length === 0) throw new InsufficientStockError([l.product_id]);
        for (const r of rows) taken.push({ order_line_id: l.id, product_id: l.product_id, slot: r.slot, qty: r.qty });
      }
      await sp('reservations').insert(
        taken.map((t) => ({
          order_id: order.id,
          order_line_id: t.order_line_id,
          product_id: t.product_id,
          slot: t.slot,
          qty: t.qty,
          status: 'committed',
          expires_at: sp.fn.now(),
          committed_at: sp.fn.now(),
        })),
      );
    });
  } catch (err) {
    if (!(err instanceof InsufficientStockError)) throw err;
    reReserved = false;
  }
  if (reReserved) {
    await transition(trx, order, 'paid', 'late payment, stock re-reserved', 'bank', patch, details);
    return { kind: 'paid', order: { ...order, status: 'paid', paid_amount: args.amount, payment_method: args.method }, late: true };
  }
  await transition(trx, order, 'paid_no_stock', 'late payment, stock gone: refund needed', 'bank', patch, details);
  return { kind: 'paid-no-stock', order: { ...order, status: 'paid_no_stock', paid_amount: args.amount, payment_method: args.method } };
}

export async function recentOrders(trx: Trx, userId: string, limit = 5): Promise<Order[]> {
  return trx('orders').where({ line_user_id: userId }).orderBy('id', 'desc').limit(limit).select<Order[]>('*');
}
