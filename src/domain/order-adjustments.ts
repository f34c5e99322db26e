import type { Db, Trx } from '../data/db';
import { lockOrder, Order } from './orders';

/** What an order adds to or takes off its goods. Fees are positive, discounts negative. */
export type AdjustmentKind = 'shipping' | 'tier-discount' | 'points' | (string & {});

export interface OrderAdjustment {
  id: number;
  order_id: number;
  kind: AdjustmentKind;
  label: string;
  amount: number;
  details: Record<string, unknown> | null;
}

export async function orderAdjustments(db: Db | Trx, orderId: number): Promise<OrderAdjustment[]> {
  return db('order_adjustments').where({ order_id: orderId }).orderBy('id').select<OrderAdjustment[]>('id', 'order_id', 'kind', 'label', 'amount', 'details');
}

export type AdjustResult =
  | { kind: 'ok'; order: Order; adjustments: OrderAdjustment[] }
  | { kind: 'not-found' }
  /** Only an unpaid order's amounts may change. */
  | { kind: 'not-pending'; order: Order }
  /** A payment method was chosen: the bank holds a trade for the current total, which must not change under it. */
  | { kind: 'payment-started'; order: Order }
  /** The total would not be positive (discounts larger than goods and fees). */
  | { kind: 'not-positive'; order: Order };

/**
 * One adjustment set (or, with amount null or 0, removed) and the total recomputed as Σ lines +
 * Σ adjustments, with the order row locked. Refused once
 * a payment attempt exists: the bank was asked for the old total, and money for it must still
 * match the order.
 */
async function applyAdjustment(
  trx: Trx,
  orderId: number,
  a: { kind: AdjustmentKind; label: string; amount: number | null; details?: Record<string, unknown> },
): Promise<AdjustResult> {
  if (a.amount !== null && !Number.isInteger(a.amount)) throw new Error(`adjustment ${a.kind} must be integer TWD, got ${a.amount}`);
  const order = await lockOrder(trx, { id: orderId });
  if (!order) return { kind: 'not-found' };
  if (order.status !== 'pending_payment') return { kind: 'not-pending', order };
  const started = await trx('payment_attempts').where({ order_id: orderId }).whereIn('status', ['creating', 'pending', 'paid']).first('id');
  if (started) return { kind: 'payment-started', order };
  if (a.amount === null || a.amount === 0) {
    await trx('order_adjustments').where({ order_id: orderId, kind: a.kind }).delete();
  } else {
    await trx('order_adjustments')
      .insert({ order_id: orderId, kind: a.kind, label: a.label, amount: a.amount, details: a.details ? JSON.stringify(a.details) : null })
      .onConflict(['order_id', 'kind'])
      .merge({ label: a.label, amount: a.amount, details: a.details ? JSON.stringify(a.details) : null, updated_at: trx.fn.now() });
  }
  const { rows } = await trx.raw<{ rows: Array<{ total: number }> }>(
    `SELECT (SELECT coalesce(sum(line_total), 0) FROM order_lines WHERE order_id = :id)
          + (SELECT coalesce(sum(amount), 0) FROM order_adjustments WHERE order_id = :id) AS total`,
    { id: orderId },
  );
  const total = Number(rows[0]!.total);
  if (total <= 0) throw new NonPositiveTotal(order);
  await trx('orders').where({ id: orderId }).update({ total, updated_at: trx.fn.now() });
  return { kind: 'ok', order: { ...order, total }, adjustments: await orderAdjustments(trx, orderId) };
}

class NonPositiveTotal extends Error {
  constructor(readonly order: Order) {
    super('order total would not be positive');
  }
}

/**
 * Sets (or removes) one adjustment of an unpaid order and recomputes its total, in a savepoint of
 * the caller's transaction: a change that would leave the total at 0 or below is undone and
 * reported, and the caller's transaction stays usable.
 */
export async function setAdjustment(trx: Trx, orderId: number, a: Parameters<typeof applyAdjustment>[2]): Promise<AdjustResult> {
  try {
    return await trx.transaction((sp) => applyAdjustment(sp, orderId, a));
  } catch (err) {
    if (err instanceof NonPositiveTotal) return { kind: 'not-positive', order: err.order };
    throw err;
  }
}
