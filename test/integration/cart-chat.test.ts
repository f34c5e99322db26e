/**
 * Cart, checkout, orders and cancel through the real webhook: LINE events in, replies and pushes out
 * (LINE API double), with the worker running on its own database and queue prefix.
 */
import { checkInvariants } from '../../src/domain/invariants';
import type { Delivery } from '../../src/sandbox/line-api-double';
import { DELIVERY_TEXT, T } from '../../src/texts';
import { count, newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';
import { allStock, setStock, stockOf as stockTotals } from '../helpers/stock';

/** Full-width form of an ASCII string (digits, letters, + and -, space → ideographic space). */
const fullWidth = (s: string) => [...s].map((ch) => (ch === ' ' ? '\u3000' : String.fromCharCode(ch.charCodeAt(0) + 0xfee0))).join('');

/** Every postback `data` in a list of messages (Flex buttons), in document order. */
function postbacks(messages: unknown[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.type === 'postback' && typeof o.data === 'string') out.push(o.data);
      Object.values(o).forEach(walk);
    }
  };
  walk(messages);
  return out;
}

interface Answer {
  texts: string[];
  json: string;
  postbacks: string[];
}

function answer(deliveries: Delivery[]): Answer {
  const messages = deliveries.flatMap((d) => d.messages);
  const texts = messages.map((m) => {
    const o = m as { type: string; text?: string; altText?: string };
    return o.type === 'text' ? o.text! : o.altText!;
  });
  return { texts, json: JSON.stringify(messages), postbacks: postbacks(messages) };
}

function setup(label: string, env: Record<string, string> = {}) {
  const ctx = {} as { shop: TestShop; ids: Record<string, number> };
  beforeAll(async () => {
    ctx.shop = await startShop({ label, env });
    const rows = await ctx.shop.c.db('products').select('id', 'sku');
    ctx.ids = Object.fromEntries(rows.map((r) => [r.sku, r.id]));
  });
  afterAll(async () => {
    // Whatever happened in this shop, stock and orders are consistent at the end.
    expect(await checkInvariants(ctx.shop.c.db)).toEqual([]);
    await ctx.shop.close();
  });
  return ctx;
}

describe('cart and checkout in chat', () => {
  const ctx = setup('cart_chat');
  const db = () => ctx.shop.c.db;

  async function send(user: string, go: () => Promise<string>): Promise<Answer> {
    const before = ctx.shop.line.deliveredTo(user).length;
    const id = await go();
    await settled(ctx.shop, id);
    return answer(ctx.shop.line.deliveredTo(user).slice(before));
  }
  const say = (user: string, text: string) => send(user, () => ctx.shop.say(user, text));
  const tap = (user: string, data: string) => send(user, () => ctx.shop.tap(user, data));

  async function cartOf(user: string): Promise<Record<string, number>> {
    const rows = await db()('cart_lines as cl').join('carts as c', 'c.id', 'cl.cart_id').join('products as p', 'p.id', 'cl.product_id')
      .where('c.line_user_id', user).select('p.sku', 'cl.qty');
    return Object.fromEntries(rows.map((r) => [r.sku, r.qty]));
  }

  /** Everything a cart command could change: carts (with versions), lines, stock, orders. */
  async function shopState() {
    return {
      carts: await db()('carts').orderBy('id').select('id', 'line_user_id', 'version'),
      lines: await db()('cart_lines').orderBy(['cart_id', 'product_id']).select('cart_id', 'product_id', 'qty'),
      stock: await allStock(db()),
      active: await db()('products').orderBy('id').select('id', 'active'),
      orders: await db()('orders').orderBy('id').select('id', 'status'),
      reservations: await db()('reservations').orderBy('id').select('id', 'status'),
    };
  }

  const stockOf = (sku: string) => stockTotals(db(), sku);

  test('the catalog offers add-to-cart postbacks; add, +, − and − to zero work on the cart', async () => {
    const user = newUserId();
    const menu = await say(user, '商品');
    expect(menu.texts[0]).toMatch(/商品目錄/);
    const addTea = `action=add&p=${ctx.ids['TEA-001']}`;
    expect(menu.postbacks).toContain(addTea);
    // The sold-out product has no add button.
    expect(menu.postbacks).not.toContain(`action=add&p=${ctx.ids['GDS-004']}`);

    const added = await tap(user, addTea);
    expect(added.texts[0]).toBe(T.cartUpdated('阿里山高山烏龍茶（150g）', 1));
    expect(added.texts[1]).toBe(T.cartAlt(1, 680));
    expect(added.postbacks).toEqual(expect.arrayContaining([`action=inc&p=${ctx.ids['TEA-001']}`, `action=dec&p=${ctx.ids['TEA-001']}`]));
    expect(await cartOf(user)).toEqual({ 'TEA-001': 1 });

    const inc = await tap(user, `action=inc&p=${ctx.ids['TEA-001']}`);
    expect(inc.texts).toEqual([T.cartAlt(2, 1360)]);
    await tap(user, `action=inc&p=${ctx.ids['TEA-001']}`);
    expect(await cartOf(user)).toEqual({ 'TEA-001': 3 });
    const dec = await tap(user, `action=dec&p=${ctx.ids['TEA-001']}`);
    expect(dec.texts).toEqual([T.cartAlt(2, 1360)]);
    await tap(user, `action=dec&p=${ctx.ids['TEA-001']}`);
    const last = await tap(user, `action=dec&p=${ctx.ids['TEA-001']}`);
    expect(last.texts).toEqual([T.cartEmpty]);
    expect(await cartOf(user)).toEqual({});
  });

  test('cart <id|SKU> <qty|+n|-n> with full-width text; 0 removes; SKU is case-insensitive', async () => {
    const user = newUserId();
    const id = ctx.ids['SNK-001']!;
    const a = await say(user, fullWidth(`cart ${id} +2`)); // ｃａｒｔ　４　＋２
    expect(a.texts[0]).toBe(T.cartUpdated('鳳梨酥（12 入）', 2));
    expect(await cartOf(user)).toEqual({ 'SNK-001': 2 });
    await say(user, `CART ${id} ${fullWidth('+3')}`);
    expect(await cartOf(user)).toEqual({ 'SNK-001': 5 });
    await say(user, fullWidth(`cart ${id} -1`));
    expect(await cartOf(user)).toEqual({ 'SNK-001': 4 });
    await say(user, 'cart tea-002 ２');
    expect(await cartOf(user)).toEqual({ 'SNK-001': 4, 'TEA-002': 2 });
    const cart = await say(user, '購物車');
    expect(cart.texts).toEqual([T.cartAlt(6, 4 * 450 + 2 * 520)]);
    const removed = await say(user, `cart ${fullWidth(String(id))} 0`);
    expect(removed.texts[0]).toBe(T.cartUpdated('鳳梨酥（12 入）', 0));
    expect(await cartOf(user)).toEqual({ 'TEA-002': 2 });
    // Decrementing past zero removes the line.
    await say(user, 'cart TEA-002 -5');
    expect(await cartOf(user)).toEqual({});
  });

  test('more than is available is refused, naming what is left; a sold-out product says so', async () => {
    const user = newUserId();
    await say(user, 'cart GDS-003 2'); // 3 on hand
    const before = await shopState();
    const over = await say(user, 'cart GDS-003 5');
    expect(over.texts).toEqual(['「陶瓷茶杯組（4 入）」庫存不足，目前只剩 3 件。']);
    const plus = await say(user, 'cart GDS-003 +2');
    expect(plus.texts).toEqual(['「陶瓷茶杯組（4 入）」庫存不足，目前只剩 3 件。']);
    const soldOut = await tap(user, `action=add&p=${ctx.ids['GDS-004']}`);
    expect(soldOut.texts).toEqual(['「竹編收納籃」已售完 😢']);
    expect(await shopState()).toEqual(before);
    expect(await cartOf(user)).toEqual({ 'GDS-003': 2 });
    // Lowering a line is always allowed.
    await say(user, 'cart GDS-003 1');
    expect(await cartOf(user)).toEqual({ 'GDS-003': 1 });
  });

  test('bad input answers helpfully and changes nothing', async () => {
    const user = newUserId();
    await say(user, 'cart TEA-001 2');
    const before = await shopState();
    const cases: Array<[string, 'say' | 'tap', string]> = [
      ['cart NOPE-999 1', 'say', T.productUnknown('NOPE-999')],
      ['cart 0 1', 'say', T.productUnknown('0')],
      ['cart 123456789012 1', 'say', T.productUnknown('123456789012')],
      [`cart ${ctx.ids['TEA-001']} 100`, 'say', T.qtyInvalid],
      ['cart TEA-001 +100', 'say', T.qtyInvalid],
      ['cart TEA-001 -100', 'say', T.qtyInvalid],
      ['cart TEA-001 -999999', 'say', T.qtyInvalid],
      ['cart TEA-001 99999999', 'say', T.qtyInvalid],
      ['cart TEA-001 98', 'say', '「阿里山高山烏龍茶（150g）」庫存不足，目前只剩 30 件。'],
      ['cart TEA-001 -1.5', 'say', T.qtyInvalid],
      ['cart TEA-001 two', 'say', T.qtyInvalid],
      ['cart TEA-001 ＋', 'say', T.qtyInvalid],
      ['cart TEA-001', 'say', T.cartUsage],
      ['cart TEA-001 1 2', 'say', T.cartUsage],
      ["'; DROP TABLE products; --", 'say', T.unknown],
      ['🍵🍵🍵', 'say', T.unknown],
      ['取消 not-an-order', 'say', T.unknown],
      ['訂單 L99', 'say', T.unknown],
      ['action=add&p=abc', 'tap', T.unknown],
      ['action=inc&p=-3', 'tap', T.unknown],
      ['action=dec', 'tap', T.unknown],
      ['action=add&p=999999', 'tap', T.productUnknown('999999')],
      [`action=dec&p=${ctx.ids['GDS-002']}`, 'tap', T.cartAlt(2, 1360)], // stale − on a line the cart does not have
      ['action=launch-missiles', 'tap', T.unknown],
      ['x'.repeat(400), 'tap', T.unknown],
    ];
    for (const [input, how, expected] of cases) {
      const a = how === 'say' ? await say(user, input) : await tap(user, input);
      expect({ input, reply: a.texts[0] }).toEqual({ input, reply: expected });
    }
    expect(await shopState()).toEqual(before);
    expect(await cartOf(user)).toEqual({ 'TEA-001': 2 });
  });

  test('20 shoppers type 結帳 at the same moment for the last 3 units: 3 orders, 17 clean stock answers, never an error', async () => {
    const cat = await db()('categories').first('id');
    const [{ id }] = await db()('products')
      .insert({ sku: 'RACE-001', category_id: cat.id, name: '限量公仔', price: 999, image_url: 'https://images.example.com/race.jpg', sort_order: 200 })
      .returning('id');
    await setStock(db(), id, 3);
    const users = Array.from({ length: 20 }, () => newUserId());
    for (const u of users) await say(u, 'cart RACE-001 1');
    // The worker runs 4 events at once: checkouts that pass their availability check together
    // race at COMMIT, and the losers are retried into a clean refusal.
    const outs = await Promise.all(users.map((u) => say(u, '結帳')));
    const orders = await db()('orders').whereIn('line_user_id', users).select('line_user_id', 'order_no', 'total');
    expect(orders).toHaveLength(3);
    for (const [i, u] of users.entries()) {
      const order = orders.find((o) => o.line_user_id === u);
      if (order) expect(outs[i]!.texts).toEqual([T.orderCreatedAlt(order.order_no, 999)]);
      else expect(outs[i]!.texts).toEqual([T.checkoutStockChanged([T.notEnoughStock('限量公仔', 0)]), T.cartAlt(1, 999)]);
    }
    expect(await stockOf('RACE-001')).toEqual({ stock_on_hand: 3, stock_reserved: 3 });
    expect(await checkInvariants(db())).toEqual([]);
  });

  test('checkout by text: one order, stock reserved, cart closed, delivery methods offered (payment after them); 訂單 lists and shows it', async () => {
    const user = newUserId();
    await say(user, 'cart TEA-003 2');
    await say(user, 'cart SNK-003 1');
    const before = { tea: await stockOf('TEA-003'), snk: await stockOf('SNK-003') };
    const out = await say(user, '結帳');
    const order = await db()('orders').where({ line_user_id: user }).first();
    expect(order).toMatchObject({ status: 'pending_payment', total: 2 * 1280 + 280, item_count: 3 });
    expect(out.texts).toEqual([T.orderCreatedAlt(order.order_no, 2840)]);
    // Delivery comes first (home delivery only: no logistics configured here); payment after it.
    expect(out.json).toContain(DELIVERY_TEXT.choosePrompt);
    expect(out.postbacks).toEqual([`action=dlv&o=${order.order_no}&m=home`, `action=cancel&o=${order.order_no}`]);
    expect(await stockOf('TEA-003')).toEqual({ stock_on_hand: before.tea.stock_on_hand, stock_reserved: before.tea.stock_reserved + 2 });
    expect(await stockOf('SNK-003')).toEqual({ stock_on_hand: before.snk.stock_on_hand, stock_reserved: before.snk.stock_reserved + 1 });
    expect(await cartOf(user)).toEqual({});

    // A second 結帳 makes no new order: it shows the pending one.
    const again = await say(user, 'checkout');
    expect(again.texts).toEqual([T.orderDetailAlt(order.order_no, '待付款')]);
    expect(await count(ctx.shop.c, 'orders', { line_user_id: user })).toBe(1);

    const list = await say(user, '訂單');
    expect(list.texts).toEqual([T.ordersAlt(1)]);
    expect(list.json).toContain(order.order_no);
    expect(list.postbacks).toContain(`action=order&o=${order.order_no}`);
    const detail = await say(user, `訂單 ${order.order_no.toLowerCase()}`);
    expect(detail.texts).toEqual([T.orderDetailAlt(order.order_no, '待付款')]);
    expect(detail.json).toContain('東方美人茶禮盒 × 2');
    const viaTap = await tap(user, `action=order&o=${order.order_no}`);
    expect(viaTap.texts).toEqual(detail.texts);
    // Someone else's order number is not found for this shopper.
    const stranger = newUserId();
    expect((await say(stranger, `訂單 ${order.order_no}`)).texts).toEqual([T.orderUnknown(order.order_no)]);
    expect((await say(stranger, `取消 ${order.order_no}`)).texts).toEqual([T.orderUnknown(order.order_no)]);
    expect(await db()('orders').where({ id: order.id }).first('status')).toEqual({ status: 'pending_payment' });
  });

  test('checkout from the cart button; a double tap of the same button makes one order', async () => {
    const user = newUserId();
    await say(user, 'cart GDS-001 2');
    const cart = await say(user, '購物車');
    const checkoutData = cart.postbacks.find((d) => d.startsWith('action=checkout'))!;
    expect(checkoutData).toMatch(/^action=checkout&v=\d+$/);
    const before = await stockOf('GDS-001');

    const e1 = ctx.shop.postbackEvent(user, checkoutData) as { webhookEventId: string };
    const e2 = ctx.shop.postbackEvent(user, checkoutData) as { webhookEventId: string };
    const [s1, s2] = await Promise.all([ctx.shop.sendEvents([e1]), ctx.shop.sendEvents([e2])]);
    expect([s1, s2]).toEqual([200, 200]);
    await settled(ctx.shop, e1.webhookEventId);
    await settled(ctx.shop, e2.webhookEventId);

    const orders = await db()('orders').where({ line_user_id: user }).select('order_no', 'total');
    expect(orders).toHaveLength(1);
    const orderNo = orders[0]!.order_no as string;
    // Both taps are answered with that one order.
    const texts = answer(ctx.shop.line.deliveredTo(user)).texts.slice(-2);
    expect(texts).toEqual([T.orderCreatedAlt(orderNo, 780), T.orderCreatedAlt(orderNo, 780)]);
    expect(await stockOf('GDS-001')).toEqual({ stock_on_hand: before.stock_on_hand, stock_reserved: before.stock_reserved + 2 });
    // A third tap, later, still points at the same order.
    const late = await tap(user, checkoutData);
    expect(late.texts).toEqual([T.orderCreatedAlt(orderNo, 780)]);
    expect(await count(ctx.shop.c, 'orders', { line_user_id: user })).toBe(1);
  });

  test('checkout of an empty cart, or refused for stock that went away, explains itself', async () => {
    const user = newUserId();
    expect((await say(user, '結帳')).texts).toEqual([T.cartEmpty]);
    await say(user, 'cart GDS-002 2');
    // The owner sells units elsewhere: only 1 left by the time the shopper checks out.
    const { stock_reserved } = await stockOf('GDS-002');
    await setStock(db(), 'GDS-002', stock_reserved + 1);
    const out = await say(user, '結帳');
    expect(out.texts).toEqual([T.checkoutStockChanged(['「客家花布提袋」庫存不足，目前只剩 1 件。']), T.cartAlt(2, 1180)]);
    expect(await count(ctx.shop.c, 'orders', { line_user_id: user })).toBe(0);
    expect(await stockOf('GDS-002')).toEqual({ stock_on_hand: stock_reserved + 1, stock_reserved });
    expect(await cartOf(user)).toEqual({ 'GDS-002': 2 });
  });

  test('取消 cancels and releases the stock once; a second cancel says it cannot', async () => {
    const user = newUserId();
    await say(user, 'cart SNK-002 3');
    const before = await stockOf('SNK-002');
    await say(user, '結帳');
    const order = await db()('orders').where({ line_user_id: user }).first();
    expect(await stockOf('SNK-002')).toEqual({ ...before, stock_reserved: before.stock_reserved + 3 });
    const cancelled = await say(user, `取消 ${order.order_no}`);
    expect(cancelled.texts).toEqual([T.cancelDone(order.order_no)]);
    expect(await stockOf('SNK-002')).toEqual(before);
    const twice = await tap(user, `action=cancel&o=${order.order_no}`);
    expect(twice.texts).toEqual([T.cancelNotAllowed(order.order_no, '已取消')]);
    expect(await stockOf('SNK-002')).toEqual(before);
    expect(await db()('order_events').where({ order_id: order.id }).pluck('to_status')).toEqual(['pending_payment', 'cancelled']);
    expect(await db()('reservations').where({ order_id: order.id }).pluck('status')).toEqual(['released']);
  });

  test('stale taps: cancel on an expired order, checkout with an old cart version', async () => {
    const user = newUserId();
    await say(user, 'cart TEA-002 1');
    const firstCart = await say(user, '購物車');
    const oldCheckout = firstCart.postbacks.find((d) => d.startsWith('action=checkout'))!;
    // The shopper changes the cart after that cart message was shown: its checkout button is stale.
    await say(user, 'cart TEA-002 2');
    const stale = await tap(user, oldCheckout);
    expect(stale.texts).toEqual([T.checkoutCartChanged, T.cartAlt(2, 1040)]);
    expect(await count(ctx.shop.c, 'orders', { line_user_id: user })).toBe(0);

    const cart = await say(user, '購物車');
    const checkoutData = cart.postbacks.find((d) => d.startsWith('action=checkout'))!;
    const created = await tap(user, checkoutData);
    const order = await db()('orders').where({ line_user_id: user }).first();
    expect(created.texts).toEqual([T.orderCreatedAlt(order.order_no, 1040)]);
    const before = await stockOf('TEA-002');

    // The hold runs out; the sweeper expires the order and tells the shopper.
    await db()('orders').where({ id: order.id }).update({ hold_expires_at: db().raw("now() - interval '1 second'") });
    await waitFor(async () => (await db()('orders').where({ id: order.id }).first('status')).status === 'expired', 'order expired');
    await waitFor(() => ctx.shop.line.textsTo(user).includes(T.expiredNotice(order.order_no)), 'expiry push');
    expect(await stockOf('TEA-002')).toEqual({ ...before, stock_reserved: before.stock_reserved - 2 });

    const cancel = await tap(user, `action=cancel&o=${order.order_no}`);
    expect(cancel.texts).toEqual([T.cancelNotAllowed(order.order_no, '已逾期')]);
    // The old checkout button of the cart that became this order shows the (expired) order, no new one.
    const replay = await tap(user, checkoutData);
    expect(replay.texts).toEqual([T.orderDetailAlt(order.order_no, '已逾期')]);
    expect(await count(ctx.shop.c, 'orders', { line_user_id: user })).toBe(1);
    expect(await stockOf('TEA-002')).toEqual({ ...before, stock_reserved: before.stock_reserved - 2 });
    expect(ctx.shop.line.textsTo(user).filter((t) => t === T.expiredNotice(order.order_no))).toHaveLength(1);
  });
});

describe('reservation expiry end to end (HOLD_MINUTES_DEFAULT ≈ 1 s)', () => {
  const ctx = setup('cart_expiry', { HOLD_MINUTES_DEFAULT: '0.02' });

  test('the order expires by itself, stock is released exactly once and the shopper is told once', async () => {
    const { shop } = ctx;
    const db = shop.c.db;
    const users = [newUserId(), newUserId(), newUserId()];
    const before = await stockTotals(db, 'TEA-003');
    for (const u of users) {
      await settled(shop, await shop.say(u, 'cart TEA-003 2'));
      await settled(shop, await shop.say(u, '結帳'));
    }
    const orders = await db('orders').whereIn('line_user_id', users).orderBy('id').select('id', 'order_no', 'line_user_id', 'hold_expires_at', 'created_at');
    expect(orders).toHaveLength(3);
    for (const o of orders) {
      const holdMs = o.hold_expires_at.getTime() - o.created_at.getTime();
      expect(holdMs).toBeGreaterThanOrEqual(1150);
      expect(holdMs).toBeLessThanOrEqual(1250);
    }
    // Each checkout scheduled its delayed expiry job.
    for (const o of orders) {
      const jobs = await shop.c.queues.orders.getJobs(['delayed', 'waiting', 'active', 'completed']);
      expect(jobs.some((j) => j.name === 'expire-order' && j.data.orderId === o.id)).toBe(true);
    }

    for (const o of orders) {
      await waitFor(() => shop.line.textsTo(o.line_user_id).includes(T.expiredNotice(o.order_no)), `expiry push for ${o.order_no}`);
    }
    expect(await db('orders').whereIn('id', orders.map((o) => o.id)).pluck('status')).toEqual(['expired', 'expired', 'expired']);
    expect(await stockTotals(db, 'TEA-003')).toEqual(before);
    // Let the sweeper and any duplicate job run over the expired orders again: nothing more happens.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await stockTotals(db, 'TEA-003')).toEqual(before);
    for (const o of orders) {
      expect(await db('order_events').where({ order_id: o.id }).pluck('to_status')).toEqual(['pending_payment', 'expired']);
      expect(await db('reservations').where({ order_id: o.id }).select('status', 'qty')).toEqual([{ status: 'released', qty: 2 }]);
      expect(shop.line.textsTo(o.line_user_id).filter((t) => t === T.expiredNotice(o.order_no))).toHaveLength(1);
    }
  });
});
