import os from 'node:os';
import { parseConfig } from '../config';
import { createDb, Db, migrationConfig, Trx, withTransaction } from '../data/db';
import { UnitOfWork } from '../data/unit-of-work';
import { changeCart } from '../domain/cart';
import { setStockOnHand } from '../domain/catalog';
import { checkInvariants } from '../domain/invariants';
import { Members } from '../domain/members';
import { post } from '../domain/members/ledger';
import { OrderEvents } from '../domain/order-events';
import { checkout } from '../domain/orders';
import type { PaymentContext } from '../domain/payments';
import { WalletPayments } from '../domain/payments/wallet-payments';
import { LineNotifier } from '../line/notifier';
import { fmt, hotRowSettings, HotRowOptions, inBenchDatabase, median, medianBy, sumBy, pct, pgbench, table } from './common';

export type WalletBenchOptions = HotRowOptions;

export interface WalletBenchResult {
  /** Median: wallet debits of one hot account, each its own transaction (one statement, as pgbench's UPDATE). */
  paymentsPerSecond: number;
  inTransactionPerSecond: number;
  spreadPerSecond: number;
  orderPaymentsPerSecond: number;
  pgbenchTps: number;
  ratio: number;
}

const TARGET_RATIO = 0.5;
const HOT_USER = 'Ubench-hot';
const ORDER_USER = 'Ubench-orders';

type Mode = 'statement' | 'transaction';

interface LoadResult {
  ok: number;
  refused: number;
  errors: number;
  firstError: string | null;
  perSecond: number;
  p50: number;
  p99: number;
  exhausted: boolean;
}

/** Closed loop: `clients` callers, each running `op(i)` back to back until the deadline (or `limit` ops). */
async function closedLoop(clients: number, seconds: number, op: (i: number) => Promise<boolean>, limit = Infinity): Promise<LoadResult> {
  let ok = 0;
  let refused = 0;
  let errors = 0;
  let next = 0;
  let firstError: string | null = null;
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end && next < limit) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        try {
          if (await op(i)) ok++;
          else refused++;
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  return { ok, refused, errors, firstError, perSecond: ok / elapsed, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), exhausted: next >= limit };
}

/** One wallet payment's debit (what every wallet payment path posts), as its own statement or inside BEGIN … COMMIT. */
function debit(db: Db, mode: Mode, userId: string, source: string): Promise<boolean> {
  const entry = { userId, account: 'wallet' as const, kind: 'pay', amount: -1, source };
  const run = (q: Db | Trx) => post(q, entry).then((r) => r.outcome === 'posted');
  return mode === 'statement' ? run(db) : withTransaction(db, run);
}

/** `n` unpaid orders of one member, each of one unit of the product (checkout as the shop does it). */
async function placeOrders(db: Db, userId: string, productId: number, n: number): Promise<string[]> {
  const orderNos: string[] = [];
  for (let i = 0; i < n; i++) {
    const orderNo = await withTransaction(db, async (trx) => {
      await changeCart(trx, userId, productId, { op: 'set', qty: 1 });
      const r = await checkout(trx, { userId, cartVersion: null, holdMinutes: 600 });
      if (r.kind !== 'created') throw new Error(`bench checkout: ${r.kind}`);
      // Delivery details are not what is measured: mark them complete (home delivery, no fee).
      await trx('orders')
        .where({ id: r.order.id })
        .update({ delivery_method: 'home', recipient_name: '王小美', recipient_phone: '0912345678', recipient_address: '台北市信義區市府路1號', delivery_ready_at: trx.fn.now() });
      return r.order.order_no;
    });
    orderNos.push(orderNo);
  }
  return orderNos;
}

/**
 * Wallet payments on ONE hot account next to pgbench's single-row conditional UPDATE, at the same
 * client count on the same PostgreSQL, in interleaved rounds (pgbench, hot, hot in a transaction,
 * spread over `clients` accounts, whole order payments), medians reported. A wallet payment's
 * debit is `ledger_post()`: a conditional UPDATE of the account (never below 0) and its ledger
 * entry in one round trip — pgbench's UPDATE plus an INSERT. The whole order payment (lock the
 * order, debit, record the attempt, commit the stock, earn points, write the receipt) is reported
 * beside it for scale. Creates and drops its own database.
 */
export async function walletBench(opts: WalletBenchOptions = {}): Promise<WalletBenchResult> {
  const { adminUrl, seconds, rounds, clients, bin } = hotRowSettings(opts);
  return inBenchDatabase(adminUrl, 'bench_wallet', async ({ url, name, admin }) => {
    let db: Db | null = null;
    console.log(`\n== wallet bench: ${clients} clients, pool ${clients}, ${rounds} rounds of ${seconds} s per measurement (database ${name}) ==`);
    try {
      db = createDb(url, { poolMax: clients, applicationName: 'bench-wallet' });
      await db.migrate.latest(migrationConfig());
      await db.raw('CREATE TABLE hot (id int PRIMARY KEY, stock int NOT NULL)');
      await db.raw('INSERT INTO hot VALUES (1, ?)', [2_000_000_000]);

      const spreadUsers = Array.from({ length: clients }, (_, i) => `Ubench-spread-${i}`);
      for (const u of [HOT_USER, ORDER_USER, ...spreadUsers]) {
        await db('line_users').insert({ user_id: u });
        await post(db, { userId: u, account: 'wallet', kind: 'adjust', amount: 2_000_000_000, source: 'bench:seed' });
      }
      const [{ id: categoryId }] = await db('categories').insert({ slug: 'bench', name: 'bench' }).returning('id');
      const [{ id: productId }] = await db('products')
        .insert({ sku: 'BENCH-1', category_id: categoryId, name: '錢包測試商品', price: 100, image_url: 'https://example.com/p.png' })
        .returning('id');
      await setStockOnHand(db, productId, 100_000_000);
      // Orders for the whole-payment measurement: generous for its rate on this machine.
      const orderNos = await placeOrders(db, ORDER_USER, productId, Math.max(1_500, rounds * seconds * 300));

      // A ledger that has been running (entries, statistics and plans for that size), then fresh connections.
      const warm = await closedLoop(clients, 60, (i) => debit(db!, 'transaction', spreadUsers[i % clients]!, `bench:warm:${i}`), 20_000);
      if (warm.errors) throw new Error(`warm-up payments failed: ${warm.firstError}`);
      await db.raw('VACUUM ANALYZE');
      await db.destroy();
      db = createDb(url, { poolMax: clients, applicationName: 'bench-wallet' });
      await Promise.all(Array.from({ length: clients }, () => db!.raw('SELECT 1')));

      const config = parseConfig({ DATABASE_URL: url, LINE_CHANNEL_SECRET: 'bench', LINE_CHANNEL_ACCESS_TOKEN: 'bench' });
      const uow = new UnitOfWork(db, { runAfterCommit: async () => undefined });
      const notifier = new LineNotifier(config);
      const events = new OrderEvents();
      events.listen(new Members(config.members, notifier, uow).orderListener());
      const wallet = new WalletPayments({ db, config, uow, notifier, events, gateways: { sinopac: null, ecpay: null } } as unknown as PaymentContext);
      const orders = { next: 0 };
      const payOrder = () => {
        const orderNo = orderNos[orders.next++]!;
        return uow.run((trx, after) => wallet.payOrder(trx, after, { userId: ORDER_USER, orderNo, requestKey: `bench-${orderNo}` })).then((r) => r.kind === 'paid');
      };

      const results = { pg: [] as number[], hot: [] as LoadResult[], trx: [] as LoadResult[], spread: [] as LoadResult[], orders: [] as LoadResult[] };
      for (let round = 1; round <= rounds; round++) {
        const d = db;
        await admin.raw('CHECKPOINT');
        results.pg.push((await pgbench(bin, url, clients, seconds)).tps);
        await admin.raw('CHECKPOINT');
        results.hot.push(await closedLoop(clients, seconds, (i) => debit(d, 'statement', HOT_USER, `bench:hot:${round}:${i}`)));
        await admin.raw('CHECKPOINT');
        results.trx.push(await closedLoop(clients, seconds, (i) => debit(d, 'transaction', HOT_USER, `bench:trx:${round}:${i}`)));
        await admin.raw('CHECKPOINT');
        results.spread.push(await closedLoop(clients, seconds, (i) => debit(d, 'statement', spreadUsers[i % clients]!, `bench:spread:${round}:${i}`)));
        await admin.raw('CHECKPOINT');
        results.orders.push(await closedLoop(clients, seconds, payOrder, orderNos.length - orders.next));
        const r = round - 1;
        console.log(
          `round ${round}: pgbench ${fmt(results.pg[r]!)} tps, hot ${fmt(results.hot[r]!.perSecond)}/s, in a transaction ${fmt(results.trx[r]!.perSecond)}/s, ` +
            `spread ${fmt(results.spread[r]!.perSecond)}/s, order payments ${fmt(results.orders[r]!.perSecond)}/s, ratio ${(results.hot[r]!.perSecond / results.pg[r]!).toFixed(2)}`,
        );
      }

      const invariants = await checkInvariants(db);
      const balance = (await db('member_accounts').where({ line_user_id: HOT_USER, kind: 'wallet' }).first('balance')).balance as number;
      const [{ n: hotEntries }] = await db('member_ledger as e')
        .join('member_accounts as a', 'a.id', 'e.account_id')
        .where({ 'a.line_user_id': HOT_USER })
        .count<{ n: number }[]>({ n: '*' });
      await db.destroy();
      db = null;

      const med = medianBy;
      const hot = med(results.hot, (r) => r.perSecond);
      const trx = med(results.trx, (r) => r.perSecond);
      const spread = med(results.spread, (r) => r.perSecond);
      const whole = med(results.orders, (r) => r.perSecond);
      const pg = median(results.pg);
      const ratio = hot / pg;
      const sum = sumBy;
      const paidHot = sum(results.hot, (r) => r.ok) + sum(results.trx, (r) => r.ok);

      console.log(
        table(`Wallet payments on one hot account vs pgbench (${clients} clients, pool ${clients}, medians of ${rounds} interleaved rounds of ${seconds} s, same PostgreSQL, ${os.cpus().length} CPUs)`, [
          ['payments/s, one hot account (ledger_post)', fmt(hot, 1)],
          ['  latency p50 / p99 (ms)', `${fmt(med(results.hot, (r) => r.p50), 2)} / ${fmt(med(results.hot, (r) => r.p99), 2)}`],
          ['  completed / refused / errors', `${fmt(sum(results.hot, (r) => r.ok))} / ${fmt(sum(results.hot, (r) => r.refused))} / ${fmt(sum(results.hot, (r) => r.errors))}`],
          ['payments/s, hot, inside BEGIN … COMMIT', fmt(trx, 1)],
          [`payments/s, spread over ${clients} accounts`, fmt(spread, 1)],
          ['hot-row cost (hot ÷ spread)', (hot / spread).toFixed(2)],
          ['whole order payments/s, one hot account', fmt(whole, 1)],
          ['  latency p50 / p99 (ms)', `${fmt(med(results.orders, (r) => r.p50), 2)} / ${fmt(med(results.orders, (r) => r.p99), 2)}`],
          ['pgbench tps (UPDATE hot ... stock > 0)', fmt(pg, 1)],
          ['pgbench tps, per round', results.pg.map((t) => fmt(t)).join(' / ')],
          ['RATIO payments/s ÷ pgbench tps', ratio.toFixed(2)],
          ['  per round', results.hot.map((r, i) => (r.perSecond / results.pg[i]!).toFixed(2)).join(' / ')],
          ['  in a transaction ÷ pgbench', (trx / pg).toFixed(2)],
          ['  whole order payment ÷ pgbench', (whole / pg).toFixed(2)],
          ['target', `≥ ${TARGET_RATIO.toFixed(2)} ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`],
          ['hot account: debits / entries / balance', `${fmt(paidHot)} / ${fmt(Number(hotEntries))} / ${fmt(balance)}`],
          ['invariants after the run', invariants.length ? `${invariants.length} VIOLATION(S)` : 'hold'],
        ]),
      );
      for (const [label, rs] of [['hot', results.hot], ['in a transaction', results.trx], ['spread', results.spread], ['order payments', results.orders]] as const) {
        const first = rs.find((r) => r.firstError)?.firstError;
        if (first) console.log(`${label}: first error: ${first}`);
      }
      if (results.orders.some((r) => r.exhausted)) console.log('order payments: ran out of pre-placed orders before the deadline; raise their count');
      for (const v of invariants) console.log(`VIOLATION ${v}`);
      return { paymentsPerSecond: hot, inTransactionPerSecond: trx, spreadPerSecond: spread, orderPaymentsPerSecond: whole, pgbenchTps: pg, ratio };
    } finally {
      if (db) await db.destroy();
    }
  });
}

if (require.main === module) {
  walletBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
