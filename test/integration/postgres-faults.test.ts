import knexFactory, { Knex } from 'knex';
import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import { T } from '../../src/texts';
import { choosePayment, placeOrder } from '../helpers/orders';
import { PrivatePostgres } from '../helpers/private-postgres';
import { newUserId, sign, settled, startShop, TestShop, waitFor } from '../helpers/shop';
import { ADMIN_URL, TestDb } from '../helpers/test-db';

/**
 * PostgreSQL failing under the shop: its connections terminated (pg_terminate_backend, only this
 * test's database's backends, chosen by datname) in the middle of a checkout and of a payment
 * confirmation, and a private PostgreSQL cluster restarted while events wait. The work is retried
 * to completion exactly once, nothing is half-written (invariants), the shopper reads zh-TW.
 */
const OWNER = newUserId();
type Msg = { type?: string; text?: string; altText?: string };
const messagesTo = (shop: TestShop, user: string): Msg[] => shop.line.deliveredTo(user).flatMap((d) => d.messages as Msg[]);
const textsTo = (shop: TestShop, user: string) => messagesTo(shop, user).map((m) => m.text ?? m.altText ?? '');
const ENGLISH_ERROR = /Error|error|terminat|ECONN|connection|undefined|null|NaN|\[object|at \w+ \(|SQL/;

async function quiet(shop: TestShop): Promise<void> {
  await waitFor(async () => {
    const [n] = await shop.c.db('payment_notifications').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
    const [o] = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    const [e] = await shop.c.db('line_events').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
    return Number(n!.n) + Number(o!.n) + Number(e!.n) === 0;
  }, 'events, payments and deliveries to settle', 40_000);
}

describe('PostgreSQL connections terminated mid-work (pg_terminate_backend)', () => {
  let shop: TestShop;
  let admin: Knex;
  let locker: Knex;
  beforeAll(async () => {
    shop = await startShop({ label: 'pg_terminate', sinopac: true, owners: [OWNER] });
    admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
    // A connection of the test's own that holds a row lock, so the shop's transaction is caught
    // waiting in the middle of its work when its connections are terminated.
    locker = knexFactory({ client: 'pg', connection: shop.tdb.url, pool: { min: 0, max: 1 } });
  });
  afterAll(async () => {
    await locker?.destroy();
    await admin?.destroy();
    await shop?.close();
  });

  /**
   * Holds `lockSql` (a SELECT … FOR UPDATE) while `start` begins the work; once a backend of this
   * database waits for that lock, terminates every backend of this database but the locker's.
   */
  async function terminateMidway(lockSql: string, bindings: unknown[], start: () => Promise<void>): Promise<number> {
    const trx = await locker.transaction();
    try {
      const mine = (await trx.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await trx.raw(lockSql, bindings as Knex.RawBinding[]);
      await start();
      await waitFor(async () => {
        const r = await admin.raw("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ? AND wait_event_type = 'Lock' AND pid <> ?", [shop.tdb.name, mine]);
        return r.rows[0].n > 0;
      }, 'the shop to wait for the locked row', 20_000);
      const killed = await admin.raw('SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ? AND pid <> ?) t', [shop.tdb.name, mine]);
      // pg_terminate_backend returns before the clients have read their termination: give the
      // pools a moment, so the test's own next query does not take a connection about to die.
      await new Promise((r) => setTimeout(r, 300));
      return killed.rows[0].n as number;
    } finally {
      await trx.rollback();
    }
  }

  test('mid-checkout: the checkout is retried and done exactly once; one zh-TW answer; stock reserved once', async () => {
    const user = newUserId();
    await settled(shop, await shop.say(user, 'cart TEA-001 2'));
    const before = messagesTo(shop, user).length;
    const { id: productId } = await shop.c.db('products').where({ sku: 'TEA-001' }).first('id');
    let eventId = '';
    const killed = await terminateMidway('SELECT 1 FROM stock_slots WHERE product_id = ? FOR UPDATE', [productId], async () => {
      eventId = await shop.say(user, '結帳');
    });
    expect(killed).toBeGreaterThanOrEqual(1);
    await settled(shop, eventId, 40_000);
    await quiet(shop);
    const ev = await shop.c.db('line_events').where({ webhook_event_id: eventId }).first('attempts', 'failed_at', 'processed_at');
    expect(ev.failed_at).toBeNull();
    expect(ev.attempts).toBeGreaterThanOrEqual(1); // the terminated run was recorded as a failed attempt
    const orders = await shop.c.db('orders').where({ line_user_id: user }).select<Order[]>('*');
    expect(orders).toHaveLength(1);
    expect(orders[0]!.status).toBe('pending_payment');
    const held = await shop.c.db('reservations').where({ order_id: orders[0]!.id, status: 'held' }).sum<{ s: number }[]>({ s: 'qty' });
    expect(Number(held[0]!.s)).toBe(2);
    const answer = messagesTo(shop, user).slice(before);
    expect(answer.length).toBeGreaterThanOrEqual(1);
    expect(shop.line.deliveredTo(user)).toHaveLength(2); // one for the cart, one for the checkout
    for (const t of textsTo(shop, user)) expect(t).not.toMatch(ENGLISH_ERROR);
    expect(JSON.stringify(answer)).toContain(orders[0]!.order_no);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });

  test('mid-payment-confirmation: the confirmation is retried; paid exactly once, one receipt, one owner push', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user);
    const attempt = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    expect(attempt.status).toBe('pending');
    const killed = await terminateMidway('SELECT 1 FROM orders WHERE id = ? FOR UPDATE', [order.id], async () => {
      expect(await shop.sinopac!.payAtm(attempt.trade_no).delivered).toBe(true);
    });
    expect(killed).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await shop.c.db('orders').where({ id: order.id }).first()).status === 'paid', 'paid after the retry', 40_000);
    await quiet(shop);
    await new Promise((r) => setTimeout(r, 1000));
    const [{ n }] = await shop.c.db('order_events').where({ order_id: order.id }).whereIn('to_status', ['paid', 'paid_no_stock']).count<{ n: string }[]>({ n: '*' });
    expect(Number(n)).toBe(1);
    expect((await shop.c.db('payment_attempts').where({ order_id: order.id }).select('status')).map((r) => r.status)).toEqual(['paid']);
    expect(messagesTo(shop, user).filter((m) => m.altText === T.receiptAlt(order.order_no, order.total))).toHaveLength(1);
    expect(messagesTo(shop, OWNER).filter((m) => m.altText === T.ownerPaidAlt(order.order_no, order.total))).toHaveLength(1);
    for (const t of textsTo(shop, user)) expect(t).not.toMatch(ENGLISH_ERROR);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

describe('PostgreSQL restarted (a private cluster)', () => {
  let pg: PrivatePostgres;
  let tdb: TestDb;
  let shop: TestShop;
  beforeAll(async () => {
    pg = await PrivatePostgres.create();
    tdb = await pg.createDb('shop');
    shop = await startShop({ label: 'pg_restart', testDb: tdb });
  }, 90_000);
  afterAll(async () => {
    await shop?.close();
    await tdb?.destroy();
    pg?.destroy();
  });

  test('events stored before the stop are processed after the restart, exactly once; a webhook while it is down gets 503 and its redelivery is answered once', async () => {
    const [a, b, c] = [newUserId(), newUserId(), newUserId()];
    await settled(shop, await shop.say(a, 'cart TEA-001 1'));
    // Stored, enqueued, not yet run: the worker is stopped.
    await shop.stopWorkers();
    const checkoutId = await shop.say(a, '結帳');
    const cartId = await shop.say(b, 'cart TEA-001 3');

    pg.stop();
    const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events: [shop.textEvent(c, '商品')] });
    const t0 = Date.now();
    const down = await shop.post(body, sign(body));
    expect(down.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(down.body).not.toMatch(/ECONN|stack|at \w+ \(/);
    // The worker starts while PostgreSQL is down: its event jobs fail and are retried.
    await shop.startWorkers();
    await new Promise((r) => setTimeout(r, 2500));
    pg.start();

    // LINE redelivers the refused body.
    await waitFor(async () => (await shop.post(body, sign(body))).status === 200, 'the redelivery to be stored', 20_000);
    const eventC = JSON.parse(body).events[0].webhookEventId as string;
    for (const id of [checkoutId, cartId, eventC]) await settled(shop, id, 45_000);
    await quiet(shop);
    await new Promise((r) => setTimeout(r, 1000));

    const events = await shop.c.db('line_events').select('webhook_event_id', 'processed_at', 'failed_at');
    expect(events.every((e) => e.processed_at && !e.failed_at)).toBe(true);
    expect(await shop.c.db('orders').where({ line_user_id: a }).count<{ n: string }[]>({ n: '*' }).then((r) => Number(r[0]!.n))).toBe(1);
    expect(shop.line.deliveredTo(a)).toHaveLength(2); // the cart answer and the checkout answer
    expect(shop.line.deliveredTo(b)).toHaveLength(1);
    expect(shop.line.deliveredTo(c)).toHaveLength(1);
    expect(textsTo(shop, c)[0]).toMatch(/^商品目錄/);
    for (const u of [a, b, c]) for (const t of textsTo(shop, u)) expect(t).not.toMatch(ENGLISH_ERROR);
    expect(await shop.c.db('cart_lines').join('carts', 'carts.id', 'cart_lines.cart_id').where('carts.line_user_id', b).first('qty')).toMatchObject({ qty: 3 });
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
