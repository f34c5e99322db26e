import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { T } from '../../src/texts';
import { choosePayment, placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

/**
 * The banks down for a while: every call to the SinoPac or ECPay sandbox times out or is answered
 * with garbage (their failEveryCall switch). The shopper gets clear zh-TW answers, nothing is paid
 * without the bank confirming it, no attempt is left where reconciliation cannot take it, and once
 * the bank answers again reconciliation pays the order exactly once with one receipt push.
 */
const OWNER = newUserId();
type Msg = { type?: string; text?: string; altText?: string };
const messagesTo = (shop: TestShop, user: string): Msg[] => shop.line.deliveredTo(user).flatMap((d) => d.messages as Msg[]);
const textsOf = (msgs: Msg[]) => msgs.map((m) => m.text ?? m.altText ?? '');
/** ASCII error-ish words that a shopper must never see. */
const ENGLISH_ERROR = /Error|error|timeout|Timeout|ECONN|undefined|null|NaN|\[object|at \w+ \(|Gateway|BAD_/;

async function orderRow(shop: TestShop, id: number): Promise<Order> {
  return (await shop.c.db('orders').where({ id }).first<Order>())!;
}
async function paidTransitions(shop: TestShop, orderId: number): Promise<number> {
  const [{ n }] = await shop.c.db('order_events').where({ order_id: orderId }).whereIn('to_status', ['paid', 'paid_no_stock']).count<{ n: string }[]>({ n: '*' });
  return Number(n);
}
async function quiet(shop: TestShop): Promise<void> {
  await waitFor(async () => {
    const [n] = await shop.c.db('payment_notifications').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
    const [o] = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(n!.n) + Number(o!.n) === 0;
  }, 'payments and deliveries to settle', 30_000);
}
/** The shopper asks for the order; the answer is zh-TW and says it is not paid yet. */
async function askOrder(shop: TestShop, user: string, order: Order): Promise<string[]> {
  const before = messagesTo(shop, user).length;
  await settled(shop, await shop.say(user, `訂單 ${order.order_no}`));
  const texts = textsOf(messagesTo(shop, user).slice(before));
  expect(texts.join('\n')).toContain('待付款');
  return texts;
}
/** Attempts are in states the reconciliation handles: pending (checked by the sweep) or final. */
async function attemptStates(shop: TestShop, orderId: number): Promise<string[]> {
  return (await shop.c.db('payment_attempts').where({ order_id: orderId }).orderBy('id').select('status')).map((r) => r.status);
}

describe('SinoPac timing out or answering garbage on every call', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'bank_faults_sinopac', sinopac: true, owners: [OWNER], env: { RECONCILE_AFTER_MINUTES: '0.001', RECONCILE_EVERY_MINUTES: '0.01' } });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test.each(['timeout', 'garbage', 'http500'] as const)('creating a payment (%s on every call, Nonce included): a clear zh-TW answer, a failed attempt, the order still payable; after recovery it pays once', async (failure) => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    shop.sinopac!.failEveryCall(failure);
    let failed: PaymentAttempt | undefined;
    try {
      const before = messagesTo(shop, user).length;
      failed = await choosePayment(shop, user, order, 'sinopac-atm');
      const reply = messagesTo(shop, user).slice(before);
      expect(textsOf(reply)[0]).toBe(T.paymentCreateFailed);
      for (const t of textsOf(reply)) expect(t).not.toMatch(ENGLISH_ERROR);
      expect(JSON.stringify(reply)).toContain(`action=pay&o=${order.order_no}&m=sinopac-atm`);
      expect(failed?.status).toBe('failed');
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });
      await askOrder(shop, user, order);
    } finally {
      shop.sinopac!.failEveryCall(null);
    }
    const ok = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    expect(ok.status).toBe('pending');
    expect(await shop.sinopac!.payAtm(ok.trade_no).delivered).toBe(true);
    await waitFor(async () => (await orderRow(shop, order.id)).status === 'paid', 'paid');
    await quiet(shop);
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(messagesTo(shop, user).filter((m) => m.altText === T.receiptAlt(order.order_no, order.total))).toHaveLength(1);
    expect(await attemptStates(shop, order.id)).toEqual(['failed', 'paid']);
  });

  test.each(['timeout', 'garbage'] as const)('confirming a payment (%s on every call): never paid without the bank; once it answers, paid exactly once, one receipt, one owner push', async (failure) => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const attempt = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    expect(attempt.status).toBe('pending');
    shop.sinopac!.failEveryCall(failure);
    try {
      // The money arrives and the bank notifies us; every question we ask the bank fails.
      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
      const asked = () => shop.sinopac!.requests.filter((r) => r.injected === failure).length;
      const start = asked();
      // Notification job and reconciliation sweeps both try (and fail) several times.
      await waitFor(() => asked() - start >= 6, 'the shop to ask the bank several times', 40_000);
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });
      expect(await attemptStates(shop, order.id)).toEqual(['pending']);
      expect(await paidTransitions(shop, order.id)).toBe(0);
      expect(messagesTo(shop, user).filter((m) => m.altText === T.receiptAlt(order.order_no, order.total))).toHaveLength(0);
      for (const t of await askOrder(shop, user, order)) expect(t).not.toMatch(ENGLISH_ERROR);
      expect(await checkInvariants(shop.c.db)).toEqual([]);
    } finally {
      shop.sinopac!.failEveryCall(null);
    }
    await waitFor(async () => (await orderRow(shop, order.id)).status === 'paid', 'paid once the bank answers', 30_000);
    await quiet(shop);
    await new Promise((r) => setTimeout(r, 1500)); // more sweeps: nothing changes
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(await attemptStates(shop, order.id)).toEqual(['paid']);
    expect(messagesTo(shop, user).filter((m) => m.altText === T.receiptAlt(order.order_no, order.total))).toHaveLength(1);
    expect(messagesTo(shop, OWNER).filter((m) => m.altText === T.ownerPaidAlt(order.order_no, order.total))).toHaveLength(1);
    for (const t of textsOf(messagesTo(shop, user))) expect(t).not.toMatch(ENGLISH_ERROR);
  });

  test('invariants hold', async () => {
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

const unescapeHtml = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

describe('ECPay timing out or answering garbage on every call', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'bank_faults_ecpay', ecpay: true, owners: [OWNER], env: { RECONCILE_AFTER_MINUTES: '0.001', RECONCILE_EVERY_MINUTES: '0.01' } });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test.each(['timeout', 'garbage'] as const)('a card payment whose QueryTradeInfo (%s on every call) cannot confirm it: not paid, the result page is zh-TW; once ECPay answers, paid exactly once, one receipt, one owner push', async (failure) => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const attempt = (await choosePayment(shop, user, order, 'ecpay-credit'))!;
    const page = await (await fetch(`${shop.url}/payments/ecpay/checkout/${attempt.public_ref}`)).text();
    const action = /<form id="ecpay-checkout" method="post" action="([^"]*)"/.exec(page)![1]!;
    const fields: Record<string, string> = {};
    for (const m of page.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
    // The shopper's cashier works; the shop's own calls to ECPay do not.
    shop.ecpay!.failEveryCall(failure, { hangMs: 3000 });
    try {
      const posted = await fetch(unescapeHtml(action), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
      expect(posted.status).toBe(200);
      await shop.ecpay!.pay(fields.MerchantTradeNo!); // ReturnURL delivered (a signed "paid")
      const queries = () => shop.ecpay!.apiRequests.filter((r) => r.path === '/Cashier/QueryTradeInfo/V5').length;
      await waitFor(() => queries() >= 4, 'the shop to ask ECPay several times', 40_000);
      expect(await orderRow(shop, order.id)).toMatchObject({ status: 'pending_payment' });
      expect(await attemptStates(shop, order.id)).toEqual(['pending']);
      expect(await paidTransitions(shop, order.id)).toBe(0);
      // The shopper's browser comes back to OrderResultURL: a zh-TW page from our own records.
      const result = await fetch(`${shop.url}/payments/ecpay/result`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ MerchantTradeNo: fields.MerchantTradeNo!, MerchantID: fields.MerchantID! }).toString() });
      const html = await result.text();
      expect(result.status).toBeLessThan(500);
      expect(html).toMatch(/[\u4e00-\u9fff]/);
      expect(html.replace(/<[^>]*>/g, ' ')).not.toMatch(ENGLISH_ERROR);
      for (const t of await askOrder(shop, user, order)) expect(t).not.toMatch(ENGLISH_ERROR);
      expect(await checkInvariants(shop.c.db)).toEqual([]);
    } finally {
      shop.ecpay!.failEveryCall(null);
    }
    await waitFor(async () => (await orderRow(shop, order.id)).status === 'paid', 'paid once ECPay answers', 40_000);
    await quiet(shop);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await paidTransitions(shop, order.id)).toBe(1);
    expect(await attemptStates(shop, order.id)).toEqual(['paid']);
    expect(shop.line.textsTo(user).filter((t) => t.startsWith(`已收到付款：訂單 ${order.order_no}，`))).toHaveLength(1);
    expect(shop.line.textsTo(OWNER).filter((t) => t.startsWith(`💰 新付款：訂單 ${order.order_no}，`))).toHaveLength(1);
    for (const t of shop.line.textsTo(user)) expect(t).not.toMatch(ENGLISH_ERROR);
  });

  test('invariants hold', async () => {
    await shop.ecpay!.idle();
    await quiet(shop);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
