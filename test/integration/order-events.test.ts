import { checkInvariants } from '../../src/domain/invariants';
import { setAdjustment } from '../../src/domain/order-adjustments';
import { payBySinopacAtm, placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

let shop: TestShop;

/** What the listener saw, written in the transaction of the change (so a rolled-back try leaves nothing). */
const seen = (orderId: number) => shop.c.db('listener_log').where({ order_id: orderId }).orderBy('id').pluck('what');

beforeAll(async () => {
  shop = await startShop({ label: 'order_events', sinopac: true, workers: false, env: { HOLD_MINUTES_DEFAULT: String(2 / 60) } });
  await shop.c.db.schema.createTable('listener_log', (t) => {
    t.increments('id');
    t.bigInteger('order_id').notNullable();
    t.text('what').notNullable();
  });
  shop.c.orderEvents.listen({
    async created(trx, _after, e) {
      await trx('listener_log').insert({ order_id: e.order.id, what: `created ${e.items.lines.length}` });
      // A listener may change the new order's amounts; the shopper's answer shows the result.
      await setAdjustment(trx, e.order.id, { kind: 'tier-discount', label: '測試折扣', amount: -10 });
    },
    async paid(trx, _after, e) {
      await trx('listener_log').insert({ order_id: e.order.id, what: `paid ${e.method}${e.late ? ' late' : ''}` });
    },
    async closed(trx, _after, e) {
      await trx('listener_log').insert({ order_id: e.order.id, what: `${e.to} by ${e.actor}` });
    },
  });
  await shop.startWorkers();
});
afterAll(async () => {
  await shop?.close();
});

describe('order events reach listeners once, in the transaction of the change', () => {
  it('created once per order (a second tap on checkout makes nothing new), and the answer shows what the listener changed', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-002', 1);
    await settled(shop, await shop.say(user, '結帳'));
    expect(await seen(order.id)).toEqual(['created 1']);
    expect(order.total).toBe(520 - 10);
    expect(JSON.stringify(shop.line.deliveredTo(user).at(-2)!.messages)).toContain('測試折扣');
  });

  it('paid once even when the bank repeats its notification', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-002', 1);
    await payBySinopacAtm(shop, user, order);
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id, status: 'paid' }).first();
    await Promise.all(Array.from({ length: 3 }, () => shop.sinopac!.notifyAgain(attempt.trade_no).delivered));
    await shop.c.payments.reconcileAttempt(attempt.id);
    expect(await seen(order.id)).toEqual(['created 1', 'paid sinopac-atm']);
  });

  it('closed once when the shopper cancels (a second cancel is refused), and once when a hold expires', async () => {
    const user = newUserId();
    const cancelled = await placeOrder(shop, user, 'SNK-001', 1);
    await settled(shop, await shop.say(user, `取消 ${cancelled.order_no}`));
    await settled(shop, await shop.say(user, `取消 ${cancelled.order_no}`));
    expect(await seen(cancelled.id)).toEqual(['created 1', 'cancelled by shopper']);

    const other = newUserId();
    const expiring = await placeOrder(shop, other, 'SNK-001', 1);
    await waitFor(async () => (await seen(expiring.id)).length === 2, 'the hold to expire', 20_000);
    expect(await seen(expiring.id)).toEqual(['created 1', 'expired by system']);
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
