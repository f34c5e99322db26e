import os from 'node:os';
import { createDb, Db, migrationConfig, Trx, withTransaction } from '../data/db';
import { checkInvariants } from '../domain/invariants';
import { setStockOnHand } from '../domain/catalog';
import { checkout } from '../domain/orders';
import { asStockError, InsufficientStockError } from '../errors';
import { cpuTracker, endedChildrenCpuMs } from './procs';
import { fmt, hotRowSettings, HotRowOptions, inBenchDatabase, median, medianBy, sumBy, pgbench, table } from './common';

export type CheckoutBenchOptions = HotRowOptions;

export interface CheckoutBenchResult {
  /** Median over the rounds: one hot product, each checkout its own transaction (one statement). */
  checkoutsPerSecond: number;
  /** Median: one hot product, each checkout inside BEGIN … COMMIT, as the bot runs it. */
  inTransactionPerSecond: number;
  spreadPerSecond: number;
  pgbenchTps: number;
  /** pgbench's conditional decrement of a random one of SPREAD_PRODUCTS rows. */
  pgbenchSpreadTps: number;
  ratio: number;
}

const TARGET_RATIO = 0.5;
const HOT_STOCK = 100_000_000;
/** The spread measurement: carts over this many products, against pgbench over as many rows. */
const SPREAD_PRODUCTS = 1000;
const SPREAD_TARGET = 0.3;

/**
 * Carts for users `${prefix}0 .. ${prefix}(n-1)`, user i holding one unit of productIds[i % k].
 * Two statements, whatever n.
 */
export async function fillCarts(db: Db, prefix: string, n: number, productIds: number[]): Promise<void> {
  await db.raw(`INSERT INTO carts (line_user_id) SELECT ? || g FROM generate_series(0, ? - 1) g`, [prefix, n]);
  await db.raw(
    `INSERT INTO cart_lines (cart_id, product_id, qty)
     SELECT c.id, (?::int[])[1 + substr(c.line_user_id, length(?) + 1)::int % ?], 1
     FROM carts c WHERE c.line_user_id LIKE ? || '%'`,
    [productIds, prefix, productIds.length, prefix],
  );
}

type Mode = 'statement' | 'transaction';

interface LoadResult {
  ok: number;
  soldOut: number;
  errors: number;
  firstError: string | null;
  perSecond: number;
  p50: number;
  p99: number;
  exhausted: boolean;
}

/**
 * Closed loop: `clients` shoppers, each checking out the next pre-filled cart until the deadline.
 * 'statement': the checkout is one statement and so its own transaction (as pgbench's UPDATE is);
 * 'transaction': inside BEGIN … COMMIT through withTransaction, as the bot's event transaction.
 */
async function checkoutLoad(db: Db, prefix: string, carts: { next: number; total: number }, clients: number, seconds: number, mode: Mode): Promise<LoadResult> {
  let ok = 0;
  let soldOut = 0;
  let errors = 0;
  let firstError: string | null = null;
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  const args = (userId: string) => ({ userId, cartVersion: null, holdMinutes: 30 });
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end && carts.next < carts.total) {
        const userId = `${prefix}${carts.next++}`;
        const t0 = process.hrtime.bigint();
        try {
          const r =
            mode === 'statement'
              ? // One statement is one transaction: the knex instance stands in for the transaction.
                await checkout(db as Trx, args(userId)).catch((err) => Promise.reject(asStockError(err) ?? err))
              : await withTransaction(db, (trx) => checkout(trx, args(userId)));
          if (r.kind === 'created') ok++;
          else throw new Error(`unexpected checkout result ${r.kind}`);
        } catch (err) {
          if (err instanceof InsufficientStockError) soldOut++;
          else {
            errors++;
            firstError ??= err instanceof Error ? err.message : String(err);
          }
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { ok, soldOut, errors, firstError, perSecond: ok / elapsed, p50: pct(0.5), p99: pct(0.99), exhausted: carts.next >= carts.total };
}

/**
 * Hot-product checkout: `clients` shoppers at once checking out one product (pool of `clients`),
 * next to pgbench's single-row conditional decrement at the same client count, on the same
 * PostgreSQL, in the same run. The measurements are interleaved over `rounds` rounds (pgbench,
 * hot, hot in a transaction, spread, then again) so that drift of the machine hits all of them
 * alike; the table reports medians. Creates and drops its own database.
 */
export async function checkoutBench(opts: CheckoutBenchOptions = {}): Promise<CheckoutBenchResult> {
  const { adminUrl, seconds, rounds, clients, bin } = hotRowSettings(opts);
  return inBenchDatabase(adminUrl, 'bench_checkout', async ({ url, name, admin }) => {
    let db: Db | null = null;
    console.log(`\n== checkout bench: ${clients} clients, pool ${clients}, ${rounds} rounds of ${seconds} s per measurement (database ${name}) ==`);
    try {
      db = createDb(url, { poolMax: clients, applicationName: 'bench-checkout' });
      await db.migrate.latest(migrationConfig());

      const [{ id: categoryId }] = await db('categories').insert({ slug: 'bench', name: 'bench' }).returning('id');
      const productIds: number[] = [];
      for (let i = 0; i <= SPREAD_PRODUCTS; i++) {
        const [{ id }] = await db('products')
          .insert({ sku: `HOT-${i}`, category_id: categoryId, name: `熱賣商品 ${i}`, price: 100, image_url: 'https://example.com/hot.png' })
          .returning('id');
        await setStockOnHand(db, id, HOT_STOCK);
        productIds.push(id);
      }
      const [hotId, ...spreadIds] = productIds as [number, ...number[]];
      // Generous: more carts than the clients can check out in the time given.
      const perMode = Math.max(20_000, Math.ceil(rounds * seconds * 6_000));
      const WARM = 5_000;
      await fillCarts(db, 'warm-', WARM, productIds);
      await fillCarts(db, 'hot-', perMode, [hotId]);
      await fillCarts(db, 'trx-', perMode, [hotId]);
      await fillCarts(db, 'spread-', perMode, spreadIds);

      // The single-row table pgbench hammers, in the same database.
      await db.raw('CREATE TABLE hot (id int PRIMARY KEY, stock int NOT NULL)');
      await db.raw('INSERT INTO hot VALUES (1, ?)', [2_000_000_000]);
      await db.raw('CREATE TABLE spread (id int PRIMARY KEY, stock int NOT NULL)');
      await db.raw('INSERT INTO spread SELECT g, 2000000000 FROM generate_series(1, ?) g', [SPREAD_PRODUCTS]);
      const spreadSql = `\\set id random(1, ${SPREAD_PRODUCTS})\nUPDATE spread SET stock = stock - 1 WHERE id = :id AND stock > 0;\n`;

      // A shop that has been running: some thousands of orders, statistics that know it, and fresh
      // connections whose cached plans (PL/pgSQL, foreign-key checks) are made for tables of that size.
      // A fresh database's first plans are made for empty tables (sequential scans) and a 10 s run
      // ends before autovacuum would re-analyze them.
      const warm = await checkoutLoad(db, 'warm-', { next: 0, total: WARM }, clients, 60, 'transaction');
      if (warm.errors) throw new Error(`warm-up checkouts failed: ${warm.firstError}`);
      await db.raw('VACUUM ANALYZE');
      await db.destroy();
      db = createDb(url, { poolMax: clients, applicationName: 'bench-checkout' });
      await Promise.all(Array.from({ length: clients }, () => db!.raw('SELECT 1')));

      const cursors = { hot: { next: 0, total: perMode }, trx: { next: 0, total: perMode }, spread: { next: 0, total: perMode } };
      const results = { pg: [] as number[], pgSpread: [] as number[], hot: [] as LoadResult[], trx: [] as LoadResult[], spread: [] as LoadResult[] };
      // CPU per spread checkout and per pgbench spread UPDATE: client (this process, or pgbench) and
      // every PostgreSQL process, so the ratio's limit can be read off.
      const cpuNow = () => ({ self: process.cpuUsage(), pgbench: endedChildrenCpuMs(), postgres: cpuTracker('postgres') });
      const cpuSince = (c: ReturnType<typeof cpuNow>, n: number) => {
        const own = process.cpuUsage(c.self);
        return { client: ((own.user + own.system) / 1000 + endedChildrenCpuMs() - c.pgbench) / n, postgres: c.postgres.stop() / n };
      };
      const cpuSpread = { ours: [] as Array<{ client: number; postgres: number }>, pgbench: [] as Array<{ client: number; postgres: number }> };
      for (let round = 1; round <= rounds; round++) {
        await admin.raw('CHECKPOINT');
        results.pg.push((await pgbench(bin, url, clients, seconds)).tps);
        await admin.raw('CHECKPOINT');
        results.hot.push(await checkoutLoad(db, 'hot-', cursors.hot, clients, seconds, 'statement'));
        await admin.raw('CHECKPOINT');
        results.trx.push(await checkoutLoad(db, 'trx-', cursors.trx, clients, seconds, 'transaction'));
        await admin.raw('CHECKPOINT');
        let c0 = cpuNow();
        results.spread.push(await checkoutLoad(db, 'spread-', cursors.spread, clients, seconds, 'statement'));
        cpuSpread.ours.push(cpuSince(c0, results.spread.at(-1)!.ok));
        await admin.raw('CHECKPOINT');
        c0 = cpuNow();
        const pgs = await pgbench(bin, url, clients, seconds, spreadSql);
        results.pgSpread.push(pgs.tps);
        cpuSpread.pgbench.push(cpuSince(c0, pgs.transactions));
        const r = results.hot.length - 1;
        console.log(
          `round ${round}: pgbench ${fmt(results.pg[r]!)} tps, hot ${fmt(results.hot[r]!.perSecond)}/s, ` +
            `hot in a transaction ${fmt(results.trx[r]!.perSecond)}/s, spread ${fmt(results.spread[r]!.perSecond)}/s ` +
            `(pgbench spread ${fmt(results.pgSpread[r]!)} tps), ` +
            `ratio ${(results.hot[r]!.perSecond / results.pg[r]!).toFixed(2)}`,
        );
      }

      const invariants = await checkInvariants(db);
      const product = await db('product_stock').where({ product_id: hotId }).first('stock_on_hand', 'stock_reserved');
      const [{ n: hotOrders }] = await db('orders')
        .where('line_user_id', 'like', 'hot-%')
        .orWhere('line_user_id', 'like', 'trx-%')
        .count<{ n: number }[]>({ n: '*' });
      const [{ n: warmHot }] = await db('order_lines as l')
        .join('orders as o', 'o.id', 'l.order_id')
        .where('l.product_id', hotId)
        .andWhere('o.line_user_id', 'like', 'warm-%')
        .sum<{ n: number }[]>({ n: 'l.qty' });
      await db.destroy();
      db = null;

      const med = medianBy;
      const hot = med(results.hot, (r) => r.perSecond);
      const trx = med(results.trx, (r) => r.perSecond);
      const spread = med(results.spread, (r) => r.perSecond);
      const pg = median(results.pg);
      const pgSpread = median(results.pgSpread);
      const ratio = hot / pg;
      const sum = sumBy;

      console.log(
        table(`Hot-product checkout vs pgbench (${clients} clients, pool ${clients}, medians of ${rounds} interleaved rounds of ${seconds} s, same PostgreSQL, ${os.cpus().length} CPUs)`, [
          ['checkouts/s, one hot product', fmt(hot, 1)],
          ['  latency p50 / p99 (ms)', `${fmt(med(results.hot, (r) => r.p50), 2)} / ${fmt(med(results.hot, (r) => r.p99), 2)}`],
          ['  completed / refused / errors', `${fmt(sum(results.hot, (r) => r.ok))} / ${fmt(sum(results.hot, (r) => r.soldOut))} / ${fmt(sum(results.hot, (r) => r.errors))}`],
          ['checkouts/s, hot, inside BEGIN … COMMIT', fmt(trx, 1)],
          ['  latency p50 / p99 (ms)', `${fmt(med(results.trx, (r) => r.p50), 2)} / ${fmt(med(results.trx, (r) => r.p99), 2)}`],
          [`checkouts/s, spread over ${spreadIds.length} products`, fmt(spread, 1)],
          ['hot-row cost (hot ÷ spread)', (hot / spread).toFixed(2)],
          [`pgbench tps, spread over ${SPREAD_PRODUCTS} rows`, fmt(pgSpread, 1)],
          ['RATIO spread checkouts/s ÷ pgbench spread tps', `${(spread / pgSpread).toFixed(2)} (target ≥ ${SPREAD_TARGET.toFixed(2)} ${spread / pgSpread >= SPREAD_TARGET ? 'met' : 'NOT met'})`],
          ['  CPU per spread checkout: client (node) / PostgreSQL (ms)', `${fmt(medianBy(cpuSpread.ours, (c) => c.client), 3)} / ${fmt(medianBy(cpuSpread.ours, (c) => c.postgres), 3)}`],
          ['  CPU per pgbench spread UPDATE: client (pgbench) / PostgreSQL (ms)', `${fmt(medianBy(cpuSpread.pgbench, (c) => c.client), 3)} / ${fmt(medianBy(cpuSpread.pgbench, (c) => c.postgres), 3)}`],
          ['pgbench tps (UPDATE hot ... stock > 0)', fmt(pg, 1)],
          ['pgbench tps, per round', results.pg.map((t) => fmt(t)).join(' / ')],
          ['RATIO checkouts/s ÷ pgbench tps', ratio.toFixed(2)],
          ['  per round', results.hot.map((r, i) => (r.perSecond / results.pg[i]!).toFixed(2)).join(' / ')],
          ['  in a transaction ÷ pgbench', (trx / pg).toFixed(2)],
          ['target', `≥ ${TARGET_RATIO.toFixed(2)} ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`],
          ['hot orders / units reserved on the hot product', `${fmt(Number(hotOrders))} / ${fmt(product.stock_reserved - Number(warmHot))}`],
          ['invariants after the run', invariants.length ? `${invariants.length} VIOLATION(S)` : 'hold'],
        ]),
      );
      for (const [label, rs] of [['hot', results.hot], ['in a transaction', results.trx], ['spread', results.spread]] as const) {
        const first = rs.find((r) => r.firstError)?.firstError;
        if (first) console.log(`${label}: first checkout error: ${first}`);
        if (rs.some((r) => r.exhausted)) console.log(`${label}: ran out of pre-filled carts before the deadline; raise the cart count`);
      }
      for (const v of invariants) console.log(`VIOLATION ${v}`);
      return { checkoutsPerSecond: hot, inTransactionPerSecond: trx, spreadPerSecond: spread, pgbenchTps: pg, pgbenchSpreadTps: pgSpread, ratio };
    } finally {
      if (db) await db.destroy();
    }
  });
}

if (require.main === module) {
  checkoutBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
