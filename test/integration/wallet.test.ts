import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { Sweeper } from '../../src/jobs/worker';
import { M, T } from '../../src/texts';
import { addProduct, chooseTopupMethod, credit, ecpayCheckout, entriesOf, paymentsSettled, placeOrdersDirect, pointsOf, requestTopup, topUpBySinopacAtm, walletOf } from '../helpers/members';
import { choosePayment, placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestEvent, TestShop, waitFor } from '../helpers/shop';

/**
 * The wallet end to end: top-ups paid through every bank method and credited once when the bank
 * confirms, orders paid from the wallet in one transaction, refunds back to the wallet, and the
 * balance never overdrawn under concurrent payments from the chat and the shop's member-code path.
 * Real PostgreSQL and Redis; LINE and the banks are the local sandboxes.
 */

let shop: TestShop;
const owner = newUserId();

beforeAll(async () => {
  shop = await startShop({ label: 'wallet', sinopac: true, ecpay: true, owners: [owner], poolMax: 24 });
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;
const orderRow = (id: number) => db()('orders').where({ id }).first<Order>();

const quiet = () => paymentsSettled(shop);

/** The reply the bot wrote for one webhook event (from the outbox), as JSON text. */
async function replyTo(eventId: string): Promise<string> {
  const row = await db()('outbox_messages').where({ dedupe_key: `event:${eventId}:reply` }).first('messages');
  return JSON.stringify(row?.messages ?? null);
}

describe('wallet top-ups go through the banks and credit exactly once', () => {
  it('a SinoPac ATM top-up credits the wallet when the bank confirms; its notification replayed 5 times credits once and pushes once', async () => {
    const user = newUserId();
    const attempt = await topUpBySinopacAtm(shop, user, 500);
    expect(attempt).toMatchObject({ topup_id: expect.any(Number), order_id: null, amount: 500, method: 'sinopac-atm' });
    const credited = () => shop.line.textsTo(user).filter((t) => t === M.topupCredited(500, 500));
    expect(credited()).toHaveLength(1);

    const replays = await Promise.all(Array.from({ length: 5 }, () => shop.sinopac!.notifyAgain(attempt.trade_no).delivered));
    expect(replays).toEqual([true, true, true, true, true]);
    await quiet();
    // Reconciliation asking the bank again finds nothing new either.
    expect(await shop.c.payments.reconcileAttempt(attempt.id)).toBe('skipped');
    await quiet();

    expect(await walletOf(shop, user)).toBe(500);
    expect(await entriesOf(shop, user, 'wallet')).toEqual([expect.objectContaining({ kind: 'topup', amount: 500, balance_after: 500, source: `topup:${attempt.id}` })]);
    expect(credited()).toHaveLength(1);
    expect(await db()('wallet_topups').where({ id: attempt.topup_id! }).first()).toMatchObject({ status: 'paid' });
  });

  it('a notification confirmed by several workers at once (and reconciliation) credits once', async () => {
    const user = newUserId();
    await shop.stopWorkers();
    try {
      const topup = await requestTopupWithoutWorkers(user, 1000);
      const attempt = await chooseTopupWithoutWorkers(user, topup.id, 'sinopac-atm');
      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
      const n = await waitFor(
        () => db()('payment_notifications').where({ provider: 'sinopac' }).whereNull('processed_at').orderBy('id', 'desc').first<{ id: number } | undefined>('id'),
        'the notification recorded',
      );
      const outcomes = await Promise.all([
        ...Array.from({ length: 4 }, () => shop.c.payments.processNotification(n.id)),
        shop.c.payments.reconcileAttempt(attempt.id),
      ]);
      expect(outcomes.filter((o) => o === 'paid')).toHaveLength(1);
      expect(await walletOf(shop, user)).toBe(1000);
      expect((await entriesOf(shop, user, 'wallet')).map((e) => e.source)).toEqual([`topup:${attempt.id}`]);
    } finally {
      await shop.startWorkers();
    }
    await quiet();
    expect(shop.line.textsTo(user).filter((t) => t === M.topupCredited(1000, 1000))).toHaveLength(1);
  });

  it('every method the gateways offer can top up the wallet (SinoPac card, ECPay card, ATM and CVS codes)', async () => {
    const user = newUserId();
    let expected = 0;

    const spCard = await chooseTopupMethod(shop, user, await requestTopup(shop, user, 500), 'sinopac-card');
    expect(await shop.sinopac!.payCard(spCard!.trade_no).delivered).toBe(true);
    expected += 500;
    await waitFor(async () => (await walletOf(shop, user)) === expected, 'SinoPac card top-up credited');

    for (const method of ['ecpay-credit', 'ecpay-atm', 'ecpay-cvs'] as const) {
      const topup = await requestTopup(shop, user, 1000);
      const attempt = await chooseTopupMethod(shop, user, topup, method);
      const url = (attempt!.details as { url?: string }).url!;
      expect(url).toMatch(new RegExp(`^${shop.url}/payments/ecpay/checkout/[A-Za-z0-9_-]{24}$`));
      const tradeNo = await ecpayCheckout(url);
      if (method !== 'ecpay-credit') {
        // The code is pushed as the top-up's payment instructions (PaymentInfoURL).
        await waitFor(() => shop.line.textsTo(user).some((t) => (method === 'ecpay-atm' ? t.startsWith('ATM 轉帳資訊：NT$1,000') : t.startsWith('超商代碼繳費：NT$1,000'))), `${method} code pushed`);
      }
      await shop.ecpay!.pay(tradeNo);
      expected += 1000;
      await waitFor(async () => (await walletOf(shop, user)) === expected, `${method} top-up credited`);
    }
    await quiet();
    expect((await entriesOf(shop, user, 'wallet')).map((e) => [e.kind, e.amount])).toEqual([
      ['topup', 500], ['topup', 1000], ['topup', 1000], ['topup', 1000],
    ]);
    expect(await db()('payment_attempts as p').join('wallet_topups as t', 't.id', 'p.topup_id').where({ 't.line_user_id': user, 'p.status': 'paid' }).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 4 }]);
  });

  it('a top-up the bank reports unpaid credits nothing, and the shopper may try again', async () => {
    const user = newUserId();
    const topup = await requestTopup(shop, user, 500);
    const attempt = await chooseTopupMethod(shop, user, topup, 'sinopac-card');
    expect(await shop.sinopac!.failCard(attempt!.trade_no).delivered).toBe(true);
    await waitFor(async () => (await db()('payment_attempts').where({ id: attempt!.id }).first()).status === 'failed', 'the attempt failed');
    await quiet();
    expect(shop.line.textsTo(user)).toContain(M.topupFailed(500));
    expect(await walletOf(shop, user)).toBe(0);
    expect(await entriesOf(shop, user, 'wallet')).toEqual([]);

    // An ECPay card page never paid: reconciliation asks, the bank says not paid, nothing is credited.
    const ec = await chooseTopupMethod(shop, user, topup, 'ecpay-credit');
    await ecpayCheckout((ec!.details as { url: string }).url);
    const fresh = await db()('payment_attempts').where({ topup_id: topup.id, provider: 'ecpay' }).orderBy('id', 'desc').first<PaymentAttempt>();
    expect(['pending', 'failed']).toContain(await shop.c.payments.reconcileAttempt(fresh!.id));
    expect(await walletOf(shop, user)).toBe(0);
  });

  it('a stale top-up tap gets a clear answer: a paid top-up is not paid again, an unknown one is named', async () => {
    const user = newUserId();
    const attempt = await topUpBySinopacAtm(shop, user, 500);
    const eventId = await shop.tap(user, `action=tpay&t=${attempt.topup_id}&m=sinopac-atm`);
    await settled(shop, eventId);
    expect(shop.line.textsTo(user).at(-1)).toBe(M.topupPaid);
    await settled(shop, await shop.tap(user, 'action=tpay&t=999999&m=sinopac-atm'));
    expect(shop.line.textsTo(user).at(-1)).toBe(M.topupUnknown);
    await settled(shop, await shop.tap(user, 'action=topup&a=123'));
    expect(shop.line.textsTo(user).at(-1)).toBe(M.topupInvalidAmount([500, 1000, 2000]));
  });

  // Helpers for the test above that stops the workers: the chat is processed by hand.
  async function processPending(): Promise<void> {
    for (const e of await db()('line_events').whereNull('processed_at').orderBy('id').select('id')) await shop.c.bot.processInboxEvent(e.id);
  }
  async function requestTopupWithoutWorkers(user: string, amount: number) {
    await shop.tap(user, `action=topup&a=${amount}`);
    await processPending();
    return (await db()('wallet_topups').where({ line_user_id: user }).orderBy('id', 'desc').first())!;
  }
  async function chooseTopupWithoutWorkers(user: string, topupId: number, method: string): Promise<PaymentAttempt> {
    const eventId = await shop.tap(user, `action=tpay&t=${topupId}&m=${method}`);
    await processPending();
    return (await db()('payment_attempts').where({ request_key: eventId }).first<PaymentAttempt>())!;
  }
});

describe('paying orders from the wallet', () => {
  it('pays the order, commits its stock and debits the wallet in one transaction; points are earned; a short balance is refused and changes nothing', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 1000);
    const order = await placeOrder(shop, user, 'TEA-001', 1); // 680
    const eventId = await shop.tap(user, `action=pay&o=${order.order_no}&m=wallet`);
    await settled(shop, eventId);
    expect(await orderRow(order.id)).toMatchObject({ status: 'paid', paid_amount: 680, payment_method: 'wallet' });
    expect(await db()('reservations').where({ order_id: order.id }).pluck('status')).toEqual(['committed']);
    expect(await db()('payment_attempts').where({ order_id: order.id })).toEqual([expect.objectContaining({ provider: 'wallet', method: 'wallet', status: 'paid', amount: 680 })]);
    expect(await walletOf(shop, user)).toBe(320);
    expect(await pointsOf(shop, user)).toBe(6);
    expect(shop.line.textsTo(user)).toContain(M.walletPaid(order.order_no, 680, 320));
    expect(shop.line.textsTo(user)).toContain(T.receiptAlt(order.order_no, 680));
    expect(shop.line.textsTo(owner)).toContain(T.ownerPaidAlt(order.order_no, 680));

    // A second tap on the same button: the order is paid, nothing more is taken.
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=wallet`));
    expect(shop.line.textsTo(user).at(-1)).toBe(T.stalePayTap(order.order_no, '已付款'));

    const second = await placeOrder(shop, user, 'TEA-001', 1);
    await settled(shop, await shop.tap(user, `action=pay&o=${second.order_no}&m=wallet`));
    expect(shop.line.textsTo(user)).toContain(M.walletInsufficient(320, 680));
    expect(await orderRow(second.id)).toMatchObject({ status: 'pending_payment', paid_amount: 0 });
    expect(await db()('payment_attempts').where({ order_id: second.id })).toEqual([]);
    expect(await walletOf(shop, user)).toBe(320);
    expect(await db()('reservations').where({ order_id: second.id }).pluck('status')).toEqual(['held']);
  });

  it('an order whose bank code was handed out can still be paid from the wallet; the code is superseded', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 500);
    const order = await placeOrder(shop, user, 'SNK-001', 1); // 450
    const atm = await choosePayment(shop, user, order, 'sinopac-atm');
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=wallet`));
    expect(await orderRow(order.id)).toMatchObject({ status: 'paid', payment_method: 'wallet' });
    expect((await db()('payment_attempts').where({ id: atm!.id }).first()).status).toBe('superseded');
    expect(await walletOf(shop, user)).toBe(50);
  });

  it("the owner's 退款 of a wallet-paid order credits the wallet at once, in part or in full, never more than paid", async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 2000);
    const order = await placeOrder(shop, user, 'TEA-003', 1); // 1280 → 12 points
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=wallet`));
    expect(await walletOf(shop, user)).toBe(720);
    expect(await pointsOf(shop, user)).toBe(12);

    await settled(shop, await shop.say(owner, `退款 ${order.order_no} 320`));
    expect(shop.line.textsTo(owner)).toContain(M.ownerRefundedToWallet(order.order_no, 320, 1040));
    expect(await walletOf(shop, user)).toBe(1040);
    expect(shop.line.textsTo(user)).toContain(M.refundToWallet(order.order_no, 320, 1040));
    expect(await orderRow(order.id)).toMatchObject({ status: 'paid', refunded_amount: 320 });
    expect(await pointsOf(shop, user)).toBe(12 - 3); // ⌊12 × 320 / 1280⌋

    await settled(shop, await shop.say(owner, `退款 ${order.order_no} 961`));
    expect(shop.line.textsTo(owner).at(-1)).toBe(T.ownerRefundTooMuch(order.order_no, 960));
    await settled(shop, await shop.say(owner, `退款 ${order.order_no}`));
    expect(await walletOf(shop, user)).toBe(2000);
    expect(await orderRow(order.id)).toMatchObject({ status: 'refunded', refunded_amount: 1280 });
    expect(await pointsOf(shop, user)).toBe(0);
    await settled(shop, await shop.say(owner, `退款 ${order.order_no}`));
    expect(shop.line.textsTo(owner).at(-1)).toBe(T.ownerRefundNotPaid(order.order_no, '已退款'));
    expect((await entriesOf(shop, user, 'wallet')).filter((e) => e.kind === 'refund').map((e) => e.amount)).toEqual([320, 960]);
  });
});

describe('the wallet is never overdrawn', () => {
  it('100 concurrent payments of NT$100 against NT$1,000 — webhook wallet payments and member-code charges mixed: exactly 10 succeed, the balance ends at 0, the rest are refused in zh-TW', async () => {
    const user = newUserId();
    await addProduct(shop, 'W-100', 100, 1000);
    await topUpBySinopacAtm(shop, user, 1000);
    const orders = await placeOrdersDirect(shop, user, 'W-100', 90);
    const code = (await shop.c.uow.run((trx) => shop.c.members.memberCard(trx, user))).code.code;

    await shop.stopWorkers();
    let events: TestEvent[];
    try {
      events = [
        ...orders.map((o) => shop.postbackEvent(user, `action=pay&o=${o.order_no}&m=wallet`)),
        ...Array.from({ length: 10 }, () => shop.textEvent(owner, `收款 ${code} 100`)),
      ].sort(() => Math.random() - 0.5);
      // Each event its own signed webhook call, all at once; then as many workers as there are events.
      const statuses = await Promise.all(events.map((e) => shop.sendEvents([e])));
      expect(statuses.every((s) => s === 200)).toBe(true);
      const ids = await db()('line_events').whereIn('webhook_event_id', events.map((e) => e.webhookEventId)).pluck('id');
      expect(ids).toHaveLength(100);
      const results = await Promise.all(ids.map((id: number) => shop.c.bot.processInboxEvent(id)));
      expect(results.every((r) => r === 'processed')).toBe(true);
    } finally {
      await shop.startWorkers();
    }
    await quiet();

    const debits = (await entriesOf(shop, user, 'wallet')).filter((e) => e.amount < 0);
    expect(debits).toHaveLength(10);
    expect(debits.every((e) => e.amount === -100)).toBe(true);
    expect(await walletOf(shop, user)).toBe(0);
    const paidOrders = await db()('orders').whereIn('id', orders.map((o) => o.id)).where({ status: 'paid' }).count<{ n: number }[]>({ n: '*' });
    const codeUsed = (await db()('member_codes').where({ line_user_id: user }).whereNotNull('used_at')).length;
    expect(Number(paidOrders[0]!.n) + codeUsed).toBe(10);
    expect(codeUsed).toBeLessThanOrEqual(1);

    // Every event got one clear answer: paid, or refused for the balance (or the code already spent).
    let paid = 0;
    let refused = 0;
    for (const e of events) {
      const reply = await replyTo(e.webhookEventId);
      if (reply.includes('已從錢包付款') || reply.includes('門市收款成功')) paid++;
      else if (reply.includes('錢包餘額不足') || reply.includes('顧客錢包餘額不足') || reply.includes(M.ownerChargeUsed)) refused++;
      else throw new Error(`unexpected answer: ${reply}`);
    }
    expect([paid, refused]).toEqual([10, 90]);
    expect(await checkInvariants(db())).toEqual([]);
  });

  it('100 concurrent wallet payments straight through the use case (no chat in between): exactly 10 succeed', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 1000);
    const orders = await placeOrdersDirect(shop, user, 'W-100', 100);
    const results = await Promise.all(
      orders.map((o) => shop.c.uow.run((trx, after) => shop.c.payments.wallet.payOrder(trx, after, { userId: user, orderNo: o.order_no, requestKey: `direct-${o.id}` }))),
    );
    expect(results.filter((r) => r.kind === 'paid')).toHaveLength(10);
    expect(results.filter((r) => r.kind === 'insufficient')).toHaveLength(90);
    expect(await walletOf(shop, user)).toBe(0);
    await quiet();
  });
});

describe('after every wallet test', () => {
  it("the owner's daily summary adds the day's wallet top-ups and points granted", async () => {
    const day = (await db().raw("SELECT to_char(now() AT TIME ZONE 'Asia/Taipei', 'YYYY-MM-DD') AS d")).rows[0].d as string;
    const figures = await shop.c.members.day(db(), day);
    const sums = (
      await db().raw(`SELECT count(*) FILTER (WHERE e.kind = 'topup')::int AS n, coalesce(sum(e.amount) FILTER (WHERE e.kind = 'topup'), 0)::int AS topup,
        coalesce(sum(e.amount) FILTER (WHERE e.kind = 'earn'), 0)::int AS earned FROM member_ledger e`)
    ).rows[0];
    expect(figures).toEqual({ topups: sums.n, topupAmount: sums.topup, pointsGranted: sums.earned });
    expect(figures.topups).toBeGreaterThan(5);
    await new Sweeper(shop.c, 0).dailySummary();
    await quiet();
    expect(shop.line.textsTo(owner).at(-1)).toContain(M.dailySummaryMembers(figures.topups, figures.topupAmount, figures.pointsGranted));
  });

  it('invariants hold: stock, payments, ledger sums and no negative balance', async () => {
    await quiet();
    expect(await checkInvariants(db())).toEqual([]);
  });
});
