import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import type { Order, OrderItems } from './orders';

/**
 * What happens to an order, told to whoever cares (member points, owner notices...) inside the
 * transaction of the change: a listener's writes commit or roll back with it, and its effects run
 * after commit like the change's own. Listeners must be idempotent under the order's state guard:
 * each event is emitted once per committed transition.
 */
export interface OrderListener {
  /** A new unpaid order, in the checkout's transaction. A listener may adjust its amounts (setAdjustment). */
  created?(trx: Trx, after: AfterCommit, e: { order: Order; items: OrderItems }): Promise<void>;
  /** Money received: paid (stock committed), or paid_no_stock (a late payment the stock no longer covers). */
  paid?(trx: Trx, after: AfterCommit, e: { order: Order; method: string; late: boolean; noStock: boolean }): Promise<void>;
  /** An unpaid order closed: its hold passed (expired) or someone cancelled it; its stock was released. */
  closed?(trx: Trx, after: AfterCommit, e: { order: Order; to: 'expired' | 'cancelled'; actor: string }): Promise<void>;
  /** A refund went through at the bank (refundedTotal includes it). */
  refunded?(trx: Trx, after: AfterCommit, e: { order: Order; refundId: number; amount: number; refundedTotal: number }): Promise<void>;
}

export class OrderEvents {
  private readonly listeners: OrderListener[] = [];

  /** Listeners run in the order they were added. */
  listen(l: OrderListener): void {
    this.listeners.push(l);
  }

  async created(trx: Trx, after: AfterCommit, e: Parameters<NonNullable<OrderListener['created']>>[2]): Promise<void> {
    for (const l of this.listeners) await l.created?.(trx, after, e);
  }

  async paid(trx: Trx, after: AfterCommit, e: Parameters<NonNullable<OrderListener['paid']>>[2]): Promise<void> {
    for (const l of this.listeners) await l.paid?.(trx, after, e);
  }

  async closed(trx: Trx, after: AfterCommit, e: Parameters<NonNullable<OrderListener['closed']>>[2]): Promise<void> {
    for (const l of this.listeners) await l.closed?.(trx, after, e);
  }

  async refunded(trx: Trx, after: AfterCommit, e: Parameters<NonNullable<OrderListener['refunded']>>[2]): Promise<void> {
    for (const l of this.listeners) await l.refunded?.(trx, after, e);
  }
}
