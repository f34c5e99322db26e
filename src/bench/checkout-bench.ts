import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import knexFactory from 'knex';
import { createDb, Db, migrationConfig, withTransaction } from '../data/db';
import { checkInvariants } from '../domain/invariants';
import { checkout, InsufficientStockError } from '../domain/orders';

const run = promisify(execFile);

export interface CheckoutBenchOptions {
  /** Server-level URL used to create and drop the temporary database. */
  adminUrl?: string;
  seconds?: number;
  clients?: number;
  pgbench?: string;
}

export interface CheckoutBenchResult {
  checkoutsPerSecond: number;
  spreadPerSecond: number;
  pgbenchTps: number;
  ratio: number;
}

const TARGET_RATIO = 0.5;
const HOT_STOCK = 100_000_000;

function dbUrl(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

function table(title: string, rows: Array<[string, string]>): string {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const line = `+${'-'.repeat(w0 + 2)}+${'-'.repeat(w1 + 2)}+`;
  return [title, line, ...rows.map(([k, v]) => `| ${k.padEnd(w0)} | ${v.padStart(w1)} |`), line].join('\n');
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/**
 * Carts for users `${prefix}0 .. ${prefix}(n-1)`, user i holding one unit of productIds[i % k].
 * Two statements, whatever n.
 */
async function fillCarts(db: Db, prefix: string, n: number, productIds: number[]): Promise<void> {
  await db.raw(`INSERT INTO carts (line_user_id) SELECT ? || g FROM generate_series(0, ? - 1) g`, [prefix, n]);
  await db.raw(
    `INSERT INTO cart_lines (cart_id, product_id, qty)
     SELECT c.id, (?::int[])[1 + substr(c.line_user_id, length(?) + 1)::int % ?], 1
     FROM carts c WHERE c.line_user_id LIKE ? || '%'`,
    [productIds, prefix, productIds.length, prefix],
  );
}

/** Closed loop: `clients` workers, each checking out the next pre-filled cart until the deadline. */
async function checkoutLoad(db: Db, prefix: string, carts: number, clients: number, seconds: number) {
  let next = 0;
  let ok = 0;
  let soldOut = 0;
  let errors = 0;
  let firstError: string | null = null;
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end && next < carts) {
        const userId = `${prefix}${next++}`;
        const t0 = process.hrtime.bigint();
        try {
          const r = await withTransaction(db, (trx) => checkout(trx, { userId, cartVersion: null, holdMinutes: 30 }));
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
  return { ok, soldOut, errors, firstError, elapsed, perSecond: ok / elapsed, p50: pct(0.5), p99: pct(0.99), exhausted: next >= carts };
}

async function pgbench(bin: string, url: string, clients: number, seconds: number): Promise<{ tps: number; transactions: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-pgbench-'));
  const script = path.join(dir, 'hot.sql');
  try {
    await fs.writeFile(script, 'UPDATE hot SET stock = stock - 1 WHERE id = 1 AND stock > 0;\n');
    const threads = Math.max(1, Math.min(2, clients));
    const { stdout } = await run(bin, ['-n', '-f', script, '-c', String(clients), '-j', String(threads), '-T', String(seconds), url], {
      maxBuffer: 10 * 1024 * 1024,
    });
    const tps = /tps = ([\d.]+)/.exec(stdout);
    const tx = /number of transactions actually processed: (\d+)/.exec(stdout);
    if (!tps) throw new Error(`could not read tps from pgbench output:\n${stdout}`);
    return { tps: Number(tps[1]), transactions: tx ? Number(tx[1]) : NaN };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Hot-product checkout: `clients` shoppers at once checking out one product (pool of `clients`),
 * next to pgbench's single-row conditional decrement at the same client count, on the same
 * PostgreSQL, in the same run. Creates and drops its own database.
 */
export async function checkoutBench(opts: CheckoutBenchOptions = {}): Promise<CheckoutBenchResult> {
  const adminUrl = opts.adminUrl ?? process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const seconds = opts.seconds ?? Number(process.env.BENCH_SECONDS ?? 10);
  const clients = opts.clients ?? Number(process.env.BENCH_CLIENTS ?? 8);
  const bin = opts.pgbench ?? process.env.PGBENCH ?? 'pgbench';
  const name = `bench_checkout_${crypto.randomBytes(4).toString('hex')}`;
  const url = dbUrl(adminUrl, name);
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  let db: Db | null = null;

  console.log(`\n== checkout bench: ${clients} clients, pool ${clients}, ${seconds} s (database ${name}) ==`);
  try {
    await admin.raw(`CREATE DATABASE ${name}`);
    db = createDb(url, { poolMax: clients, applicationName: 'bench-checkout' });
    await db.migrate.latest(migrationConfig());

    const [{ id: categoryId }] = await db('categories').insert({ slug: 'bench', name: 'bench' }).returning('id');
    const productIds: number[] = [];
    for (let i = 0; i <= clients; i++) {
      const [{ id }] = await db('products')
        .insert({ sku: `HOT-${i}`, category_id: categoryId, name: `熱賣商品 ${i}`, price: 100, image_url: 'https://example.com/hot.png', stock_on_hand: HOT_STOCK })
        .returning('id');
      productIds.push(id);
    }
    const [hotId, ...spreadIds] = productIds as [number, ...number[]];
    // Generous: more carts than the clients can check out in the time given.
    const carts = Math.max(20_000, Math.ceil(seconds * 6_000));
    await fillCarts(db, 'warm-', 1_000, [hotId]);
    await fillCarts(db, 'hot-', carts, [hotId]);
    await fillCarts(db, 'spread-', carts, spreadIds);
    await db.raw('ANALYZE');

    // The single-row table pgbench hammers, in the same database.
    await db.raw('CREATE TABLE hot (id int PRIMARY KEY, stock int NOT NULL)');
    await db.raw('INSERT INTO hot VALUES (1, ?)', [2_000_000_000]);

    const warm = await checkoutLoad(db, 'warm-', 1_000, clients, 2); // connections, JIT, caches
    await admin.raw('CHECKPOINT');
    const hot = await checkoutLoad(db, 'hot-', carts, clients, seconds);
    await admin.raw('CHECKPOINT');
    // Control: the same checkouts spread over `clients` products, so no two clients share a hot row.
    const spread = await checkoutLoad(db, 'spread-', carts, clients, seconds);

    const invariants = await checkInvariants(db);
    const product = await db('products').where({ id: hotId }).first('stock_on_hand', 'stock_reserved');
    const [{ n: orders }] = await db('orders').where('line_user_id', 'like', 'hot-%').count<{ n: number }[]>({ n: '*' });
    await db.destroy();
    db = null;

    await admin.raw('CHECKPOINT');
    const pg = await pgbench(bin, url, clients, seconds);
    const ratio = hot.perSecond / pg.tps;

    console.log(
      table(`Hot-product checkout vs pgbench (${clients} clients, pool ${clients}, ${seconds} s each, same PostgreSQL, same run, ${os.cpus().length} CPUs)`, [
        ['checkouts/s, one hot product', fmt(hot.perSecond, 1)],
        ['  latency p50 / p99 (ms)', `${fmt(hot.p50, 2)} / ${fmt(hot.p99, 2)}`],
        ['  completed / refused / errors', `${fmt(hot.ok)} / ${fmt(hot.soldOut)} / ${fmt(hot.errors)}`],
        [`checkouts/s, spread over ${spreadIds.length} products`, fmt(spread.perSecond, 1)],
        ['  latency p50 / p99 (ms)', `${fmt(spread.p50, 2)} / ${fmt(spread.p99, 2)}`],
        ['hot-row cost (hot ÷ spread)', (hot.perSecond / spread.perSecond).toFixed(2)],
        ['pgbench tps (UPDATE hot ... stock > 0)', fmt(pg.tps, 1)],
        ['pgbench transactions', fmt(pg.transactions)],
        ['RATIO checkouts/s ÷ pgbench tps', ratio.toFixed(2)],
        ['target', `≥ ${TARGET_RATIO.toFixed(2)} ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`],
        ['hot orders / units reserved on the hot product', `${fmt(Number(orders))} / ${fmt(product.stock_reserved - warm.ok)}`],
        ['invariants after the run', invariants.length ? `${invariants.length} VIOLATION(S)` : 'hold'],
      ]),
    );
    for (const [label, r] of [['hot', hot], ['spread', spread]] as const) {
      if (r.firstError) console.log(`${label}: first checkout error: ${r.firstError}`);
      if (r.exhausted) console.log(`${label}: ran out of pre-filled carts before the deadline; raise the cart count`);
    }
    for (const v of invariants) console.log(`VIOLATION ${v}`);
    if (ratio < TARGET_RATIO && hot.perSecond / spread.perSecond >= 0.9) {
      console.log(
        `note: the shared row is not what limits checkouts here (the same checkouts spread over ${spreadIds.length} products run ` +
          'at the same rate): each checkout is bound by its own work (CPU of this process and PostgreSQL), not by the row lock.',
      );
    }
    return { checkoutsPerSecond: hot.perSecond, spreadPerSecond: spread.perSecond, pgbenchTps: pg.tps, ratio };
  } finally {
    if (db) await db.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err) => console.error(`could not drop ${name}: ${err.message}`));
    await admin.destroy();
  }
}

if (require.main === module) {
  checkoutBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
