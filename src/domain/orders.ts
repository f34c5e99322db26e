import type { Trx } from '../data/db';
import { AppError } from '../errors';
import { lockCart } from './cart';

/**
 * Orders and their stock. State machine (README "Order states"):
 *   pending_payment → paid | expired | cancelled
 *   expired | cancelled → paid (late payment, stock re-reserved) | paid_no_stock (late payment, no stock)
 *   paid → shipped → completed;  paid | shipped | paid_no_stock → refunded (full refund)
 * Every transition is a guarded UPDATE (only from the expected states) plus an order_events row.
 * Lock order, always: cart row, then order row, then product rows by ascending id.
 */

export type OrderStatus =
  | 'pending_payment'
  | 'paid'
  | 'shipped'
  | 'completed'
  | 'expired'
  | 'cancelled'
  | 'paid_no_stock'
  | 'refunded';

export const TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  pending_payment: ['paid', 'expired', 'cancelled'],
  expired: ['paid', 'paid_no_stock'],
  cancelled: ['paid', 'paid_no_stock'],
  paid: ['shipped', 'refunded'],
  shipped: ['completed', 'refunded'],
  paid_no_stock: ['refunded'],
  completed: [],
  refunded: [],
};

export interface Order {
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

export class InsufficientStockError extends AppError {
  constructor(readonly productIds: number[]) {
    super('INSUFFICIENT_STOCK', 'not enough stock', 409, { productIds });
  }
}

export async function lockOrder(trx: Trx, where: { id: number } | { order_no: string }): Promise<Order | undefined> {
  return trx('orders').where(where).forUpdate().first<Order>();
}

export async function orderLines(trx: Trx, orderId: number): Promise<OrderLine[]> {
  return trx('order_lines').where({ order_id: orderId }).orderBy('id').select<OrderLine[]>('*');
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

function sumByProduct(rows: Array<{ product_id: number; qty: number }>): Array<[number, number]> {
  const m = new Map<number, number>();
  for (const r of rows) m.set(r.product_id, (m.get(r.product_id) ?? 0) + r.qty);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

// ---------------------------------------------------------------------------------------------
// Checkout

export type CheckoutResult =
  | { kind: 'created'; order: Order; lines: OrderLine[] }
  | { kind: 'existing'; order: Order; lines: OrderLine[] }
  | { kind: 'stale-cart' }
  | { kind: 'empty'; pending: Order | null }
  | { kind: 'inactive'; names: string[] };

/**
 * Creates the order from the shopper's cart and reserves its stock, in the caller's transaction.
 * Throws InsufficientStockError (roll back) when any line cannot be reserved.
 *
 * Round trips, in order: lock the cart; one statement that reads the cart's lines and, if they can
 * be ordered (lines present, products active and, as of its snapshot, in stock), writes the order,
 * its lines, their held reservations, the history row and closes the cart; then one conditional
 * UPDATE per product in ascending id order. The hot product rows are touched last, right before
 * COMMIT: their row locks are held as briefly as possible, in a fixed order.
 */
export async function checkout(
  trx: Trx,
  args: { userId: string; cartVersion: number | null; holdMinutes: number },
): Promise<CheckoutResult> {
  const cart = await lockCart(trx, args.userId);
  if (args.cartVersion !== null && args.cartVersion !== cart.version) {
    const prior = await trx('orders').where({ cart_id: cart.id, cart_version: args.cartVersion }).first<Order>();
    if (prior) return { kind: 'existing', order: prior, lines: await orderLines(trx, prior.id) };
    return { kind: 'stale-cart' };
  }

  // The cart is locked by the statement above, so this statement's snapshot sees its latest lines.
  // Nothing is written unless the cart has lines, every product is active and (as of this snapshot)
  // available; `cart` reports why not. The snapshot check only spares a sold-out checkout the writes:
  // the conditional UPDATEs below are what actually guarantee the stock.
  // Order number: 'L' + Taipei date + the global sequence (starts at 1001). Never lpad it to a fixed
  // width: lpad truncates, so 10000..10009 would all become 1000 and collide.
  const { rows } = await trx.raw<{
    rows: Array<Order & { lines: OrderLine[] | null; cart: Array<{ product_id: number; name: string; active: boolean; enough: boolean }> | null }>;
  }>(
    `WITH src AS (
       SELECT cl.product_id, cl.qty, p.sku, p.name, p.price, p.active, p.stock_on_hand - p.stock_reserved >= cl.qty AS enough
       FROM cart_lines cl JOIN products p ON p.id = cl.product_id
       WHERE cl.cart_id = ?
     ), ok AS (
       SELECT count(*) > 0 AND bool_and(active) AND bool_and(enough) AS ok, sum(price * qty)::int AS total, sum(qty)::int AS items FROM src
     ), o AS (
       INSERT INTO orders (order_no, line_user_id, status, total, item_count, hold_expires_at, cart_id, cart_version)
       SELECT 'L' || to_char(now() AT TIME ZONE 'Asia/Taipei', 'YYMMDD') || nextval('order_no_seq'),
              ?, 'pending_payment', ok.total, ok.items, now() + (? * interval '1 millisecond'), ?, ?
       FROM ok WHERE ok.ok
       RETURNING *
     ), l AS (
       INSERT INTO order_lines (order_id, product_id, sku, name, unit_price, qty, line_total)
       SELECT o.id, src.product_id, src.sku, src.name, src.price, src.qty, src.price * src.qty
       FROM o, src ORDER BY src.product_id
       RETURNING *
     ), r AS (
       INSERT INTO reservations (order_id, order_line_id, product_id, qty, status, expires_at)
       SELECT l.order_id, l.id, l.product_id, l.qty, 'held', o.hold_expires_at FROM l, o
     ), e AS (
       INSERT INTO order_events (order_id, from_status, to_status, reason, actor)
       SELECT o.id, NULL, 'pending_payment', 'checkout', 'shopper' FROM o
     ), d AS (
       DELETE FROM cart_lines WHERE cart_id = ? AND EXISTS (SELECT 1 FROM o)
     ), c AS (
       UPDATE carts SET version = ?, updated_at = now() WHERE id = ? AND EXISTS (SELECT 1 FROM o)
     )
     SELECT o.*,
            (SELECT json_agg(l ORDER BY l.id) FROM l) AS lines,
            (SELECT json_agg(json_build_object('product_id', product_id, 'name', name, 'active', active, 'enough', enough) ORDER BY product_id) FROM src) AS cart
     FROM (SELECT 1) AS one LEFT JOIN o ON true`,
    [cart.id, args.userId, Math.round(args.holdMinutes * 60_000), cart.id, cart.version, cart.id, cart.version + 1, cart.id],
  );
  const { lines, cart: cartLines, ...order } = rows[0]!;
  if (order.id === null || !lines) {
    if (!cartLines) {
      const pending = await trx('orders')
        .where({ line_user_id: args.userId, status: 'pending_payment' })
        .orderBy('id', 'desc')
        .first<Order>();
      return { kind: 'empty', pending: pending ?? null };
    }
    const inactive = cartLines.filter((l) => !l.active).map((l) => l.name);
    if (inactive.length) return { kind: 'inactive', names: inactive };
    throw new InsufficientStockError(cartLines.filter((l) => !l.enough).map((l) => l.product_id));
  }

  for (const [productId, qty] of sumByProduct(lines)) {
    const r = await trx.raw(
      'UPDATE products SET stock_reserved = stock_reserved + ? WHERE id = ? AND active AND stock_on_hand - stock_reserved >= ?',
      [qty, productId, qty],
    );
    if (r.rowCount !== 1) throw new InsufficientStockError([productId]);
  }
  return { kind: 'created', order, lines };
}

// ---------------------------------------------------------------------------------------------
// Release (expiry, cancel) and commit (payment)

async function releaseHeld(trx: Trx, orderId: number): Promise<number> {
  const released = await trx('reservations')
    .where({ order_id: orderId, status: 'held' })
    .update({ status: 'released', released_at: trx.fn.now() })
    .returning<Array<{ product_id: number; qty: number }>>(['product_id', 'qty']);
  for (const [productId, qty] of sumByProduct(released)) {
    await trx('products').where({ id: productId }).update({ stock_reserved: trx.raw('stock_reserved - ?', [qty]) });
  }
  return released.length;
}

async function commitHeld(trx: Trx, orderId: number): Promise<void> {
  const committed = await trx('reservations')
    .where({ order_id: orderId, status: 'held' })
    .update({ status: 'committed', committed_at: trx.fn.now() })
    .returning<Array<{ product_id: number; qty: number }>>(['product_id', 'qty']);
  for (const [productId, qty] of sumByProduct(committed)) {
    await trx('products')
      .where({ id: productId })
      .update({ stock_on_hand: trx.raw('stock_on_hand - ?', [qty]), stock_reserved: trx.raw('stock_reserved - ?', [qty]) });
  }
}

/** Expires a pending order whose hold has passed; releases its stock exactly once. */
export async function expireOrder(trx: Trx, orderId: number): Promise<Order | null> {
  const order = await lockOrder(trx, { id: orderId });
  if (!order || order.status !== 'pending_payment') return null;
  const now = await trx.raw<{ rows: Array<{ now: Date }> }>('SELECT now() AS now');
  if (order.hold_expires_at.getTime() > now.rows[0]!.now.getTime()) return null;
  await releaseHeld(trx, order.id);
  await transition(trx, order, 'expired', 'hold expired', 'system', { closed_at: trx.fn.now() });
  return { ...order, status: 'expired' };
}

export type CancelResult = { kind: 'cancelled'; order: Order } | { kind: 'not-found' } | { kind: 'not-allowed'; order: Order };

/** Cancels the shopper's own unpaid order and releases its stock. */
export async function cancelOrder(trx: Trx, userId: string, orderNo: string, actor = 'shopper'): Promise<CancelResult> {
  const order = await lockOrder(trx, { order_no: orderNo });
  if (!order || (actor === 'shopper' && order.line_user_id !== userId)) return { kind: 'not-found' };
  if (order.status !== 'pending_payment') return { kind: 'not-allowed', order };
  await releaseHeld(trx, order.id);
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
    await commitHeld(trx, order.id);
    await transition(trx, order, 'paid', 'payment confirmed', 'bank', patch, details);
    return { kind: 'paid', order: { ...order, status: 'paid', paid_amount: args.amount, payment_method: args.method }, late: false };
  }

  // Late payment: take the stock again if it is still there, all lines or none (savepoint).
  const lines = await orderLines(trx, order.id);
  let reReserved = true;
  try {
    await trx.transaction(async (sp) => {
      for (const [productId, qty] of sumByProduct(lines)) {
        const n = await sp('products')
          .where({ id: productId })
          .andWhereRaw('stock_on_hand - stock_reserved >= ?', [qty])
          .update({ stock_on_hand: sp.raw('stock_on_hand - ?', [qty]) });
        if (n !== 1) throw new InsufficientStockError([productId]);
      }
      await sp('reservations').insert(
        lines.map((l) => ({
          order_id: order.id,
          order_line_id: l.id,
          product_id: l.product_id,
          qty: l.qty,
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
