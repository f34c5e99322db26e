/**
 * Unpaid reminders, with holds of seconds: a 12 s hold reminds 4 s before it ends (REMIND_BEFORE_MINUTES_CARD
 * applies until a method is chosen). Once per order, never after payment, cancellation or expiry,
 * also with two workers and a Redis that restarted empty.
 */
import type { messagingApi } from '@line/bot-sdk';
import { Container, createContainer } from '../../src/container';
import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import { reminderAt } from '../../src/domain/reminders';
import { startWorkers } from '../../src/jobs/worker';
import { silentLogger } from '../../src/logger';
import { METHOD_LABEL, T, taipeiTime, twd } from '../../src/texts';
import { choosePayment, payBySinopacAtm, placeOrder } from '../helpers/orders';
import { PrivateRedis } from '../../src/sandbox/private-redis';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

const HOLDS = { HOLD_MINUTES_DEFAULT: String(12 / 60), REMIND_BEFORE_MINUTES_CARD: String(4 / 60) };

const reminders = (shop: TestShop, user: string) =>
  shop.line
    .deliveredTo(user)
    .flatMap((d) => d.messages as messagingApi.Message[])
    .filter((m) => m.type === 'flex' && m.altText.startsWith('⏰'));

async function orderRow(shop: TestShop, id: number): Promise<Order> {
  return shop.c.db('orders').where({ id }).first<Order>();
}

describe('the unpaid reminder', () => {
  const owner = newUserId();
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'reminders', sinopac: true, owners: [owner], env: HOLDS });
  });
  afterAll(async () => {
    await shop?.close();
  });

  it('is sent once for an order left unpaid, and not at all for one paid, cancelled or moved to a longer hold before the reminder time', async () => {
    const [unpaid, paid, chosen, cancelled] = [newUserId(), newUserId(), newUserId(), newUserId()];
    const [o1, o2, o3, o4] = await Promise.all([
      placeOrder(shop, unpaid, 'TEA-001', 1),
      placeOrder(shop, paid, 'TEA-002', 1).then((o) => payBySinopacAtm(shop, paid, o)),
      placeOrder(shop, chosen, 'SNK-001', 1).then(async (o) => (await choosePayment(shop, chosen, o, 'sinopac-atm'), o)),
      placeOrder(shop, cancelled, 'SNK-002', 1).then(async (o) => (await settled(shop, await shop.say(cancelled, `取消 ${o.order_no}`)), o)),
    ]);
    // The chosen method moved the hold to days: its reminder is a job of its own, for that hold.
    const moved = await orderRow(shop, o3.id);
    const at = reminderAt(moved, shop.config.remindBeforeMinutes)!;
    expect(at.getTime()).toBe(moved.hold_expires_at.getTime() - 30 * 60_000);
    expect(await shop.c.queues.orders.getJobState(`remind-${o3.id}-${at.getTime()}`)).toBe('delayed');

    await waitFor(() => reminders(shop, unpaid).length > 0, 'the reminder', 20_000);
    const before = await orderRow(shop, o1.id);
    expect(before.status).toBe('pending_payment');
    expect(before.reminded_at).not.toBeNull();
    await waitFor(async () => (await orderRow(shop, o1.id)).status === 'expired', 'the hold to end', 20_000);
    await waitFor(() => shop.line.textsTo(owner).includes(T.ownerExpiredAlt(o1.order_no, o1.total)), 'the owner told of the expiry');
    await new Promise((r) => setTimeout(r, 1500));

    const [r] = reminders(shop, unpaid) as messagingApi.FlexMessage[];
    expect(reminders(shop, unpaid)).toHaveLength(1);
    expect(r!.altText).toBe(T.reminderAlt(o1.order_no, o1.total, o1.hold_expires_at));
    // Amount, deadline, and (no method chosen yet) the methods to pay with.
    const json = JSON.stringify(r!.contents);
    for (const s of [o1.order_no, twd(o1.total), taipeiTime(o1.hold_expires_at), METHOD_LABEL['sinopac-atm']!, METHOD_LABEL['sinopac-card']!]) expect(json).toContain(s);
    expect(shop.line.deliveredTo(unpaid).filter((d) => d.messages.some((m) => (m as messagingApi.FlexMessage).altText === r!.altText))[0]!.kind).toBe('push');

    for (const [user, o] of [[paid, o2], [chosen, o3], [cancelled, o4]] as const) {
      expect(reminders(shop, user)).toHaveLength(0);
      expect((await orderRow(shop, o.id)).reminded_at).toBeNull();
    }
    expect((await orderRow(shop, o2.id)).status).toBe('paid');
    expect(shop.line.textsTo(owner)).not.toContain(T.ownerExpiredAlt(o3.order_no, o3.total));
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

describe('the unpaid reminder when Redis restarts empty, with two workers', () => {
  let redis: PrivateRedis;
  let shop: TestShop;
  let c2: Container;
  let workers2: Awaited<ReturnType<typeof startWorkers>>;
  beforeAll(async () => {
    redis = await PrivateRedis.create();
    shop = await startShop({ label: 'reminders_redis', env: { ...HOLDS, REDIS_URL: redis.url } });
    c2 = createContainer(shop.config, { log: silentLogger, db: shop.tdb.db, lineTimeoutMs: 2000 });
    workers2 = await startWorkers(c2, { sweepEveryMs: 400, sweepGraceMs: 300, concurrency: 4 });
  });
  afterAll(async () => {
    await workers2?.close();
    await c2?.close();
    await shop?.close();
    await redis?.stop();
  });

  it('is sent exactly once: the lost job is found by the sweeper, the database keeps it to one', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-001', 1);
    expect(await shop.c.queues.orders.getJobs(['delayed'])).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'remind-order' })]));
    await redis.stop();
    await redis.start();
    await waitFor(() => reminders(shop, user).length > 0, 'the reminder after Redis came back', 20_000);
    await waitFor(async () => (await orderRow(shop, order.id)).status === 'expired', 'the hold to end', 20_000);
    await waitFor(() => shop.line.textsTo(user).includes(T.expiredNotice(order.order_no)), 'the expiry notice');
    await new Promise((r) => setTimeout(r, 1500));
    expect(reminders(shop, user)).toHaveLength(1);
    expect(await shop.c.db('outbox_messages').where({ dedupe_key: `order:${order.id}:reminder` }).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 1 }]);
  });
});
