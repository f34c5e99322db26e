import crypto from 'node:crypto';
import { parseConfig } from '../config';
import { createContainer } from '../container';
import { setStockOnHand } from '../domain/catalog';
import { silentLogger } from '../logger';
import { startLineApiDouble } from '../sandbox/line-api-double';
import { fillCarts } from './checkout-bench';
import { fmt, median, pgbench, table } from './common';
import { load } from './load';
import { benchDatabase, cpuAccount, dropKeys, freePort, spawnNode, stop, waitFor200 } from './procs';

const SECRET = 'bench-channel-secret';
const TOKEN = 'bench-access-token';

/**
 * The checkout as the bot runs it: a `結帳` event for a shopper with a one-line cart of the hot
 * product, processed in the event's transaction (inbox row marked, the order and its reservation
 * written, the reply written to the outbox, stock taken at COMMIT) and its reply delivered. Two
 * ways, each next to pgbench's conditional single-row UPDATE in the same run:
 *  - in process: `bot.processInboxEvent` on stored events, `clients` at a time (no queue, no HTTP in);
 *  - end to end: signed webhooks to a real web process, a real worker process answering, measured
 *    from the first POST to the last order committed.
 */
export async function botCheckoutBench(opts: { seconds?: number; clients?: number; pgbench?: string } = {}): Promise<void> {
  const seconds = opts.seconds ?? 8;
  const clients = opts.clients ?? 8;
  const bin = opts.pgbench ?? 'pgbench';
  const bench = await benchDatabase('bot_checkout', clients + 2);
  const line = await startLineApiDouble({ channelAccessToken: TOKEN });
  const queuePrefix = `bench_botco_${crypto.randomBytes(3).toString('hex')}`;
  const [{ id: categoryId }] = await bench.db('categories').insert({ slug: 'bench', name: 'bench' }).returning('id');
  const [{ id: hot }] = await bench.db('products').insert({ sku: 'HOT-1', category_id: categoryId, name: '熱賣商品', price: 100 }).returning('id');
  await setStockOnHand(bench.db, hot, 100_000_000);
  await bench.db.raw('CREATE TABLE hot (id int PRIMARY KEY, stock int NOT NULL)');
  await bench.db.raw('INSERT INTO hot VALUES (1, 2000000000)');
  const N = 60_000;
  await fillCarts(bench.db, 'inproc-', N, [hot]);
  await fillCarts(bench.db, 'e2e-', N, [hot]);
  const env = {
    DATABASE_URL: bench.url, LINE_CHANNEL_SECRET: SECRET, LINE_CHANNEL_ACCESS_TOKEN: TOKEN, LINE_API_BASE_URL: line.url,
    LINE_DATA_API_BASE_URL: line.dataUrl, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent',
  };
  const event = (userId: string) => ({
    type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId },
    webhookEventId: `01CO${crypto.randomBytes(10).toString('hex').toUpperCase()}`,
    deliveryContext: { isRedelivery: false }, replyToken: line.issueReplyToken('U' + crypto.randomBytes(16).toString('hex')),
    message: { type: 'text', id: '1', quoteToken: 'q', text: '結帳' },
  });
  const c = createContainer(parseConfig(env), { log: silentLogger, db: bench.db });
  let web: ReturnType<typeof spawnNode> | null = null;
  let worker: ReturnType<typeof spawnNode> | null = null;
  try {
    // In process: stored events, processed `clients` at a time, as the worker's event jobs do.
    const users = Array.from({ length: N }, (_, i) => `inproc-${i}`);
    const ids: number[] = [];
    for (let i = 0; i < users.length; i += 1000) {
      const rows = users.slice(i, i + 1000).map((u) => {
        const e = event(u);
        return { webhook_event_id: e.webhookEventId, event_type: 'message', source_user_id: u, payload: JSON.stringify(e) };
      });
      ids.push(...(await bench.db('line_events').insert(rows).returning('id')).map((r: { id: number }) => r.id));
    }
    await bench.db.raw('VACUUM ANALYZE');
    const inProcess = async (secs: number, from: { next: number }) => {
      let done = 0;
      const end = Date.now() + secs * 1000;
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (Date.now() < end && from.next < ids.length) {
            await c.bot.processInboxEvent(ids[from.next++]!);
            done++;
          }
        }),
      );
      return done / ((Date.now() - t0) / 1000);
    };
    const cursor = { next: 0 };
    await inProcess(3, cursor); // warm-up
    const pgA = (await pgbench(bin, bench.url, clients, seconds)).tps;
    // Statements per checkout event, counted on the connection pool while measuring.
    let statements = 0;
    const countStatement = () => void statements++;
    bench.db.on('query', countStatement);
    const before = cursor.next;
    const cpu0 = process.cpuUsage();
    const inproc = await inProcess(seconds, cursor);
    const cpu1 = process.cpuUsage(cpu0);
    const nodeMsPerEvent = (cpu1.user + cpu1.system) / 1000 / (cursor.next - before);
    bench.db.removeListener('query', countStatement);
    const perEvent = statements / (cursor.next - before);
    const pgB = (await pgbench(bin, bench.url, clients, seconds)).tps;
    // The same shape for pgbench: a transaction of as many round trips, the hot UPDATE among them.
    const fillers = Math.max(0, Math.round(perEvent) - 3);
    const sameShape = (
      await pgbench(bin, bench.url, clients, seconds, `BEGIN;\n${'SELECT 1;\n'.repeat(fillers)}UPDATE hot SET stock = stock - 1 WHERE id = 1 AND stock > 0;\nCOMMIT;\n`)
    ).tps;

    // End to end: the webhook and a worker, each its own process.
    const port = await freePort();
    web = spawnNode('dist/src/main/web.js', { ...env, PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}` });
    worker = spawnNode('dist/src/main/worker.js', env);
    await waitFor200(`http://127.0.0.1:${port}/readyz`, Date.now());
    let u = 0;
    const request = () => {
      const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events: [event(`e2e-${u++}`)] });
      return { body, headers: { 'content-type': 'application/json', 'x-line-signature': crypto.createHmac('sha256', SECRET).update(body).digest('base64') } };
    };
    const ordersOf = async () => Number((await bench.db('orders').where('line_user_id', 'like', 'e2e-%').count<{ n: number }[]>({ n: '*' }))[0]!.n);
    const t0 = Date.now();
    const cpu = cpuAccount({ web, worker });
    const posted = await load({ url: `http://127.0.0.1:${port}/webhook/line`, seconds, connections: 50, request });
    let orders = await ordersOf();
    while (orders < posted.requests && Date.now() - t0 < seconds * 1000 + 120_000) {
      await new Promise((r) => setTimeout(r, 200));
      orders = await ordersOf();
    }
    const cpuReport = cpu.report(orders, 'checkout');
    const last = await bench.db('orders').where('line_user_id', 'like', 'e2e-%').max<{ m: Date }[]>({ m: 'created_at' });
    const e2e = orders / ((last[0]!.m.getTime() - t0) / 1000);
    const pgC = (await pgbench(bin, bench.url, clients, seconds)).tps;
    const pg = median([pgA, pgB, pgC]);
    console.log(
      table(`Checkout as the bot runs it (one hot product) vs pgbench (${clients} clients), same PostgreSQL`, [
        ['in process: events/s (processInboxEvent, reply written and sent)', fmt(inproc, 1)],
        ['end to end: checkouts/s (webhook → inbox → worker → reply)', fmt(e2e, 1)],
        ['  webhooks posted / orders created', `${fmt(posted.requests)} / ${fmt(orders)}`],
        ['pgbench tps (before, between, after)', `${fmt(pgA)} / ${fmt(pgB)} / ${fmt(pgC)}`],
        ['RATIO in process ÷ pgbench', (inproc / pg).toFixed(2)],
        ['RATIO end to end ÷ pgbench', (e2e / pg).toFixed(2)],
        ['target', '≥ 0.50'],
        ['statements per checkout event (round trips, in process)', fmt(perEvent, 1)],
        [`pgbench, same shape: BEGIN, ${fillers} × SELECT 1, the UPDATE, COMMIT (tps)`, fmt(sameShape)],
        ['RATIO in process ÷ pgbench same shape', (inproc / sameShape).toFixed(2)],
        ['in process: CPU of this node process per event (ms)', fmt(nodeMsPerEvent, 2)],
      ]),
    );
    console.log(`end to end, ${cpuReport}`);
  } finally {
    await stop(web);
    await stop(worker);
    await c.close();
    await line.close();
    await dropKeys(queuePrefix);
    await bench.drop();
  }
}

if (require.main === module) {
  botCheckoutBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
