import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import type { Queues } from '../jobs/queues';
import { CartView, getCart } from './cart';
import type { OrderEvents } from './order-events';
import type { PaymentReminders } from './reminders';
import { cancelOrder, checkout, CheckoutResult, InsufficientStockError, Order, orderItems } from './orders';

export type PlaceOrderResult = CheckoutResult | { kind: 'insufficient'; cart: CartView };

export type ShopperCancelResult = { kind: 'cancelled'; order: Order } | { kind: 'not-found' } | { kind: 'not-allowed'; order: Order };

/** The shopper's own use cases on orders: checkout and cancel. */
export class Shopping {
  constructor(
    private readonly events: OrderEvents,
    private readonly queues: Queues,
    private readonly holdMinutes: number,
    private readonly reminders: PaymentReminders,
  ) {}

  /**
   * Turns the shopper's cart into an unpaid order holding its stock (in the caller's transaction),
   * tells the order's listeners, and schedules the hold's expiry and payment reminder after commit.
   */
  async placeOrder(trx: Trx, after: AfterCommit, args: { userId: string; cartVersion: number | null }): Promise<PlaceOrderResult> {
    try {
      // A savepoint: a checkout refused by its availability check rolls back its own writes but not
      // the caller's (the reply written after it). Units taken by a rival between that check and our
      // COMMIT make the COMMIT fail instead; withTransaction then runs the whole event again, and that
      // run's check refuses here.
      const r = await trx.transaction((sp) => checkout(sp, { userId: args.userId, cartVersion: args.cartVersion, holdMinutes: this.holdMinutes }));
      if (r.kind !== 'created') return r;
      await this.events.created(trx, after, { order: r.order, items: r.items });
      after.tasks.push(() => this.queues.scheduleExpiry(r.order.id, r.order.hold_expires_at));
      this.reminders.schedule(after, r.order);
      // Listeners may have changed its amounts (a member discount): answer with the order as it is now.
      const order = (await trx('orders').where({ id: r.order.id }).first<Order>())!;
      return { kind: 'created', order, items: await orderItems(trx, order.id) };
    } catch (err) {
      if (!(err instanceof InsufficientStockError)) throw err;
      return { kind: 'insufficient', cart: await getCart(trx, args.userId) };
    }
  }

  async cancel(trx: Trx, after: AfterCommit, args: { userId: string; orderNo: string }): Promise<ShopperCancelResult> {
    const r = await cancelOrder(trx, args.userId, args.orderNo);
    if (r.kind === 'cancelled') await this.events.closed(trx, after, { order: r.order, to: 'cancelled', actor: 'shopper' });
    return r;
  }
}
