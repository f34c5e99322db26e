import { checkInvariants } from '../../src/domain/invariants';
import { setAdjustment } from '../../src/domain/order-adjustments';
import { ADMIN, T } from '../../src/texts';
import { AdminClient, loggedIn, newKey } from '../helpers/admin';
import { paidOrder, payByEcpayCard, payBySinopacAtm, placeOrder } from '../helpers/orders';
import { count, newUserId, settled, startShop, taipeiAt, TestShop, waitFor } from '../helpers/shop';
import { stockOf } from '../helpers/stock';

const owner = newUserId();
let shop: TestShop;
let admin: AdminClient;

beforeAll(async () => {
  shop = await startShop({ label: 'bo_orders', sinopac: true, ecpay: true, owners: [owner] });
  // Card refunds on a Taipei morning: before ECPay's 20:15 capture, never inside its 20:15–20:30 window.
  shop.ecpayClock.set(taipeiAt('10:00'));
  shop.line.setMessageQuota(500);
  admin = await loggedIn(shop, owner);
});
afterAll(async () => {
  await shop?.close();
});

/** Pending notifications, refunds and deliveries all done. */
async function quiet(): Promise<void> {
  await shop.ecpay!.idle();
  await waitFor(async () => {
    const [r] = await shop.c.db('refunds').where({ status: 'pending' }).count<{ n: number }[]>({ n: '*' });
    const [o] = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(r!.n) + Number(o!.n) === 0;
  }, 'refunds and deliveries to settle');
}

describe('orders in the back office', () => {
  it('lists orders filtered by status and searchable by order number, shopper name or product', async () => {
    const mei = newUserId();
    const paid = await paidOrder(shop, mei, 'SNK-002', 1);
    await shop.c.db('line_users').where({ user_id: mei }).update({ display_name: '陳小美' });
    const pending = await placeOrder(shop, newUserId(), 'GDS-001', 1);
    const list = async (q: string) => [...(await admin.get(`/admin/orders?${q}`)).text.matchAll(/href="\/admin\/orders\/([A-Z0-9]+)"/g)].map((m) => m[1]);
    expect(await list('status=paid')).toContain(paid.order_no);
    expect(await list('status=paid')).not.toContain(pending.order_no);
    expect(await list(`q=${paid.order_no.toLowerCase()}`)).toEqual([paid.order_no]);
    expect(await list(`q=${encodeURIComponent('小美')}`)).toEqual([paid.order_no]);
    expect(await list(`q=${encodeURIComponent('檜木杯墊')}`)).toContain(pending.order_no);
    expect(await list(`q=${encodeURIComponent('檜木杯墊')}`)).not.toContain(paid.order_no);
    expect(await list('from=2001-01-01&to=2001-01-31')).toEqual([]);
  });

  it('the detail page shows lines, fees, payment attempts with bank trade numbers, the timeline and the shopper\'s name', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-002', 2);
    await shop.c.db.transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '宅配運費', amount: 100 }));
    await payBySinopacAtm(shop, user, order);
    await shop.c.db('line_users').where({ user_id: user }).update({ display_name: '林大明' });
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id, status: 'paid' }).first();
    const page = (await admin.get(`/admin/orders/${order.order_no}`)).text;
    expect(page).toContain('林大明');
    expect(page).toContain('日月潭紅玉紅茶（75g）');
    expect(page).toContain('宅配運費');
    expect(page).toContain('NT$1,140');
    expect(page).toContain(attempt.trade_no);
    expect(page).toContain(ADMIN.order.attemptStatus.paid!);
    expect(page).toContain('<section id="delivery">');
    expect(page).toContain(`${ADMIN.order.timeline}`);
    expect(page).toContain('待付款 → 已付款');
  });

  it('ships a paid order with carrier and tracking number: the shopper is pushed once, a double submit changes nothing', async () => {
    const user = newUserId();
    const order = await paidOrder(shop, user);
    const detail = await admin.get(`/admin/orders/${order.order_no}`);
    expect(detail.text).toContain(`<label for="f-carrier">${ADMIN.order.carrier}`);
    expect(detail.text).toContain(`<label for="f-tracking">${ADMIN.order.tracking}`);
    const key = newKey();
    const fields = { carrier: '黑貓宅急便', tracking: 'tw123456789' };
    const [a, b] = await Promise.all([admin.post(`/admin/orders/${order.order_no}/ship`, fields, { key }), admin.post(`/admin/orders/${order.order_no}/ship`, fields, { key })]);
    expect([a.status, b.status]).toEqual([303, 303]);
    expect(a.headers.get('location')).toBe(b.headers.get('location'));
    expect((await admin.get(a.headers.get('location')!)).text).toContain(T.ownerShipped(order.order_no));
    await quiet();
    expect(await shop.c.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'shipped', tracking_no: 'TW123456789', carrier: '黑貓宅急便' });
    expect(shop.line.textsTo(user).filter((t) => t === T.shippedShopper(order.order_no, 'TW123456789'))).toHaveLength(1);
    const audits = await shop.c.db('audit_log').where({ action: 'order.ship', target_id: order.order_no });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ source: 'web', actor: `owner:${owner}`, after: { status: 'shipped', tracking: 'TW123456789', carrier: '黑貓宅急便' } });

    // A second ship (a new form) is refused, as the chat's 出貨 is: the same use case.
    const again = await admin.post(`/admin/orders/${order.order_no}/ship`, fields);
    expect((await admin.get(again.headers.get('location')!)).text).toContain(T.ownerStatusConflict(order.order_no, '已出貨'));
    await settled(shop, await shop.say(owner, `出貨 ${order.order_no}`));
    expect(shop.line.textsTo(owner).at(-1)).toBe(T.ownerStatusConflict(order.order_no, '已出貨'));

    const done = await admin.post(`/admin/orders/${order.order_no}/complete`, {});
    expect((await admin.get(done.headers.get('location')!)).text).toContain(T.ownerCompleted(order.order_no));
    await quiet();
    expect(shop.line.textsTo(user).filter((t) => t === T.completedShopper(order.order_no))).toHaveLength(1);
  });

  it('cancels an unpaid order and releases its stock; a paid order cannot be cancelled', async () => {
    const order = await placeOrder(shop, newUserId(), 'GDS-003', 2);
    const held = await stockOf(shop.c.db, 'GDS-003');
    const r = await admin.post(`/admin/orders/${order.order_no}/cancel`, {});
    expect((await admin.get(r.headers.get('location')!)).text).toContain(T.cancelDone(order.order_no));
    expect(await stockOf(shop.c.db, 'GDS-003')).toEqual({ ...held, stock_reserved: held.stock_reserved - 2 });
    expect(await shop.c.db('audit_log').where({ action: 'order.cancel', target_id: order.order_no, source: 'web' })).toHaveLength(1);

    const paid = await paidOrder(shop, newUserId());
    const refused = await admin.post(`/admin/orders/${paid.order_no}/cancel`, {});
    expect((await admin.get(refused.headers.get('location')!)).text).toContain(T.cancelNotAllowed(paid.order_no, '已付款'));
    expect(await shop.c.db('orders').where({ id: paid.id }).first()).toMatchObject({ status: 'paid' });
  });

  it('a refund from the page and one from the chat racing on the same order never exceed what was captured', async () => {
    for (let round = 0; round < 3; round++) {
      const user = newUserId();
      const order = await payByEcpayCard(shop, user, await placeOrder(shop, user));
      await admin.get(`/admin/orders/${order.order_no}`);
      const chat = shop.textEvent(owner, `退款 ${order.order_no} ${round === 2 ? 400 : ''}`.trim());
      // The test holds the order row, so both requests reach the same point and wait there in a
      // known order (PostgreSQL grants a row lock first come, first served); then both go. The
      // page asks for the whole amount, the chat for the whole or 400; the page is first in round 0.
      const gate = await shop.c.db.transaction();
      await gate('orders').where({ id: order.id }).forUpdate().first();
      const waiting = (n: number) =>
        waitFor(async () => {
          const { rows } = await shop.c.db.raw("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
          return rows[0].n >= n;
        }, `${n} refund(s) waiting for the order row`);
      let page: Promise<{ status: number }>;
      if (round === 0) {
        page = admin.post(`/admin/orders/${order.order_no}/refund`, { amount: '' });
        await waiting(1);
        expect(await shop.sendEvents([chat])).toBe(200);
      } else {
        expect(await shop.sendEvents([chat])).toBe(200);
        await waiting(1);
        page = admin.post(`/admin/orders/${order.order_no}/refund`, { amount: '' });
      }
      await waiting(2);
      await gate.commit();
      expect((await page).status).toBe(303);
      await settled(shop, chat.webhookEventId);
      await quiet();
      const refunds = await shop.c.db('refunds').where({ order_id: order.id });
      const committed = refunds.filter((r) => r.status !== 'failed').reduce((s, r) => s + r.amount, 0);
      expect(committed).toBeLessThanOrEqual(order.paid_amount);
      // Whoever came second found only what the first left: nothing (refused) or the rest.
      expect(refunds.map((r) => [r.amount, r.requested_by]).sort()).toEqual(round === 2 ? [[280, `owner:${owner}`], [400, `owner:${owner}`]] : [[680, `owner:${owner}`]]);
      if (round === 0) expect(shop.line.textsTo(owner)).toContain(T.ownerRefundTooMuch(order.order_no, 0));
      expect(refunds.filter((r) => r.status === 'succeeded').reduce((s, r) => s + r.amount, 0)).toBe(order.paid_amount);
      const row = await shop.c.db('orders').where({ id: order.id }).first();
      expect(row).toMatchObject({ status: 'refunded', refunded_amount: order.paid_amount });
    }
    // Each refund is in the audit log with its door.
    const sources = await shop.c.db('audit_log').where({ action: 'refund.request' }).pluck('source');
    expect(new Set(sources)).toEqual(new Set(['web', 'line']));
  });

  it('refuses a refund larger than what is left, in zh-TW, and a refund amount that is not a number', async () => {
    const user = newUserId();
    const order = await payByEcpayCard(shop, user, await placeOrder(shop, user));
    await admin.get(`/admin/orders/${order.order_no}`);
    const bad = await admin.post(`/admin/orders/${order.order_no}/refund`, { amount: 'abc' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain(ADMIN.order.refundAmountInvalid);
    const much = await admin.post(`/admin/orders/${order.order_no}/refund`, { amount: String(order.paid_amount + 1) });
    expect((await admin.get(much.headers.get('location')!)).text).toContain(T.ownerRefundTooMuch(order.order_no, order.paid_amount));
    expect(await count(shop.c, 'refunds', { order_id: order.id })).toBe(0);
  });

  it('the dashboard shows today\'s figures, orders to ship, unpaid orders, low stock and LINE\'s push quota', async () => {
    const page = (await admin.get('/admin')).text;
    expect(page).toContain(ADMIN.dashboard.today);
    expect(page).toContain(ADMIN.dashboard.month);
    expect(page).toContain('永豐 ATM 轉帳');
    expect(page).toContain('綠界 信用卡');
    expect(page).toMatch(/待出貨（\d+）/);
    expect(page).toMatch(/未付款（\d+）/);
    expect(page).toContain('竹編收納籃'); // sold out in the demo catalog
    expect(page).toMatch(/已推播 \d+ \/ 500 則/);
    expect(shop.line.requests.filter((r) => r.path === '/v2/bot/message/quota').length).toBeGreaterThanOrEqual(1);
    // Cached: a second view does not ask LINE again.
    const asked = shop.line.requests.filter((r) => r.path === '/v2/bot/message/quota').length;
    await admin.get('/admin');
    expect(shop.line.requests.filter((r) => r.path === '/v2/bot/message/quota').length).toBe(asked);
  });

  it('the audit page lists owner actions from the chat and the page, filterable', async () => {
    const web = (await admin.get('/admin/audit?source=web')).text;
    expect(web).toContain(ADMIN.audit.actions['order.ship']!);
    expect(web).not.toContain(' ・ LINE 聊天');
    const line = (await admin.get('/admin/audit?source=line&group=refund')).text;
    expect(line).toContain(ADMIN.audit.actions['refund.request']!);
    expect(line).not.toContain(ADMIN.audit.actions['order.ship']!);
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
