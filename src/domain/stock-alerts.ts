import type { Db } from '../data/db';
import type { UnitOfWork } from '../data/unit-of-work';
import type { Notifier } from './notices';

/**
 * Low-stock and sold-out notices. The database records a crossing in `stock_crossings` when a
 * product's available units cross the threshold downward or reach 0, in the transaction that
 * changed the stock (migration 20261204050000: checkouts take their units at COMMIT, where the
 * application cannot see the result). This turns each recorded crossing into one owner notice:
 * the rows are claimed (SKIP LOCKED, so two workers never take the same row), the notice is
 * written under the dedupe key `stock:<crossing id>` and the row is marked sent, all in one transaction.
 */
export class StockAlerts {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly notifier: Notifier,
  ) {}

  /** Sends the crossings not told yet, oldest first; returns how many. */
  async sendPending(limit = 100): Promise<number> {
    return this.uow.run(async (trx, after) => {
      const rows: Array<{ id: number; kind: 'low' | 'sold-out'; available: number; threshold: number; product_id: number; sku: string; name: string }> =
        await trx('stock_crossings as c')
          .join('products as p', 'p.id', 'c.product_id')
          .whereNull('c.notified_at')
          .orderBy('c.id')
          .limit(limit)
          .forUpdate('c')
          .skipLocked()
          .select('c.id', 'c.kind', 'c.available', 'c.threshold', 'c.product_id', 'p.sku', 'p.name');
      for (const r of rows) {
        const product = { id: r.product_id, sku: r.sku, name: r.name };
        await this.notifier.owners(
          trx,
          after,
          `stock:${r.id}`,
          r.kind === 'low' ? { type: 'low-stock', product, available: r.available, threshold: r.threshold } : { type: 'sold-out', product },
        );
      }
      if (rows.length) await trx('stock_crossings').whereIn('id', rows.map((r) => r.id)).update({ notified_at: trx.fn.now() });
      return rows.length;
    });
  }
}

/**
 * Makes the database judge crossings by this threshold (LOW_STOCK_THRESHOLD): the crossing trigger
 * reads it from `shop_settings`, so all processes' checkouts agree on one value. Workers call it
 * when they start.
 */
export async function storeLowStockThreshold(db: Db, threshold: number): Promise<void> {
  await db('shop_settings')
    .insert({ name: 'low_stock_threshold', value: String(threshold) })
    .onConflict('name')
    .merge({ value: String(threshold), updated_at: db.fn.now() });
}
