import type { DeliveryDetails } from '../../src/domain/delivery';
import { lockOrder, type Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { settled, TestShop, waitFor } from './shop';

/** A recipient every test may use for home delivery. */
export const TEST_RECIPIENT = { name: '王小美', phone: '0912345678', zip: '110', address: '台北市信義區市府路1號' } as const;

/**
 * Completes an order's delivery details (home delivery to TEST_RECIPIENT) through the same use case
 * the delivery page ends in (DeliveryCheckout.complete: details, fee adjustment, profile,
 * delivery_ready_at), without the page or a push: for tests whose subject is what comes after.
 */
export async function completeDelivery(shop: Pick<TestShop, 'c'>, order: Pick<Order, 'id'>, details: Partial<DeliveryDetails> = {}): Promise<Order> {
  return shop.c.uow.run(async (trx, after) => {
    const locked = (await lockOrder(trx, { id: order.id }))!;
    return shop.c.deliveryCheckout.complete(
      trx,
      after,
      locked,
      {
        method: 'home', subType: null, recipientName: TEST_RECIPIENT.name, recipientPhone: TEST_RECIPIENT.phone, recipientZip: TEST_RECIPIENT.zip,
        recipientAddress: TEST_RECIPIENT.address, storeId: null, storeName: null, storeAddress: null, storeOutside: null, ...details,
      },
      { push: false },
    );
  });
}

/**
 * Puts qty of a SKU in the shopper's cart and checks out through the chat; returns the new order,
 * its delivery details completed (home delivery; `delivery: false` leaves them missing).
 */
export async function placeOrder(shop: TestShop, user: string, sku = 'TEA-001', qty = 1, opts: { delivery?: boolean } = {}): Promise<Order> {
  await settled(shop, await shop.say(user, `cart ${sku} ${qty}`));
  await settled(shop, await shop.say(user, '結帳'));
  const order = await shop.c.db('orders').where({ line_user_id: user }).orderBy('id', 'desc').first<Order>();
  if (!order || order.status !== 'pending_payment') throw new Error(`checkout of ${sku} × ${qty} made no pending order`);
  if (opts.delivery === false || order.delivery_ready_at) return order;
  return completeDelivery(shop, order);
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

const unescapeHtml = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/**
 * Pays an order by card through ECPay the way a shopper does (needs `ecpay: true` and workers):
 * picks the method, opens the checkout page, posts its form to the sandbox cashier, pays there and
 * waits until the order is paid and its pushes are out.
 */
export async function payByEcpayCard(shop: TestShop, user: string, order: Pick<Order, 'id' | 'order_no'>): Promise<Order> {
  const attempt = await choosePayment(shop, user, order, 'ecpay-credit');
  if (!attempt) throw new Error('no ECPay card attempt was created');
  const page = await (await fetch(`${shop.url}/payments/ecpay/checkout/${attempt.public_ref}`)).text();
  const action = /<form id="ecpay-checkout" method="post" action="([^"]*)"/.exec(page);
  if (!action) throw new Error('no checkout form on the page');
  const fields: Record<string, string> = {};
  for (const m of page.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
  const posted = await fetch(unescapeHtml(action[1]!), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  if (posted.status !== 200) throw new Error(`the sandbox cashier answered ${posted.status}`);
  await shop.ecpay!.pay(fields.MerchantTradeNo!);
  return waitFor(async () => {
    const o = await shop.c.db('orders').where({ id: order.id }).first<Order>();
    if (o?.status !== 'paid') return null;
    const pending = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(pending[0]!.n) === 0 ? o : null;
  }, `order ${order.order_no} paid by card`);
}
