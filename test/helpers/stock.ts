import type { Db } from '../../src/data/db';
import { setStockOnHand } from '../../src/domain/catalog';

export interface StockTotals {
  stock_on_hand: number;
  stock_reserved: number;
}

/** A product's stock totals (the sum of its slots), by id or SKU. */
export async function stockOf(db: Db, product: number | string): Promise<StockTotals> {
  const q = db('product_stock as s').join('products as p', 'p.id', 's.product_id');
  if (typeof product === 'number') q.where('p.id', product);
  else q.where('p.sku', product);
  const row = await q.first<StockTotals | undefined>('s.stock_on_hand', 's.stock_reserved');
  if (!row) throw new Error(`no product ${product}`);
  return row;
}

/** Stock totals of every product, by id. */
export async function allStock(db: Db): Promise<Array<{ id: number } & StockTotals>> {
  return db('product_stock').orderBy('product_id').select({ id: 'product_id' }, 'stock_on_hand', 'stock_reserved');
}

/** Sets stock on hand the way the owner does (spread over the slots); fails if below what is reserved. */
export async function setStock(db: Db, product: number | string, onHand: number): Promise<void> {
  const id = typeof product === 'number' ? product : (await db('products').where({ sku: product }).first('id')).id;
  const r = await setStockOnHand(db, id, onHand);
  if (!r.ok) throw new Error(`stock of ${product} cannot go below the ${r.reserved} reserved`);
}
