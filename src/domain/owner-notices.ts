import type { Trx } from '../data/db';
import type { ClosedBy, Notifier } from './notices';
import type { OrderListener } from './order-events';
import { Order, orderItems } from './orders';

/**
 * The owner hears of every new order and of every unpaid order that closed (expired, or cancelled
 * by whom), in the transaction of the change. Payments and anomalies are told where they are
 * confirmed (payments/bank-facts.ts); low stock by the stock watch (stock-alerts.ts).
 *
 * Register it after listeners that change a new order's amounts (member discounts): it reads the
 * order back, so its notice shows the total the shopper was given.
 */
export function ownerNoticesListener(notifier: Notifier): OrderListener {
  return {
    async created(trx, after, e) {
      const order = (await trx('orders').where({ id: e.order.id }).first<Order>())!;
      await notifier.owners(trx, after, `order:${order.id}:created:owner`, {
        type: 'new-order',
        order,
        items: await orderItems(trx, order.id),
        shopperName: await displayName(trx, order.line_user_id),
      });
    },
    async closed(trx, after, e) {
      await notifier.owners(trx, after, `order:${e.order.id}:closed:owner`, {
        type: 'order-closed',
        order: e.order,
        to: e.to,
        by: await closedBy(trx, e.actor, e.order),
      });
    },
  };
}

async function displayName(trx: Trx, userId: string): Promise<string | null> {
  const u = await trx('line_users').where({ user_id: userId }).first('display_name');
  return u?.display_name ?? null;
}

/** Order events name their actor `shopper`, `owner:<userId>` or `system` (domain/audit.ts actorName). */
async function closedBy(trx: Trx, actor: string, order: Order): Promise<ClosedBy> {
  if (actor === 'shopper') return { kind: 'shopper', name: await displayName(trx, order.line_user_id) };
  if (actor.startsWith('owner:')) return { kind: 'owner', name: await displayName(trx, actor.slice('owner:'.length)) };
  return { kind: 'system', name: null };
}
