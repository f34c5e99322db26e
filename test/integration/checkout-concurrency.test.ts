/**
 * Checkout, expiry, cancel and payment confirmation under concurrency, on a real PostgreSQL.
 * Domain level: the functions of src/domain/orders.ts called in their own transactions, many at once.
 */
import crypto from 'node:crypto';
import { createDb, Db, withTransaction } from '../../src/data/db';
import { checkInvariants } from '../../src/domain/invariants';
import { setStockOnHand } from '../../src/domain/catalog';
import { asStockError } from '../../src/errors';
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
import { setStock, stockOf } from '../helpers/stock';
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
    .insert({ sku: `P-${++skuSeq}`, category_id: categoryId, name: `商品 ${skuSeq}`, price, image_url: 'https://example.com/p.png' })
    .returning('id');
  await setStock(db, id, stock);
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

const product = (id: number) => stockOf(db, id);

/** An order's reserved units by reservation status (a line may be reserved from several slots). */
async function unitsByStatus(orderId: number): Promise<Record<string, number>> {
  const { rows } = await db.raw<{ rows: Array<{ status: string; units: number }> }>(
    'SELECT status, sum(qty)::int AS units FROM reservations WHERE order_id = ? GROUP BY status',
    [orderId],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.units]));
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
      const p = await stockOf(watcher, productId);
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
      await setStock(db, productId, STOCK);
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
      // Without withTransaction, a checkout that lost the last units between its availability check
      // and its COMMIT gets the raw commit-time stock conflict instead of the domain error.
      const refused = results.filter((r) => r.status === 'rejected' && (r.reason instanceof InsufficientStockError || asStockError(r.reason))).length;
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

describe('stock is taken at COMMIT', () => {
  test('an open checkout transaction has written its order but locked no stock row; COMMIT reserves the stock', async () => {
    const p = await makeProduct(5);
    const user = uid('lk');
    await fillCart(user, [[p, 2]]);
    const trx = await db.transaction();
    try {
      const r = await checkout(trx, { userId: user, cartVersion: null, holdMinutes: 30 });
      expect(r.kind).toBe('created');
      // Another connection can lock the product and all its stock slots without waiting: the
      // checkout holds none of them yet.
      const other = await db.transaction();
      try {
        await other.raw('SELECT 1 FROM products WHERE id = ? FOR UPDATE NOWAIT', [p]);
        const { rows } = await other.raw('SELECT sum(reserved)::int AS reserved, count(*)::int AS slots FROM (SELECT reserved FROM stock_slots WHERE product_id = ? FOR UPDATE NOWAIT) s', [p]);
        expect(rows).toEqual([{ reserved: 0, slots: 4 }]);
      } finally {
        await other.rollback();
      }
      await trx.commit();
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
    expect(await product(p)).toEqual({ stock_on_hand: 5, stock_reserved: 2 });
  });

  test('units taken between the availability check and COMMIT: COMMIT fails with the stock conflict, nothing is written, and withTransaction turns it into a clean refusal', async () => {
    const p = await makeProduct(1);
    const late = uid('cl');
    const early = uid('ce');
    await fillCart(late, [[p, 1]]);
    await fillCart(early, [[p, 1]]);

    // Bare transaction: the check passes, a rival commits the last unit, our COMMIT fails.
    const trx = await db.transaction();
    expect((await checkout(trx, { userId: late, cartVersion: null, holdMinutes: 30 })).kind).toBe('created');
    expect((await doCheckout(early)).kind).toBe('created');
    await trx.commit(); // knex reports a failed COMMIT through the transaction's own promise
    const err = await trx.executionPromise.then(() => null, (e: unknown) => e);
    expect(asStockError(err)).toEqual(new InsufficientStockError([p]));
    expect(await db('orders').where({ line_user_id: late }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await db('cart_lines').join('carts', 'carts.id', 'cart_lines.cart_id').where('carts.line_user_id', late).count({ n: '*' })).toEqual([{ n: 1 }]);
    expect(await product(p)).toEqual({ stock_on_hand: 1, stock_reserved: 1 });

    // Through withTransaction: the first attempt loses the same race, the retry refuses before writing.
    const rival = uid('cr');
    await setStock(db, p, 2);
    await fillCart(rival, [[p, 1]]);
    let attempts = 0;
    const outcome = await withTransaction(db, async (t) => {
      attempts++;
      const r = await checkout(t, { userId: late, cartVersion: null, holdMinutes: 30 });
      if (attempts === 1) expect((await doCheckout(rival)).kind).toBe('created');
      return r;
    }).then(
      (r) => r.kind,
      (e: unknown) => e,
    );
    expect(outcome).toEqual(new InsufficientStockError([p]));
    expect(attempts).toBe(2);
    expect(await product(p)).toEqual({ stock_on_hand: 2, stock_reserved: 2 });
    expect(await checkInvariants(db)).toEqual([]);
  });

  test('a product named by an order cannot be deleted; an unordered one can', async () => {
    const ordered = await makeProduct(3);
    const unordered = await makeProduct(3);
    const user = uid('dl');
    await fillCart(user, [[ordered, 1]]);
    await created(user);
    await expect(db('products').where({ id: ordered }).delete()).rejects.toMatchObject({ code: '23503' });
    expect(await db('products').where({ id: unordered }).delete()).toBe(1);

    // A delete racing a checkout that is committing waits for it, then sees its order and refuses.
    const racing = await makeProduct(3);
    const shopper = uid('dr');
    await fillCart(shopper, [[racing, 1]]);
    const trx = await db.transaction();
    expect((await checkout(trx, { userId: shopper, cartVersion: null, holdMinutes: 30 })).kind).toBe('created');
    await trx.raw('SET CONSTRAINTS ALL IMMEDIATE'); // the stock trigger runs now and holds the slot, as during COMMIT
    const deleting = db('products').where({ id: racing }).delete().then(() => 'deleted', (e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 200));
    await trx.commit();
    expect(await deleting).toBe('23503');
    expect(await product(racing)).toEqual({ stock_on_hand: 3, stock_reserved: 1 });
    expect(await checkInvariants(db)).toEqual([]);
  });
});

describe('stock slots', () => {
  const slots = async (productId: number) =>
    (await db('stock_slots').where({ product_id: productId }).orderBy('slot').select('on_hand', 'reserved')).map((r) => [r.on_hand, r.reserved]);

  test('setting stock spreads what is not reserved evenly over the slots, and never goes below what is reserved', async () => {
    const p = await makeProduct(10);
    expect(await slots(p)).toEqual([[3, 0], [3, 0], [2, 0], [2, 0]]);
    const user = uid('ss');
    await fillCart(user, [[p, 5]]);
    await created(user);
    expect(await product(p)).toEqual({ stock_on_hand: 10, stock_reserved: 5 });
    expect(await setStockOnHand(db, p, 4)).toEqual({ ok: false, reserved: 5 });
    expect(await product(p)).toEqual({ stock_on_hand: 10, stock_reserved: 5 });
    expect(await setStockOnHand(db, p, 8)).toEqual({ ok: true, reserved: 5 });
    expect(await product(p)).toEqual({ stock_on_hand: 8, stock_reserved: 5 });
    // Each slot keeps its reserved units and gets an even share of the 3 free ones.
    const after = await slots(p);
    expect(after.map(([onHand, reserved]) => onHand! - reserved!)).toEqual([1, 1, 1, 0]);
    expect(after.reduce((n, [, reserved]) => n + reserved!, 0)).toBe(5);
    expect(await checkInvariants(db)).toEqual([]);
  });

  test('shoppers are spread over the slots; a line larger than any slot is reserved from several, and each slot gets exactly its units back', async () => {
    const p = await makeProduct(400);
    const shoppers = Array.from({ length: 8 }, (_, i) => uid(`sp${i}x`));
    await fillCarts(shoppers, p);
    const orders = await Promise.all(shoppers.map((u) => created(u)));
    const used = await db('reservations').whereIn('order_id', orders.map((o) => o.id)).distinct('slot');
    expect(used.length).toBe(4);

    // 4 units in 4 slots of 1: a line of 3 takes three slots, reserved in ascending slot order.
    const q = await makeProduct(4);
    const big = uid('sb');
    await fillCart(big, [[q, 3]]);
    const order = await created(big);
    const taken = await db('reservations').where({ order_id: order.id }).orderBy('id').select('slot', 'qty');
    expect(taken.map((r) => r.qty)).toEqual([1, 1, 1]);
    expect(taken.map((r) => r.slot)).toEqual([...new Set(taken.map((r) => r.slot))].sort());
    expect((await slots(q)).map(([, reserved], slot) => [slot, reserved])).toEqual(
      [0, 1, 2, 3].map((slot) => [slot, taken.some((r) => r.slot === slot) ? 1 : 0]),
    );
    // One more than is left in all slots together is refused; exactly what is left is not.
    const more = uid('sm');
    await fillCart(more, [[q, 2]]);
    await expect(doCheckout(more)).rejects.toEqual(new InsufficientStockError([q]));
    expect((await withTransaction(db, (trx) => cancelOrder(trx, big, order.order_no))).kind).toBe('cancelled');
    expect(await slots(q)).toEqual([[1, 0], [1, 0], [1, 0], [1, 0]]);
    await fillCart(more, [[q, 4]]);
    expect((await doCheckout(more)).kind).toBe('created');
    expect(await product(q)).toEqual({ stock_on_hand: 4, stock_reserved: 4 });
    expect(await checkInvariants(db)).toEqual([]);
  });

  test('a line no single slot can take is reserved from the fewest slots, in ascending slot order', async () => {
    const p = await makeProduct(0);
    for (const [slot, onHand] of [[0, 1], [1, 1], [2, 3], [3, 3]]) await db('stock_slots').where({ product_id: p, slot }).update({ on_hand: onHand });
    const user = uid('sf');
    await fillCart(user, [[p, 4]]);
    const order = await created(user);
    const rows = await db('reservations').where({ order_id: order.id }).orderBy('id').select('slot', 'qty');
    expect(rows.map((r) => r.slot)).toEqual([2, 3]);
    expect(rows.reduce((n, r) => n + r.qty, 0)).toBe(4);
    expect(await product(p)).toEqual({ stock_on_hand: 8, stock_reserved: 4 });
    expect(await checkInvariants(db)).toEqual([]);
  });

  test('a late payment takes its units from whichever slots still have them; payment takes committed units out of their slots', async () => {
    const p = await makeProduct(4);
    const user = uid('sl');
    await fillCart(user, [[p, 3]]);
    const late = await created(user, 0);
    expect(await doExpire(late.id)).not.toBeNull();
    const rival = uid('sr');
    await fillCart(rival, [[p, 1]]);
    const r = await created(rival); // one unit held by someone else, in one of the slots
    expect(await doConfirm(late)).toMatchObject({ kind: 'paid', late: true });
    expect(await product(p)).toEqual({ stock_on_hand: 1, stock_reserved: 1 });
    expect(await unitsByStatus(late.id)).toEqual({ released: 3, committed: 3 });
    expect(await doConfirm(r)).toMatchObject({ kind: 'paid', late: false });
    expect(await product(p)).toEqual({ stock_on_hand: 0, stock_reserved: 0 });
    expect(await slots(p)).toEqual([[0, 0], [0, 0], [0, 0], [0, 0]]);
    expect(await checkInvariants(db)).toEqual([]);
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
    // 3 units out of 4 slots of 1 each: three reservations, all released.
    expect(await unitsByStatus(order.id)).toEqual({ released: 3 });
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
    expect(await unitsByStatus(order.id)).toEqual({ released: 2 });
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
    expect(r.items.lines.map((l) => [l.product_id, l.qty, l.unit_price, l.line_total])).toEqual([[a, 2, 120, 240], [b, 3, 40, 120]]);
    expect(await db('order_lines').where({ order_id: r.order.id }).orderBy('id').select('id', 'sku', 'name', 'unit_price', 'qty')).toEqual(
      r.items.lines.map((l) => ({ id: l.id, sku: l.sku, name: l.name, unit_price: l.unit_price, qty: l.qty })),
    );
    expect(await db('reservations').where({ order_id: r.order.id }).orderBy('id').select('order_line_id', 'product_id', 'qty', 'status')).toEqual(
      r.items.lines.map((l) => ({ order_line_id: l.id, product_id: l.product_id, qty: l.qty, status: 'held' })),
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
    const { slot } = await db('reservations').where({ order_id: order.id }).first('slot');
    const theSlot = db('stock_slots').where({ product_id: p, slot });

    // Reserved no longer matches the held reservations (allowed by every CHECK: 0 ≤ reserved ≤ on hand).
    await theSlot.clone().update({ reserved: 1 });
    expect(await checkInvariants(db)).toEqual([`product ${sku} slot ${slot}: reserved 1 but held reservations sum to 2`]);
    await theSlot.clone().update({ reserved: 2 });
    expect(await checkInvariants(db)).toEqual([]);

    // A pending order whose reservation was released behind its back.
    await db('reservations').where({ order_id: order.id }).update({ status: 'released', released_at: db.fn.now() });
    const v = await checkInvariants(db);
    expect(v).toEqual(
      expect.arrayContaining([
        `product ${sku} slot ${slot}: reserved 2 but held reservations sum to 0`,
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

    // An order line naming a product that does not exist (there is no foreign key to stop it).
    const [line] = await db('order_lines')
      .insert({ order_id: order.id, product_id: 2_000_000_000, sku: 'GONE', name: '不存在', unit_price: 1, qty: 1, line_total: 1 })
      .returning('id');
    expect(await checkInvariants(db)).toEqual(expect.arrayContaining([`order line ${line.id}: names product 2000000000, which does not exist`]));
    await db('order_lines').where({ id: line.id }).delete();
    expect(await checkInvariants(db)).toEqual([]);
  });
});
