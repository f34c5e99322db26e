import { chromium, type Browser, type Page } from 'playwright-core';
import { checkInvariants } from '../../src/domain/invariants';
import { parseEcpayDate } from '../../src/gateways/ecpay/ecpay-gateway';
import { taipeiTime } from '../../src/texts';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';
import { completeDelivery } from '../helpers/orders';

/**
 * The ECPay pages in a real browser (Chromium through playwright-core): our checkout page
 * auto-submits the AioCheckOut form to the ECPay sandbox, the shopper pays on the sandbox's
 * cashier, the browser comes back through OrderResultURL to our zh-TW result page.
 * Chromium: Debian's `chromium` package (`apt-get install -y chromium`), or CHROMIUM_PATH.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

type Msg = { type: string; altText?: string; contents?: unknown };

function findUris(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) findUris(n, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.type === 'uri' && typeof o.uri === 'string') out.push(o.uri);
    for (const v of Object.values(o)) findUris(v, out);
  }
  return out;
}

describe('ECPay checkout in a browser (Chromium)', () => {
  let shop: TestShop;
  let browser: Browser;
  let page: Page;
  const owner = newUserId();

  beforeAll(async () => {
    shop = await startShop({ label: 'ecpay-browser', ecpay: true, owners: [owner] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  beforeEach(async () => {
    page = await browser.newPage({ locale: 'zh-TW' });
  });
  afterEach(async () => {
    await page?.close();
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
  });

  const messagesTo = (user: string) => shop.line.deliveredTo(user).flatMap((d) => d.messages as Msg[]);
  const receipts = (user: string, orderNo: string) => shop.line.textsTo(user).filter((t) => t.startsWith(`已收到付款：訂單 ${orderNo}，`));

  async function orderAndLink(user: string, method: string): Promise<{ orderNo: string; orderId: number; url: string }> {
    await settled(shop, await shop.say(user, 'cart TEA-001 1'));
    await settled(shop, await shop.say(user, '結帳'));
    const order = await completeDelivery(shop, await shop.c.db('orders').where({ line_user_id: user }).orderBy('id', 'desc').first());
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=${method}`));
    const link = messagesTo(user).find((m) => m.type === 'flex' && /請點按鈕付款/.test(m.altText ?? ''))!;
    const url = findUris(link.contents).find((u) => u.startsWith(`${shop.url}/payments/ecpay/checkout/`))!;
    expect(url).toBeDefined();
    return { orderNo: order.order_no, orderId: order.id, url };
  }

  /** Opens the LINE button's link; the page posts itself to ECPay. */
  async function openCheckout(url: string): Promise<void> {
    await Promise.all([page.waitForURL(`${shop.ecpay!.url}/Cashier/AioCheckOut/V5`), page.goto(url, { waitUntil: 'commit' })]);
    await page.waitForLoadState('domcontentloaded');
  }

  test('credit card: checkout page → sandbox cashier (MAC accepted) → pay → back to our zh-TW result page → paid', async () => {
    const user = newUserId();
    const { orderNo, orderId, url } = await orderAndLink(user, 'ecpay-credit');
    await openCheckout(url);
    const attempt = await shop.c.db('payment_attempts').where({ order_id: orderId }).orderBy('id', 'desc').first();
    expect(await page.textContent('h1')).toBe('信用卡付款');
    expect(await page.textContent('#merchant-trade-no')).toBe(attempt.trade_no);
    expect(await page.textContent('#amount')).toBe('NT$ 680');
    expect(await page.textContent('#items')).toContain('阿里山高山烏龍茶（150g） x1');

    await Promise.all([page.waitForURL(`${shop.url}/payments/ecpay/result`), page.click('#pay button')]);
    await page.waitForLoadState('domcontentloaded');
    expect(await page.getAttribute('html', 'lang')).toBe('zh-Hant-TW');
    expect(['付款成功', '付款處理中']).toContain(await page.textContent('h1'));
    expect(await page.textContent('body')).toContain('回到 LINE');

    await waitFor(() => receipts(user, orderNo).length > 0, 'receipt');
    expect((await shop.c.db('orders').where({ id: orderId }).first()).status).toBe('paid');

    // The same LINE button again: a clear page, no form, no trip to ECPay.
    const res = await page.goto(url);
    expect(res!.status()).toBe(200);
    expect(page.url()).toBe(url);
    expect(await page.textContent('h1')).toBe('訂單已付款');
    expect(await page.locator('form').count()).toBe(0);
  });

  test('ATM: the sandbox shows the virtual account that the shopper also gets in LINE; paying it pays the order', async () => {
    const user = newUserId();
    const { orderNo, orderId, url } = await orderAndLink(user, 'ecpay-atm');
    await openCheckout(url);
    expect(await page.textContent('h1')).toBe('ATM 轉帳資訊');
    const bankCode = (await page.textContent('#bank-code'))!;
    const account = (await page.textContent('#v-account'))!;
    const deadline = parseEcpayDate((await page.textContent('#expire-date'))!);
    const pushed = await waitFor(() => messagesTo(user).find((m) => m.altText?.startsWith('ATM 轉帳資訊')), 'ATM code in LINE');
    const flex = JSON.stringify(pushed.contents);
    expect(flex).toContain(bankCode);
    expect(flex).toContain(account);
    expect(flex).toContain(taipeiTime(deadline));

    const attempt = await shop.c.db('payment_attempts').where({ order_id: orderId }).orderBy('id', 'desc').first();
    await shop.ecpay!.pay(attempt.trade_no);
    await waitFor(() => receipts(user, orderNo).length > 0, 'receipt');
    expect((await shop.c.db('orders').where({ id: orderId }).first()).status).toBe('paid');
  });

  test('an expired order\'s link shows the zh-TW expired page and never reaches ECPay', async () => {
    const user = newUserId();
    const { orderId, url } = await orderAndLink(user, 'ecpay-credit');
    await shop.c.db('orders').where({ id: orderId }).update({ hold_expires_at: shop.c.db.raw("now() - interval '1 second'") });
    await shop.c.db('reservations').where({ order_id: orderId }).update({ expires_at: shop.c.db.raw("now() - interval '1 second'") });
    await waitFor(async () => (await shop.c.db('orders').where({ id: orderId }).first()).status === 'expired', 'order expired');
    const before = shop.ecpay!.trades().length;
    const res = await page.goto(url);
    expect(res!.status()).toBe(410);
    expect(page.url()).toBe(url);
    expect(await page.textContent('h1')).toBe('訂單已逾期');
    expect(await page.locator('form').count()).toBe(0);
    expect(shop.ecpay!.trades()).toHaveLength(before);
  });

  test('stock and payment invariants hold', async () => {
    await shop.ecpay!.idle();
    await waitFor(async () => {
      const [n] = await shop.c.db('payment_notifications').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
      return Number(n!.n) === 0;
    }, 'notifications processed');
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
