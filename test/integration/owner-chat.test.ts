import { checkInvariants } from '../../src/domain/invariants';
import { T } from '../../src/texts';
import { paidOrder, placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestShop } from '../helpers/shop';
import { stockOf } from '../helpers/stock';

const owner = newUserId();
let shop: TestShop;

beforeAll(async () => {
  shop = await startShop({ label: 'owner_chat', sinopac: true, owners: [owner] });
});
afterAll(async () => {
  await shop?.close();
});

const say = async (user: string, text: string) => settled(shop, await shop.say(user, text));
const lastText = (user: string) => shop.line.textsTo(user).at(-1);
const auditOf = (action: string) => shop.c.db('audit_log').where({ action }).orderBy('id');

describe('owner commands in the chat', () => {
  it('出貨 with a tracking number ships a paid order, pushes the shopper once and records who did it', async () => {
    const user = newUserId();
    const order = await paidOrder(shop, user);
    await say(owner, `出貨 ${order.order_no} TW123456789`);
    await say(owner, `出貨 ${order.order_no} TW123456789`);

    const row = await shop.c.db('orders').where({ id: order.id }).first();
    expect(row).toMatchObject({ status: 'shipped', tracking_no: 'TW123456789' });
    expect(shop.line.textsTo(user).filter((t) => t === T.shippedShopper(order.order_no, 'TW123456789'))).toHaveLength(1);
    expect(shop.line.textsTo(owner)).toContain(T.ownerShipped(order.order_no));
    expect(lastText(owner)).toBe(T.ownerStatusConflict(order.order_no, '已出貨'));
    const audits = await auditOf('order.ship').where({ target_id: order.order_no });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: `owner:${owner}`, source: 'line', before: { status: 'paid' }, after: { status: 'shipped', tracking: 'TW123456789' } });
    const events = await shop.c.db('order_events').where({ order_id: order.id, to_status: 'shipped' });
    expect(events).toHaveLength(1);
    expect(events[0].actor).toBe(`owner:${owner}`);

    await say(owner, `完成 ${order.order_no}`);
    expect(await shop.c.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'completed' });
    expect(shop.line.textsTo(user).filter((t) => t === T.completedShopper(order.order_no))).toHaveLength(1);
    expect(await auditOf('order.complete').where({ target_id: order.order_no })).toHaveLength(1);
  });

  it('出貨 of an unpaid order is refused and changes nothing', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    await say(owner, `出貨 ${order.order_no}`);
    expect(lastText(owner)).toBe(T.ownerStatusConflict(order.order_no, '待付款'));
    expect(await shop.c.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'pending_payment', tracking_no: null });
    expect(await auditOf('order.ship').where({ target_id: order.order_no })).toHaveLength(0);
  });

  it('庫存 <SKU> <qty> sets stock with its reason in the audit log, and never below what unpaid orders hold', async () => {
    const user = newUserId();
    await placeOrder(shop, user, 'GDS-001', 2);
    const before = await stockOf(shop.c.db, 'GDS-001');
    await say(owner, '庫存 gds-001 1');
    expect(lastText(owner)).toBe(T.ownerStockBelowReserved('GDS-001', 2));
    expect(await stockOf(shop.c.db, 'GDS-001')).toEqual(before);

    await say(owner, '庫存 GDS-001 12');
    expect(lastText(owner)).toBe(T.ownerStockSet('GDS-001', 12, 10));
    expect(await stockOf(shop.c.db, 'GDS-001')).toEqual({ stock_on_hand: 12, stock_reserved: 2 });
    const [a] = await auditOf('stock.set');
    expect(a).toMatchObject({
      actor: `owner:${owner}`,
      source: 'line',
      target_type: 'product',
      reason: T.stockReasonChat,
      before: { sku: 'GDS-001', onHand: before.stock_on_hand, reserved: 2 },
      after: { sku: 'GDS-001', onHand: 12, reserved: 2 },
    });
  });

  it('a shopper who sends owner commands is refused, and nothing is recorded', async () => {
    const user = newUserId();
    const order = await paidOrder(shop, user);
    const audits = await shop.c.db('audit_log').count<{ n: number }[]>({ n: '*' });
    for (const cmd of [`出貨 ${order.order_no}`, '庫存 TEA-001 0', '今日訂單', `退款 ${order.order_no}`]) {
      await say(user, cmd);
      expect(lastText(user)).toBe(T.ownerOnly);
    }
    expect(await shop.c.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'paid' });
    expect(await shop.c.db('audit_log').count<{ n: number }[]>({ n: '*' })).toEqual(audits);
  });

  it('今日訂單 lists today\'s orders and what was paid', async () => {
    await say(owner, '今日訂單');
    const orders = await shop.c.db('orders').orderBy('id');
    const paid = orders.filter((o) => ['paid', 'shipped', 'completed'].includes(o.status)).reduce((s, o) => s + o.total, 0);
    expect(lastText(owner)!.split('\n')[0]).toBe(T.ownerTodayTitle(orders.length, paid));
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
