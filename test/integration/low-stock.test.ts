/**
 * Low-stock and sold-out notices: the database records a crossing when a product's available units
 * cross the threshold downward (checkouts take their units at COMMIT), the worker tells the owners
 * once per crossing, and a restock above the threshold re-arms it.
 */
import crypto from 'node:crypto';
import type { messagingApi } from '@line/bot-sdk';
import { withTransaction } from '../../src/data/db';
import { setStockOnHand } from '../../src/domain/catalog';
import { checkInvariants } from '../../src/domain/invariants';
import { cancelOrder, checkout, Order } from '../../src/domain/orders';
import { storeLowStockThreshold } from '../../src/domain/stock-alerts';
import { asStockError, InsufficientStockError } from '../../src/errors';
import { T } from '../../src/texts';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';
import { stockOf } from '../helpers/stock';

const owner = newUserId();
let shop: TestShop;
let categoryId: number;
let seq = 0;

beforeAll(async () => {
  shop = await startShop({ label: 'low_stock', owners: [owner] });
  categoryId = (await shop.c.db('categories').first('id')).id;
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;

async function makeProduct(stock: number): Promise<{ id: number; sku: string; name: string }> {
  const sku = `LOW-${++seq}`;
  const name = `限量商品 ${seq}`;
  const [{ id }] = await db()('products').insert({ sku, category_id: categoryId, name, price: 100, image_url: 'https://example.com/p.png' }).returning('id');
  await setStockOnHand(db(), id, stock);
  return { id, sku, name };
}

/** The owner's pushes about one product, by kind (the Flex bubble names its SKU). */
function stockPushes(sku: string, title: string): messagingApi.Message[] {
  return shop.line
    .deliveredTo(owner)
    .flatMap((d) => d.messages as messagingApi.Message[])
    .filter((m) => m.type === 'flex' && JSON.stringify(m.contents).includes(title) && JSON.stringify(m.contents).includes(`"${sku}"`));
}

/** Lets the stock-alerts sweep and the deliveries run, then waits until nothing is left to send. */
async function quiet(): Promise<void> {
  await waitFor(async () => {
    const [{ n }] = await db()('stock_crossings').whereNull('notified_at').count<{ n: number }[]>({ n: '*' });
    const [{ m }] = await db()('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ m: number }[]>({ m: '*' });
    return Number(n) === 0 && Number(m) === 0;
  }, 'crossings told and messages delivered');
}

/** n shoppers check out one unit each through the chat, all at once. */
async function sales(sku: string, n: number): Promise<void> {
  const users = Array.from({ length: n }, () => newUserId());
  await Promise.all(users.map(async (u) => settled(shop, await shop.say(u, `cart ${sku} 1`))));
  await Promise.all(users.map(async (u) => settled(shop, await shop.say(u, '結帳'))));
}

describe('low stock, through the chat', () => {
  it('8 sales crossing the threshold make one push; a restock above it and another crossing a second; 0 left a sold-out push', async () => {
    const p = await makeProduct(12);
    await sales(p.sku, 8);
    expect(await stockOf(db(), p.id)).toEqual({ stock_on_hand: 12, stock_reserved: 8 });
    await quiet();
    const first = stockPushes(p.sku, T.ownerLowStockNoticeTitle);
    expect(first).toHaveLength(1);
    expect((first[0] as messagingApi.FlexMessage).altText).toBe(T.ownerLowStockAlt(p.name, p.sku, 5));

    // Restocked to 10 available (8 still held by unpaid orders): above the threshold, so re-armed.
    await settled(shop, await shop.say(owner, `庫存 ${p.sku} 18`));
    await sales(p.sku, 8);
    await quiet();
    expect(stockPushes(p.sku, T.ownerLowStockNoticeTitle)).toHaveLength(2);
    expect(stockPushes(p.sku, T.ownerSoldOutTitle)).toHaveLength(0);

    await sales(p.sku, 2);
    await quiet();
    expect(await stockOf(db(), p.id)).toEqual({ stock_on_hand: 18, stock_reserved: 18 });
    expect(stockPushes(p.sku, T.ownerLowStockNoticeTitle)).toHaveLength(2);
    const soldOut = stockPushes(p.sku, T.ownerSoldOutTitle);
    expect(soldOut).toHaveLength(1);
    expect((soldOut[0] as messagingApi.FlexMessage).altText).toBe(T.ownerSoldOutAlt(p.name, p.sku));
    expect(await db()('stock_crossings').where({ product_id: p.id }).orderBy('id').pluck('kind')).toEqual(['low', 'low', 'sold-out']);
  });

  it("the owner's 庫存 list names the threshold", async () => {
    await settled(shop, await shop.say(owner, '庫存'));
    expect(shop.line.textsTo(owner).at(-1)!.split('\n')[0]).toBe(T.ownerLowStockTitle(5));
  });
});

describe('crossings under concurrency, at the database', () => {
  const uid = () => `U${crypto.randomBytes(16).toString('hex')}`;

  async function cartsFor(productId: number, n: number): Promise<string[]> {
    const users = Array.from({ length: n }, uid);
    const carts = await db()('carts').insert(users.map((u) => ({ line_user_id: u }))).returning('id');
    await db()('cart_lines').insert(carts.map((c: { id: number }) => ({ cart_id: c.id, product_id: productId, qty: 1 })));
    return users;
  }

  /** One checkout per user, all at once, each in its own transaction (COMMIT takes the units). */
  async function checkouts(users: string[]): Promise<Order[]> {
    const results = await Promise.all(
      users.map((userId) =>
        withTransaction(db(), (trx) => checkout(trx, { userId, cartVersion: null, holdMinutes: 30 })).catch((err) => {
          if (asStockError(err) || err instanceof InsufficientStockError) return null;
          throw err;
        }),
      ),
    );
    return results.flatMap((r) => (r && r.kind === 'created' ? [r.order] : []));
  }

  async function watchOf(productId: number) {
    return db()('stock_watch').where({ product_id: productId }).first('low_armed', 'out_armed');
  }

  it('40 checkouts at once make exactly one low-stock and one sold-out crossing, 5 rounds in a row, at the threshold in the database', async () => {
    await storeLowStockThreshold(db(), 7);
    try {
      const p = await makeProduct(40);
      for (let round = 1; round <= 5; round++) {
        const orders = await checkouts(await cartsFor(p.id, 40));
        expect(orders).toHaveLength(40);
        const rows = await db()('stock_crossings').where({ product_id: p.id }).orderBy('id').select('kind', 'available', 'threshold');
        expect(rows.map((r) => r.kind)).toEqual(Array.from({ length: round }, () => ['low', 'sold-out']).flat());
        expect(rows.at(-2)).toEqual({ kind: 'low', available: 7, threshold: 7 });
        expect(rows.at(-1)).toEqual({ kind: 'sold-out', available: 0, threshold: 7 });
        // Restock: 40 more on hand than the unpaid orders hold.
        const { stock_reserved } = await stockOf(db(), p.id);
        await setStockOnHand(db(), p.id, stock_reserved + 40);
        expect(await watchOf(p.id)).toEqual({ low_armed: true, out_armed: true });
      }
    } finally {
      await storeLowStockThreshold(db(), shop.config.lowStockThreshold);
    }
  });

  it('releases racing with checkouts leave the flags as the stock says', async () => {
    const p = await makeProduct(30);
    const first = await checkouts(await cartsFor(p.id, 24));
    expect(first).toHaveLength(24);
    // 6 left (above 5): cancels give units back while 20 more shoppers take them.
    const cancels = first.slice(0, 15).map((o) => withTransaction(db(), (trx) => cancelOrder(trx, o.line_user_id, o.order_no)));
    const more = checkouts(await cartsFor(p.id, 20));
    await Promise.all([...cancels, more]);
    const { stock_on_hand, stock_reserved } = await stockOf(db(), p.id);
    const available = stock_on_hand - stock_reserved;
    expect(await watchOf(p.id)).toEqual({ low_armed: available > 5, out_armed: available > 0 });
    for (const c of await db()('stock_crossings').where({ product_id: p.id }).select('kind', 'available')) {
      expect(c.kind === 'low' ? c.available <= 5 && c.available > 0 : c.available === 0).toBe(true);
    }
  });

  it('invariants hold and every crossing was told', async () => {
    await quiet();
    expect(await checkInvariants(db())).toEqual([]);
  });
});
