import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ecpayPauseKey } from '../../src/data/ecpay-pause';
import { checkInvariants } from '../../src/domain/invariants';
import type { BankFacts } from '../../src/domain/payments';
import { buildGateways } from '../../src/gateways/build-gateways';
import { checkMacValue } from '../../src/gateways/ecpay/check-mac-value';
import { formatEcpayDateTime, MemoryCallGate } from '../../src/gateways/ecpay/ecpay-client';
import { parseEcpayDate } from '../../src/gateways/ecpay/ecpay-gateway';
import type { SandboxNotification } from '../../src/sandbox/ecpay-sandbox';
import { silentLogger } from '../../src/logger';
import { taipeiTime } from '../../src/texts';
import { count, ECPAY_MERCHANT, newUserId, settled, startShop, taipeiAt, TestShop, waitFor } from '../helpers/shop';
import { completeDelivery } from '../helpers/orders';
import { setStock, stockOf as stockTotals } from '../helpers/stock';

/**
 * ECPay AIO end to end, over HTTP: LINE webhook → order → pay-link Flex → our checkout page →
 * the form posted to the ECPay sandbox (which checks CheckMacValue) → ReturnURL / PaymentInfoURL
 * back to the shop → job → QueryTradeInfo → order paid, receipts and owner pushes. Real PostgreSQL
 * and Redis; ECPay and LINE are the local sandboxes.
 */

/** The platform stage merchant (spec §1.2): a real ECPay key pair that is not ours. */
const OTHER_MERCHANT = { merchantId: '3002599', hashKey: 'spPjZn66i0OhqJsQ', hashIv: 'hT5OJckN45isQTTs' };

const GRACE_MS = 10 * 60_000;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Msg = { type: string; altText?: string; text?: string; contents?: unknown };

// ------------------------------------------------------------------------------------------------
// Helpers

async function say(shop: TestShop, user: string, text: string): Promise<void> {
  await settled(shop, await shop.say(user, text));
}

async function tap(shop: TestShop, user: string, data: string): Promise<void> {
  await settled(shop, await shop.tap(user, data));
}

function messagesTo(shop: TestShop, user: string): Msg[] {
  return shop.line.deliveredTo(user).flatMap((d) => d.messages as Msg[]);
}

function findUris(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) findUris(n, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.type === 'uri' && typeof o.uri === 'string') out.push(o.uri);
    for (const v of Object.values(o)) findUris(v, out);
  }
  return out;
}

interface Order {
  id: number;
  order_no: string;
  status: string;
  total: number;
  paid_amount: number;
  refunded_amount: number;
  payment_method: string | null;
  hold_expires_at: Date;
}

async function orderById(shop: TestShop, id: number): Promise<Order> {
  return shop.c.db('orders').where({ id }).first();
}

async function placeOrder(shop: TestShop, user: string, sku = 'TEA-001', qty = 1): Promise<Order> {
  await say(shop, user, `cart ${sku} ${qty}`);
  await say(shop, user, '結帳');
  const order = await shop.c.db('orders').where({ line_user_id: user }).orderBy('id', 'desc').first();
  expect(order).toBeDefined();
  expect(order.status).toBe('pending_payment');
  return completeDelivery(shop, order);
}

/** Taps a payment method and returns the checkout-page URL from the pay-link Flex. */
async function choose(shop: TestShop, user: string, order: Order, method: 'ecpay-credit' | 'ecpay-atm' | 'ecpay-cvs'): Promise<string> {
  const before = messagesTo(shop, user).length;
  await tap(shop, user, `action=pay&o=${order.order_no}&m=${method}`);
  const replies = messagesTo(shop, user).slice(before);
  const link = replies.find((m) => m.type === 'flex' && /請點按鈕付款/.test(m.altText ?? ''));
  expect(link).toBeDefined();
  expect(link!.altText).toContain(`NT$${order.total.toLocaleString('en-US')}`);
  const uris = findUris(link!.contents);
  const url = uris.find((u) => u.startsWith(`${shop.url}/payments/ecpay/checkout/`));
  expect(url).toBeDefined();
  // The reference is unguessable: 18 random bytes, base64url.
  expect(url!.slice(`${shop.url}/payments/ecpay/checkout/`.length)).toMatch(/^[A-Za-z0-9_-]{24}$/);
  return url!;
}

function unescapeHtml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

interface CheckoutPage {
  status: number;
  contentType: string;
  cacheControl: string;
  html: string;
}

async function getPage(url: string): Promise<CheckoutPage> {
  const res = await fetch(url, { redirect: 'manual' });
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    cacheControl: res.headers.get('cache-control') ?? '',
    html: await res.text(),
  };
}

/** The auto-submit form as a browser sees it: action and the (un-escaped) hidden inputs. */
function parseForm(html: string): { action: string; fields: Record<string, string>; rawValues: string[] } {
  const form = /<form id="ecpay-checkout" method="post" action="([^"]*)"/.exec(html);
  if (!form) throw new Error('no checkout form in page');
  const fields: Record<string, string> = {};
  const rawValues: string[] = [];
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    fields[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
    rawValues.push(m[2]!);
  }
  return { action: unescapeHtml(form[1]!), fields, rawValues };
}

/** Posts a form the way the shopper's browser does (application/x-www-form-urlencoded, UTF-8). */
async function browserPost(url: string, fields: Record<string, string>): Promise<{ status: number; html: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
  return { status: res.status, html: await res.text() };
}

/** A server-to-server callback posted by the test itself (as a forger would). */
async function postCallback(shop: TestShop, path: 'notify' | 'payment-info', fields: Record<string, string>) {
  const res = await fetch(`${shop.url}/payments/ecpay/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

function messageCode(html: string): string | undefined {
  return /<dd id="message-code">([^<]*)<\/dd>/.exec(html)?.[1];
}

function ddText(html: string, id: string): string | undefined {
  const m = new RegExp(`<dd id="${id}">([^<]*)</dd>`).exec(html);
  return m ? unescapeHtml(m[1]!) : undefined;
}

/** Opens the checkout link, checks the page is a form, posts it to the sandbox; returns the MerchantTradeNo. */
async function checkoutAtSandbox(shop: TestShop, url: string): Promise<{ tradeNo: string; fields: Record<string, string>; sandboxHtml: string }> {
  const page = await getPage(url);
  expect(page.status).toBe(200);
  const { action, fields } = parseForm(page.html);
  expect(action).toBe(`${shop.ecpay!.url}/Cashier/AioCheckOut/V5`);
  const res = await browserPost(action, fields);
  expect(res.status).toBe(200);
  expect(messageCode(res.html)).toBeUndefined();
  expect(ddText(res.html, 'merchant-trade-no')).toBe(fields.MerchantTradeNo);
  return { tradeNo: fields.MerchantTradeNo!, fields, sandboxHtml: res.html };
}

const receiptsFor = (shop: TestShop, user: string, orderNo: string) =>
  shop.line.textsTo(user).filter((t) => t.startsWith(`已收到付款：訂單 ${orderNo}，`));
const ownerPaidFor = (shop: TestShop, owner: string, orderNo: string) =>
  shop.line.textsTo(owner).filter((t) => t.startsWith(`💰 新付款：訂單 ${orderNo}，`));

/** Nothing in flight: sandbox deliveries done, every notification and refund processed, outbox empty. */
/**
 * A proxy in front of the ECPay sandbox. `intercept` sees each request before it is forwarded:
 * 'forward' passes it on; 'drop-answer' forwards it (ECPay acts) and then cuts the connection before
 * the answer; a status answers that instead, without forwarding.
 */
async function ecpayProxy(
  shop: TestShop,
  intercept: (path: string, body: string) => 'forward' | 'drop-answer' | { status: number; body: string },
): Promise<{ url: string; close(): Promise<void> }> {
  const proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const what = intercept(req.url ?? '', body.toString());
        if (typeof what === 'object') {
          res.writeHead(what.status, { 'content-type': 'text/html' }).end(what.body);
          return;
        }
        const up = await fetch(`${shop.ecpay!.url}${req.url}`, {
          method: req.method,
          headers: { 'content-type': String(req.headers['content-type'] ?? 'application/x-www-form-urlencoded') },
          body,
        });
        const text = await up.text();
        if (what === 'drop-answer') {
          req.socket.destroy();
          return;
        }
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'text/html' }).end(text);
      })();
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        proxy.close(() => r());
        proxy.closeAllConnections();
      }),
  };
}

const isDoActionR = (path: string, body: string) => path === '/CreditDetail/DoAction' && /(?:^|&)Action=R(?:&|$)/.test(body);

async function quiet(shop: TestShop): Promise<void> {
  await shop.ecpay!.idle();
  await waitFor(async () => {
    const [n] = await shop.c.db('payment_notifications').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
    // A refund whose outcome is unknown stays pending on purpose (the owner checks with the bank).
    const [r] = await shop.c.db('refunds').where({ status: 'pending' }).whereRaw("coalesce(gateway_response->>'outcome', '') <> 'unknown'").count<{ n: number }[]>({ n: '*' });
    const [o] = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(n!.n) + Number(r!.n) + Number(o!.n) === 0;
  }, 'payments and deliveries to settle');
}

async function paidEvents(shop: TestShop, orderId: number): Promise<number> {
  return count(shop.c, 'order_events', { order_id: orderId, to_status: 'paid' });
}

const stockOf = (shop: TestShop, sku: string) => stockTotals(shop.c.db, sku);

/** A signed ReturnURL body for a trade, in the shape the sandbox (and ECPay) sends. */
function returnBody(merchant: { merchantId: string; hashKey: string; hashIv: string }, f: Record<string, string>): Record<string, string> {
  const fields: Record<string, string> = {
    MerchantID: merchant.merchantId,
    StoreID: '',
    RtnCode: '1',
    RtnMsg: '交易成功',
    PaymentDate: formatEcpayDateTime(new Date()),
    PaymentType: 'Credit_CreditCard',
    PaymentTypeChargeFee: '19',
    TradeDate: formatEcpayDateTime(new Date()),
    SimulatePaid: '0',
    CustomField1: '',
    CustomField2: '',
    CustomField3: '',
    CustomField4: '',
    ...f,
  };
  return { ...fields, CheckMacValue: checkMacValue(fields, merchant.hashKey, merchant.hashIv) };
}

/** A signed PaymentInfoURL body (spec §8), as ECPay would post it. */
function paymentInfoBody(f: Record<string, string>): Record<string, string> {
  const fields: Record<string, string> = {
    MerchantID: ECPAY_MERCHANT.merchantId,
    StoreID: '',
    TradeDate: formatEcpayDateTime(new Date()),
    CustomField1: '',
    CustomField2: '',
    CustomField3: '',
    CustomField4: '',
    ...f,
  };
  return { ...fields, CheckMacValue: checkMacValue(fields, ECPAY_MERCHANT.hashKey, ECPAY_MERCHANT.hashIv) };
}

/** A full credit-card payment through the checkout page and the sandbox. */
async function paidCreditOrder(shop: TestShop, user: string): Promise<{ order: Order; tradeNo: string; checkoutUrl: string; first: SandboxNotification }> {
  const order = await placeOrder(shop, user);
  const checkoutUrl = await choose(shop, user, order, 'ecpay-credit');
  const { tradeNo } = await checkoutAtSandbox(shop, checkoutUrl);
  await shop.ecpay!.pay(tradeNo);
  const first = shop.ecpay!.notifications.filter((n) => n.merchantTradeNo === tradeNo && n.kind === 'ReturnURL')[0]!;
  await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
  await quiet(shop);
  expect((await orderById(shop, order.id)).status).toBe('paid');
  return { order, tradeNo, checkoutUrl, first };
}

// ------------------------------------------------------------------------------------------------

describe('ECPay AIO end to end: checkout page, sandbox, callbacks, refunds', () => {
  let shop: TestShop;
  const owner = newUserId();

  beforeAll(async () => {
    shop = await startShop({ label: 'ecpay-flow', ecpay: true, owners: [owner] });
    // ECPay's side of these tests happens on a morning in Taipei: card payments made here stay
    // uncaptured (ECPay captures at 20:15), and no refund falls in the 20:15–20:30 window.
    shop.ecpayClock.set(taipeiAt('10:00'));
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('credit card: pay-link Flex → auto-submit checkout page → sandbox verifies the form → pay → ReturnURL → paid once', async () => {
    const user = newUserId();
    const stockBefore = await stockOf(shop, 'TEA-001');
    const order = await placeOrder(shop, user);
    expect(order.total).toBe(680);
    expect(await stockOf(shop, 'TEA-001')).toEqual({ ...stockBefore, stock_reserved: stockBefore.stock_reserved + 1 });

    const url = await choose(shop, user, order, 'ecpay-credit');
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id }).first();
    expect(attempt).toMatchObject({ provider: 'ecpay', method: 'ecpay-credit', status: 'pending', amount: 680 });

    const before = Math.floor(Date.now() / 1000) * 1000;
    const page = await getPage(url);
    const after = Date.now();
    expect(page.status).toBe(200);
    expect(page.contentType).toBe('text/html; charset=utf-8');
    expect(page.cacheControl).toBe('no-store');
    expect(page.html).toContain('<meta charset="utf-8">');
    expect(page.html).toMatch(/<script>document\.getElementById\('ecpay-checkout'\)\.submit\(\);<\/script>/);
    // Only the computed MAC leaves the server, never the key or IV.
    expect(page.html).not.toContain(ECPAY_MERCHANT.hashKey);
    expect(page.html).not.toContain(ECPAY_MERCHANT.hashIv);

    const { action, fields, rawValues } = parseForm(page.html);
    expect(action).toBe(`${shop.ecpay!.url}/Cashier/AioCheckOut/V5`);
    // Every value is HTML-escaped: no raw quote, angle bracket or bare ampersand inside an attribute.
    for (const v of rawValues) expect(v).toMatch(/^(?:[^"<>&]|&(?:amp|quot|#39|lt|gt);)*$/);
    expect(fields).toMatchObject({
      MerchantID: ECPAY_MERCHANT.merchantId,
      MerchantTradeNo: attempt.trade_no,
      PaymentType: 'aio',
      TotalAmount: String(order.total),
      ChoosePayment: 'Credit',
      EncryptType: '1',
      ReturnURL: `${shop.url}/payments/ecpay/notify`,
      OrderResultURL: `${shop.url}/payments/ecpay/result`,
      ClientBackURL: `${shop.url}/payments/ecpay/back`,
      CustomField1: order.order_no,
    });
    expect(fields.PaymentInfoURL).toBeUndefined();
    expect(fields.MerchantTradeNo).toMatch(/^[A-Za-z0-9]{1,20}$/);
    expect(fields.ItemName).toBe('阿里山高山烏龍茶（150g） x1');
    expect(fields.TradeDesc).toMatch(/^[A-Za-z0-9 .,()_-]+$/);
    expect(fields.CheckMacValue).toBe(checkMacValue(Object.fromEntries(Object.entries(fields).filter(([k]) => k !== 'CheckMacValue')), ECPAY_MERCHANT.hashKey, ECPAY_MERCHANT.hashIv));
    // MerchantTradeDate is Taipei wall-clock time of the page load (UTC would be 8 hours off).
    expect(fields.MerchantTradeDate).toMatch(/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}$/);
    const tradeDate = parseEcpayDate(fields.MerchantTradeDate!).getTime();
    expect(tradeDate).toBeGreaterThanOrEqual(before);
    expect(tradeDate).toBeLessThanOrEqual(after);

    // The browser posts the form to ECPay; the sandbox checks the CheckMacValue and shows its cashier.
    const cashier = await browserPost(action, fields);
    expect(cashier.status).toBe(200);
    expect(messageCode(cashier.html)).toBeUndefined();
    expect(cashier.html).toContain('信用卡付款');
    expect(ddText(cashier.html, 'merchant-trade-no')).toBe(fields.MerchantTradeNo);
    expect(ddText(cashier.html, 'amount')).toBe('NT$ 680');
    const created = shop.ecpay!.getTrade(fields.MerchantTradeNo!)!;
    expect(created.checkoutFields).toEqual(fields);
    expect(created.totalAmount).toBe(680);

    const trade = await shop.ecpay!.pay(fields.MerchantTradeNo!);
    const first = shop.ecpay!.notifications.find((n) => n.merchantTradeNo === trade.merchantTradeNo && n.kind === 'ReturnURL')!;
    expect(first.url).toBe(`${shop.url}/payments/ecpay/notify`);
    expect(first.status).toBe(200);
    expect(first.body).toBe('1|OK');

    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt to the shopper');
    await waitFor(() => ownerPaidFor(shop, owner, order.order_no).length > 0, 'owner notification');
    await quiet(shop);

    const paid = await orderById(shop, order.id);
    expect(paid).toMatchObject({ status: 'paid', paid_amount: 680, payment_method: 'ecpay-credit' });
    expect(await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).toMatchObject({ status: 'paid', gateway_trade_id: trade.tradeNo });
    expect(await shop.c.db('reservations').where({ order_id: order.id }).pluck('status')).toEqual(['committed']);
    expect(await stockOf(shop, 'TEA-001')).toEqual({ stock_on_hand: stockBefore.stock_on_hand - 1, stock_reserved: stockBefore.stock_reserved });
    expect(await shop.c.db('payment_notifications').where({ trade_no: trade.merchantTradeNo }).pluck('outcome')).toEqual(['paid']);
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(ownerPaidFor(shop, owner, order.order_no)).toHaveLength(1);
    expect(await paidEvents(shop, order.id)).toBe(1);
    // The receipt is a Flex message naming the method and amount.
    const receipt = messagesTo(shop, user).find((m) => m.altText?.startsWith(`已收到付款：訂單 ${order.order_no}`))!;
    expect(receipt.type).toBe('flex');
    expect(JSON.stringify(receipt.contents)).toContain('綠界 信用卡');
  });

  test('the same ReturnURL delivered again and again: one transition, one receipt, one owner push, every delivery answered 1|OK', async () => {
    const user = newUserId();
    const { order, tradeNo, first } = await paidCreditOrder(shop, user);
    // ECPay's re-sends carry RtnMsg=paid; a byte-identical replay of the first delivery too.
    for (let i = 0; i < 5; i++) {
      const n = await shop.ecpay!.notifyAgain(tradeNo);
      expect(n.fields.RtnMsg).toBe('paid');
      expect(n.status).toBe(200);
      expect(n.body).toBe('1|OK');
    }
    const replay = await postCallback(shop, 'notify', first.fields);
    expect(replay).toMatchObject({ status: 200, body: '1|OK' });
    expect(replay.contentType).toMatch(/^text\/plain/);
    await quiet(shop);

    expect(await paidEvents(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(ownerPaidFor(shop, owner, order.order_no)).toHaveLength(1);
    expect(await count(shop.c, 'payment_notifications', { trade_no: tradeNo })).toBe(1);
    expect(await count(shop.c, 'payment_attempts', { order_id: order.id, status: 'paid' })).toBe(1);
  });

  test('ATM: the virtual account is pushed first (PaymentInfoURL) and the hold follows its deadline; then payment → paid', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-atm');
    const atmHold = (await orderById(shop, order.id)).hold_expires_at;
    // Before a code exists the hold is HOLD_MINUTES_ATM (3 days by default).
    expect(atmHold.getTime() - Date.now()).toBeGreaterThan(2.9 * 24 * 3600_000);

    const page = await getPage(url);
    const { fields } = parseForm(page.html);
    expect(fields).toMatchObject({ ChoosePayment: 'ATM', TotalAmount: '680', PaymentInfoURL: `${shop.url}/payments/ecpay/payment-info`, ReturnURL: `${shop.url}/payments/ecpay/notify` });
    expect(fields.OrderResultURL).toBeUndefined();
    // ATM ExpireDate (days): the Taipei calendar days up to the hold's end, so the bank's deadline
    // (that whole day) is not before the hold ends; 3 for the 3-day hold (rounding down gave 2).
    const taipeiDay = (d: Date) => Math.floor((d.getTime() + 8 * 3600_000) / (24 * 3600_000));
    expect(fields.ExpireDate).toBe(String(taipeiDay(atmHold) - taipeiDay(new Date())));
    expect(fields.ExpireDate).toBe('3');

    const cashier = await browserPost(`${shop.ecpay!.url}/Cashier/AioCheckOut/V5`, fields);
    expect(messageCode(cashier.html)).toBeUndefined();
    const tradeNo = fields.MerchantTradeNo!;
    const trade = shop.ecpay!.getTrade(tradeNo)!;
    expect(trade.status).toBe('code-issued');
    const info = shop.ecpay!.notifications.find((n) => n.merchantTradeNo === tradeNo && n.kind === 'PaymentInfoURL')!;
    expect(info).toMatchObject({ url: `${shop.url}/payments/ecpay/payment-info`, status: 200, body: '1|OK' });
    expect(info.fields.RtnCode).toBe('2');

    // The shopper gets bank code, account and deadline in a Flex message.
    const deadline = parseEcpayDate(trade.expireDate!);
    // The bank's deadline covers the whole hold the shopper was first given...
    expect(deadline.getTime()).toBeGreaterThanOrEqual(atmHold.getTime());
    // ...and ends that same Taipei day.
    expect(deadline.getTime() - atmHold.getTime()).toBeLessThan(24 * 3600_000);
    const pushed = await waitFor(() => messagesTo(shop, user).find((m) => m.altText?.startsWith('ATM 轉帳資訊')), 'ATM code push');
    expect(pushed.type).toBe('flex');
    expect(pushed.altText).toBe(`ATM 轉帳資訊：NT$680，請於 ${taipeiTime(deadline)} 前完成`);
    const flexJson = JSON.stringify(pushed.contents);
    expect(flexJson).toContain(trade.bankCode!);
    expect(flexJson).toContain(trade.vAccount!);
    expect(flexJson).toContain(taipeiTime(deadline));

    // The hold (order, reservations, attempt) now follows the code's deadline, plus a short grace.
    const held = await orderById(shop, order.id);
    expect(held.status).toBe('pending_payment');
    expect(held.hold_expires_at.getTime()).toBe(deadline.getTime() + GRACE_MS);
    for (const r of await shop.c.db('reservations').where({ order_id: order.id })) {
      expect(r.status).toBe('held');
      expect(r.expires_at.getTime()).toBe(deadline.getTime() + GRACE_MS);
    }
    const attempt = await shop.c.db('payment_attempts').where({ trade_no: tradeNo }).first();
    expect(attempt.expires_at.getTime()).toBe(deadline.getTime() + GRACE_MS);
    expect(attempt.details).toMatchObject({ kind: 'ecpay-atm-code', bankCode: trade.bankCode, account: trade.vAccount });

    // A re-sent PaymentInfoURL is acknowledged and pushes nothing new.
    const again = await shop.ecpay!.notifyAgain(tradeNo);
    expect(again).toMatchObject({ kind: 'PaymentInfoURL', status: 200, body: '1|OK' });

    await shop.ecpay!.pay(tradeNo);
    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
    await quiet(shop);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', paid_amount: 680, payment_method: 'ecpay-atm' });
    expect(await shop.c.db('reservations').where({ order_id: order.id }).pluck('status')).toEqual(['committed']);
    expect(messagesTo(shop, user).filter((m) => m.altText?.startsWith('ATM 轉帳資訊'))).toHaveLength(1);
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(ownerPaidFor(shop, owner, order.order_no)).toHaveLength(1);
    expect(await paidEvents(shop, order.id)).toBe(1);
  });

  test('CVS: the payment code is pushed first, then the (simulated, stage) payment is accepted → paid', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-cvs');
    const { fields } = parseForm((await getPage(url)).html);
    expect(fields).toMatchObject({ ChoosePayment: 'CVS', TotalAmount: '680', PaymentInfoURL: `${shop.url}/payments/ecpay/payment-info` });
    // CVS StoreExpireDate (minutes) fits inside the hold.
    const holdMs = (await orderById(shop, order.id)).hold_expires_at.getTime() - Date.now();
    expect(Number(fields.StoreExpireDate) * 60_000).toBeLessThanOrEqual(holdMs);

    const cashier = await browserPost(`${shop.ecpay!.url}/Cashier/AioCheckOut/V5`, fields);
    expect(messageCode(cashier.html)).toBeUndefined();
    const tradeNo = fields.MerchantTradeNo!;
    const trade = shop.ecpay!.getTrade(tradeNo)!;
    expect(trade.paymentNo).toMatch(/^[A-Z0-9]{14}$/);

    const deadline = parseEcpayDate(trade.expireDate!);
    const pushed = await waitFor(() => messagesTo(shop, user).find((m) => m.altText?.startsWith('超商代碼繳費')), 'CVS code push');
    expect(pushed.type).toBe('flex');
    expect(JSON.stringify(pushed.contents)).toContain(trade.paymentNo!);
    expect(pushed.altText).toContain(taipeiTime(deadline));
    expect((await orderById(shop, order.id)).hold_expires_at.getTime()).toBe(deadline.getTime() + GRACE_MS);

    await shop.ecpay!.pay(tradeNo, { simulatePaid: true });
    const n = shop.ecpay!.notifications.find((x) => x.merchantTradeNo === tradeNo && x.kind === 'ReturnURL')!;
    expect(n.fields.SimulatePaid).toBe('1');
    expect(n.body).toBe('1|OK');
    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
    await quiet(shop);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', payment_method: 'ecpay-cvs' });
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(ownerPaidFor(shop, owner, order.order_no)).toHaveLength(1);
    expect(await paidEvents(shop, order.id)).toBe(1);
  });

  test('PaymentInfoURL without a code (bad RtnCode): acknowledged, the attempt fails, the shopper is told and offered the methods again', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    await choose(shop, user, order, 'ecpay-atm');
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id }).first();
    const hold = (await orderById(shop, order.id)).hold_expires_at;
    const seen = messagesTo(shop, user).length;
    // What ECPay posts when no virtual account could be issued (RtnCode other than 2; the code and text are not documented).
    const body = paymentInfoBody({
      MerchantTradeNo: attempt.trade_no, RtnCode: '10100248', RtnMsg: 'Get VirtualAccount Failed', TradeNo: '2601011200001234', TradeAmt: String(order.total),
      PaymentType: 'ATM_TAISHIN', BankCode: '', vAccount: '', ExpireDate: '',
    });
    expect(await postCallback(shop, 'payment-info', body)).toMatchObject({ status: 200, body: '1|OK' });
    await quiet(shop);
    expect((await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).status).toBe('failed');
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'pending_payment', hold_expires_at: hold });
    const pushed = messagesTo(shop, user).slice(seen);
    expect(pushed[0]).toEqual({ type: 'text', text: `訂單 ${order.order_no} 的「綠界 ATM 轉帳」沒有取號成功，無法用這個方式繳費。請在下方重新選擇付款方式 🙏` });
    // The order with its payment buttons, so choosing again is one tap.
    expect(pushed[1]!.altText).toContain(order.order_no);
    expect(JSON.stringify(pushed[1])).toContain(`action=pay&o=${order.order_no}&m=ecpay-cvs`);
    expect(pushed).toHaveLength(2);
    // A re-sent copy is acknowledged and pushes nothing more.
    expect(await postCallback(shop, 'payment-info', body)).toMatchObject({ status: 200, body: '1|OK' });
    await quiet(shop);
    expect(messagesTo(shop, user).slice(seen)).toHaveLength(2);
    // Choosing again works.
    await choose(shop, user, order, 'ecpay-cvs');
  });

  test('PaymentInfoURL with an unreadable ExpireDate: recorded and acknowledged (not 503 forever), the code is pushed, the hold is kept, the owner is alerted', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    await choose(shop, user, order, 'ecpay-cvs');
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id }).first();
    const hold = (await orderById(shop, order.id)).hold_expires_at;
    const body = paymentInfoBody({
      MerchantTradeNo: attempt.trade_no, RtnCode: '10100073', RtnMsg: 'Get CVS Code Succeeded.', TradeNo: '2601011200005678', TradeAmt: String(order.total),
      PaymentType: 'CVS_CVS', PaymentNo: 'LLL12345678901', ExpireDate: '2026/13/45 25:61:00',
    });
    const res = await postCallback(shop, 'payment-info', body);
    expect(res).toMatchObject({ status: 200, body: '1|OK' });
    await quiet(shop);
    expect(await shop.c.db('payment_notifications').where({ trade_no: attempt.trade_no, kind: 'payment-info' }).count<{ n: number }[]>({ n: '*' }).then((r) => Number(r[0]!.n))).toBe(1);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'pending_payment', hold_expires_at: hold });
    const row = await shop.c.db('payment_attempts').where({ id: attempt.id }).first();
    expect(row.status).toBe('pending');
    expect(row.details).toMatchObject({ kind: 'ecpay-cvs-code', paymentNo: 'LLL12345678901', unreadableExpireDate: '2026/13/45 25:61:00' });
    const pushed = await waitFor(() => messagesTo(shop, user).find((m) => m.altText?.startsWith('超商代碼繳費')), 'CVS code push');
    expect(JSON.stringify(pushed.contents)).toContain('LLL12345678901');
    // The deadline shown is our own hold, the only one we know.
    expect(pushed.altText).toContain(taipeiTime(hold));
    await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes(attempt.trade_no) && t.includes('繳費期限無法辨識')), 'owner alert');
    // A re-send is acknowledged too and alerts nobody twice.
    expect(await postCallback(shop, 'payment-info', body)).toMatchObject({ status: 200, body: '1|OK' });
    await quiet(shop);
    expect(shop.line.textsTo(owner).filter((t) => t.includes(attempt.trade_no))).toHaveLength(1);
  });

  test('tampered ReturnURL callbacks are rejected with an error text and change nothing', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-credit');
    const { tradeNo } = await checkoutAtSandbox(shop, url);
    const trade = shop.ecpay!.getTrade(tradeNo)!;
    const genuine = { MerchantTradeNo: tradeNo, TradeNo: trade.tradeNo, TradeAmt: String(order.total), CustomField1: order.order_no };

    // Control: the untampered body passes our verification, so each rejection below is due to its tampering.
    expect(shop.c.payments.ecpayPort()!.verifyCallback(returnBody(ECPAY_MERCHANT, genuine)).ok).toBe(true);

    const good = returnBody(ECPAY_MERCHANT, genuine);
    const last = good.CheckMacValue!.slice(-1);
    const oneCharOff = { ...good, CheckMacValue: good.CheckMacValue!.slice(0, -1) + (last === 'A' ? 'B' : 'A') };
    const otherMerchant = returnBody(OTHER_MERCHANT, genuine);
    const amountOff = returnBody(ECPAY_MERCHANT, { ...genuine, TradeAmt: String(order.total + 1) });
    const unknownTrade = returnBody(ECPAY_MERCHANT, { ...genuine, MerchantTradeNo: 'EZZZZZZZZ00000000' });
    // Another merchant's MerchantID, but signed with OUR key and IV: the MAC is fine, the merchant is not.
    const otherIdOurKeys = returnBody(ECPAY_MERCHANT, { ...genuine, MerchantID: OTHER_MERCHANT.merchantId });
    expect(shop.c.payments.ecpayPort()!.verifyCallback(otherIdOurKeys)).toEqual({ ok: false, reason: 'WRONG_MERCHANT' });
    // A correct MAC of the same fields, but MD5 (32 hex): AIO V5 callbacks are SHA-256 only.
    const { CheckMacValue: _sha, ...unsigned } = good;
    const md5Mac = { ...unsigned, CheckMacValue: checkMacValue(unsigned, ECPAY_MERCHANT.hashKey, ECPAY_MERCHANT.hashIv, 'md5') };
    expect(md5Mac.CheckMacValue).toHaveLength(32);

    const snapshot = async () => ({
      orders: await shop.c.db('orders').orderBy('id').select('*'),
      attempts: await shop.c.db('payment_attempts').orderBy('id').select('*'),
      reservations: await shop.c.db('reservations').orderBy('id').select('*'),
      notifications: await count(shop.c, 'payment_notifications'),
      events: await count(shop.c, 'order_events'),
    });
    const before = await snapshot();

    for (const [what, body, reason] of [
      ['CheckMacValue wrong by one character', oneCharOff, 'BAD_MAC'],
      ['another MerchantID (valid MAC with its own key)', otherMerchant, 'BAD_MAC'],
      ['TradeAmt one dollar off (valid MAC)', amountOff, 'TradeAmtMismatch'],
      ['unknown MerchantTradeNo (valid MAC)', unknownTrade, 'UnknownMerchantTradeNo'],
      ['another MerchantID signed with our keys', otherIdOurKeys, 'WRONG_MERCHANT'],
      ['an MD5 MAC (right fields, our keys)', md5Mac, 'BAD_MAC'],
    ] as const) {
      const res = await postCallback(shop, 'notify', body);
      expect({ what, status: res.status, body: res.body }).toEqual({ what, status: 400, body: `0|${reason}` });
      expect(res.body).not.toBe('1|OK');
      // The same forgeries at the PaymentInfoURL are refused too.
      const info = await postCallback(shop, 'payment-info', { ...body });
      expect(info.body).not.toBe('1|OK');
    }
    await quiet(shop);
    expect(await snapshot()).toEqual(before);
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(0);
    // The amount forgery is worth telling the owner about.
    await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes(tradeNo) && t.includes(`通知金額 ${order.total + 1}`)), 'owner alert');

    // The real payment still goes through afterwards.
    await shop.ecpay!.pay(tradeNo);
    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
    await quiet(shop);
    expect((await orderById(shop, order.id)).status).toBe('paid');
  });

  test('1|OK is withheld while the notification cannot be recorded; ECPay re-sends and the later delivery is recorded once', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-credit');
    const { tradeNo } = await checkoutAtSandbox(shop, url);
    expect(tradeNo).toMatch(/^[A-Za-z0-9]+$/);
    // A real failure of the insert, in the real database: a trigger refuses this trade's notification rows.
    await shop.c.db.raw(`CREATE FUNCTION test_refuse_notification() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.trade_no = '${tradeNo}' THEN RAISE EXCEPTION 'payment_notifications unavailable (test trigger)'; END IF;
        RETURN NEW;
      END $$`);
    await shop.c.db.raw('CREATE TRIGGER test_refuse_notification BEFORE INSERT ON payment_notifications FOR EACH ROW EXECUTE FUNCTION test_refuse_notification()');
    let dropped = false;
    const drop = async () => {
      if (dropped) return;
      dropped = true;
      await shop.c.db.raw('DROP TRIGGER test_refuse_notification ON payment_notifications');
      await shop.c.db.raw('DROP FUNCTION test_refuse_notification()');
    };
    try {
      await shop.ecpay!.pay(tradeNo);
      const first = shop.ecpay!.notifications.find((n) => n.merchantTradeNo === tradeNo && n.kind === 'ReturnURL')!;
      expect(first.attempt).toBe(1);
      expect({ status: first.status, body: first.body }).toEqual({ status: 503, body: '0|temporarily unavailable' });
      expect(await count(shop.c, 'payment_notifications', { trade_no: tradeNo })).toBe(0);
      expect((await orderById(shop, order.id)).status).toBe('pending_payment');
      expect((await shop.c.db('payment_attempts').where({ trade_no: tradeNo }).first()).status).toBe('pending');
    } finally {
      await drop();
    }
    // Not acknowledged, so the sandbox (as ECPay) delivers again until it gets 1|OK.
    await waitFor(() => shop.ecpay!.notifications.some((n) => n.merchantTradeNo === tradeNo && n.body === '1|OK'), 'a re-sent ReturnURL acknowledged');
    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
    await quiet(shop);
    const acked = shop.ecpay!.notifications.filter((n) => n.merchantTradeNo === tradeNo && n.body === '1|OK');
    expect(acked).toHaveLength(1);
    expect(acked[0]!.attempt).toBeGreaterThan(1);
    expect(acked[0]!.fields.RtnMsg).toBe('paid');
    expect(await count(shop.c, 'payment_notifications', { trade_no: tradeNo })).toBe(1);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', paid_amount: 680 });
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(await paidEvents(shop, order.id)).toBe(1);
  });

  test('a reopened checkout link posts a fresh MerchantTradeNo (the sandbox refuses a reused one with 10300028); item names are escaped', async () => {
    const user = newUserId();
    const cat = await shop.c.db('categories').first('id');
    await shop.c.db('products').insert({
      sku: 'ESC-001', category_id: cat.id, name: 'Tom & Jerry <特調> "茶" #1', price: 150, image_url: 'https://example.com/esc.jpg', sort_order: 99,
    });
    await setStock(shop.c.db, 'ESC-001', 5);
    const order = await placeOrder(shop, user, 'ESC-001', 2);
    expect(order.total).toBe(300);
    const url = await choose(shop, user, order, 'ecpay-credit');

    const first = await getPage(url);
    const a = parseForm(first.html);
    for (const v of a.rawValues) expect(v).toMatch(/^(?:[^"<>&]|&(?:amp|quot|#39|lt|gt);)*$/);
    expect(a.fields.ItemName).not.toMatch(/[<>"&#]/);
    expect(a.fields.ItemName).toContain('Tom');
    const resA = await browserPost(a.action, a.fields);
    expect(messageCode(resA.html)).toBeUndefined();
    // Posting the same form again (a reload of ECPay's page, say) is what ECPay refuses.
    expect(messageCode((await browserPost(a.action, a.fields)).html)).toBe('10300028');

    const b = parseForm((await getPage(url)).html);
    expect(b.fields.MerchantTradeNo).not.toBe(a.fields.MerchantTradeNo);
    expect(b.fields.MerchantTradeNo).toMatch(/^[A-Za-z0-9]{1,20}$/);
    expect(b.fields.TotalAmount).toBe('300');
    const resB = await browserPost(b.action, b.fields);
    expect(messageCode(resB.html)).toBeUndefined();
    expect(ddText(resB.html, 'merchant-trade-no')).toBe(b.fields.MerchantTradeNo);
    // Both trade numbers map to this order.
    const attempts = await shop.c.db('payment_attempts').where({ order_id: order.id }).orderBy('id');
    expect(attempts.map((x) => x.trade_no)).toEqual([a.fields.MerchantTradeNo, b.fields.MerchantTradeNo]);

    await shop.ecpay!.pay(b.fields.MerchantTradeNo!);
    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
    await quiet(shop);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', paid_amount: 300 });
    const after = await shop.c.db('payment_attempts').where({ order_id: order.id }).orderBy('id');
    expect(after.map((x) => x.status)).toEqual(['superseded', 'paid']);

    // The shopper also pays the first trade (two tabs): money for an already-paid order is flagged for a refund, never a second "paid".
    await shop.ecpay!.pay(a.fields.MerchantTradeNo!);
    await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes(a.fields.MerchantTradeNo!) && t.includes('重複付款')), 'double-payment alert');
    await quiet(shop);
    expect(await shop.c.db('payment_notifications').where({ trade_no: a.fields.MerchantTradeNo, kind: 'return' }).pluck('outcome')).toEqual(['double-payment']);
    expect(await paidEvents(shop, order.id)).toBe(1);
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(ownerPaidFor(shop, owner, order.order_no)).toHaveLength(1);
  });

  test('switching method: the earlier checkout link shows that it is no longer valid', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const creditUrl = await choose(shop, user, order, 'ecpay-credit');
    const cvsUrl = await choose(shop, user, order, 'ecpay-cvs');
    expect(cvsUrl).not.toBe(creditUrl);
    const old = await getPage(creditUrl);
    expect(old.status).toBe(410);
    expect(old.html).toContain('付款連結已失效');
    expect(old.html).not.toContain('<form');
    const current = parseForm((await getPage(cvsUrl)).html);
    expect(current.fields.ChoosePayment).toBe('CVS');
    await say(shop, user, `取消 ${order.order_no}`);
    expect((await orderById(shop, order.id)).status).toBe('cancelled');
    const cancelled = await getPage(cvsUrl);
    expect(cancelled.html).not.toContain('<form');
  });

  test('an already-paid order\'s link and an expired order\'s link show a clear zh-TW page instead of a form', async () => {
    const user = newUserId();
    const { checkoutUrl } = await paidCreditOrder(shop, user);
    const paidPage = await getPage(checkoutUrl);
    expect(paidPage.status).toBe(200);
    expect(paidPage.contentType).toBe('text/html; charset=utf-8');
    expect(paidPage.html).toContain('lang="zh-Hant-TW"');
    expect(paidPage.html).toContain('訂單已付款');
    expect(paidPage.html).not.toContain('<form');

    const user2 = newUserId();
    const order = await placeOrder(shop, user2);
    const url = await choose(shop, user2, order, 'ecpay-credit');
    // Time passes: the hold ends and the expiry sweep releases the stock.
    await shop.c.db('orders').where({ id: order.id }).update({ hold_expires_at: shop.c.db.raw("now() - interval '1 second'") });
    await shop.c.db('reservations').where({ order_id: order.id }).update({ expires_at: shop.c.db.raw("now() - interval '1 second'") });
    await waitFor(async () => (await orderById(shop, order.id)).status === 'expired', 'order expired');
    const expired = await getPage(url);
    expect(expired.status).toBe(410);
    expect(expired.contentType).toBe('text/html; charset=utf-8');
    expect(expired.html).toContain('訂單已逾期');
    expect(expired.html).not.toContain('<form');
    // Nothing was minted for the dead order.
    expect(await count(shop.c, 'payment_attempts', { order_id: order.id })).toBe(1);

    const bogus = await getPage(`${shop.url}/payments/ecpay/checkout/not-a-real-reference-000000`);
    expect(bogus.status).toBe(404);
    expect(bogus.html).toContain('找不到付款');
  });

  test('OrderResultURL (POST /payments/ecpay/result) renders a zh-TW page from our own records', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-credit');
    const { tradeNo } = await checkoutAtSandbox(shop, url);
    const trade = shop.ecpay!.getTrade(tradeNo)!;

    // The shopper presses 付款 on the sandbox's cashier; it answers with the auto-submit page to OrderResultURL.
    const paid = await browserPost(`${shop.ecpay!.url}/sandbox/trades/${trade.tradeNo}/pay`, {});
    expect(paid.status).toBe(200);
    const action = unescapeHtml(/<form id="result" method="post" action="([^"]*)"/.exec(paid.html)![1]!);
    expect(action).toBe(`${shop.url}/payments/ecpay/result`);
    const fields: Record<string, string> = {};
    for (const m of paid.html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
    expect(fields.RtnMsg).toBe('Succeeded');

    const page = await browserPost(action, fields);
    expect(page.status).toBe(200);
    expect(page.html).toContain('lang="zh-Hant-TW"');
    expect(page.html).toMatch(/付款成功|付款處理中/);
    expect(page.html).toContain('回到 LINE');

    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt');
    await quiet(shop);
    const again = await browserPost(action, fields);
    expect(again.html).toContain('付款成功');
    // A forged result post never claims success.
    const forged = await browserPost(action, { ...fields, CheckMacValue: '0'.repeat(64) });
    expect(forged.status).toBe(200);
    expect(forged.html).not.toContain('付款成功');
    expect(forged.html).toContain('lang="zh-Hant-TW"');
    // The browser post is never acted upon: exactly one paid transition (from ReturnURL).
    expect(await paidEvents(shop, order.id)).toBe(1);
  });

  test('refunds through the owner command: too much is refused, two partial refunds add up to the total, non-owners are refused', async () => {
    const user = newUserId();
    const { order, tradeNo } = await paidCreditOrder(shop, user);
    const ownerTexts = () => shop.line.textsTo(owner);

    // More than captured: refused in zh-TW, nothing reaches the bank.
    let seen = ownerTexts().length;
    await say(shop, owner, `退款 ${order.order_no} 681`);
    expect(ownerTexts().slice(seen)).toEqual([`退款金額超過可退金額：訂單 ${order.order_no} 目前最多可退 NT$680。`]);
    expect(shop.ecpay!.refunds(tradeNo)).toEqual([]);
    expect(await count(shop.c, 'refunds', { order_id: order.id })).toBe(0);

    // A shopper (not an owner) cannot refund, not even their own order.
    await say(shop, user, `退款 ${order.order_no} 100`);
    expect(shop.line.textsTo(user).at(-1)).toBe('這個指令只有店長可以使用。');
    expect(await count(shop.c, 'refunds', { order_id: order.id })).toBe(0);

    seen = ownerTexts().length;
    await say(shop, owner, `退款 ${order.order_no} 300`);
    expect(ownerTexts()[seen]).toContain('退款處理中');
    await quiet(shop);
    expect(shop.ecpay!.refunds(tradeNo).map((r) => r.amount)).toEqual([300]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', refunded_amount: 300 });

    // What remains is 380: 400 is refused.
    seen = ownerTexts().length;
    await say(shop, owner, `退款 ${order.order_no} 400`);
    expect(ownerTexts().slice(seen)).toEqual([`退款金額超過可退金額：訂單 ${order.order_no} 目前最多可退 NT$380。`]);

    await say(shop, owner, `退款 ${order.order_no} 380`);
    await quiet(shop);
    expect(shop.ecpay!.refunds(tradeNo).map((r) => r.amount)).toEqual([300, 380]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680, paid_amount: 680 });
    const rows = await shop.c.db('refunds').where({ order_id: order.id }).orderBy('id');
    expect(rows.map((r) => [r.amount, r.status, r.requested_by])).toEqual([
      [300, 'succeeded', `owner:${owner}`],
      [380, 'succeeded', `owner:${owner}`],
    ]);
    await waitFor(() => shop.line.textsTo(user).filter((t) => t.startsWith(`訂單 ${order.order_no} 已退款`)).length === 2, 'shopper told of both refunds');
    expect(shop.line.textsTo(user).filter((t) => t.startsWith(`訂單 ${order.order_no} 已退款`))).toEqual([
      `訂單 ${order.order_no} 已退款 NT$300，實際入帳時間依發卡銀行為準。`,
      `訂單 ${order.order_no} 已退款 NT$380，實際入帳時間依發卡銀行為準。`,
    ]);
    expect(ownerTexts()).toContain(`已退款 NT$380（訂單 ${order.order_no} 累計退款 NT$680）。`);

    // Fully refunded: nothing more to refund.
    seen = ownerTexts().length;
    await say(shop, owner, `退款 ${order.order_no}`);
    expect(ownerTexts().slice(seen)).toEqual([`訂單 ${order.order_no} 目前是「已退款」，沒有可退款的付款。`]);
    expect(shop.ecpay!.refunds(tradeNo)).toHaveLength(2);
  });

  test('a full refund by default; ATM payments are not refunded online', async () => {
    const user = newUserId();
    const { order, tradeNo } = await paidCreditOrder(shop, user);
    await say(shop, owner, `退款 ${order.order_no}`);
    await quiet(shop);
    // Not captured yet (same morning): the whole authorisation is abandoned (N), not refunded.
    expect(shop.ecpay!.actions(tradeNo).map((a) => [a.action, a.amount])).toEqual([['N', 680]]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });

    const atmOrder = (await shop.c.db('orders').where({ status: 'paid', payment_method: 'ecpay-atm' }).first()) as Order | undefined;
    expect(atmOrder).toBeDefined();
    const seen = shop.line.textsTo(owner).length;
    await say(shop, owner, `退款 ${atmOrder!.order_no} 100`);
    expect(shop.line.textsTo(owner).slice(seen)).toEqual(['只有綠界信用卡付款可以線上退款，其他付款方式請到銀行後台處理。']);
  });

  test('a refund whose answer is lost on the way back is never sent again: it stays pending and the owner is asked to check', async () => {
    const user = newUserId();
    const { order, tradeNo } = await paidCreditOrder(shop, user);
    // In front of the sandbox: DoAction is forwarded (ECPay refunds), then the connection drops before the answer.
    // Only the refund itself (R) loses its answer; the capture request (C) before it goes through.
    let drop = 1;
    const proxy = await ecpayProxy(shop, (path, body) => (isDoActionR(path, body) && drop > 0 && drop-- ? 'drop-answer' : 'forward'));
    const proxyUrl = proxy.url;
    const original = shop.c.gateways.ecpay;
    shop.c.gateways.ecpay = buildGateways({ ...shop.config, ecpay: { ...shop.config.ecpay!, apiBaseUrl: proxyUrl } }, silentLogger, 2000, { ecpayNow: shop.ecpayClock.now }).ecpay;
    try {
      await say(shop, owner, `退款 ${order.order_no} 300`);
      const refund = await shop.c.db('refunds').where({ order_id: order.id }).first();
      // The job ends (no retry is scheduled) once it knows the outcome is unknown.
      const job = await waitFor(async () => {
        const j = await shop.c.queues.orders.getJob(`refund-${refund.id}`);
        const state = j ? await j.getState() : 'missing';
        return state === 'completed' || state === 'failed' ? j : null;
      }, 'refund job finished');
      expect(drop).toBe(0);
      // ECPay refunded once; we never sent it a second time.
      expect(shop.ecpay!.refunds(tradeNo).map((r) => r.amount)).toEqual([300]);
      expect(await job!.getState()).toBe('completed');
      expect(job!.attemptsMade).toBeLessThanOrEqual(1);
      const row = await shop.c.db('refunds').where({ id: refund.id }).first();
      expect(row.status).toBe('pending');
      expect(row.gateway_response).toMatchObject({ outcome: 'unknown' });
      await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes('退款結果不明') && t.includes(order.order_no)), 'owner asked to check');
      expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', refunded_amount: 0 });
      // The unknown 300 still counts against what can be refunded.
      const seen = shop.line.textsTo(owner).length;
      await say(shop, owner, `退款 ${order.order_no} 381`);
      expect(shop.line.textsTo(owner).slice(seen)).toEqual([`退款金額超過可退金額：訂單 ${order.order_no} 目前最多可退 NT$380。`]);
      // Running the job again (a stalled-job retry, say) sends nothing either.
      expect(await shop.c.payments.executeRefund(refund.id)).toBe('skipped');
      expect(shop.ecpay!.refunds(tradeNo)).toHaveLength(1);
    } finally {
      shop.c.gateways.ecpay = original;
      await proxy.close();
    }
  });

  test('a refund that a crashed worker had already sent (claim taken, no answer recorded) is never sent again', async () => {
    const user = newUserId();
    const { order, tradeNo } = await paidCreditOrder(shop, user);
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id, status: 'paid' }).first();
    // What a worker leaves behind when it dies between DoAction and recording the answer.
    const [refund] = await shop.c.db('refunds')
      .insert({ order_id: order.id, attempt_id: attempt.id, amount: 200, status: 'pending', requested_by: `owner:${owner}`, gateway_response: JSON.stringify({ outcome: 'sending', at: new Date().toISOString() }) })
      .returning('*');
    expect(await shop.c.payments.executeRefund(refund.id)).toBe('unknown');
    expect(shop.ecpay!.refunds(tradeNo)).toHaveLength(0);
    expect(await shop.c.db('refunds').where({ id: refund.id }).first()).toMatchObject({ status: 'pending', gateway_response: { outcome: 'unknown', code: 'INTERRUPTED' } });
    await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes('退款結果不明') && t.includes(order.order_no)), 'owner asked to check');
    expect(await shop.c.payments.executeRefund(refund.id)).toBe('skipped');
    expect(shop.ecpay!.refunds(tradeNo)).toHaveLength(0);
  });

  test('a refund the bank cannot be reached for is retried, then closed as failed on the last try; the amount is refundable again', async () => {
    const user = newUserId();
    const { order } = await paidCreditOrder(shop, user);
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id, status: 'paid' }).first();
    const [refund] = await shop.c.db('refunds')
      .insert({ order_id: order.id, attempt_id: attempt.id, amount: 100, status: 'pending', requested_by: `owner:${owner}` })
      .returning('*');
    const original = shop.c.gateways.ecpay;
    // Nothing listens on port 1: the connection is refused, so nothing reached the bank.
    shop.c.gateways.ecpay = buildGateways({ ...shop.config, ecpay: { ...shop.config.ecpay!, apiBaseUrl: 'http://127.0.0.1:1' } }, silentLogger, 2000, { ecpayNow: shop.ecpayClock.now }).ecpay;
    try {
      await expect(shop.c.payments.executeRefund(refund.id)).rejects.toThrow();
      expect(await shop.c.db('refunds').where({ id: refund.id }).first()).toMatchObject({ status: 'pending', gateway_response: { outcome: 'retry' } });
      expect(await shop.c.payments.executeRefund(refund.id, true)).toBe('failed');
    } finally {
      shop.c.gateways.ecpay = original;
    }
    expect(await shop.c.db('refunds').where({ id: refund.id }).first()).toMatchObject({ status: 'failed', gateway_response: { outcome: 'unreachable' } });
    await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes('多次連不上綠界') && t.includes(order.order_no)), 'owner told');
    await say(shop, owner, `退款 ${order.order_no}`);
    await quiet(shop);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });
  });

  test('reconciliation: an ECPay ATM/CVS attempt whose code was issued is queried at most once a day; other pending attempts every RECONCILE_EVERY_MINUTES', async () => {
    const user = newUserId();
    const atmOrder = await placeOrder(shop, user);
    const { tradeNo: atmTrade } = await checkoutAtSandbox(shop, await choose(shop, user, atmOrder, 'ecpay-atm'));
    const atm = await waitFor(async () => {
      const a = await shop.c.db('payment_attempts').where({ trade_no: atmTrade }).first();
      return a.details.kind === 'ecpay-atm-code' ? a : null;
    }, 'ATM code recorded');
    const user2 = newUserId();
    const cardOrder = await placeOrder(shop, user2);
    await choose(shop, user2, cardOrder, 'ecpay-credit');
    const card = await shop.c.db('payment_attempts').where({ order_id: cardOrder.id }).first();
    const user3 = newUserId();
    const noCodeOrder = await placeOrder(shop, user3);
    await choose(shop, user3, noCodeOrder, 'ecpay-cvs');
    const noCode = await shop.c.db('payment_attempts').where({ order_id: noCodeOrder.id }).first();

    const ids = [atm.id, card.id, noCode.id];
    const checkedAgo = async (id: number, minutes: number) =>
      shop.c.db('payment_attempts').where({ id }).update({
        created_at: shop.c.db.raw("now() - interval '3 days'"),
        last_checked_at: shop.c.db.raw(`now() - (? * interval '1 minute')`, [minutes]),
      });
    // All three were last asked 10 minutes ago (RECONCILE_EVERY_MINUTES is 5).
    for (const id of ids) await checkedAgo(id, 10);
    let due = await shop.c.payments.reconcileCandidates(10_000);
    expect(due).toContain(card.id);
    expect(due).toContain(noCode.id);
    expect(due).not.toContain(atm.id);
    // 23 hours: still not; 25 hours: due again.
    await checkedAgo(atm.id, 23 * 60);
    expect(await shop.c.payments.reconcileCandidates(10_000)).not.toContain(atm.id);
    await checkedAgo(atm.id, 25 * 60);
    due = await shop.c.payments.reconcileCandidates(10_000);
    expect(due).toContain(atm.id);
    // The same for a CVS code.
    await shop.c.db('payment_attempts').where({ id: noCode.id }).update({ details: JSON.stringify({ kind: 'ecpay-cvs-code', paymentNo: 'LLL00000000000', deadline: new Date().toISOString() }) });
    expect(await shop.c.payments.reconcileCandidates(10_000)).not.toContain(noCode.id);
    for (const id of ids) await shop.c.db('payment_attempts').where({ id }).update({ created_at: shop.c.db.fn.now(), last_checked_at: null });
  });

  test('stock and payment invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------

describe('ECPay card refunds follow the capture state (spec §10.2): ECPay captures at 20:15 Taipei, no DoAction 20:15–20:30', () => {
  let shop: TestShop;
  const owner = newUserId();

  beforeAll(async () => {
    shop = await startShop({ label: 'ecpay-capture', ecpay: true, owners: [owner] });
  });
  afterAll(async () => {
    await shop?.close();
  });

  const actionsOf = (tradeNo: string) => shop.ecpay!.actions(tradeNo).map((a) => [a.action, a.amount, a.from]);
  const refundTexts = (user: string, orderNo: string) => shop.line.textsTo(user).filter((t) => t.startsWith(`訂單 ${orderNo} 已退款`));

  /** A card payment made at `hhmm` Taipei today (the sandbox's and the gateway's clock). */
  async function paidAt(hhmm: string) {
    shop.ecpayClock.set(taipeiAt(hhmm));
    const user = newUserId();
    const paid = await paidCreditOrder(shop, user);
    return { ...paid, user };
  }

  test('same day, before the capture: a full refund abandons the authorisation (N); owner and shopper told', async () => {
    const { order, tradeNo, user } = await paidAt('10:00');
    expect(shop.ecpay!.getTrade(tradeNo)!.capture).toBe('authorised');
    shop.ecpayClock.set(taipeiAt('15:00'));
    await say(shop, owner, `退款 ${order.order_no}`);
    await quiet(shop);
    expect(actionsOf(tradeNo)).toEqual([['N', 680, 'authorised']]);
    expect(shop.ecpay!.getTrade(tradeNo)!.capture).toBe('abandoned');
    expect(shop.ecpay!.refunds(tradeNo)).toEqual([]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });
    const row = await shop.c.db('refunds').where({ order_id: order.id }).first();
    expect(row).toMatchObject({ status: 'succeeded', amount: 680 });
    expect(row.gateway_response).toMatchObject({ captureState: 'authorised', captureStateFrom: 'QueryTrade/V2', steps: [{ action: 'N', totalAmount: 680, RtnCode: '1' }] });
    await waitFor(() => refundTexts(user, order.order_no).length === 1, 'shopper told');
    expect(shop.line.textsTo(owner)).toContain(`已退款 NT$680（訂單 ${order.order_no} 累計退款 NT$680）。`);
  });

  test('two partial refunds of one authorised trade sent at the same moment: one asks for the capture (C), each refunds once (R, R), neither is refused', async () => {
    const { order, tradeNo } = await paidAt('09:40');
    shop.ecpayClock.set(taipeiAt('11:30'));
    // Both requested in one transaction, so both jobs are enqueued together and run side by side.
    await shop.c.uow.run(async (trx, after) => {
      const actor = { userId: owner, source: 'line' as const };
      expect((await shop.c.owner.requestRefund(trx, after, actor, { orderNo: order.order_no, amount: 300 })).kind).toBe('requested');
      expect((await shop.c.owner.requestRefund(trx, after, actor, { orderNo: order.order_no, amount: 380 })).kind).toBe('requested');
    });
    await waitFor(async () => (await shop.c.db('refunds').where({ order_id: order.id, status: 'pending' })).length === 0, 'both refunds settled', 30_000);
    await quiet(shop);
    const actions = actionsOf(tradeNo);
    expect(actions[0]).toEqual(['C', 680, 'authorised']);
    expect(actions.slice(1).map((a) => a[0])).toEqual(['R', 'R']);
    expect(actions.slice(1).map((a) => a[1]).sort()).toEqual([300, 380]);
    expect((await shop.c.db('refunds').where({ order_id: order.id })).map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });
  });

  test('same day, before the capture: a partial refund requests the capture first (C, then R); a second partial is just R', async () => {
    const { order, tradeNo, user } = await paidAt('09:30');
    shop.ecpayClock.set(taipeiAt('11:00'));
    await say(shop, owner, `退款 ${order.order_no} 300`);
    await quiet(shop);
    expect(actionsOf(tradeNo)).toEqual([
      ['C', 680, 'authorised'],
      ['R', 300, 'capture-requested'],
    ]);
    expect(shop.ecpay!.getTrade(tradeNo)!.capture).toBe('capture-requested');
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', refunded_amount: 300 });

    shop.ecpayClock.set(taipeiAt('19:00'));
    await say(shop, owner, `退款 ${order.order_no} 380`);
    await quiet(shop);
    expect(actionsOf(tradeNo)).toEqual([
      ['C', 680, 'authorised'],
      ['R', 300, 'capture-requested'],
      ['R', 380, 'capture-requested'],
    ]);
    expect(shop.ecpay!.refunds(tradeNo).map((r) => r.amount)).toEqual([300, 380]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });
    await waitFor(() => refundTexts(user, order.order_no).length === 2, 'shopper told twice');
    // The requested capture is done by that evening's run.
    shop.ecpayClock.set(taipeiAt('20:31'));
    expect(shop.ecpay!.getTrade(tradeNo)!.capture).toBe('captured');
  });

  test('after the daily capture: a refund is R alone, full or partial', async () => {
    const { order, tradeNo, user } = await paidAt('08:00');
    // That evening, after ECPay's 20:15 run (and its window).
    shop.ecpayClock.set(taipeiAt('21:00'));
    expect(shop.ecpay!.getTrade(tradeNo)!.capture).toBe('captured');
    await say(shop, owner, `退款 ${order.order_no} 200`);
    await quiet(shop);
    expect(actionsOf(tradeNo)).toEqual([['R', 200, 'captured']]);
    // The next morning: the rest, still R.
    shop.ecpayClock.set(taipeiAt('09:00', 1));
    await say(shop, owner, `退款 ${order.order_no}`);
    await quiet(shop);
    expect(actionsOf(tradeNo)).toEqual([
      ['R', 200, 'captured'],
      ['R', 480, 'captured'],
    ]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });
    await waitFor(() => refundTexts(user, order.order_no).length === 2, 'shopper told');
  });

  test('a refund requested inside 20:15–20:30 waits in the delayed queue (nothing sent, nothing claimed) and runs after 20:30: R, since the trade was captured at 20:15', async () => {
    const { order, tradeNo, user } = await paidAt('12:00');
    shop.ecpayClock.set(taipeiAt('20:20'));
    await say(shop, owner, `退款 ${order.order_no}`);
    const refund = await shop.c.db('refunds').where({ order_id: order.id }).first();
    const job = await waitFor(async () => {
      const j = await shop.c.queues.orders.getJob(`refund-${refund.id}`);
      return j && (await j.getState()) === 'delayed' ? j : null;
    }, 'refund job delayed');
    // Until 20:30 Taipei: ten minutes from 20:20 (the worker is not blocked meanwhile).
    expect(job.delay).toBeGreaterThan(9.5 * 60_000);
    expect(job.delay).toBeLessThanOrEqual(10 * 60_000);
    expect(job.attemptsMade).toBe(0);
    expect(shop.ecpay!.actions(tradeNo)).toEqual([]);
    expect(await shop.c.db('refunds').where({ id: refund.id }).first()).toMatchObject({ status: 'pending', gateway_response: null });
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', refunded_amount: 0 });
    // The pending refund still counts: nothing more can be asked for meanwhile.
    const seen = shop.line.textsTo(owner).length;
    await say(shop, owner, `退款 ${order.order_no} 1`);
    expect(shop.line.textsTo(owner).slice(seen)).toEqual([`退款金額超過可退金額：訂單 ${order.order_no} 目前最多可退 NT$0。`]);

    // 20:30 has passed: the job runs (promoted here instead of waiting ten real minutes).
    shop.ecpayClock.set(taipeiAt('20:30'));
    await job.promote();
    await waitFor(async () => (await shop.c.db('refunds').where({ id: refund.id }).first()).status === 'succeeded', 'refund done');
    await quiet(shop);
    expect(actionsOf(tradeNo)).toEqual([['R', 680, 'captured']]);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'refunded', refunded_amount: 680 });
    await waitFor(() => refundTexts(user, order.order_no).length === 1, 'shopper told');
  });

  test('a partial refund whose C went through but whose R met an HTTP 403 resumes after the pause with R alone (no second C); the owner is told of the pause', async () => {
    const { order, tradeNo, user } = await paidAt('10:00');
    shop.ecpayClock.set(taipeiAt('11:00'));
    // In front of the sandbox: the first R is refused with 403 (not forwarded); everything else passes.
    let refuseR = 1;
    const proxy = await ecpayProxy(shop, (path, body) => (isDoActionR(path, body) && refuseR > 0 && refuseR-- ? { status: 403, body: 'Forbidden' } : 'forward'));
    const viaProxy = () =>
      // No CreditCheckCode: the capture state comes from the clock, which cannot see our own C.
      buildGateways({ ...shop.config, ecpay: { ...shop.config.ecpay!, creditCheckCode: null, apiBaseUrl: proxy.url } }, silentLogger, 2000, {
        ecpayNow: shop.ecpayClock.now,
        ecpayGate: new MemoryCallGate(),
      }).ecpay;
    const original = shop.c.gateways.ecpay;
    shop.c.gateways.ecpay = viaProxy();
    try {
      await say(shop, owner, `退款 ${order.order_no} 300`);
      const refund = await shop.c.db('refunds').where({ order_id: order.id }).first();
      const job = await waitFor(async () => {
        const j = await shop.c.queues.orders.getJob(`refund-${refund.id}`);
        return j && (await j.getState()) === 'delayed' ? j : null;
      }, 'refund job waiting out the pause');
      expect(refuseR).toBe(0);
      expect(actionsOf(tradeNo)).toEqual([['C', 680, 'authorised']]);
      const waiting = await shop.c.db('refunds').where({ id: refund.id }).first();
      expect(waiting.status).toBe('pending');
      expect(waiting.gateway_response).toMatchObject({ outcome: 'retry', progress: { steps: [{ action: 'C', totalAmount: 680, RtnCode: '1' }] } });
      await waitFor(() => shop.line.textsTo(owner).some((t) => t.startsWith('⚠️ 綠界暫時拒絕我們的呼叫')), 'owner told of the pause');

      // The pause is over (a fresh gate): the job runs again and sends only what was left, R.
      shop.c.gateways.ecpay = viaProxy();
      await job.promote();
      await waitFor(async () => (await shop.c.db('refunds').where({ id: refund.id }).first()).status === 'succeeded', 'refund done');
      await quiet(shop);
      expect(actionsOf(tradeNo)).toEqual([
        ['C', 680, 'authorised'],
        ['R', 300, 'capture-requested'],
      ]);
      expect(shop.ecpay!.refunds(tradeNo).map((r) => r.amount)).toEqual([300]);
      expect((await shop.c.db('refunds').where({ id: refund.id }).first()).gateway_response).toMatchObject({
        captureStateFrom: 'resumed',
        steps: [{ action: 'C', RtnCode: '1' }, { action: 'R', totalAmount: 300, RtnCode: '1' }],
      });
      expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', refunded_amount: 300 });
      await waitFor(() => refundTexts(user, order.order_no).length === 1, 'shopper told');
      expect(shop.line.textsTo(owner).filter((t) => t.startsWith('⚠️ 綠界暫時拒絕我們的呼叫'))).toHaveLength(1);
    } finally {
      shop.c.gateways.ecpay = original;
      await proxy.close();
    }
  });

  test('stock and payment invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------

describe('ECPay reconciliation: a payment the sandbox never reports', () => {
  let shop: TestShop;
  const owner = newUserId();

  beforeAll(async () => {
    shop = await startShop({
      label: 'ecpay-reconcile',
      ecpay: true,
      owners: [owner],
      env: { RECONCILE_AFTER_MINUTES: '0.001', RECONCILE_EVERY_MINUTES: '0.01' },
    });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('paid at ECPay without a ReturnURL: the scheduled QueryTradeInfo sweep finds it → paid once, receipt once', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-credit');
    const { tradeNo } = await checkoutAtSandbox(shop, url);
    await shop.ecpay!.pay(tradeNo, { notify: false });
    expect(shop.ecpay!.notifications.filter((n) => n.merchantTradeNo === tradeNo)).toHaveLength(0);

    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt after reconciliation');
    await waitFor(() => ownerPaidFor(shop, owner, order.order_no).length > 0, 'owner notification');
    await quiet(shop);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', paid_amount: 680, payment_method: 'ecpay-credit' });
    const attempt = await shop.c.db('payment_attempts').where({ trade_no: tradeNo }).first();
    expect(attempt.status).toBe('paid');
    expect(attempt.gateway_trade_id).toBe(shop.ecpay!.getTrade(tradeNo)!.tradeNo);
    expect(attempt.check_count).toBeGreaterThanOrEqual(1);
    expect(await count(shop.c, 'payment_notifications', { trade_no: tradeNo })).toBe(0);
    // Later sweeps leave the paid attempt alone.
    const checks = attempt.check_count;
    expect(await shop.c.payments.reconcileAttempt(attempt.id)).toBe('skipped');
    expect((await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).check_count).toBe(checks);
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(await paidEvents(shop, order.id)).toBe(1);
  });

  test('reconcileSweep() by hand picks up pending attempts; a trade never posted to ECPay stays pending', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    await choose(shop, user, order, 'ecpay-credit');
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id }).first();
    await waitFor(async () => (await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).check_count >= 1, 'attempt checked');
    expect(await shop.c.payments.reconcileAttempt(attempt.id)).toBe('pending');
    expect(await shop.c.payments.reconcileSweep()).toBeGreaterThanOrEqual(0);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'pending_payment' });
    expect((await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).status).toBe('pending');
  });

  test('HTTP 403 from QueryTradeInfo: one shared pause (Redis), no ECPay query from any path until it ends; then the payment is found once', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-credit');
    const { tradeNo } = await checkoutAtSandbox(shop, url);
    const attempt = await shop.c.db('payment_attempts').where({ trade_no: tradeNo }).first();
    const key = ecpayPauseKey(shop.config.queuePrefix);
    expect(await shop.c.redis.pttl(key)).toBeLessThan(0);
    // ECPay says "too fast" to the next query; the scheduled sweep (every 0.6 s here) makes one.
    shop.ecpay!.injectHttpStatus('/Cashier/QueryTradeInfo/V5', 403, 1);
    await shop.ecpay!.pay(tradeNo, { notify: false });
    await waitFor(async () => (await shop.c.redis.pttl(key)) > 0, 'pause stored in Redis');
    const ttl = await shop.c.redis.pttl(key);
    expect(ttl).toBeGreaterThan(29 * 60_000);
    expect(ttl).toBeLessThanOrEqual(30 * 60_000);
    expect(shop.ecpay!.apiRequests.filter((r) => r.status === 403)).toHaveLength(1);
    const sent = shop.ecpay!.apiRequests.length;

    // While paused: no ECPay attempt is due, a query by hand sends nothing...
    expect(await shop.c.payments.reconcileCandidates()).not.toContain(attempt.id);
    expect(await shop.c.payments.reconcileAttempt(attempt.id)).toBe('paused');
    // ...and a ReturnURL is still recorded and acknowledged, but its confirmation job waits for the pause.
    const n = await shop.ecpay!.notifyAgain(tradeNo);
    expect(n.body).toBe('1|OK');
    const notification = await waitFor(() => shop.c.db('payment_notifications').where({ trade_no: tradeNo }).first(), 'notification recorded');
    const job = await waitFor(async () => {
      const j = await shop.c.queues.orders.getJob(`pn-${notification.id}`);
      return j && (await j.getState()) === 'delayed' ? j : null;
    }, 'notification job delayed');
    expect(job.attemptsMade).toBe(0);
    // Several sweep periods later, still nothing has been sent to ECPay and nothing changed.
    await new Promise((r) => setTimeout(r, 2000));
    expect(shop.ecpay!.apiRequests.length).toBe(sent);
    expect(await job.getState()).toBe('delayed');
    expect((await orderById(shop, order.id)).status).toBe('pending_payment');
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(0);

    // The pause ends (the key expires; the test removes it) and the delayed job runs: paid, once.
    await shop.c.redis.del(key);
    await job.promote();
    await waitFor(() => receiptsFor(shop, user, order.order_no).length > 0, 'receipt after the pause');
    await quiet(shop);
    expect(shop.ecpay!.apiRequests.length).toBeGreaterThan(sent);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'paid', paid_amount: 680 });
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(1);
    expect(await paidEvents(shop, order.id)).toBe(1);
  });

  test('stock and payment invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------

describe('ECPay in production: SimulatePaid=1 is never money', () => {
  let shop: TestShop;
  const owner = newUserId();

  beforeAll(async () => {
    shop = await startShop({
      label: 'ecpay-prod',
      ecpay: true,
      owners: [owner],
      env: { RECONCILE_AFTER_MINUTES: '0.001', RECONCILE_EVERY_MINUTES: '0.01' },
    });
    // Production behaviour against the local sandbox: the same gateway, built from a config that
    // says production (ECPAY_API_BASE_URL=https://payment.ecpay.com.tw sets this), talking to the sandbox.
    const prod = { ...shop.config, ecpay: { ...shop.config.ecpay!, isProduction: true } };
    shop.c.gateways.ecpay = buildGateways(prod, silentLogger, 2000, { ecpayNow: shop.ecpayClock.now }).ecpay;
    expect(shop.c.payments.ecpayPort()!.isProduction).toBe(true);
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('a simulated CVS payment is acknowledged, alerts the owner, and never pays the order (ReturnURL and reconciliation)', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const url = await choose(shop, user, order, 'ecpay-cvs');
    const { tradeNo } = await checkoutAtSandbox(shop, url);
    await waitFor(() => messagesTo(shop, user).find((m) => m.altText?.startsWith('超商代碼繳費')), 'CVS code push');

    await shop.ecpay!.pay(tradeNo, { simulatePaid: true });
    const n = shop.ecpay!.notifications.find((x) => x.merchantTradeNo === tradeNo && x.kind === 'ReturnURL')!;
    expect(n.fields.SimulatePaid).toBe('1');
    // Acknowledged (it is a genuine ECPay message), so ECPay stops re-sending it.
    expect(n.body).toBe('1|OK');
    await waitFor(() => shop.line.textsTo(owner).some((t) => t.includes('模擬付款') && t.includes(tradeNo)), 'owner alert');
    await quiet(shop);
    expect(await shop.c.db('payment_notifications').where({ trade_no: tradeNo, kind: 'return' }).pluck('outcome')).toEqual(['simulated-rejected']);

    // QueryTradeInfo says TradeStatus=1 (and carries no SimulatePaid): reconciliation must not pay it either.
    const attempt = await shop.c.db('payment_attempts').where({ trade_no: tradeNo }).first();
    // A CVS attempt with its code is queried once a day; make it due now and let the scheduled sweep ask.
    await shop.c.db('payment_attempts').where({ id: attempt.id }).update({ last_checked_at: null });
    const checks = attempt.check_count;
    await waitFor(async () => (await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).check_count >= checks + 1, 'a reconciliation pass');
    expect(await shop.c.payments.reconcileAttempt(attempt.id)).toBe('simulated-rejected');
    await quiet(shop);
    expect(await orderById(shop, order.id)).toMatchObject({ status: 'pending_payment', paid_amount: 0 });
    expect((await shop.c.db('payment_attempts').where({ id: attempt.id }).first()).status).toBe('pending');
    expect(receiptsFor(shop, user, order.order_no)).toHaveLength(0);
    expect(ownerPaidFor(shop, owner, order.order_no)).toHaveLength(0);
    expect(await paidEvents(shop, order.id)).toBe(0);
    // One alert, however often it was seen.
    expect(shop.line.textsTo(owner).filter((t) => t.includes('模擬付款') && t.includes(tradeNo))).toHaveLength(1);
  });

  test('applyBankFacts: paid facts marked simulated are rejected in production; the same facts unmarked pay the order', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    await choose(shop, user, order, 'ecpay-credit');
    const attempt = await shop.c.db('payment_attempts').where({ order_id: order.id }).first();
    const facts = (simulated: boolean): BankFacts => ({
      provider: 'ecpay',
      tradeNo: attempt.trade_no,
      status: { state: 'paid', tradeNo: attempt.trade_no, amount: 680, gatewayTradeId: '2501011235108001', paidAt: new Date(), simulated, raw: {} },
      merchantOk: true,
      payTypeOk: true,
      source: 'test',
    });
    expect(await shop.c.payments.applyBankFacts(facts(true))).toBe('simulated-rejected');
    expect((await orderById(shop, order.id)).status).toBe('pending_payment');
    expect(await shop.c.payments.applyBankFacts(facts(false))).toBe('paid');
    expect((await orderById(shop, order.id)).status).toBe('paid');
    await waitFor(() => receiptsFor(shop, user, order.order_no).length === 1, 'receipt');
  });

  test('stock and payment invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
