import type { Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { settled, TestShop, waitFor } from './shop';

/** Puts qty of a SKU in the shopper's cart and checks out through the chat; returns the new order. */
export async function placeOrder(shop: TestShop, user: string, sku = 'TEA-001', qty = 1): Promise<Order> {
  await settled(shop, await shop.say(user, `cart ${sku} ${qty}`));
  await settled(shop, await shop.say(user, '結帳'));
  const order = await shop.c.db('orders').where({ line_user_id: user }).orderBy('id', 'desc').first<Order>();
  if (!order || order.status !== 'pending_payment') throw new Error(`checkout of ${sku} × ${qty} made no pending order`);
  return order;
}

/** Taps a payment method's button; returns the attempt the tap created (undefined if none). */
export async function choosePayment(shop: TestShop, user: string, order: Pick<Order, 'order_no'>, method: string): Promise<PaymentAttempt | undefined> {
  const eventId = await shop.tap(user, `action=pay&o=${order.order_no}&m=${method}`);
  await settled(shop, eventId);
  return shop.c.db('payment_attempts').where({ request_key: eventId }).first<PaymentAttempt>();
}

/**
 * Pays an order the way a shopper does with SinoPac ATM (needs a shop started with `sinopac: true`
 * and workers): picks the method, transfers in the bank's sandbox, waits until the order is paid
 * and its pushes are out.
 */
export async function payBySinopacAtm(shop: TestShop, user: string, order: Pick<Order, 'id' | 'order_no'>): Promise<Order> {
  const attempt = await choosePayment(shop, user, order, 'sinopac-atm');
  if (!attempt) throw new Error('no SinoPac ATM attempt was created');
  const paid = shop.sinopac!.payAtm(attempt.trade_no);
  if (!(await paid.delivered)) throw new Error('the SinoPac sandbox could not deliver its notification');
  return waitFor(async () => {
    const o = await shop.c.db('orders').where({ id: order.id }).first<Order>();
    if (o?.status !== 'paid') return null;
    const pending = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(pending[0]!.n) === 0 ? o : null;
  }, `order ${order.order_no} paid`);
}

/** Placed and paid: a shopper's order ready to ship. */
export async function paidOrder(shop: TestShop, user: string, sku = 'TEA-001', qty = 1): Promise<Order> {
  return payBySinopacAtm(shop, user, await placeOrder(shop, user, sku, qty));
}
