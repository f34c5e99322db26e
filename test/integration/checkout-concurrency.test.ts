/**
 * Checkout, expiry, cancel and payment confirmation under concurrency, on a real PostgreSQL.
 * Domain level: the functions of src/domain/orders.ts called in their own transactions, many at once.
 */
import crypto from 'node:crypto';
import { createDb, Db, withTransaction } from '../../src/data/db';
import { checkInvariants } from '../../src/domain/invariants';
import {
  cancelOrder,
  checkout,
  CheckoutResult,
  confirmPayment,
  expireOrder,
  InsufficientStockError,
  Order,
  PaymentConfirmation,
} from '../../src/domain/orders';
import { createTestDb, TestDb } from '../helpers/test-db';

const uid = (tag: string) => `U${tag}${crypto.randomBytes(12).toString('hex')}`;

let tdb: TestDb;
let db: Db;
let categoryId: number;
let skuSeq = 0;

beforeAll(async () => {
  tdb = await createTestDb('checkout_conc', 10);
  db = tdb.db;
  [{ id: categoryId }] = await db('categories').insert({ slug: 'bench', name: '測試' }).returning('id');
});

afterAll(async () => {
  // The whole file must leave a consistent shop behind.
  expect(await checkInvariants(db)).toEqual([]);
  await tdb.destroy();
});

async function makeProduct(stock: number, price = 100): Promise<number> {
  const [{ id }] = await db('products')
    .insert({ sku: `P-${++skuSeq}`, category_id: categoryId, name: `商品 ${skuSeq}`, price, image_url: 'https://example.com/p.png', stock_on_hand: stock })
    .returning('id');
  return id;
}

/** Puts lines into a user's cart in the given insertion order (added_at increases line by line). */
async function fillCart(userId: string, lines: Array<[productId: number, qty: number]>): Promise<number> {
  await db('carts').insert({ line_user_id: userId }).onConflict('line_user_id').ignore();
  const cart = await db('carts').where({ line_user_id: userId }).first('id');
  const base = Date.now();
  for (const [i, [productId, qty]] of lines.entries()) {
    await db('cart_lines')
      .insert({ cart_id: cart.id, product_id: productId, qty, added_at: new Date(base + i) })
      .onConflict(['cart_id', 'product_id'])
      .merge({ qty });
  }
  return cart.id;
}

async function fillCarts(userIds: string[], productId: number, qty = 1): Promise<void> {
  const carts = await db('carts')
    .insert(userIds.map((u) => ({ line_user_id: u })))
    .onConflict('line_user_id')
    .merge({ updated_at: db.fn.now() })
    .returning('id');
  await db('cart_lines')
    .insert(carts.map((c: { id: number }) => ({ cart_id: c.id, product_id: productId, qty })))
    .onConflict(['cart_id', 'product_id'])
    .merge({ qty });
}

const doCheckout = (userId: string, holdMinutes = 30, cartVersion: number | null = null): Promise<CheckoutResult> =>
  withTransaction(db, (trx) => checkout(trx, { userId, cartVersion, holdMinutes }));

const doConfirm = (order: Pick<Order, 'id' | 'total'>, reference = 'ref'): Promise<PaymentConfirmation> =>
  withTransaction(db, (trx) => confirmPayment(trx, { orderId: order.id, amount: order.total, method: 'ecpay-credit', reference }));

const doExpire = (orderId: number) => withTransaction(db, (trx) => expireOrder(trx, orderId));

async function product(id: number): Promise<{ stock_on_hand: number; stock_reserved: number }> {
  return db('products').where({ id }).first('stock_on_hand', 'stock_reserved');
}

async function created(userId: string, holdMinutes = 30): Promise<Order> {
  const r = await doCheckout(userId, holdMinutes);
  if (r.kind !== 'created') throw new Error(`expected an order, got ${r.kind}`);
  return r.order;
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Samples a product's stock on its own connection until stopped; returns the lowest values seen. */
function watchStock(url: string, productId: number): { stop(): Promise<{ samples: number; minOnHand: number; minAvailable: number }> } {
  const watcher = createDb(url, { poolMax: 1, applicationName: 'test-stock-watcher' });
  let running = true;
  let samples = 0;
  let minOnHand = Infinity;
  let minAvailable = Infinity;
  const loop = (async () => {
    while (running) {
      const p = await watcher('products').where({ id: productId }).first('stock_on_hand', 'stock_reserved');
      samples++;
      minOnHand = Math.min(minOnHand, p.stock_on_hand);
      minAvailable = Math.min(minAvailable, p.stock_on_hand - p.stock_reserved);
      await new Promise((r) => setTimeout(r, 2)); // sample often, but leave the CPU to the shoppers
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await watcher.destroy();
      return { samples, minOnHand, minAvailable };
    },
  };
}

describe('checkout under concurrency', () => {
  test('200 shoppers race for 5 units, 20 rounds: exactly 5 orders each round, 195 clean refusals, stock never negative', async () => {
    const STOCK = 5;
    const USERS = 200;
    const ROUNDS = 20;
    const productId = await makeProduct(STOCK);
    const users = Array.from({ length: USERS }, (_, i) => uid(`r${i}x`));
    await fillCarts(users, productId);

    for (let round = 1; round <= ROUNDS; round++) {
      const watch = watchStock(tdb.url, productId);
      const results = await Promise.allSettled(shuffle([...users]).map((u) => doCheckout(u)));
      const seen = await watch.stop();

      const orders = results.flatMap((r) => (r.status === 'fulfilled' && r.value.kind === 'created' ? [r.value.order] : []));
      const refusals = results.filter((r) => r.status === 'rejected' && r.reason instanceof InsufficientStockError);
      const other = results.filter((r) => !(r.status === 'fulfilled' && r.value.kind === 'created') && !(r.status === 'rejected' && r.reason instanceof InsufficientStockError));
      expect({ round, orders: orders.length, refusals: refusals.length, other: other.map((r) => (r.status === 'rejected' ? String(r.reason) : r.value.kind)) })
        .toEqual({ round, orders: STOCK, refusals: USERS - STOCK, other: [] });
      expect(new Set(orders.map((o) => o.line_user_id)).size).toBe(STOCK);
      expect(seen.samples).toBeGreaterThan(0);
      expect(seen.minOnHand).toBeGreaterThanOrEqual(0);
      expect(seen.minAvailable).toBeGreaterThanOrEqual(0);
      expect(await product(productId)).toEqual({ stock_on_hand: STOCK, stock_reserved: STOCK });
      expect(Number((await db('reservations').where({ product_id: productId, status: 'held' }).sum({ n: 'qty' }))[0].n)).toBe(STOCK);
      // Losers keep their carts untouched; winners' carts are closed.
      const [{ n: linesLeft }] = await db('cart_lines').where({ product_id: productId }).count({ n: '*' });
      expect(Number(linesLeft)).toBe(USERS - STOCK);
      expect(await checkInvariants(db)).toEqual([]);

      // Reset for the next round: the winners pay (stock leaves the shop), the owner restocks, carts refill.
      for (const o of orders) expect((await doConfirm(o)).kind).toBe('paid');
      expect(await product(productId)).toEqual({ stock_on_hand: 0, stock_reserved: 0 });
      await db('products').where({ id: productId }).update({ stock_on_hand: STOCK });
      await fillCarts(orders.map((o) => o.line_user_id), productId);
    }
    const [{ n: paid }] = await db('orders').where({ status: 'paid' }).whereIn('line_user_id', users).count({ n: '*' });
    expect(Number(paid)).toBe(STOCK * ROUNDS);
    expect(await checkInvariants(db)).toEqual([]);
  });

  test('two products in opposite cart orders, 50 pairs at once: no deadlock surfaces; without retries there are no deadlocks at all', async () => {
    const PAIRS = 50;
    for (const retries of [true, false]) {
      const a = await makeProduct(70);
      const b = await makeProduct(70);
      const pairs = Array.from({ length: PAIRS }, (_, i) => [uid(`da${i}x`), uid(`db${i}x`)] as const);
      for (const [x, y] of pairs) {
        await fillCart(x, [[a, 1], [b, 2]]);
        await fillCart(y, [[b, 1], [a, 2]]);
      }
      const run = (userId: string): Promise<CheckoutResult> =>
        retries
          ? doCheckout(userId)
          : db.transaction((trx) => checkout(trx, { userId, cartVersion: null, holdMinutes: 30 })); // no retry: a deadlock would surface
      const results = await Promise.allSettled(shuffle(pairs.flatMap(([x, y]) => [x, y])).map(run));

      const deadlocks = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === '40P01');
      const ok = results.filter((r) => r.status === 'fulfilled' && r.value.kind === 'created').length;
      const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof InsufficientStockError).length;
      expect({ retries, deadlocks: deadlocks.length, accounted: ok + refused }).toEqual({ retries, deadlocks: 0, accounted: PAIRS * 2 });
      // 70 units of each, every order takes 3 units out of a+b: at most 46 orders, at least 23 (each needs ≤ 2 of either).
      expect(ok).toBeGreaterThanOrEqual(23);
      expect(ok).toBeLessThanOrEqual(46);
      const pa = await product(a);
      const pb = await product(b);
      expect(pa.stock_reserved).toBeLessThanOrEqual(70);
      expect(pb.stock_reserved).toBeLessThanOrEqual(70);
      expect(pa.stock_reserved + pb.stock_reserved).toBe(ok * 3);
      expect(await checkInvariants(db)).toEqual([]);
    }
  });

  test('a double tap (same cart version twice, concurrently) makes one order', async () => {
    const p = await makeProduct(10);
    const user = uid('dt');
    await fillCart(user, [[p, 2]]);
    const { version } = await db('carts').where({ line_user_id: user }).first('version');
    const [r1, r2] = await Promise.all([doCheckout(user, 30, version), doCheckout(user, 30, version)]);
    const kinds = [r1.kind, r2.kind].sort();
    expect(kinds).toEqual(['created', 'existing']);
    const ids = [r1, r2].map((r) => (r.kind === 'created' || r.kind === 'existing' ? r.order.id : null));
    expect(ids[0]).toBe(ids[1]);
    expect(await db('orders').where({ line_user_id: user }).count({ n: '*' })).toEqual([{ n: 1 }]);
    expect(await product(p)).toEqual({ stock_on_hand: 10, stock_reserved: 2 });
  });
});

describe('expiry racing payment confirmation', () => {
  test('100 orders past their hold, expire and confirm at once (with competitors for released stock): one consistent end per order, stock released at most once', async () => {
    const ROUNDS = 5;
    const PER_ROUND = 20;
    const COMPETITORS = 10;
    const tally: Record<string, number> = { paid: 0, late: 0, noStock: 0 };
    for (let round = 1; round <= ROUNDS; round++) {
      const productId = await makeProduct(PER_ROUND, 250);
      const buyers = Array.from({ length: PER_ROUND }, (_, i) => uid(`e${round}b${i}x`));
      const rivals = Array.from({ length: COMPETITORS }, (_, i) => uid(`e${round}c${i}x`));
      await fillCarts(buyers, productId);
      await fillCarts(rivals, productId);
      // Hold of zero: every order's hold has passed by the time anyone looks at it.
      const orders = await Promise.all(buyers.map((u) => created(u, 0)));
      expect(await product(productId)).toEqual({ stock_on_hand: PER_ROUND, stock_reserved: PER_ROUND });

      const expiries = new Map<number, Promise<Order | null>>();
      const confirms = new Map<number, Promise<PaymentConfirmation>>();
      const rivalRuns: Array<Promise<CheckoutResult>> = [];
      const work: Array<() => void> = [
        ...orders.map((o) => () => void expiries.set(o.id, doExpire(o.id))),
        ...orders.map((o) => () => void confirms.set(o.id, doConfirm(o, `race-${o.id}`))),
        ...rivals.map((u) => () => void rivalRuns.push(doCheckout(u))),
      ];
      for (const start of shuffle(work)) start();
      const rivalResults = await Promise.allSettled(rivalRuns);
      for (const r of rivalResults) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InsufficientStockError);
        else expect(r.value.kind).toBe('created');
      }
      const rivalOrders = rivalResults.filter((r) => r.status === 'fulfilled').length;

      let paidCount = 0;
      for (const o of orders) {
        const expired = await expiries.get(o.id)!;
        const paid = await confirms.get(o.id)!;
        const final = await db('orders').where({ id: o.id }).first<Order>();
        const path = (await db('order_events').where({ order_id: o.id }).orderBy('id').select('from_status', 'to_status')).map(
          (e) => `${e.from_status ?? '∅'}→${e.to_status}`,
        );
        const res = await db('reservations').where({ order_id: o.id }).select('status', 'qty');
        const count = (s: string) => res.filter((r) => r.status === s).length;
        expect(count('released')).toBeLessThanOrEqual(1);
        expect(final.paid_amount).toBe(o.total);
        if (expired === null) {
          // Payment won the lock: paid on time, the hold became the sale.
          expect(paid).toMatchObject({ kind: 'paid', late: false });
          expect(final.status).toBe('paid');
          expect(path).toEqual(['∅→pending_payment', 'pending_payment→paid']);
          expect(res.map((r) => r.status)).toEqual(['committed']);
          tally.paid!++;
          paidCount++;
        } else if (paid.kind === 'paid') {
          // Expiry first, then the late payment found stock again.
          expect(paid.late).toBe(true);
          expect(final.status).toBe('paid');
          expect(path).toEqual(['∅→pending_payment', 'pending_payment→expired', 'expired→paid']);
          expect(res.map((r) => r.status).sort()).toEqual(['committed', 'released']);
          tally.late!++;
          paidCount++;
        } else {
          // Expiry first, a rival took the released unit: money received, no stock.
          expect(paid.kind).toBe('paid-no-stock');
          expect(final.status).toBe('paid_no_stock');
          expect(path).toEqual(['∅→pending_payment', 'pending_payment→expired', 'expired→paid_no_stock']);
          expect(res.map((r) => r.status)).toEqual(['released']);
          tally.noStock!++;
        }
      }
      // Conservation: every unit is sold once (committed), held by a rival, or still on the shelf.
      const p = await product(productId);
      expect(p.stock_on_hand).toBe(PER_ROUND - paidCount);
      expect(p.stock_reserved).toBe(rivalOrders);
      expect(p.stock_on_hand - p.stock_reserved).toBeGreaterThanOrEqual(0);
      expect(await checkInvariants(db)).toEqual([]);
    }
    expect(tally.paid! + tally.late! + tally.noStock!).toBe(ROUNDS * PER_ROUND);
  });
});

describe('order transitions happen exactly once', () => {
  test('confirming a payment twice: the second call changes nothing', async () => {
    const p = await makeProduct(5, 300);
    const user = uid('pp');
    await fillCart(user, [[p, 2]]);
    const order = await created(user);
    expect(order.total).toBe(600);
    expect(await doConfirm(order)).toMatchObject({ kind: 'paid', late: false });
    const after1 = { product: await product(p), events: await db('order_events').where({ order_id: order.id }).count({ n: '*' }), order: await db('orders').where({ id: order.id }).first() };
    expect(after1.product).toEqual({ stock_on_hand: 3, stock_reserved: 0 });
    expect(await doConfirm(order, 'second')).toMatchObject({ kind: 'already-paid' });
    expect(await product(p)).toEqual(after1.product);
    expect(await db('order_events').where({ order_id: order.id }).count({ n: '*' })).toEqual(after1.events);
    expect(await db('orders').where({ id: order.id }).first()).toEqual(after1.order);
  });

  test('a payment of the wrong amount changes nothing', async () => {
    const p = await makeProduct(5, 300);
    const user = uid('am');
    await fillCart(user, [[p, 1]]);
    const order = await created(user);
    const r = await withTransaction(db, (trx) => confirmPayment(trx, { orderId: order.id, amount: 299, method: 'ecpay-credit', reference: 'x' }));
    expect(r.kind).toBe('amount-mismatch');
    expect(await db('orders').where({ id: order.id }).first('status', 'paid_amount')).toEqual({ status: 'pending_payment', paid_amount: 0 });
    expect(await product(p)).toEqual({ stock_on_hand: 5, stock_reserved: 1 });
    expect((await withTransaction(db, (trx) => confirmPayment(trx, { orderId: 987654321, amount: 1, method: 'ecpay-credit', reference: 'x' }))).kind).toBe('not-found');
  });

  test('cancel releases exactly once; a second cancel is not allowed; nobody else can cancel it', async () => {
    const p = await makeProduct(4);
    const user = uid('cc');
    await fillCart(user, [[p, 3]]);
    const order = await created(user);
    expect(await product(p)).toEqual({ stock_on_hand: 4, stock_reserved: 3 });
    expect((await withTransaction(db, (trx) => cancelOrder(trx, uid('other'), order.order_no))).kind).toBe('not-found');
    // Two cancels at once (a double tap): one cancels, the other is refused.
    const both = await Promise.all([0, 1].map(() => withTransaction(db, (trx) => cancelOrder(trx, user, order.order_no))));
    expect(both.map((r) => r.kind).sort()).toEqual(['cancelled', 'not-allowed']);
    expect(await product(p)).toEqual({ stock_on_hand: 4, stock_reserved: 0 });
    const again = await withTransaction(db, (trx) => cancelOrder(trx, user, order.order_no));
    expect(again).toMatchObject({ kind: 'not-allowed', order: { status: 'cancelled' } });
    expect(await product(p)).toEqual({ stock_on_hand: 4, stock_reserved: 0 });
    expect(await db('reservations').where({ order_id: order.id }).select('status')).toEqual([{ status: 'released' }]);
    // An expiry after the cancel does nothing either.
    expect(await doExpire(order.id)).toBeNull();
    expect(await product(p)).toEqual({ stock_on_hand: 4, stock_reserved: 0 });
  });

  test('expireOrder on an order whose hold has not passed does nothing; after the hold it expires once', async () => {
    const p = await makeProduct(3);
    const user = uid('ex');
    await fillCart(user, [[p, 1]]);
    const order = await created(user, 30);
    expect(await doExpire(order.id)).toBeNull();
    expect(await db('orders').where({ id: order.id }).first('status')).toEqual({ status: 'pending_payment' });
    expect(await product(p)).toEqual({ stock_on_hand: 3, stock_reserved: 1 });

    await db('orders').where({ id: order.id }).update({ hold_expires_at: db.raw("now() - interval '1 second'") });
    const [e1, e2] = await Promise.all([doExpire(order.id), doExpire(order.id)]);
    expect([e1, e2].filter((e) => e !== null)).toHaveLength(1);
    expect(await db('orders').where({ id: order.id }).first('status')).toEqual({ status: 'expired' });
    expect(await product(p)).toEqual({ stock_on_hand: 3, stock_reserved: 0 });
    expect(await doExpire(order.id)).toBeNull();
    expect(await product(p)).toEqual({ stock_on_hand: 3, stock_reserved: 0 });
  });

  test('late payment with stock still there → paid (late), stock taken once', async () => {
    const p = await makeProduct(3);
    const user = uid('lp');
    await fillCart(user, [[p, 2]]);
    const order = await created(user, 0);
    expect(await doExpire(order.id)).not.toBeNull();
    expect(await product(p)).toEqual({ stock_on_hand: 3, stock_reserved: 0 });
    expect(await doConfirm(order)).toMatchObject({ kind: 'paid', late: true });
    expect(await product(p)).toEqual({ stock_on_hand: 1, stock_reserved: 0 });
    expect(await doConfirm(order)).toMatchObject({ kind: 'already-paid' });
    expect(await product(p)).toEqual({ stock_on_hand: 1, stock_reserved: 0 });
  });

  test('late payment on a cancelled order whose stock is gone → paid_no_stock, no stock touched', async () => {
    const p = await makeProduct(2);
    const user = uid('ns');
    const rival = uid('nr');
    await fillCart(user, [[p, 2]]);
    const order = await created(user);
    expect((await withTransaction(db, (trx) => cancelOrder(trx, user, order.order_no))).kind).toBe('cancelled');
    await fillCart(rival, [[p, 1]]);
    await created(rival); // one of the two units is held by someone else now
    expect(await product(p)).toEqual({ stock_on_hand: 2, stock_reserved: 1 });
    expect(await doConfirm(order)).toMatchObject({ kind: 'paid-no-stock', order: { status: 'paid_no_stock' } });
    expect(await product(p)).toEqual({ stock_on_hand: 2, stock_reserved: 1 });
    expect(await db('orders').where({ id: order.id }).first('status', 'paid_amount')).toEqual({ status: 'paid_no_stock', paid_amount: order.total });
    expect(await doConfirm(order)).toMatchObject({ kind: 'already-paid' });
    expect(await db('reservations').where({ order_id: order.id }).select('status')).toEqual([{ status: 'released' }]);
  });

  test('checkout snapshots lines and totals; an inactive product blocks it and nothing is written', async () => {
    const a = await makeProduct(10, 120);
    const b = await makeProduct(10, 35);
    const user = uid('sn');
    await fillCart(user, [[b, 3], [a, 2]]);
    await db('products').where({ id: b }).update({ active: false });
    const before = { a: await product(a), b: await product(b), cart: await db('carts').where({ line_user_id: user }).first('version') };
    const nameB = (await db('products').where({ id: b }).first('name')).name;
    expect(await doCheckout(user)).toEqual({ kind: 'inactive', names: [nameB] });
    expect({ a: await product(a), b: await product(b), cart: await db('carts').where({ line_user_id: user }).first('version') }).toEqual(before);
    expect(await db('orders').where({ line_user_id: user }).count({ n: '*' })).toEqual([{ n: 0 }]);

    await db('products').where({ id: b }).update({ active: true, price: 40 });
    const r = await doCheckout(user);
    if (r.kind !== 'created') throw new Error(r.kind);
    expect(r.order).toMatchObject({ status: 'pending_payment', total: 2 * 120 + 3 * 40, item_count: 5, line_user_id: user, cart_version: before.cart.version });
    expect(r.order.hold_expires_at).toBeInstanceOf(Date);
    expect(r.lines.map((l) => [l.product_id, l.qty, l.unit_price, l.line_total])).toEqual([[a, 2, 120, 240], [b, 3, 40, 120]]);
    expect(await db('order_lines').where({ order_id: r.order.id }).orderBy('id').select('id', 'sku', 'name', 'unit_price', 'qty')).toEqual(
      r.lines.map((l) => ({ id: l.id, sku: l.sku, name: l.name, unit_price: l.unit_price, qty: l.qty })),
    );
    expect(await db('reservations').where({ order_id: r.order.id }).orderBy('id').select('order_line_id', 'product_id', 'qty', 'status')).toEqual(
      r.lines.map((l) => ({ order_line_id: l.id, product_id: l.product_id, qty: l.qty, status: 'held' })),
    );
    expect(await db('orders').where({ id: r.order.id }).first()).toEqual(r.order);
    expect(await db('cart_lines').join('carts', 'carts.id', 'cart_lines.cart_id').where('carts.line_user_id', user).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect((await db('carts').where({ line_user_id: user }).first('version')).version).toBe(before.cart.version + 1);
    expect(await product(a)).toEqual({ stock_on_hand: 10, stock_reserved: 2 });
    expect(await product(b)).toEqual({ stock_on_hand: 10, stock_reserved: 3 });
    // The snapshot keeps the price paid at checkout, whatever the owner changes later.
    await db('products').where({ id: b }).update({ price: 999 });
    expect((await db('order_lines').where({ order_id: r.order.id, product_id: b }).first('unit_price')).unit_price).toBe(40);
  });

  test('order numbers stay unique past the 9,999th order (no truncation to four digits)', async () => {
    const p = await makeProduct(50);
    await db.raw("SELECT setval('order_no_seq', 9998)");
    const users = Array.from({ length: 14 }, (_, i) => uid(`on${i}x`));
    await fillCarts(users, p);
    const orders = [];
    for (const u of users) orders.push(await created(u));
    const numbers = orders.map((o) => o.order_no);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const n of numbers) expect(n).toMatch(/^L\d{6}\d{4,}$/);
    expect(numbers.map((n) => Number(n.slice(7)))).toEqual(Array.from({ length: 14 }, (_, i) => 9999 + i));
  });

  test('an empty cart makes no order; a stale cart version is reported as such', async () => {
    const p = await makeProduct(3);
    const user = uid('em');
    expect(await doCheckout(user)).toEqual({ kind: 'empty', pending: null });
    await fillCart(user, [[p, 1]]);
    const { version } = await db('carts').where({ line_user_id: user }).first('version');
    await db('carts').where({ line_user_id: user }).update({ version: version + 1 }); // the shopper changed the cart since
    expect(await doCheckout(user, 30, version)).toEqual({ kind: 'stale-cart' });
    expect(await product(p)).toEqual({ stock_on_hand: 3, stock_reserved: 0 });
  });
});

describe('checkInvariants', () => {
  test('reports nothing on a consistent shop and detects hand-made corruption', async () => {
    expect(await checkInvariants(db)).toEqual([]);
    const p = await makeProduct(10);
    const user = uid('iv');
    await fillCart(user, [[p, 2]]);
    const order = await created(user);
    const sku = (await db('products').where({ id: p }).first('sku')).sku as string;

    // Reserved no longer matches the held reservations (allowed by every CHECK: 0 ≤ reserved ≤ on hand).
    await db('products').where({ id: p }).update({ stock_reserved: 3 });
    expect(await checkInvariants(db)).toEqual([`product ${sku}: reserved 3 but held reservations sum to 2`]);
    await db('products').where({ id: p }).update({ stock_reserved: 2 });
    expect(await checkInvariants(db)).toEqual([]);

    // A pending order whose reservation was released behind its back.
    await db('reservations').where({ order_id: order.id }).update({ status: 'released', released_at: db.fn.now() });
    const v = await checkInvariants(db);
    expect(v).toEqual(
      expect.arrayContaining([
        `product ${sku}: reserved 2 but held reservations sum to 0`,
        `order ${order.order_no} (pending_payment) has 1 released reservation(s)`,
      ]),
    );
    await db('reservations').where({ order_id: order.id }).update({ status: 'held', released_at: null });
    expect(await checkInvariants(db)).toEqual([]);

    // Paid twice: two transitions into paid recorded.
    expect((await doConfirm(order)).kind).toBe('paid');
    expect(await checkInvariants(db)).toEqual([]);
    const [extra] = await db('order_events')
      .insert({ order_id: order.id, from_status: 'expired', to_status: 'paid', reason: 'corrupt', actor: 'test' })
      .returning('id');
    expect(await checkInvariants(db)).toEqual([`order ${order.order_no}: marked paid 2 times`]);
    await db('order_events').where({ id: extra.id }).delete();

    // Paid, but its stock was never committed.
    await db('reservations').where({ order_id: order.id }).update({ status: 'released', committed_at: null, released_at: db.fn.now() });
    expect(await checkInvariants(db)).toEqual([`order ${order.order_no}: paid but its committed stock does not match its lines`]);
    await db('reservations').where({ order_id: order.id }).update({ status: 'committed', committed_at: db.fn.now(), released_at: null });

    // A reservation whose status disagrees with its timestamps.
    await db('reservations').where({ order_id: order.id }).update({ status: 'released' });
    expect(await checkInvariants(db)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^reservation \d+: status and timestamps disagree/)]),
    );
    await db('reservations').where({ order_id: order.id }).update({ status: 'committed' });
    expect(await checkInvariants(db)).toEqual([]);
  });
});
