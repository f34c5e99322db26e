import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { createRedis } from '../../src/data/redis';
import { Queues } from '../../src/jobs/queues';
import { silentLogger } from '../../src/logger';
import { startLineApiDouble, LineApiDouble } from '../../src/sandbox/line-api-double';
import { exitOf, freePort } from '../helpers/child-process';
import { createTestDb, dropQueueKeys, TestDb, testQueuePrefix } from '../helpers/test-db';
import { ACCESS_TOKEN, CHANNEL_SECRET, newUserId, sign, startShop, TestShop, waitFor } from '../helpers/shop';

/**
 * The real entry points, as Procfile and the README run them: compiled JS in dist/ (npm test builds
 * first), separate processes, real signals.
 */
const ROOT = path.resolve(__dirname, '../..');
const dist = (p: string) => path.join(ROOT, 'dist/src', p);

function run(script: string, env: Record<string, string>, args: string[] = []) {
  const r = spawnSync(process.execPath, [dist(script), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

describe('processes: migrate, seed, web, worker, check:invariants', () => {
  let tdb: TestDb;
  let line: LineApiDouble;
  beforeAll(async () => {
    tdb = await createTestDb('processes', 2, false);
    line = await startLineApiDouble({ channelAccessToken: ACCESS_TOKEN });
  });
  const prefixes: string[] = [];
  const queuePrefix = (label: string) => {
    const p = testQueuePrefix(label);
    prefixes.push(p);
    return p;
  };
  afterAll(async () => {
    await line.close();
    await tdb.destroy();
    for (const p of prefixes) await dropQueueKeys(p);
  });

  test('migrate is idempotent and seed twice changes nothing', () => {
    const env = { DATABASE_URL: tdb.url };
    const m1 = run('cli/migrate.js', env, ['latest']);
    expect(m1.code).toBe(0);
    expect(m1.out).toMatch(/^applied batch 1: /);
    expect(run('cli/migrate.js', env, ['latest']).out).toBe('already up to date');
    const s1 = run('cli/seed.js', env);
    expect(s1.out).toBe('seed: 3 new categories, 10 new products (existing rows left untouched)');
    const s2 = run('cli/seed.js', env);
    expect(s2.code).toBe(0);
    expect(s2.out).toBe('seed: 0 new categories, 0 new products (existing rows left untouched)');
  });

  test('a missing or partial setting stops the process with one line naming it', () => {
    const base = { DATABASE_URL: tdb.url, LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN };
    const r = run('main/web.js', base);
    expect(r.code).toBe(1);
    expect(r.err).toBe('config error: LINE_CHANNEL_SECRET is required');
    const p = run('main/worker.js', { ...base, LINE_CHANNEL_SECRET: CHANNEL_SECRET, ECPAY_MERCHANT_ID: '3002607' });
    expect(p.code).toBe(1);
    expect(p.err).toBe('config error: ECPay is partly configured: missing ECPAY_HASH_KEY, ECPAY_HASH_IV');
    expect(run('cli/migrate.js', {}).err).toBe('config error: DATABASE_URL is required');
  });

  test('web + worker answer a signed webhook through the LINE double, then stop cleanly on SIGTERM', async () => {
    const port = await freePort();
    const env = {
      DATABASE_URL: tdb.url,
      PORT: String(port),
      QUEUE_PREFIX: queuePrefix('processes'),
      LINE_CHANNEL_SECRET: CHANNEL_SECRET,
      LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
      LINE_API_BASE_URL: line.url,
      LOG_LEVEL: 'warn',
    };
    const opts = { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'pipe' as const };
    const web = spawn(process.execPath, [dist('main/web.js')], opts);
    const worker = spawn(process.execPath, [dist('main/worker.js')], opts);
    let logs = '';
    for (const p of [web, worker]) p.stderr!.on('data', (d) => (logs += d));
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(() => fetch(`${base}/readyz`).then((r) => r.status === 200, () => false), 'web ready');
      const user = newUserId();
      const body = JSON.stringify({
        destination: 'U0',
        events: [{ type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user }, webhookEventId: '01PROCESS', deliveryContext: { isRedelivery: false }, replyToken: line.issueReplyToken(user), message: { type: 'text', id: '1', text: '商品' } }],
      });
      const res = await fetch(`${base}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': sign(body) }, body });
      expect(res.status).toBe(200);
      const texts = await waitFor(() => (line.textsTo(user).length ? line.textsTo(user) : null), 'catalog reply', 20_000);
      expect(texts[0]).toMatch(/^商品目錄/);
      web.kill('SIGTERM');
      worker.kill('SIGTERM');
      expect(await exitOf(web)).toBe(0);
      expect(await exitOf(worker)).toBe(0);
      expect(logs).not.toContain(CHANNEL_SECRET);
      expect(logs).not.toContain(ACCESS_TOKEN);
    } finally {
      web.kill('SIGKILL');
      worker.kill('SIGKILL');
    }
  });

  test('SIGTERM while a delivery is in flight: the worker finishes it, records it and exits 0', async () => {
    const prefix = queuePrefix('drain');
    const env = {
      DATABASE_URL: tdb.url,
      QUEUE_PREFIX: prefix,
      LINE_CHANNEL_SECRET: CHANNEL_SECRET,
      LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
      LINE_API_BASE_URL: line.url,
      LOG_LEVEL: 'warn',
    };
    const worker = spawn(process.execPath, [dist('main/worker.js')], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'pipe' });
    const redis = createRedis('redis://127.0.0.1:6379', 'producer');
    const queues = new Queues(redis, prefix, silentLogger);
    try {
      const user = newUserId();
      const [{ id }] = await tdb.db('outbox_messages')
        .insert({ kind: 'test', recipient: user, messages: JSON.stringify([{ type: 'text', text: '出貨通知' }]) })
        .returning('id');
      // LINE takes 2.5 s to answer this push.
      line.injectFailures('/v2/bot/message/push', [{ hangMs: 2500 }]);
      await queues.enqueueDeliveries([id]);
      await waitFor(() => line.requests.some((r) => r.path === '/v2/bot/message/push' && (r.body as { to?: string }).to === user), 'push in flight', 20_000);
      worker.kill('SIGTERM');
      expect(await exitOf(worker)).toBe(0);
      expect(await tdb.db('outbox_messages').where({ id }).first('status', 'delivered_via', 'attempts')).toEqual({ status: 'sent', delivered_via: 'push', attempts: 1 });
      expect(line.deliveredTo(user)).toHaveLength(1);
    } finally {
      worker.kill('SIGKILL');
      await queues.close();
      redis.disconnect();
    }
  });

  test('check:invariants reports a consistent database, and a corrupted one', async () => {
    const ok = run('cli/check-invariants.js', { DATABASE_URL: tdb.url });
    expect(ok.code).toBe(0);
    expect(ok.out).toBe('invariants hold: stock, reservations, payments and the member ledger are consistent');
    const tea = tdb.db('stock_slots').where({ slot: 0, product_id: tdb.db('products').select('id').where({ sku: 'TEA-001' }) });
    await tea.clone().update({ reserved: 2 });
    const bad = run('cli/check-invariants.js', { DATABASE_URL: tdb.url });
    expect(bad.code).toBe(1);
    expect(bad.out).toBe('VIOLATION product TEA-001 slot 0: reserved 2 but held reservations sum to 0');
    await tea.clone().update({ reserved: 0 });
    // A wallet whose balance is not the sum of its entries.
    await tdb.db.raw("SELECT ledger_post('Uinvariants', 'wallet', 'adjust', 100, 'test:invariants')");
    await tdb.db('member_accounts').where({ line_user_id: 'Uinvariants' }).update({ balance: 50 });
    const ledger = run('cli/check-invariants.js', { DATABASE_URL: tdb.url });
    expect(ledger.code).toBe(1);
    expect(ledger.out).toBe('VIOLATION member Uinvariants wallet account: balance 50 but its entries sum to 100');
    await tdb.db('member_accounts').where({ line_user_id: 'Uinvariants' }).update({ balance: 100 });
  });

  test('migrate:rollback undoes the last batch', () => {
    const r = run('cli/migrate.js', { DATABASE_URL: tdb.url }, ['rollback']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^rolled back batch 1: /);
  });
});

describe('a worker killed with SIGKILL while it holds jobs', () => {
  // The web side runs in this process (startShop without workers); workers are real processes.
  let shop: TestShop;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    shop = await startShop({ label: 'crash', workers: false });
  });
  // Each test starts its own workers: none may live on into the next test and take its jobs.
  afterEach(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.splice(0).map(exitOf));
  });
  afterAll(async () => {
    await shop.close();
  });

  function startWorker(): ChildProcess {
    const env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: shop.tdb.url,
      QUEUE_PREFIX: shop.config.queuePrefix,
      LINE_CHANNEL_SECRET: CHANNEL_SECRET,
      LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
      LINE_API_BASE_URL: shop.line.url,
      LINE_DATA_API_BASE_URL: shop.line.url,
      LOG_LEVEL: 'error',
    };
    const p = spawn(process.execPath, [dist('main/worker.js')], { env, stdio: 'ignore' });
    procs.push(p);
    return p;
  }
  async function kill(p: ChildProcess): Promise<void> {
    p.kill('SIGKILL');
    await exitOf(p);
  }

  test('the events whose jobs it held are each answered once, by reply, within 10 s of the restart', async () => {
    const users = Array.from({ length: 12 }, newUserId);
    await shop.c.db('line_users').insert(users.map((user_id) => ({ user_id })));
    // Every event's transaction stops at its user's row, held here: processing is "slow".
    const hold = await shop.c.db.transaction();
    try {
      await hold('line_users').whereIn('user_id', users).forUpdate().select('user_id');
      const first = startWorker();
      expect(await shop.sendEvents(users.map((u) => shop.textEvent(u, 'help')))).toBe(200);
      // The worker takes 8 (its concurrency) and waits on the held rows; 4 wait in the queue.
      await waitFor(async () => (await shop.c.queues.events.getActiveCount()) === 8, 'the worker holding 8 event jobs', 20_000);
      await waitFor(async () => {
        const r = await shop.c.db.raw<{ rows: Array<{ n: number }> }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        return r.rows[0]!.n === 8;
      }, 'the 8 event transactions blocked', 20_000);
      await kill(first);
    } finally {
      await hold.rollback();
    }

    startWorker();
    const restartedAt = Date.now();
    await waitFor(() => users.every((u) => shop.line.deliveredTo(u).length > 0), 'every event answered within 10 s of the restart', 10_000);
    const answeredAfterMs = Date.now() - restartedAt;
    // Anything sent twice would show up now.
    await new Promise((r) => setTimeout(r, 2000));
    for (const u of users) expect({ u, kinds: shop.line.deliveredTo(u).map((d) => d.kind) }).toEqual({ u, kinds: ['reply'] });
    const rows = await shop.c.db('outbox_messages').whereIn('recipient', users).select('status', 'delivered_via');
    expect(rows).toHaveLength(users.length);
    expect(rows.every((r) => r.status === 'sent' && r.delivered_via === 'reply')).toBe(true);
    const events = await shop.c.db('line_events').whereIn('source_user_id', users).select('processed_at', 'failed_at');
    expect(events.every((e) => e.processed_at && !e.failed_at)).toBe(true);
    expect(answeredAfterMs).toBeLessThan(10_000);
  });

  test('a push in flight in its delivery job when it dies is taken over at once and counted once (same retry key: 409)', async () => {
    const user = newUserId();
    const [{ id }] = await shop.c.db('outbox_messages')
      .insert({ kind: 'test', recipient: user, messages: JSON.stringify([{ type: 'text', text: '出貨通知' }]) })
      .returning('id');
    // LINE takes the push but its answer never reaches the worker, which dies waiting.
    shop.line.injectFailures('/v2/bot/message/push', [{ hangMs: 30_000 }]);
    const first = startWorker();
    await shop.c.queues.enqueueDeliveries([id]);
    await waitFor(() => shop.line.requests.some((r) => r.path === '/v2/bot/message/push' && (r.body as { to?: string })?.to === user), 'the push in flight', 20_000);
    await kill(first);

    startWorker();
    const restartedAt = Date.now();
    const row = await waitFor(async () => {
      const r = await shop.c.db('outbox_messages').where({ id }).first('status', 'delivered_via', 'last_status');
      return r?.status === 'sent' ? r : null;
    }, 'the push settled within 10 s of the restart', 10_000);
    expect(Date.now() - restartedAt).toBeLessThan(10_000);
    expect(row).toEqual({ status: 'sent', delivered_via: 'push', last_status: 409 });
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
  });

  test('a reply in flight when it dies is neither sent twice nor pushed: the restarted worker settles it as a reply within 10 s', async () => {
    const user = newUserId();
    // LINE takes the reply but its answer never reaches the worker, which dies waiting.
    shop.line.injectFailures('/v2/bot/message/reply', [{ hangMs: 30_000 }]);
    const first = startWorker();
    const event = shop.textEvent(user, 'help');
    expect(await shop.sendEvents([event])).toBe(200);
    await waitFor(() => shop.line.requests.some((r) => r.path === '/v2/bot/message/reply' && (r.body as { replyToken?: string })?.replyToken === event.replyToken), 'the reply in flight', 20_000);
    await kill(first);

    startWorker();
    const restartedAt = Date.now();
    const row = await waitFor(async () => {
      const r = await shop.c.db('outbox_messages').where({ recipient: user }).first('status', 'delivered_via');
      return r?.status === 'sent' ? r : null;
    }, 'the reply settled within 10 s of the restart', 10_000);
    expect(Date.now() - restartedAt).toBeLessThan(10_000);
    expect(row.delivered_via).toBe('reply');
    await new Promise((r) => setTimeout(r, 1500));
    expect(shop.line.deliveredTo(user).map((d) => d.kind)).toEqual(['reply']);
    expect(shop.line.requests.filter((r) => r.path === '/v2/bot/message/push' && (r.body as { to?: string })?.to === user)).toHaveLength(0);
  });
});
