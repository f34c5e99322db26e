import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import knexFactory from 'knex';
import { createDb, migrationConfig } from '../data/db';
import { seedDemoCatalog } from '../data/seed';
import { OwnerAccess } from '../domain/owner-access';
import { PROJECT_ROOT } from '../paths';
import { ADMIN_URL, dropKeys, freePort, rss } from './procs';


/** GETs a URL, reading the body as it comes (never holding it); samples the web process's RSS meanwhile. */
function download(url: string, cookie: string, pid: number): Promise<{ status: number; bytes: number; lines: number; bom: boolean; ms: number; peakRss: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let peakRss = rss(pid).now;
    const timer = setInterval(() => (peakRss = Math.max(peakRss, rss(pid).now)), 20);
    http.get(url, { headers: { cookie } }, (res) => {
      let bytes = 0;
      let lines = 0;
      let first: Buffer | null = null;
      res.on('data', (c: Buffer) => {
        first ??= c;
        bytes += c.length;
        for (const b of c) if (b === 0x0a) lines++;
      });
      res.on('end', () => {
        clearInterval(timer);
        peakRss = Math.max(peakRss, rss(pid).now);
        resolve({ status: res.statusCode ?? 0, bytes, lines, bom: !!first && first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf, ms: Date.now() - t0, peakRss });
      });
      res.on('error', reject);
    }).on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
  });
}

/**
 * The orders CSV streamed from a real web process (`node dist/src/main/web.js`) over 10,000
 * orders (30,000 rows): its RSS after a trivial request (the baseline) against its RSS while and
 * after it streams the export. A flat line means the export holds a page of rows, not the file.
 */
export async function csvExportBench(opts: { orders?: number } = {}): Promise<void> {
  const orders = opts.orders ?? 10_000;
  const name = `bench_csv_${crypto.randomBytes(3).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const db = createDb(url, { poolMax: 4 });
  const owner = 'U' + crypto.randomBytes(16).toString('hex');
  const queuePrefix = `bench_csv_${crypto.randomBytes(3).toString('hex')}`;
  let child: ReturnType<typeof spawn> | null = null;
  try {
    await db.migrate.latest(migrationConfig());
    await seedDemoCatalog(db);
    // 10,000 paid orders of today, each with two goods lines and a delivery fee (3 CSV rows).
    await db.raw(`
      INSERT INTO orders (order_no, line_user_id, status, total, item_count, payment_method, hold_expires_at, cart_id, cart_version, paid_amount, paid_at, created_at)
      SELECT 'B' || lpad(i::text, 9, '0'), 'U' || md5(i::text), 'paid', 680 + 2 * 450 + 100, 3, 'ecpay-credit', now(), i, 1, 680 + 2 * 450 + 100, now(), now() - (i || ' seconds')::interval
        FROM generate_series(1, ${orders}) i`);
    await db.raw(`
      INSERT INTO order_lines (order_id, product_id, sku, name, unit_price, qty, line_total)
      SELECT o.id, p.id, p.sku, p.name, p.price, q.qty, p.price * q.qty
        FROM orders o
        JOIN (VALUES ('TEA-001', 1), ('SNK-001', 2)) q(sku, qty) ON true
        JOIN products p ON p.sku = q.sku`);
    await db.raw("INSERT INTO order_adjustments (order_id, kind, label, amount) SELECT id, 'shipping', '宅配運費, 含 \"保價\"', 100 FROM orders");
    await db.raw('VACUUM ANALYZE');

    const access = new OwnerAccess((id) => id === owner);
    const link = await db.transaction((trx) => access.issueLoginToken(trx, { userId: owner, source: 'system' }));
    if (link.kind !== 'issued') throw new Error('no login token');
    const login = await db.transaction((trx) => access.login(trx, link.token, { bench: true }));
    if (login.kind !== 'ok') throw new Error('no session');
    const cookie = `ls_admin=${login.sessionToken}`;

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist/src/main/web.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        DATABASE_URL: url,
        PUBLIC_BASE_URL: base,
        LINE_CHANNEL_SECRET: 'bench-secret',
        LINE_CHANNEL_ACCESS_TOKEN: 'bench-token',
        LINE_API_BASE_URL: 'http://127.0.0.1:9',
        SHOP_OWNER_LINE_USER_IDS: owner,
        QUEUE_PREFIX: queuePrefix,
        LOG_LEVEL: 'silent',
      },
      stdio: 'ignore',
    });
    const pid = child.pid!;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 200) throw new Error('the web process did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Baseline: the process warmed up by ordinary pages (the orders list, a small export).
    for (let i = 0; i < 5; i++) {
      await fetch(`${base}/admin/orders`, { headers: { cookie } }).then((r) => r.text());
      await fetch(`${base}/admin/export/products.csv`, { headers: { cookie } }).then((r) => r.text());
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = rss(pid);
    const first = await download(`${base}/admin/export/orders.csv`, cookie, pid);
    const second = await download(`${base}/admin/export/orders.csv`, cookie, pid);
    await new Promise((r) => setTimeout(r, 500));
    const after = rss(pid);
    const mb = (n: number) => `${n.toFixed(1)} MB`;
    console.log(`\norders CSV export: ${orders.toLocaleString('en-US')} orders, web process RSS (node dist/src/main/web.js)`);
    console.log(`rows ${(first.lines - 1).toLocaleString('en-US')} (+ header), ${mb(first.bytes / 1048576)} of CSV, BOM ${first.bom ? 'present' : 'MISSING'}, status ${first.status}, ${first.ms} ms (second run ${second.ms} ms)`);
    console.log(`baseline RSS after ordinary pages       ${mb(before.now)}`);
    console.log(`peak RSS while streaming (run 1, run 2) ${mb(first.peakRss)}, ${mb(second.peakRss)}`);
    console.log(`RSS after both exports                  ${mb(after.now)}   (lifetime peak ${mb(after.peak)})`);
    console.log(`ratio peak/baseline: ${(Math.max(first.peakRss, second.peakRss) / before.now).toFixed(2)}   growth ${mb(Math.max(first.peakRss, second.peakRss) - before.now)} for ${mb(first.bytes / 1048576)} of CSV`);
  } finally {
    if (child) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await db.destroy();
    await dropKeys(queuePrefix);
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  }
}

if (require.main === module) {
  csvExportBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
