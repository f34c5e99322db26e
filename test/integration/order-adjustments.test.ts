import { checkInvariants } from '../../src/domain/invariants';
import { orderAdjustments, setAdjustment } from '../../src/domain/order-adjustments';
import type { Order } from '../../src/domain/orders';
import { T } from '../../src/texts';
import { choosePayment, placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestShop } from '../helpers/shop';

let shop: TestShop;
beforeAll(async () => {
  shop = await startShop({ label: 'order_adjustments', sinopac: true });
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;
const orderRow = (id: number) => db()('orders').where({ id }).first<Order>();

describe('order adjustments (fees and discounts)', () => {
  it('a fee and a discount change the total to lines + adjustments, one per kind, and the order detail shows them', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-001', 2); // 2 × 680
    const fee = await db().transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '超商取貨運費', amount: 60 }));
    expect(fee.kind === 'ok' && fee.order.total).toBe(1420);
    const again = await db().transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '宅配運費', amount: 100 }));
    expect(again.kind === 'ok' && again.order.total).toBe(1460);
    await db().transaction((trx) => setAdjustment(trx, order.id, { kind: 'tier-discount', label: '銀卡 95 折', amount: -68 }));
    expect((await orderRow(order.id))!.total).toBe(1360 + 100 - 68);
    expect((await orderAdjustments(db(), order.id)).map((a) => [a.kind, a.label, a.amount])).toEqual([
      ['shipping', '宅配運費', 100],
      ['tier-discount', '銀卡 95 折', -68],
    ]);

    await settled(shop, await shop.say(user, `訂單 ${order.order_no}`));
    const detail = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(detail).toContain('宅配運費');
    expect(detail).toContain('−NT$68');
    expect(detail).toContain('NT$1,392');

    await db().transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '免運', amount: null }));
    expect((await orderRow(order.id))!.total).toBe(1360 - 68);
    expect(await checkInvariants(db())).toEqual([]);
  });

  it('a discount that would leave nothing to pay is refused and changes nothing, and the transaction goes on', async () => {
    const order = await placeOrder(shop, newUserId(), 'SNK-002', 1); // 320
    const r = await db().transaction(async (trx) => {
      const out = await setAdjustment(trx, order.id, { kind: 'points', label: '點數折抵', amount: -320 });
      await trx('orders').where({ id: order.id }).update({ updated_at: trx.fn.now() }); // still usable
      return out;
    });
    expect(r.kind).toBe('not-positive');
    expect((await orderRow(order.id))!.total).toBe(320);
    expect(await orderAdjustments(db(), order.id)).toEqual([]);
  });

  it('once a payment method was chosen the amounts are frozen: the bank holds a trade for the total', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'SNK-001', 1);
    const attempt = await choosePayment(shop, user, order, 'sinopac-atm');
    expect(attempt?.amount).toBe(450);
    const r = await db().transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '宅配運費', amount: 100 }));
    expect(r.kind).toBe('payment-started');
    expect((await orderRow(order.id))!.total).toBe(450);
  });

  it('a paid or expired order cannot change', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'SNK-001', 1);
    await settled(shop, await shop.say(user, `取消 ${order.order_no}`));
    expect(shop.line.textsTo(user).at(-1)).toBe(T.cancelDone(order.order_no));
    const r = await db().transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '宅配運費', amount: 100 }));
    expect(r.kind).toBe('not-pending');
  });

  it('the invariants check catches a total that does not add up', async () => {
    const order = await placeOrder(shop, newUserId(), 'SNK-003', 1);
    await db()('orders').where({ id: order.id }).update({ total: order.total + 1 });
    expect((await checkInvariants(db())).some((l) => l.startsWith(`order ${order.order_no}: total`))).toBe(true);
    await db()('orders').where({ id: order.id }).update({ total: order.total });
    expect(await checkInvariants(db())).toEqual([]);
  });
});
