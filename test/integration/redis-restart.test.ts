import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { seedDemoCatalog } from '../../src/data/seed';
import { checkInvariants } from '../../src/domain/invariants';
import { MAINTENANCE_JOBS, QUEUE_NAMES } from '../../src/jobs/queues';
import { PrivateRedis } from '../../src/sandbox/private-redis';
import { startLineApiDouble, LineApiDouble } from '../../src/sandbox/line-api-double';
import { exitOf, freePort } from '../helpers/child-process';
import { ACCESS_TOKEN, CHANNEL_SECRET, newEventId, newUserId, sign, waitFor } from '../helpers/shop';
import { createTestDb, TestDb, testQueuePrefix } from '../helpers/test-db';

/**
 * Redis stopped for 30 s under a steady webhook load, then started again empty on the same port,
 * with the real web and worker processes (dist/, as Procfile runs them) on a private redis-server
 * (never the shared one). Webhooks keep being answered from the PostgreSQL inbox; every event is
 * processed and answered exactly once after Redis is back; the worker re-creates its schedules.
 */
const ROOT = path.resolve(__dirname, '../..');
const dist = (p: string) => path.join(ROOT, 'dist/src', p);
const HEALTHY_MS = 8_000;
const OUTAGE_MS = 30_000;
const AFTER_MS = 4_000;
const EVERY_MS = 50; // 20 webhooks a second

type Sent = { phase: 'healthy' | 'outage' | 'after'; user: string; body: string; status: number; ms: number };

describe('Redis stopped for 30 s under webhook load, then restarted empty (web and worker processes)', () => {
  let redis: PrivateRedis;
  let tdb: TestDb;
  let line: LineApiDouble;
  let web: ChildProcess;
  let worker: ChildProcess;
  let base: string;
  let logs = '';
  const prefix = testQueuePrefix('redis_restart');
  beforeAll(async () => {
    redis = await PrivateRedis.create();
    tdb = await createTestDb('redis_restart', 4);
    await seedDemoCatalog(tdb.db);
    line = await startLineApiDouble({ channelAccessToken: ACCESS_TOKEN });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: tdb.url,
      REDIS_URL: redis.url,
      PORT: String(port),
      QUEUE_PREFIX: prefix,
      LINE_CHANNEL_SECRET: CHANNEL_SECRET,
      LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
      LINE_API_BASE_URL: line.url,
      LOG_LEVEL: 'warn',
    };
    web = spawn(process.execPath, [dist('main/web.js')], { env, stdio: 'pipe' });
    worker = spawn(process.execPath, [dist('main/worker.js')], { env, stdio: 'pipe' });
    // Read both streams: a child whose stdout pipe fills up blocks on its next log line.
    for (const p of [web, worker]) for (const st of [p.stdout!, p.stderr!]) st.on('data', (d) => (logs = (logs + d).slice(-20_000)));
    await waitFor(() => fetch(`${base}/readyz`).then((r) => r.status === 200, () => false), 'web ready', 20_000);
  }, 60_000);
  afterAll(async () => {
    web?.kill('SIGKILL');
    worker?.kill('SIGKILL');
    await line?.close();
    await tdb?.destroy();
    await redis?.stop();
  });

  test('2xx throughout (≥ 0.99 of the healthy rate), each event answered exactly once after recovery, schedules re-created', async () => {
    const sent: Sent[] = [];
    let phase: Sent['phase'] = 'healthy';
    const post = async (body: string) => {
      const t0 = Date.now();
      try {
        const res = await fetch(`${base}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': sign(body) }, body, signal: AbortSignal.timeout(5_000) });
        await res.text();
        return { status: res.status, ms: Date.now() - t0 };
      } catch {
        return { status: 0, ms: Date.now() - t0 };
      }
    };
    const inFlight: Promise<void>[] = [];
    let stopLoad = false;
    const load = (async () => {
      let i = 0;
      while (!stopLoad) {
        const user = newUserId();
        const text = ['help', '商品', '購物車', 'cart TEA-001 1'][i++ % 4]!;
        const event = { type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user }, webhookEventId: newEventId(), deliveryContext: { isRedelivery: false }, replyToken: line.issueReplyToken(user), message: { type: 'text', id: String(i), quoteToken: 'q', text } };
        const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events: [event] });
        const p = phase;
        inFlight.push(post(body).then((r) => void sent.push({ phase: p, user, body, ...r })));
        await new Promise((r) => setTimeout(r, EVERY_MS));
      }
    })();

    await new Promise((r) => setTimeout(r, HEALTHY_MS));
    phase = 'outage';
    await redis.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    phase = 'after';
    await redis.start(); // same port, empty: no jobs, no schedules, no limiter state
    await new Promise((r) => setTimeout(r, AFTER_MS));
    stopLoad = true;
    await load;
    await Promise.all(inFlight);

    // A webhook counts as answered when it got a 2xx within LINE's 2 s.
    const ok = (s: Sent) => s.status >= 200 && s.status < 300 && s.ms < 2000;
    const rate = (p: Sent['phase'][]) => {
      const xs = sent.filter((s) => p.includes(s.phase));
      return { n: xs.length, rate: xs.filter(ok).length / xs.length };
    };
    const healthy = rate(['healthy']);
    const faulty = rate(['outage', 'after']);
    // eslint-disable-next-line no-console
    console.log(`redis restart: healthy ${healthy.n} webhooks, ${(healthy.rate * 100).toFixed(2)} % 2xx in < 2 s; Redis down ${OUTAGE_MS / 1000} s and back empty: ${faulty.n} webhooks, ${(faulty.rate * 100).toFixed(2)} % (ratio ${(faulty.rate / healthy.rate).toFixed(4)}); statuses ${JSON.stringify(Object.entries(sent.reduce<Record<number, number>>((a, s) => ((a[s.status] = (a[s.status] ?? 0) + 1), a), {})))}`);
    expect(healthy.n).toBeGreaterThan(50);
    expect(faulty.n).toBeGreaterThan(((OUTAGE_MS + AFTER_MS) / EVERY_MS) * 0.5);
    expect(faulty.rate).toBeGreaterThanOrEqual(0.99 * healthy.rate);

    // LINE redelivers what was not answered: the same bodies again, now.
    for (const s of sent.filter((s) => !ok(s))) expect((await post(s.body)).status).toBe(200);

    // Every event processed once and answered exactly once (by reply, or by push once its token is old).
    await waitFor(async () => {
      const [{ n }] = await tdb.db('line_events').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
      return Number(n) === 0;
    }, 'every event processed after Redis is back', 90_000);
    await waitFor(async () => {
      const [{ n }] = await tdb.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
      return Number(n) === 0;
    }, 'every answer delivered', 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const [{ n: stored }] = await tdb.db('line_events').count<{ n: number }[]>({ n: '*' });
    expect(Number(stored)).toBe(sent.length);
    const failed = await tdb.db('line_events').whereNotNull('failed_at').select('webhook_event_id', 'last_error');
    expect(failed).toEqual([]);
    const answers = sent.map((s) => line.deliveredTo(s.user).length);
    const wrong = sent.filter((_, i) => answers[i] !== 1).map((s, i) => `${s.phase} ${s.user}: ${answers[i]}`);
    expect(wrong).toEqual([]);
    const byKind = line.delivered().reduce<Record<string, number>>((a, d) => ((a[d.kind] = (a[d.kind] ?? 0) + 1), a), {});
    // eslint-disable-next-line no-console
    console.log(`redis restart: ${sent.length} events, answers ${JSON.stringify(byKind)}`);

    // The worker re-created its schedules in the new, empty Redis.
    const conn = new IORedis(redis.url, { maxRetriesPerRequest: null });
    const maintenance = new Queue(QUEUE_NAMES.maintenance, { connection: conn, prefix });
    try {
      const ids = (await maintenance.getJobSchedulers()).map((s) => s.key);
      for (const id of Object.values(MAINTENANCE_JOBS)) expect(ids).toContain(id);
    } finally {
      await maintenance.close();
      conn.disconnect();
    }

    web.kill('SIGTERM');
    worker.kill('SIGTERM');
    expect(await exitOf(web)).toBe(0);
    expect(await exitOf(worker)).toBe(0);
    expect(logs).not.toContain(CHANNEL_SECRET);
    expect(await checkInvariants(tdb.db)).toEqual([]);
  }, 300_000);
});
