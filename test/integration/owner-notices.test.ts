/**
 * Running the shop from LINE: the owners hear of new orders, payments, cancellations (and by whom)
 * once each, even with bank notifications replayed and two workers; the shopper gets shipped and
 * completed bubbles; 待出貨 lists what is waiting; the daily summary goes out once a day with
 * figures equal to a SQL query over the same orders; the main answers carry quick replies.
 */
import type { messagingApi } from '@line/bot-sdk';
import { Container, createContainer } from '../../src/container';
import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import { dailyFigures } from '../../src/domain/reports';
import { startWorkers, Sweeper } from '../../src/jobs/worker';
import { LineNotifier } from '../../src/line/notifier';
import { silentLogger } from '../../src/logger';
import { METHOD_LABEL, T, twd } from '../../src/texts';
import { choosePayment, paidOrder, placeOrder } from '../helpers/orders';
import { newEventId, newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

const owners = [newUserId(), newUserId()];
let shop: TestShop;
/** A second worker process's worth: its own container and workers, on the same database and queues. */
let c2: Container;
let workers2: Awaited<ReturnType<typeof startWorkers>>;

beforeAll(async () => {
  shop = await startShop({ label: 'owner_notices', sinopac: true, owners, env: { DAILY_SUMMARY_AT: '07:30' } });
  c2 = createContainer(shop.config, { log: silentLogger, db: shop.tdb.db, lineTimeoutMs: 2000, gatewayTimeoutMs: 2000 });
  workers2 = await startWorkers(c2, { sweepEveryMs: 400, sweepGraceMs: 300, concurrency: 4 });
  shop.line.setMessageQuota(15_000);
  for (const o of owners) await follow(o);
});
afterAll(async () => {
  await workers2?.close();
  await c2?.close();
  await shop?.close();
});

const db = () => shop.c.db;
const say = async (user: string, text: string) => settled(shop, await shop.say(user, text));
const messagesTo = (user: string) => shop.line.deliveredTo(user).flatMap((d) => d.messages as messagingApi.Message[]);
const alts = (user: string) => messagesTo(user).map((m) => (m.type === 'flex' ? m.altText : m.type === 'text' ? m.text : ''));
const nameOf = async (userId: string): Promise<string> => (await db()('line_users').where({ user_id: userId }).first('display_name')).display_name;

async function follow(userId: string): Promise<void> {
  const e = {
    type: 'follow', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId }, webhookEventId: newEventId(),
    deliveryContext: { isRedelivery: false }, replyToken: shop.line.issueReplyToken(userId), follow: { isUnblocked: false },
  };
  expect(await shop.sendEvents([e])).toBe(200);
  await settled(shop, e.webhookEventId);
}

async function quiet(): Promise<void> {
  await waitFor(async () => {
    const [{ n }] = await db()('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(n) === 0;
  }, 'every message delivered');
}

async function orderRow(id: number): Promise<Order> {
  return db()('orders').where({ id }).first<Order>();
}

describe('owner pushes, once per owner', () => {
  it('one new-order push and one paid push per owner, with the payment notification replayed 5 times and two workers running', async () => {
    const user = newUserId();
    await follow(user);
    const order = await placeOrder(shop, user, 'TEA-001', 2);
    const attempt = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
    await waitFor(async () => (await orderRow(order.id)).status === 'paid', 'paid');
    const replays = await Promise.all(Array.from({ length: 5 }, () => shop.sinopac!.notifyAgain(attempt.trade_no).delivered));
    expect(replays).toEqual([true, true, true, true, true]);
    // Both processes also ask the bank themselves (reconciliation), at once.
    await Promise.all([shop.c.payments.reconcileAttempt(attempt.id), c2.payments.reconcileAttempt(attempt.id)]);
    await new Promise((r) => setTimeout(r, 1500));
    await quiet();

    const name = await nameOf(user);
    expect(name).toBeTruthy();
    for (const o of owners) {
      // Placed before its delivery details: the owner is told the fee comes later.
      const newOrder = messagesTo(o).filter((m) => m.type === 'flex' && m.altText === T.ownerNewOrderAlt(order.order_no, order.total, name) + T.ownerNewOrderAltNoShipping);
      expect(newOrder).toHaveLength(1);
      expect(alts(o).filter((a) => a === T.ownerPaidAlt(order.order_no, order.total))).toHaveLength(1);
      // The bubble: order number, items, total, shopper, hold deadline, and the order's page in the back office.
      const json = JSON.stringify(newOrder[0]);
      for (const s of [order.order_no, name, twd(order.total), '× 2', `"uri":"${shop.url}/admin/orders/${order.order_no}"`, T.ownerNewOrderNoShipping]) expect(json).toContain(s);
      expect(JSON.stringify(messagesTo(o).find((m) => m.type === 'flex' && m.altText === T.ownerPaidAlt(order.order_no, order.total)))).toContain(
        `${shop.url}/admin/orders/${order.order_no}`,
      );
    }
    expect(await db()('payment_notifications').where({ outcome: 'paid' }).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('an unpaid order cancelled by the shopper, or by an owner in the back office, tells the owners who did it', async () => {
    const user = newUserId();
    await follow(user);
    const byShopper = await placeOrder(shop, user, 'TEA-002', 1);
    await say(user, `取消 ${byShopper.order_no}`);
    const byOwner = await placeOrder(shop, user, 'TEA-002', 1);
    await shop.c.uow.run((trx, after) => shop.c.owner.cancelOrder(trx, after, { userId: owners[1]!, source: 'web' }, { orderNo: byOwner.order_no }));
    await quiet();
    const [shopperName, ownerName] = [await nameOf(user), await nameOf(owners[1]!)];
    for (const o of owners) {
      expect(alts(o).filter((a) => a === T.ownerCancelledAlt(byShopper.order_no, byShopper.total, T.closedByShopper(shopperName)))).toHaveLength(1);
      expect(alts(o).filter((a) => a === T.ownerCancelledAlt(byOwner.order_no, byOwner.total, T.closedByOwner(ownerName)))).toHaveLength(1);
    }
  });

  it('OWNER_NOTIFY: a kind switched off writes nothing; the others go out as before', async () => {
    const notifier = new LineNotifier({ ...shop.config, ownerNotify: ['paid', 'alert'] });
    const order = await placeOrder(shop, newUserId(), 'TEA-002', 1);
    const items = { lines: [], adjustments: [] };
    await shop.c.uow.run(async (trx, after) => {
      await notifier.owners(trx, after, 'test:off', { type: 'new-order', order, items, shopperName: null });
      await notifier.owners(trx, after, 'test:off2', { type: 'sold-out', product: { id: 1, sku: 'X', name: 'X' } });
      await notifier.owners(trx, after, 'test:on', { type: 'simulated', tradeNo: 'S1' });
    });
    const keys = await db()('outbox_messages').where('dedupe_key', 'like', 'test:%').orderBy('id').pluck('dedupe_key');
    expect(keys).toEqual(owners.map((o) => `test:on:${o}`));
  });
});

describe('shipping, from the owner to the shopper', () => {
  it('待出貨 lists paid orders; shipping with a known carrier pushes a bubble with the tracking number to copy and the carrier page; 完成 a completed bubble', async () => {
    const user = newUserId();
    const order = await paidOrder(shop, user, 'SNK-001', 1);
    await say(owners[0]!, '待出貨');
    const list = shop.line.textsTo(owners[0]!).at(-1)!;
    expect(list).toContain(order.order_no);
    expect(list.split('\n')[0]).toMatch(/^🚚 待出貨 \d+ 筆/);

    const tracking = '903221488720';
    const r = await shop.c.uow.run((trx, after) =>
      shop.c.owner.shipOrder(trx, after, { userId: owners[0]!, source: 'web' }, { orderNo: order.order_no, tracking, carrier: '黑貓宅急便' }),
    );
    expect(r.kind).toBe('shipped');
    await quiet();
    const shipped = messagesTo(user).filter((m) => m.type === 'flex' && m.altText === T.shippedShopper(order.order_no, tracking));
    expect(shipped).toHaveLength(1);
    const json = JSON.stringify(shipped[0]);
    expect(json).toContain(JSON.stringify({ type: 'clipboard', label: T.copyTracking, clipboardText: tracking }));
    expect(json).toContain(`https://www.t-cat.com.tw/Inquire/TraceDetail.aspx?BillID=${tracking}`);
    expect(json).toContain('黑貓宅急便');

    await say(owners[0]!, '待出貨');
    expect(shop.line.textsTo(owners[0]!).at(-1)).not.toContain(order.order_no);
    await say(owners[0]!, `完成 ${order.order_no}`);
    await quiet();
    const completed = messagesTo(user).filter((m) => m.type === 'flex' && m.altText === T.completedShopper(order.order_no));
    expect(completed).toHaveLength(1);
  });
});

describe('the daily summary', () => {
  it("the worker's schedule follows DAILY_SUMMARY_AT, Taipei time", async () => {
    const s = await shop.c.queues.maintenance.getJobScheduler('daily-summary');
    expect(s).toMatchObject({ pattern: '0 30 7 * * *', tz: 'Asia/Taipei' });
  });

  it('goes out once per day with two workers running, and its figures equal a SQL query over the same orders', async () => {
    // A card payment too, so that the money comes by two methods.
    const user = newUserId();
    const card = await placeOrder(shop, user, 'GDS-001', 3);
    const attempt = (await choosePayment(shop, user, card, 'sinopac-card'))!;
    expect(await shop.sinopac!.payCard(attempt.trade_no).delivered).toBe(true);
    await waitFor(async () => (await orderRow(card.id)).status === 'paid', 'card order paid');
    await quiet();

    // Both workers' scheduled job, and both processes by hand, at once.
    await Promise.all([
      shop.c.queues.maintenance.add('daily-summary', {}, { jobId: 'summary-test-1' }),
      c2.queues.maintenance.add('daily-summary', {}, { jobId: 'summary-test-2' }),
      new Sweeper(shop.c, 0).dailySummary(),
      new Sweeper(c2, 0).dailySummary(),
    ]);
    await waitFor(async () => {
      const jobs = await Promise.all(['summary-test-1', 'summary-test-2'].map((id) => shop.c.queues.maintenance.getJobState(id)));
      return jobs.every((s) => s === 'completed');
    }, 'summary jobs done');
    await quiet();

    const { rows } = await db().raw(`
      WITH today AS (SELECT (now() AT TIME ZONE 'Asia/Taipei')::date AS d),
      paid AS (SELECT o.* FROM orders o, today WHERE (o.paid_at AT TIME ZONE 'Asia/Taipei')::date = today.d)
      SELECT to_char(today.d, 'YYYY-MM-DD') AS date,
             (SELECT count(*)::int FROM orders o WHERE (o.created_at AT TIME ZONE 'Asia/Taipei')::date = today.d) AS orders,
             (SELECT count(*)::int FROM paid) AS paid,
             (SELECT coalesce(sum(paid_amount), 0)::int FROM paid) AS amount
        FROM today`);
    const sql = rows[0];
    const methods = (await db().raw(`SELECT payment_method AS method, count(*)::int AS orders, sum(paid_amount)::int AS amount FROM orders
      WHERE (paid_at AT TIME ZONE 'Asia/Taipei')::date = (now() AT TIME ZONE 'Asia/Taipei')::date GROUP BY payment_method ORDER BY amount DESC, method`)).rows;
    const top = (await db().raw(`SELECT l.product_id AS "productId", max(l.name) AS name, sum(l.qty)::int AS qty, sum(l.line_total)::int AS amount
      FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE (o.paid_at AT TIME ZONE 'Asia/Taipei')::date = (now() AT TIME ZONE 'Asia/Taipei')::date
      GROUP BY l.product_id ORDER BY qty DESC, amount DESC, l.product_id LIMIT 3`)).rows;
    const low = (await db().raw(`SELECT p.id, p.sku, p.name, s.stock_on_hand - s.stock_reserved AS available FROM products p JOIN product_stock s ON s.product_id = p.id
      WHERE p.active AND s.stock_on_hand - s.stock_reserved <= 5 ORDER BY available, p.id LIMIT 10`)).rows;
    const [{ n: pushesToday }] = (await db().raw(`SELECT count(*)::int AS n FROM outbox_messages WHERE delivered_via = 'push'
      AND (sent_at AT TIME ZONE 'Asia/Taipei')::date = (now() AT TIME ZONE 'Asia/Taipei')::date`)).rows;

    const f = await dailyFigures(db(), 5);
    expect(f).toMatchObject({ ...sql, byMethod: methods, topProducts: top, lowStock: low, lowStockCount: low.length, threshold: 5 });
    expect(f.byMethod.map((m) => m.method).sort()).toEqual(['sinopac-atm', 'sinopac-card']);
    expect(f.paid).toBeGreaterThanOrEqual(3);
    expect(f.pushesToday).toBe(pushesToday);

    for (const o of owners) {
      const summaries = messagesTo(o).filter((m) => m.type === 'flex' && m.altText.startsWith(T.ownerDailySummary(f.date, 0, 0, 0).split('\n')[0]!));
      expect(summaries).toHaveLength(1);
      const m = summaries[0] as messagingApi.FlexMessage;
      // Then the members' line (wallet top-ups, points granted).
      expect(m.altText.split('\n').slice(0, 2).join('\n')).toBe(T.ownerDailySummary(f.date, sql.orders, sql.paid, sql.amount));
      const json = JSON.stringify(m.contents);
      for (const x of methods) expect(json).toContain(JSON.stringify(METHOD_LABEL[x.method]));
      for (const x of methods) expect(json).toContain(T.methodTakings(x.amount, x.orders));
      for (const x of top) expect(json).toContain(T.soldQty(x.qty, x.amount));
      // LINE's own count of this month's messages and the plan's limit, from the quota API.
      expect(json).toMatch(new RegExp(`\\d+ / ${15_000} 則`));
    }
  });
});

describe('quick replies', () => {
  it('the follow greeting and the main answers offer buttons, and LINE accepts them', async () => {
    const user = newUserId();
    await follow(user);
    const greeting = shop.line.deliveredTo(user).at(-1)!.messages as messagingApi.Message[];
    expect(greeting).toHaveLength(1);
    expect((greeting[0] as messagingApi.TextMessage).text).toBe(T.welcome(await nameOf(user)));
    expect(greeting[0]!.quickReply!.items!.length).toBeGreaterThanOrEqual(3);
    for (const text of ['商品', '購物車', '說明', 'cart TEA-001 1', '結帳']) {
      await say(user, text);
      const last = (shop.line.deliveredTo(user).at(-1)!.messages as messagingApi.Message[]).at(-1)!;
      expect(last.quickReply?.items?.length ?? 0).toBeGreaterThan(0);
    }
    // A tap is a message the parser knows: "購物車" from the greeting answers with the cart.
    await say(user, greeting[0]!.quickReply!.items!.map((i) => (i.action as messagingApi.MessageAction).text!).find((t) => t === '購物車')!);
    expect(shop.line.textsTo(user).at(-1)).toMatch(/^購物車/);
  });

  it('invariants hold', async () => {
    await quiet();
    expect(await checkInvariants(db())).toEqual([]);
  });
});
