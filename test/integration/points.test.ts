import { checkInvariants } from '../../src/domain/invariants';
import { orderAdjustments } from '../../src/domain/order-adjustments';
import type { Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { runExpiry } from '../../src/jobs/worker';
import { ADJUSTMENT_LABEL, M, T } from '../../src/texts';
import { credit, ecpayCheckout, entriesOf, paymentsSettled, placeOrdersDirect, pointsOf } from '../helpers/members';
import { choosePayment, payBySinopacAtm, placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, taipeiAt, TestShop, waitFor } from '../helpers/shop';

/**
 * Points and tiers over real orders: earned once when an order is paid (however often the bank
 * says so), clawed back in proportion to refunds (a shortfall recorded, the owner told), redeemed
 * at checkout and returned once when the order closes unpaid; the tier discount at its thresholds.
 */

let shop: TestShop;
const owner = newUserId();

beforeAll(async () => {
  shop = await startShop({ label: 'points', sinopac: true, ecpay: true, owners: [owner] });
  // ECPay card refunds: a morning in Taipei, away from the 20:15 capture and its refund pause.
  shop.ecpayClock.set(taipeiAt('10:00'));
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;
const quiet = () => paymentsSettled(shop);
const orderRow = (id: number) => db()('orders').where({ id }).first<Order>();
const sources = async (user: string) => (await entriesOf(shop, user, 'points')).map((e) => e.source);

describe('points earned on paid orders', () => {
  it('are granted once per paid order: the notification processed by two workers at once, reconciliation, and the bank repeating itself', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-003', 1); // 1280 → 12 points
    const attempt = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    await shop.stopWorkers();
    try {
      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
      const n = await waitFor(
        () => db()('payment_notifications').where({ provider: 'sinopac' }).whereNull('processed_at').orderBy('id', 'desc').first<{ id: number } | undefined>('id'),
        'the notification recorded',
      );
      const outcomes = await Promise.all([shop.c.payments.processNotification(n.id), shop.c.payments.processNotification(n.id), shop.c.payments.reconcileAttempt(attempt.id)]);
      expect(outcomes.filter((o) => o === 'paid')).toHaveLength(1);
    } finally {
      await shop.startWorkers();
    }
    expect(await Promise.all([1, 2, 3].map(() => shop.sinopac!.notifyAgain(attempt.trade_no).delivered))).toEqual([true, true, true]);
    await quiet();
    expect(await orderRow(order.id)).toMatchObject({ status: 'paid', paid_amount: 1280 });
    expect(await entriesOf(shop, user, 'points')).toEqual([expect.objectContaining({ kind: 'earn', amount: 12, source: `order:${order.id}:earn` })]);
    expect(await pointsOf(shop, user)).toBe(12);
    // The receipt names the points it brought.
    expect(JSON.stringify(shop.line.deliveredTo(user).map((d) => d.messages))).toContain(M.receiptPoints(12));
  });

  it('are clawed back in proportion to a partial ECPay card refund (the refund job), and the rest on the full refund', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-003', 1); // 1280 → 12 points
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=ecpay-credit`));
    const attempt = (await db()('payment_attempts').where({ order_id: order.id }).first<PaymentAttempt>())!;
    const tradeNo = await ecpayCheckout((attempt.details as { url: string }).url);
    await shop.ecpay!.pay(tradeNo);
    await waitFor(async () => (await orderRow(order.id))!.status === 'paid', 'card payment confirmed');
    await quiet();
    expect(await pointsOf(shop, user)).toBe(12);

    await settled(shop, await shop.say(owner, `退款 ${order.order_no} 500`));
    await waitFor(async () => (await orderRow(order.id))!.refunded_amount === 500, 'partial refund done');
    await quiet();
    expect(await pointsOf(shop, user)).toBe(12 - 4); // ⌊12 × 500 / 1280⌋ = 4
    await settled(shop, await shop.say(owner, `退款 ${order.order_no}`));
    await waitFor(async () => (await orderRow(order.id))!.status === 'refunded', 'full refund done');
    await quiet();
    expect(await pointsOf(shop, user)).toBe(0);
    expect((await entriesOf(shop, user, 'points')).map((e) => [e.kind, e.amount])).toEqual([['earn', 12], ['clawback', -4], ['clawback', -8]]);
  });

  it('a clawback never takes the balance below 0: what was already spent is recorded as a shortfall and the owner told', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 3000);
    const first = await placeOrder(shop, user, 'TEA-003', 1); // 12 points
    await settled(shop, await shop.tap(user, `action=pay&o=${first.order_no}&m=wallet`));
    const second = await placeOrder(shop, user, 'TEA-001', 1);
    await settled(shop, await shop.tap(user, `action=redeem&o=${second.order_no}`)); // spends all 12
    expect(await pointsOf(shop, user)).toBe(0);

    await settled(shop, await shop.say(owner, `退款 ${first.order_no}`));
    await quiet();
    expect(await pointsOf(shop, user)).toBe(0);
    const clawback = (await entriesOf(shop, user, 'points')).find((e) => e.kind === 'clawback');
    expect(clawback).toMatchObject({ amount: 0, shortfall: 12, balance_after: 0, source: expect.stringMatching(new RegExp(`^order:${first.id}:clawback:\\d+$`)) });
    expect(shop.line.textsTo(owner)).toContain(M.ownerPointsShortfall(first.order_no, 12, 0));
    // Points clawed back count against the tier whether or not they could be taken.
    expect(await shop.c.members.points.earnedLastYear(db(), user)).toBe(0);
  });
});

describe('points redeemed at checkout', () => {
  it('the order offers them, a double tap redeems once, and they come back exactly once when the order expires', async () => {
    const user = newUserId();
    await credit(shop, user, 'points', 500);
    const order = await placeOrder(shop, user, 'TEA-001', 1); // 680: at most 50 % → 340 points
    const bubble = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(bubble).toContain(M.redeemButton(340, 340));
    expect(bubble).toContain(`action=redeem&o=${order.order_no}`);

    const taps = [shop.postbackEvent(user, `action=redeem&o=${order.order_no}`), shop.postbackEvent(user, `action=redeem&o=${order.order_no}`)];
    expect(await shop.sendEvents(taps)).toBe(200);
    await settled(shop, taps[0]!.webhookEventId);
    await settled(shop, taps[1]!.webhookEventId);
    const texts = shop.line.textsTo(user);
    expect(texts.filter((t) => t === M.redeemed(340, 340, 160))).toHaveLength(1);
    expect(texts.filter((t) => t === M.redeemAlready)).toHaveLength(1);
    expect(await pointsOf(shop, user)).toBe(160);
    expect((await orderRow(order.id))!.total).toBe(340);
    expect((await orderAdjustments(db(), order.id)).map((a) => [a.kind, a.label, a.amount])).toEqual([['points', ADJUSTMENT_LABEL.points(340), -340]]);

    // The hold passes; expiry runs three times at once (job, sweeper, a retry): the points come back once.
    await db()('orders').where({ id: order.id }).update({ hold_expires_at: new Date(Date.now() - 1000) });
    expect((await Promise.all([1, 2, 3].map(() => runExpiry(shop.c, order.id)))).filter(Boolean)).toHaveLength(1);
    expect((await orderRow(order.id))!.status).toBe('expired');
    expect(await pointsOf(shop, user)).toBe(500);
    expect((await sources(user)).filter((s) => s.startsWith(`order:${order.id}:`))).toEqual([`order:${order.id}:redeem`, `order:${order.id}:redeem-return`]);
  });

  it('a cancelled order returns them too; a tap after a payment method was chosen is refused and takes nothing', async () => {
    const user = newUserId();
    await credit(shop, user, 'points', 100);
    const cancelled = await placeOrder(shop, user, 'SNK-002', 1); // 320
    await settled(shop, await shop.tap(user, `action=redeem&o=${cancelled.order_no}`));
    expect(await pointsOf(shop, user)).toBe(0);
    await settled(shop, await shop.say(user, `取消 ${cancelled.order_no}`));
    expect(await pointsOf(shop, user)).toBe(100);

    const order = await placeOrder(shop, user, 'SNK-002', 1);
    await choosePayment(shop, user, order, 'sinopac-atm');
    await settled(shop, await shop.tap(user, `action=redeem&o=${order.order_no}`));
    expect(shop.line.textsTo(user).at(-1)).toBe(M.redeemAfterPayment);
    expect(await pointsOf(shop, user)).toBe(100);
    expect((await orderRow(order.id))!.total).toBe(320);
    // An order once chosen a method no longer offers points.
    await settled(shop, await shop.say(user, `訂單 ${order.order_no}`));
    expect(JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages)).not.toContain('action=redeem');
  });

  it('a late payment of an expired order that had redeemed points takes them again (as far as they are there)', async () => {
    const user = newUserId();
    await credit(shop, user, 'points', 400);
    const order = await placeOrder(shop, user, 'SNK-001', 1); // 450 → 225 points
    await settled(shop, await shop.tap(user, `action=redeem&o=${order.order_no}`));
    const attempt = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    expect(attempt.amount).toBe(225);
    await db()('orders').where({ id: order.id }).update({ hold_expires_at: new Date(Date.now() - 1000) });
    expect(await runExpiry(shop.c, order.id)).toBe(true);
    expect(await pointsOf(shop, user)).toBe(400);

    expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
    await waitFor(async () => (await orderRow(order.id))!.status === 'paid', 'late payment applied');
    await quiet();
    expect(await pointsOf(shop, user)).toBe(400 - 225 + 2); // taken again, plus ⌊225 / 100⌋ earned
    expect((await sources(user)).filter((s) => s.startsWith(`order:${order.id}:`))).toEqual([
      `order:${order.id}:redeem`, `order:${order.id}:redeem-return`, `order:${order.id}:redeem-late`, `order:${order.id}:earn`,
    ]);
  });
});

describe('tiers', () => {
  it.each([
    [0, null],
    [999, null],
    [1000, ['銀卡', 5, 34]],
    [4999, ['銀卡', 5, 34]],
    [5000, ['金卡', 10, 68]],
    [9999, ['金卡', 10, 68]],
    [10000, ['鑽石', 15, 102]],
  ] as Array<[number, [string, number, number] | null]>)('%i points earned in the last 12 months → tier discount %j at checkout', async (earned, expected) => {
    const user = newUserId();
    if (earned > 0) await credit(shop, user, 'points', earned, 'earn');
    const [order] = await placeOrdersDirect(shop, user, 'TEA-001', 1); // 680
    const adjustments = (await orderAdjustments(db(), order!.id)).map((a) => [a.kind, a.label, a.amount]);
    if (!expected) {
      expect(adjustments).toEqual([]);
      expect(order!.total).toBe(680);
    } else {
      const [name, percent, discount] = expected;
      expect(adjustments).toEqual([['tier-discount', ADJUSTMENT_LABEL.tier(name, percent), -discount]]);
      expect(order!.total).toBe(680 - discount);
    }
  });

  it('only the last 12 months count, net of clawbacks; the order bubble shows the discount as its own line', async () => {
    const user = newUserId();
    await credit(shop, user, 'points', 800, 'earn');
    // 13 months ago: 5,000 points earned then no longer count.
    const account = await db()('member_accounts').where({ line_user_id: user, kind: 'points' }).first();
    await db()('member_ledger').insert({ account_id: account.id, kind: 'earn', amount: 5000, balance_after: 5800, source: 'test:old-earn', created_at: new Date(Date.now() - 395 * 86400_000) });
    await db()('member_accounts').where({ id: account.id }).update({ balance: 5800 });
    expect(await shop.c.members.points.earnedLastYear(db(), user)).toBe(800);
    await credit(shop, user, 'points', 300, 'earn'); // 1,100 in the last 12 months: 銀卡
    const order = await placeOrder(shop, user, 'TEA-002', 1); // 520 → −26
    expect(order.total).toBe(494);
    const bubble = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(bubble).toContain(ADJUSTMENT_LABEL.tier('銀卡', 5));
    expect(bubble).toContain('−NT$26');

    await settled(shop, await shop.say(user, '點數'));
    const view = shop.line.textsTo(user).at(-1)!;
    expect(view).toBe(M.pointsAlt(6100, '銀卡'));
    const json = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(json).toContain(M.nextTier('金卡', 3900));
    expect(json).toContain(M.earnedLastYear(1100));
  });
});

describe('after every points test', () => {
  it('invariants hold: stock, payments, ledger sums and no negative balance', async () => {
    await quiet();
    expect(await checkInvariants(db())).toEqual([]);
    expect(T.help).toContain('點數');
  });
});
