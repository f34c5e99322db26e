import type { UnitOfWork } from '../data/unit-of-work';
import type { Notifier } from './notices';
import type { OrderEvents } from './order-events';
import { expireOrder } from './orders';

/** Expires one order if its hold has passed: stock released once, the shopper told after commit. */
export async function expireOrderAndNotify(uow: UnitOfWork, notifier: Notifier, events: OrderEvents, orderId: number): Promise<boolean> {
  const expired = await uow.run(async (trx, after) => {
    const o = await expireOrder(trx, orderId);
    if (!o) return null;
    await notifier.shopper(trx, after, o.line_user_id, `order:${o.id}:expired`, { type: 'expired', orderNo: o.order_no });
    await events.closed(trx, after, { order: o, to: 'expired', actor: 'system' });
    return o;
  });
  return expired !== null;
}
