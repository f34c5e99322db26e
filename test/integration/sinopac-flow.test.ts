/**
 * Bank SinoPac QPay end to end (issue 4): LINE double → webhook → bot → PaymentService → SinoPac
 * sandbox over HTTP → BackendURL / ReturnURL → worker jobs → PostgreSQL and the LINE double again.
 * Real PostgreSQL and Redis; nothing of knex, pg, BullMQ or ioredis is mocked.
 */
import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { SinopacClient } from '../../src/gateways/sinopac/sinopac-client';
import { atmExpireDate } from '../../src/gateways/sinopac/sinopac-gateway';
import { JOB_DEFAULTS } from '../../src/jobs/queues';
import { runExpiry } from '../../src/jobs/worker';
import { PAGE, T, taipeiTime, twd } from '../../src/texts';
import { count, newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';
import { completeDelivery } from '../helpers/orders';
import { allStock, setStock, stockOf } from '../helpers/stock';

const OWNER = newUserId();

type Msg = { type?: string; text?: string; altText?: string };

const messagesTo = (shop: TestShop, user: string): Msg[] => shop.line.deliveredTo(user).flatMap((d) => d.messages as Msg[]);
const lastReplyTo = (shop: TestShop, user: string): Msg[] => (shop.line.deliveredTo(user).at(-1)?.messages ?? []) as Msg[];
const receiptsFor = (shop: TestShop, user: string, o: Order) => messagesTo(shop, user).filter((m) => m.altText === T.receiptAlt(o.order_no, o.total));
const ownerPaidFor = (shop: TestShop, o: Order) => messagesTo(shop, OWNER).filter((m) => m.altText === T.ownerPaidAlt(o.order_no, o.total));
const ownerTexts = (shop: TestShop) => shop.line.textsTo(OWNER);

async function product(shop: TestShop, sku: string): Promise<{ id: number; stock_on_hand: number; stock_reserved: number }> {
  const { id } = await shop.c.db('products').where({ sku }).first('id');
  return { id, ...(await stockOf(shop.c.db, id)) };
}

async function orderRow(shop: TestShop, id: number): Promise<Order> {
  return (await shop.c.db('orders').where({ id }).first<Order>())!;
}

async function attemptsOf(shop: TestShop, orderId: number): Promise<PaymentAttempt[]> {
  return shop.c.db('payment_attempts').where({ order_id: orderId }).orderBy('id').select<PaymentAttempt[]>('*');
}

async function paidTransitions(shop: TestShop, orderId: number): Promise<number> {
  const [{ n }] = await shop.c
    .db('order_events')
    .where({ order_id: orderId })
    .whereIn('to_status', ['paid', 'paid_no_stock'])
    .count<{ n: string }[]>({ n: '*' });
  return Number(n);
}

/** `cart <sku> <qty>` then `結帳`: the shopper's newest order. */
async function checkoutOrder(shop: TestShop, user: string, sku = 'TEA-001', qty = 1): Promise<Order> {
  await settled(shop, await shop.say(user, `cart ${sku} ${qty}`));
  await settled(shop, await shop.say(user, '結帳'));
  const order = await shop.c.db('orders').where({ line_user_id: user }).orderBy('id', 'desc').first<Order>();
  expect(order).toMatchObject({ status: 'pending_payment' });
  return completeDelivery(shop, order!);
}

/** Taps a payment method button; returns the attempt that tap created (or undefined when it made none). */
async function choose(shop: TestShop, user: string, order: Order, method: string): Promise<PaymentAttempt | undefined> {
  const eventId = await shop.tap(user, `action=pay&o=${order.order_no}&m=${method}`);
  await settled(shop, eventId);
  return shop.c.db('payment_attempts').where({ request_key: eventId }).first<PaymentAttempt>();
}

/** Every recorded notification processed, every push sent, no orders job waiting or running. */
async function quiet(shop: TestShop): Promise<void> {
  await waitFor(async () => {
    const unprocessed = await shop.c.db('payment_notifications').whereNull('processed_at').count<{ n: string }[]>({ n: '*' });
    const outbox = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: string }[]>({ n: '*' });
    const jobs = await shop.c.queues.orders.getJobCounts('waiting', 'active');
    return Number(unprocessed[0]!.n) === 0 && Number(outbox[0]!.n) === 0 && jobs.waiting === 0 && jobs.active === 0;
  }, 'payments and pushes to settle');
}

/**
 * Lets a notification job use up its retries now rather than after their exponential backoff
 * (BullMQ's own promote of the delayed job); resolves with the notification once it is closed.
 */
async function exhaustRetries(shop: TestShop, dedupeKey: string): Promise<{ id: number; outcome: string }> {
  return waitFor(
    async () => {
      const n = await shop.c.db('payment_notifications').where({ dedupe_key: dedupeKey }).first();
      if (!n) return null;
      if (n.processed_at) return n;
      const job = await shop.c.queues.orders.getJob(`pn-${n.id}`);
      // It may leave the delayed set between the check and the promote: the next round sees it.
      if (job && (await job.isDelayed())) await job.promote().catch(() => undefined);
      return null;
    },
    `notification ${dedupeKey} to use up its retries`,
    60_000,
  );
}

async function waitStatus(shop: TestShop, orderId: number, status: string): Promise<Order> {
  return waitFor(async () => {
    const o = await orderRow(shop, orderId);
    return o.status === status ? o : null;
  }, `order ${orderId} to become ${status}`);
}

const unescapeHtml = (s: string) =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/**
 * The shopper's browser on the bank's card page: open CardPayURL, press 付款 or 失敗, then follow the
 * auto-submitting form back to our ReturnURL (a form POST, spec §5.2).
 */
async function cardBrowser(cardPayUrl: string, button: 'pay' | 'fail'): Promise<{ status: number; html: string; contentType: string; payToken: string }> {
  const pageRes = await fetch(cardPayUrl);
  expect(pageRes.status).toBe(200);
  const page = await pageRes.text();
  const action = new RegExp(`<form method="post" action="([^"]+/${button})"`).exec(page)?.[1];
  expect(action).toBeDefined();
  const submitted = await fetch(new URL(unescapeHtml(action!), cardPayUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: '',
  });
  expect(submitted.status).toBe(200);
  const back = await submitted.text();
  const returnUrl = /<form id="back" method="post" action="([^"]+)"/.exec(back)?.[1];
  expect(returnUrl).toBeDefined();
  const fields = new URLSearchParams();
  for (const m of back.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields.set(m[1]!, unescapeHtml(m[2]!));
  const res = await fetch(unescapeHtml(returnUrl!), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: fields.toString(),
    redirect: 'manual',
  });
  return { status: res.status, html: await res.text(), contentType: res.headers.get('content-type') ?? '', payToken: fields.get('PayToken') ?? '' };
}

async function postNotify(shop: TestShop, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${shop.url}/payments/sinopac/notify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('SinoPac QPay end to end', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'sinopac_flow', sinopac: true, owners: [OWNER] });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await shop?.close();
  });

  test('checkout → sinopac-atm → Flex with 807, account, amount, deadline → bank pays → BackendURL → paid, stock committed, one receipt, one owner push', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = await choose(shop, user, order, 'sinopac-atm');
    expect(attempt).toMatchObject({ status: 'pending', method: 'sinopac-atm', provider: 'sinopac', amount: order.total });
    const d = attempt!.details as { kind: string; bankCode: string; account: string; deadline: string };
    expect(d).toMatchObject({ kind: 'virtual-account', bankCode: '807' });

    // The bank knows this trade under our trade number, with the same account and amount.
    const bankOrder = shop.sinopac!.getOrder(attempt!.trade_no)!;
    expect(bankOrder).toMatchObject({ payType: 'A', amountCents: order.total * 100, atmPayNo: d.account, state: 'pending' });
    expect(bankOrder.backendUrl).toBe(`${shop.url}/payments/sinopac/notify`);
    // The verified OrderCreate answer is kept with the attempt, and no key material with it.
    expect((attempt!.details as { bank?: unknown }).bank).toEqual({
      OrderNo: attempt!.trade_no,
      ShopNo: shop.config.sinopac!.shopNo,
      TSNo: bankOrder.tsNo,
      Amount: order.total * 100,
      Status: 'S',
      Description: 'S0000 – 處理成功',
      Param1: order.order_no,
      Param2: '',
      Param3: '',
      PayType: 'A',
      ATMParam: { AtmPayNo: d.account, WebAtmURL: bankOrder.webAtmUrl, OtpURL: bankOrder.otpUrl },
    });
    expect(attempt!.gateway_trade_id).toBe(bankOrder.tsNo);
    const stored = JSON.stringify(attempt!.details);
    for (const secret of [shop.config.sinopac!.hashA1, shop.config.sinopac!.hashA2, shop.config.sinopac!.hashB1, shop.config.sinopac!.hashB2, shop.config.sinopac!.keyId]) {
      expect(stored).not.toContain(secret);
    }

    // The reply: a Flex with bank code, virtual account, amount and deadline.
    const reply = lastReplyTo(shop, user);
    expect(reply).toHaveLength(1);
    expect(reply[0]).toMatchObject({ type: 'flex', altText: T.atmAlt(order.total, new Date(d.deadline)) });
    const flex = JSON.stringify(reply[0]);
    for (const s of [T.bankCode, '"807"', T.virtualAccount, d.account, T.amount, twd(order.total), T.deadline, taipeiTime(new Date(d.deadline))]) {
      expect(flex).toContain(s);
    }
    // The hold follows the bank's ATM deadline (plus the notification grace).
    const held = await orderRow(shop, order.id);
    expect(held.payment_method).toBe('sinopac-atm');
    expect(held.hold_expires_at.getTime()).toBeGreaterThanOrEqual(new Date(d.deadline).getTime());

    const before = await product(shop, 'TEA-001');
    const paid = shop.sinopac!.payAtm(attempt!.trade_no);
    expect(await paid.delivered).toBe(true);
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);

    const after = await product(shop, 'TEA-001');
    expect(after.stock_on_hand).toBe(before.stock_on_hand - 1);
    expect(after.stock_reserved).toBe(before.stock_reserved - 1);
    const reservations = await shop.c.db('reservations').where({ order_id: order.id }).select('status');
    expect(reservations.map((r) => r.status)).toEqual(['committed']);
    expect(await orderRow(shop, order.id)).toMatchObject({ status: 'paid', paid_amount: order.total, payment_method: 'sinopac-atm' });
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['paid']);

    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
    // Shopper: reply to cart, reply to checkout, reply to the tap, the receipt. Nothing else.
    expect(shop.line.deliveredTo(user)).toHaveLength(4);
    expect(shop.line.deliveredTo(user).at(-1)!.kind).toBe('push');
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(await shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).first()).toMatchObject({ outcome: 'paid' });
  });

  test("the owner's 退款 on a paid SinoPac order: told to refund in the bank's back office, nothing sent to the bank, nothing recorded", async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
    expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    const bankCalls = shop.sinopac!.requests.length;
    await settled(shop, await shop.say(OWNER, `退款 ${order.order_no}`));
    expect(lastReplyTo(shop, OWNER)).toEqual([{ type: 'text', text: T.ownerRefundNotCard }]);
    await quiet(shop);
    expect(shop.sinopac!.requests.length).toBe(bankCalls);
    expect(await count(shop.c, 'refunds', { order_id: order.id })).toBe(0);
    expect(await orderRow(shop, order.id)).toMatchObject({ status: 'paid', refunded_amount: 0 });
  });

  test('the same BackendURL notification five more times: one transition, one receipt, one owner notification', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
    const paid = shop.sinopac!.payAtm(attempt.trade_no);
    expect(await paid.delivered).toBe(true);
    await waitStatus(shop, order.id, 'paid');
    const again = Array.from({ length: 5 }, () => shop.sinopac!.notifyAgain(attempt.trade_no));
    for (const a of again) {
      expect(a.payToken).toBe(paid.payToken);
      expect(await a.delivered).toBe(true);
    }
    await quiet(shop);
    // Six BackendURL calls, all answered {"Status":"S"}; one recorded notification.
    expect(shop.sinopac!.notifications.filter((n) => n.orderNo === attempt.trade_no && n.ok)).toHaveLength(6);
    expect(await count(shop.c, 'payment_notifications', { dedupe_key: paid.payToken })).toBe(1);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  test('card: ReturnURL (browser form post) plus BackendURL: one transition, one receipt, one owner push; the page is zh-TW and says paid', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user, 'SNK-001', 2);
    const attempt = (await choose(shop, user, order, 'sinopac-card'))!;
    expect(attempt).toMatchObject({ status: 'pending', method: 'sinopac-card', amount: 900 });
    const url = (attempt.details as { url: string }).url;
    const reply = lastReplyTo(shop, user);
    expect(reply[0]).toMatchObject({ type: 'flex', altText: T.payLinkAlt('永豐 信用卡', order.total) });
    expect(JSON.stringify(reply[0])).toContain(JSON.stringify(url));
    expect(shop.sinopac!.getOrder(attempt.trade_no)).toMatchObject({ payType: 'C', cardPayUrl: url });
    expect((attempt.details as { bank?: unknown }).bank).toMatchObject({ OrderNo: attempt.trade_no, Status: 'S', PayType: 'C', Amount: 90000, CardParam: { CardPayURL: url } });

    const page = await cardBrowser(url, 'pay');
    expect(page.status).toBe(200);
    expect(page.contentType).toMatch(/text\/html/);
    expect(page.contentType).toMatch(/utf-8/i);
    expect(page.html).toContain('lang="zh-Hant-TW"');
    expect(page.html).toContain(PAGE.paidTitle);
    expect(page.html).toContain(PAGE.paidBody);

    await waitStatus(shop, order.id, 'paid');
    // The bank re-sends the BackendURL call; the browser posts the return form again (reload).
    for (let i = 0; i < 2; i++) expect(await shop.sinopac!.notifyAgain(attempt.trade_no).delivered).toBe(true);
    const reload = await fetch(`${shop.url}/payments/sinopac/return`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ShopNo: shop.config.sinopac!.shopNo, PayToken: page.payToken }).toString(),
    });
    expect(await reload.text()).toContain(PAGE.paidTitle);
    await quiet(shop);

    expect(await count(shop.c, 'payment_notifications', { dedupe_key: page.payToken })).toBe(1);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
    expect(await orderRow(shop, order.id)).toMatchObject({ status: 'paid', payment_method: 'sinopac-card', paid_amount: 900 });
  });

  test('OrderPayQuery answers HTTP 500 while confirming: the job retries, the order is paid once', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
    shop.sinopac!.injectFailures('OrderPayQuery', ['http500']);
    const paid = shop.sinopac!.payAtm(attempt.trade_no);
    expect(await paid.delivered).toBe(true);
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    const queries = shop.sinopac!.requests.filter((r) => r.service === 'OrderPayQuery' && r.message?.PayToken === paid.payToken);
    expect(queries.map((q) => q.injected ?? 'ok')).toEqual(['http500', 'ok']);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  test('OrderPayQuery answers outer Status F while confirming: the job asks again, the order is paid once', async () => {
    // The bank got {"Status":"S"} for its BackendURL call and will not notify again: giving up on
    // the first F would leave the money to reconciliation, 40 minutes later.
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
    shop.sinopac!.injectFailures('OrderPayQuery', ['statusF']);
    const paid = shop.sinopac!.payAtm(attempt.trade_no);
    expect(await paid.delivered).toBe(true);
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    const queries = shop.sinopac!.requests.filter((r) => r.service === 'OrderPayQuery' && r.message?.PayToken === paid.payToken);
    expect(queries.map((q) => q.injected ?? 'ok')).toEqual(['statusF', 'ok']);
    expect(shop.sinopac!.notifications.filter((n) => n.orderNo === attempt.trade_no)).toHaveLength(1);
    expect(await shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).first()).toMatchObject({ outcome: 'paid' });
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  describe('notifications that must change nothing', () => {
    let snapshot: { orders: unknown[]; events: number; stock: unknown[]; paidAttempts: number };
    const take = async () => ({
      orders: await shop.c.db('orders').orderBy('id').select('id', 'status', 'paid_amount'),
      events: await count(shop.c, 'order_events'),
      stock: await allStock(shop.c.db),
      paidAttempts: await count(shop.c, 'payment_attempts', { status: 'paid' }),
    });
    beforeEach(async () => {
      await quiet(shop);
      snapshot = await take();
    });
    afterEach(async () => {
      await quiet(shop);
      expect(await take()).toEqual(snapshot);
    });

    test('an unknown PayToken: answered and recorded, asked of the bank on every job attempt, closed unconfirmed with no state change, logged', async () => {
      const warn = jest.spyOn(shop.c.log, 'warn');
      const token = 'ab'.repeat(32);
      const res = await postNotify(shop, { ShopNo: shop.config.sinopac!.shopNo, PayToken: token });
      expect(res).toEqual({ status: 200, json: { Status: 'S' } });
      // The bank answers OrderPayQuery for a token it does not know with Status F: the job asks again
      // on every attempt (an F may be the bank's own hiccup), and the last one closes it unchanged.
      const n = await exhaustRetries(shop, token);
      expect(n.outcome).toBe('unconfirmed');
      const queries = shop.sinopac!.requests.filter((r) => r.service === 'OrderPayQuery' && r.message?.PayToken === token);
      expect(queries).toHaveLength(JOB_DEFAULTS.orders.attempts!);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ notificationId: n.id, status: 'F' }),
        'SinoPac OrderPayQuery never answered Status S; notification closed unconfirmed, reconciliation will check the trade',
      );
      warn.mockRestore();
    });

    test("another shop's ShopNo, or a malformed PayToken: rejected with Status F, nothing recorded, logged", async () => {
      const warn = jest.spyOn(shop.c.log, 'warn');
      const before = await count(shop.c, 'payment_notifications');
      const queries = shop.sinopac!.requests.length;
      const other = await postNotify(shop, { ShopNo: 'NA0999_001', PayToken: 'cd'.repeat(32) });
      expect(other.json).toEqual({ Status: 'F' });
      const badToken = await postNotify(shop, { ShopNo: shop.config.sinopac!.shopNo, PayToken: "x'; DROP TABLE orders; --" });
      expect(badToken.json).toEqual({ Status: 'F' });
      const noBody = await postNotify(shop, {});
      expect(noBody.json).toEqual({ Status: 'F' });
      expect(await count(shop.c, 'payment_notifications')).toBe(before);
      expect(shop.sinopac!.requests.length).toBe(queries);
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ shopNo: 'NA0999_001' }), 'SinoPac notification rejected');
      warn.mockRestore();
    });

    test('the bank reports another amount than our attempt: no state change, logged, owner alerted once', async () => {
      const user = newUserId();
      const order = await checkoutOrder(shop, user);
      const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
      // Our attempt now says NT$1 more than the bank order (680) will report.
      await shop.c.db('payment_attempts').where({ id: attempt.id }).update({ amount: attempt.amount + 1 });
      snapshot = await take();
      const error = jest.spyOn(shop.c.log, 'error');
      const paid = shop.sinopac!.payAtm(attempt.trade_no);
      expect(await paid.delivered).toBe(true);
      for (let i = 0; i < 3; i++) expect(await shop.sinopac!.notifyAgain(attempt.trade_no).delivered).toBe(true);
      await quiet(shop);
      expect(await shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).first()).toMatchObject({ outcome: 'mismatch' });
      expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['pending']);
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment', paid_amount: 0 });
      const alert = T.ownerMismatch('sinopac', attempt.trade_no, `金額不符（銀行 ${order.total}，訂單 ${order.total + 1}）`);
      expect(ownerTexts(shop).filter((t) => t === alert)).toHaveLength(1);
      expect(receiptsFor(shop, user, order)).toHaveLength(0);
      expect(error).toHaveBeenCalledWith(expect.objectContaining({ tradeNo: attempt.trade_no }), 'bank result does not match our attempt');
      error.mockRestore();
    });

    test('OrderPayQuery answers outer Status F with a TSResultContent that says S, on every attempt: never paid, asked again each time, closed unconfirmed', async () => {
      const user = newUserId();
      const order = await checkoutOrder(shop, user);
      const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
      snapshot = await take();
      const attempts = JOB_DEFAULTS.orders.attempts!;
      shop.sinopac!.injectFailures('OrderPayQuery', Array.from({ length: attempts }, () => 'statusFWithResult' as const));
      const paid = shop.sinopac!.payAtm(attempt.trade_no);
      expect(await paid.delivered).toBe(true);
      const n = await exhaustRetries(shop, paid.payToken);
      expect(n.outcome).toBe('unconfirmed');
      const queries = shop.sinopac!.requests.filter((r) => r.service === 'OrderPayQuery' && r.message?.PayToken === paid.payToken);
      expect(queries.map((q) => q.injected)).toEqual(Array.from({ length: attempts }, () => 'statusFWithResult'));
      expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['pending']);
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment', paid_amount: 0 });
      expect(receiptsFor(shop, user, order)).toHaveLength(0);
      expect(ownerPaidFor(shop, order)).toHaveLength(0);
    });

    test.each([
      ['names another shop', 'resultOtherShopNo'],
      ['names no shop (empty ShopNo)', 'resultNoShopNo'],
    ] as const)('the paid OrderPayQuery result %s: no state change, logged, owner alerted once', async (_label, failure) => {
      const user = newUserId();
      const order = await checkoutOrder(shop, user);
      const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
      snapshot = await take();
      const error = jest.spyOn(shop.c.log, 'error');
      shop.sinopac!.injectFailures('OrderPayQuery', [failure]);
      const paid = shop.sinopac!.payAtm(attempt.trade_no);
      expect(await paid.delivered).toBe(true);
      await quiet(shop);
      const query = shop.sinopac!.requests.filter((r) => r.service === 'OrderPayQuery' && r.message?.PayToken === paid.payToken);
      expect(query.map((q) => q.injected)).toEqual([failure]);
      expect(await shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).first()).toMatchObject({ outcome: 'mismatch' });
      expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['pending']);
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment', paid_amount: 0 });
      expect(ownerTexts(shop).filter((t) => t === T.ownerMismatch('sinopac', attempt.trade_no, '商店代號不符'))).toHaveLength(1);
      expect(receiptsFor(shop, user, order)).toHaveLength(0);
      expect(error).toHaveBeenCalledWith(expect.objectContaining({ tradeNo: attempt.trade_no, problems: ['merchant'] }), 'bank result does not match our attempt');
      error.mockRestore();
    });

    test('the bank reports another pay type than our attempt: no state change, owner alerted', async () => {
      const user = newUserId();
      const order = await checkoutOrder(shop, user);
      const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
      await shop.c.db('payment_attempts').where({ id: attempt.id }).update({ method: 'sinopac-card' });
      snapshot = await take();
      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
      await quiet(shop);
      expect(ownerTexts(shop)).toContain(T.ownerMismatch('sinopac', attempt.trade_no, '付款方式不符'));
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });
      expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['pending']);
    });

    test('the query result names an OrderNo that is none of ours (a bank order the shop never made): no state change, logged, owner alerted', async () => {
      const warn = jest.spyOn(shop.c.log, 'warn');
      const client = new SinopacClient({ config: shop.config.sinopac!, timeoutMs: 2000 });
      const foreign = `SX${Date.now().toString(36).toUpperCase()}`;
      await client.orderCreate({
        orderNo: foreign,
        amount: 680,
        prdtName: '不是本店的訂單',
        payType: 'A',
        returnUrl: `${shop.url}/payments/sinopac/return`,
        backendUrl: `${shop.url}/payments/sinopac/notify`,
        atm: { expireDate: atmExpireDate(new Date(Date.now() + 3 * 86_400_000), new Date()).expireDate },
      });
      const paid = shop.sinopac!.payAtm(foreign);
      expect(await paid.delivered).toBe(true);
      await quiet(shop);
      expect(await shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).first()).toMatchObject({ outcome: 'unknown-trade' });
      expect(ownerTexts(shop).filter((t) => t === T.ownerMismatch('sinopac', foreign, '找不到對應的訂單'))).toHaveLength(1);
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ tradeNo: foreign }), 'bank result for an unknown trade');
      warn.mockRestore();
    });
  });

  describe('late payment (after the order expired)', () => {
    async function expire(order: Order): Promise<void> {
      await shop.c.db('orders').where({ id: order.id }).update({ hold_expires_at: shop.c.db.raw("now() - interval '1 second'") });
      await shop.c.db('reservations').where({ order_id: order.id }).update({ expires_at: shop.c.db.raw("now() - interval '1 second'") });
      await runExpiry(shop.c, order.id); // the expiry sweeper may get there first: either way it expires once
      await waitStatus(shop, order.id, 'expired');
      await quiet(shop);
    }

    test('stock still there: re-reserved, order paid, the receipt says late', async () => {
      const user = newUserId();
      const order = await checkoutOrder(shop, user);
      const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
      const beforeExpiry = await product(shop, 'TEA-001');
      await expire(order);
      expect(shop.line.textsTo(user)).toContain(T.expiredNotice(order.order_no));
      const expiredStock = await product(shop, 'TEA-001');
      expect(expiredStock.stock_reserved).toBe(beforeExpiry.stock_reserved - 1);

      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
      await waitStatus(shop, order.id, 'paid');
      await quiet(shop);
      const after = await product(shop, 'TEA-001');
      expect(after.stock_on_hand).toBe(expiredStock.stock_on_hand - 1);
      expect(after.stock_reserved).toBe(expiredStock.stock_reserved);
      const events = await shop.c.db('order_events').where({ order_id: order.id }).orderBy('id').select('from_status', 'to_status', 'reason');
      expect(events.map((e) => e.to_status)).toEqual(['pending_payment', 'expired', 'paid']);
      expect(events[2].reason).toBe('late payment, stock re-reserved');
      const receipts = receiptsFor(shop, user, order);
      expect(receipts).toHaveLength(1);
      expect(JSON.stringify(receipts[0])).toContain(T.lateRereserved);
      const owner = ownerPaidFor(shop, order);
      expect(owner).toHaveLength(1);
      expect(JSON.stringify(owner[0])).toContain(T.lateRereserved);
    });

    test('stock gone (another shopper bought the last unit): paid_no_stock, shopper told, owner alerted to refund', async () => {
      // SNK-003 is used by this test only: one unit left.
      await setStock(shop.c.db, 'SNK-003', 1);
      const late = newUserId();
      const order = await checkoutOrder(shop, late, 'SNK-003', 1);
      const attempt = (await choose(shop, late, order, 'sinopac-atm'))!;
      await expire(order);

      const other = newUserId();
      const otherOrder = await checkoutOrder(shop, other, 'SNK-003', 1);
      const otherAttempt = (await choose(shop, other, otherOrder, 'sinopac-card'))!;
      expect(await shop.sinopac!.payCard(otherAttempt.trade_no).delivered).toBe(true);
      await waitStatus(shop, otherOrder.id, 'paid');

      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
      await waitStatus(shop, order.id, 'paid_no_stock');
      await quiet(shop);
      expect(await product(shop, 'SNK-003')).toMatchObject({ stock_on_hand: 0, stock_reserved: 0 });
      expect(await orderRow(shop, order.id)).toMatchObject({ paid_amount: order.total, payment_method: 'sinopac-atm' });
      expect(shop.line.textsTo(late).filter((t) => t === T.paidNoStockShopper(order.order_no))).toHaveLength(1);
      expect(receiptsFor(shop, late, order)).toHaveLength(0);
      expect(ownerTexts(shop).filter((t) => t === T.ownerPaidNoStock(order.order_no, order.total))).toHaveLength(1);
      expect(ownerPaidFor(shop, order)).toHaveLength(0);
      expect(await paidTransitions(shop, order.id)).toBe(1);
      // A repeated notification changes nothing.
      expect(await shop.sinopac!.notifyAgain(attempt.trade_no).delivered).toBe(true);
      await quiet(shop);
      expect(await paidTransitions(shop, order.id)).toBe(1);
      expect(ownerTexts(shop).filter((t) => t === T.ownerPaidNoStock(order.order_no, order.total))).toHaveLength(1);
    });
  });

  test.each(['timeout', 'http500', 'badSign', 'statusF'] as const)(
    'OrderCreate fails (%s): clear zh-TW message with payment buttons, order still payable, tapping again works, one pending attempt',
    async (failure) => {
      const user = newUserId();
      const order = await checkoutOrder(shop, user, 'SNK-002', 1);
      shop.sinopac!.injectFailures('OrderCreate', [failure]);
      const failed = (await choose(shop, user, order, 'sinopac-atm'))!;
      expect(failed.status).toBe('failed');
      const reply = lastReplyTo(shop, user);
      expect(reply[0]).toEqual({ type: 'text', text: T.paymentCreateFailed });
      expect(reply[1]).toMatchObject({ type: 'flex', altText: T.orderDetailAlt(order.order_no, '待付款') });
      const buttons = JSON.stringify(reply[1]);
      expect(buttons).toContain(`action=pay&o=${order.order_no}&m=sinopac-atm`);
      expect(buttons).toContain(`action=pay&o=${order.order_no}&m=sinopac-card`);
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });

      const ok = (await choose(shop, user, order, 'sinopac-atm'))!;
      expect(ok).toMatchObject({ status: 'pending', method: 'sinopac-atm' });
      expect(ok.trade_no).not.toBe(failed.trade_no);
      expect(lastReplyTo(shop, user)[0]).toMatchObject({ type: 'flex', altText: expect.stringContaining('ATM 轉帳資訊') });
      const attempts = await attemptsOf(shop, order.id);
      expect(attempts.map((a) => a.status)).toEqual(['failed', 'pending']);

      expect(await shop.sinopac!.payAtm(ok.trade_no).delivered).toBe(true);
      await waitStatus(shop, order.id, 'paid');
      await quiet(shop);
      expect(receiptsFor(shop, user, order)).toHaveLength(1);
      expect(await paidTransitions(shop, order.id)).toBe(1);
    },
  );

  test('switching method supersedes the first attempt; the bank still paying the superseded ATM pays the order once, the card money is flagged', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const atm = (await choose(shop, user, order, 'sinopac-atm'))!;
    const card = (await choose(shop, user, order, 'sinopac-card'))!;
    expect((await attemptsOf(shop, order.id)).map((a) => [a.method, a.status])).toEqual([
      ['sinopac-atm', 'superseded'],
      ['sinopac-card', 'pending'],
    ]);
    expect(lastReplyTo(shop, user)[0]).toMatchObject({ altText: T.payLinkAlt('永豐 信用卡', order.total) });
    expect(await orderRow(shop, order.id)).toMatchObject({ payment_method: 'sinopac-card' });

    // The shopper had already written down the account and transfers anyway: money is real.
    expect(await shop.sinopac!.payAtm(atm.trade_no).delivered).toBe(true);
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    expect((await attemptsOf(shop, order.id)).map((a) => [a.method, a.status])).toEqual([
      ['sinopac-atm', 'paid'],
      ['sinopac-card', 'superseded'],
    ]);
    expect(await orderRow(shop, order.id)).toMatchObject({ payment_method: 'sinopac-atm', paid_amount: order.total });

    // And then pays the card page too: not a second "paid", the owner is asked to refund.
    expect(await shop.sinopac!.payCard(card.trade_no).delivered).toBe(true);
    await quiet(shop);
    const [, cardAfter] = await attemptsOf(shop, order.id);
    expect(cardAfter).toMatchObject({ status: 'superseded', details: expect.objectContaining({ doublePaid: true }) });
    expect(ownerTexts(shop).filter((t) => t.includes(card.trade_no) && t.includes('重複付款'))).toHaveLength(1);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  test('a failed card payment: the return page offers 重新付款 → /payments/retry/:ref → 303 to a fresh CardPayURL that works', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const first = (await choose(shop, user, order, 'sinopac-card'))!;
    const page = await cardBrowser((first.details as { url: string }).url, 'fail');
    expect(page.status).toBe(200);
    expect(page.html).toContain('lang="zh-Hant-TW"');
    expect(page.html).toContain(PAGE.failedTitle);
    expect(page.html).toContain(PAGE.retryPay);
    const retryHref = unescapeHtml(/<a class="btn" href="([^"]+)">/.exec(page.html)![1]!);
    expect(retryHref).toBe(`${shop.url}/payments/retry/${first.public_ref}`);

    // BackendURL brought the same failure: the attempt failed, the shopper is told once.
    await quiet(shop);
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['failed']);
    expect(shop.line.textsTo(user).filter((t) => t === T.paymentFailedShopper(order.order_no))).toHaveLength(1);
    expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });

    const retry = await fetch(retryHref, { redirect: 'manual' });
    expect(retry.status).toBe(303);
    const location = retry.headers.get('location')!;
    const attempts = await attemptsOf(shop, order.id);
    expect(attempts.map((a) => [a.method, a.status])).toEqual([
      ['sinopac-card', 'failed'],
      ['sinopac-card', 'pending'],
    ]);
    expect(location).toBe((attempts[1]!.details as { url: string }).url);
    expect(location).not.toBe((first.details as { url: string }).url);

    const paidPage = await cardBrowser(location, 'pay');
    expect(paidPage.html).toContain(PAGE.paidTitle);
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);

    // The old link on a paid order does not start another payment.
    const stale = await fetch(retryHref, { redirect: 'manual' });
    expect(stale.status).toBe(200);
    expect(await stale.text()).toContain(PAGE.alreadyPaidTitle);
    expect(await count(shop.c, 'payment_attempts', { order_id: order.id })).toBe(2);
  });

  test('invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

describe('SinoPac reconciliation (a notification that never arrives)', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({
      label: 'sinopac_reconcile',
      sinopac: true,
      owners: [OWNER],
      env: { RECONCILE_AFTER_MINUTES: '0.001', RECONCILE_EVERY_MINUTES: '0.01' },
    });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('an ATM payment the bank never notifies is found by the scheduled OrderQuery sweep: paid once, one receipt, one owner push', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
    const before = await product(shop, 'TEA-001');
    const paid = shop.sinopac!.payAtm(attempt.trade_no, { notify: false });
    expect(paid.delivered).toBeNull();
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    expect(shop.sinopac!.notifications.filter((n) => n.orderNo === attempt.trade_no)).toHaveLength(0);
    expect(await count(shop.c, 'payment_notifications')).toBe(0);
    expect(
      shop.sinopac!.requests.some((r) => r.service === 'OrderQuery' && r.message?.OrderNo === attempt.trade_no && r.message?.PayType === 'A'),
    ).toBe(true);
    const after = await product(shop, 'TEA-001');
    expect(after.stock_on_hand).toBe(before.stock_on_hand - 1);
    expect(after.stock_reserved).toBe(before.stock_reserved - 1);
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['paid']);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);

    // Further sweeps leave it alone.
    const checkCount = async () => Number((await shop.c.db('payment_attempts').where({ order_id: order.id }).first('check_count'))!.check_count);
    const checks = await checkCount();
    await new Promise((r) => setTimeout(r, 1500));
    await quiet(shop);
    expect(await checkCount()).toBe(checks);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
  });

  test('a card payment without notification is found too; an unpaid attempt is checked and stays pending', async () => {
    const payer = newUserId();
    const order = await checkoutOrder(shop, payer, 'SNK-001', 1);
    const card = (await choose(shop, payer, order, 'sinopac-card'))!;
    const waiter = newUserId();
    const unpaid = await checkoutOrder(shop, waiter, 'SNK-002', 1);
    const atm = (await choose(shop, waiter, unpaid, 'sinopac-atm'))!;

    shop.sinopac!.payCard(card.trade_no, { notify: false });
    await waitStatus(shop, order.id, 'paid');
    await waitFor(async () => {
      const a = await shop.c.db('payment_attempts').where({ id: atm.id }).first('check_count');
      return Number(a!.check_count) >= 2;
    }, 'the unpaid attempt to be checked twice');
    await quiet(shop);
    expect(receiptsFor(shop, payer, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
    expect(await orderRow(shop, unpaid.id)).toMatchObject({ status: 'pending_payment' });
    expect((await attemptsOf(shop, unpaid.id)).map((a) => a.status)).toEqual(['pending']);
    expect(receiptsFor(shop, waiter, unpaid)).toHaveLength(0);
  });

  test('a card authorised but not captured (its OrderQuery row exists, with a PayDate, but not under PayFlag=Y) is not paid by reconciliation; once captured it is, once', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user, 'SNK-001', 1);
    const card = (await choose(shop, user, order, 'sinopac-card'))!;
    const auth = shop.sinopac!.payCard(card.trade_no, { capture: false });
    expect(auth.delivered).toBeNull();
    expect(shop.sinopac!.getOrder(card.trade_no)).toMatchObject({ state: 'paid', captured: false, payDate: expect.stringMatching(/^\d{12}$/) });
    const checks = async () => Number((await shop.c.db('payment_attempts').where({ id: card.id }).first('check_count'))!.check_count);
    await waitFor(async () => (await checks()) >= 2, 'the authorised card to be checked twice');
    expect(shop.sinopac!.requests.some((r) => r.service === 'OrderQuery' && r.message?.OrderNo === card.trade_no && r.message?.PayFlag === 'Y')).toBe(true);
    expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment', paid_amount: 0 });
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['pending']);
    expect(receiptsFor(shop, user, order)).toHaveLength(0);

    shop.sinopac!.captureCard(card.trade_no, { notify: false });
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['paid']);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  test('the shopper switched ATM → card, then transferred to the old virtual account (still valid at the bank) and the notification was lost: reconciliation still finds the money', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const atm = (await choose(shop, user, order, 'sinopac-atm'))!;
    await choose(shop, user, order, 'sinopac-card');
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['superseded', 'pending']);
    shop.sinopac!.payAtm(atm.trade_no, { notify: false });
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    expect((await attemptsOf(shop, order.id)).map((a) => [a.method, a.status])).toEqual([
      ['sinopac-atm', 'paid'],
      ['sinopac-card', 'superseded'],
    ]);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
    expect(await paidTransitions(shop, order.id)).toBe(1);
  });

  test('an OrderPayQuery answer whose Sign does not verify is not believed: owner alerted, nothing changed by it; reconciliation then pays the order once', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user);
    const attempt = (await choose(shop, user, order, 'sinopac-atm'))!;
    shop.sinopac!.injectFailures('OrderPayQuery', ['badSign']);
    const paid = shop.sinopac!.payAtm(attempt.trade_no);
    expect(await paid.delivered).toBe(true);
    await waitFor(
      () => shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).whereNotNull('processed_at').first(),
      'the notification to be closed',
    );
    expect(await shop.c.db('payment_notifications').where({ dedupe_key: paid.payToken }).first()).toMatchObject({ outcome: 'mismatch' });
    await waitFor(() => ownerTexts(shop).some((t) => t.includes('BAD_SIGNATURE')), 'the owner alert');
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    const events = await shop.c.db('order_events').where({ order_id: order.id, to_status: 'paid' }).select('details');
    expect(events).toHaveLength(1);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  test('a card declined once (attempt failed) and then paid on the same bank page, with that notification lost: reconciliation finds it', async () => {
    const user = newUserId();
    const order = await checkoutOrder(shop, user, 'SNK-001', 1);
    const card = (await choose(shop, user, order, 'sinopac-card'))!;
    expect(await shop.sinopac!.failCard(card.trade_no).delivered).toBe(true);
    await waitFor(async () => (await attemptsOf(shop, order.id))[0]!.status === 'failed', 'the decline to be applied');
    expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });
    // The bank page offers another try for the same bank order; this time it succeeds, silently.
    shop.sinopac!.payCard(card.trade_no, { notify: false });
    await waitStatus(shop, order.id, 'paid');
    await quiet(shop);
    expect((await attemptsOf(shop, order.id)).map((a) => a.status)).toEqual(['paid']);
    expect(receiptsFor(shop, user, order)).toHaveLength(1);
    expect(ownerPaidFor(shop, order)).toHaveLength(1);
  });

  test('invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
