import crypto from 'node:crypto';
import { createRedis } from '../data/redis';
import { Queues } from '../jobs/queues';
import { silentLogger } from '../logger';
import { startLineApiDouble } from '../sandbox/line-api-double';
import { benchDatabase, cpuAccount, dropKeys, spawnNode, stop } from './procs';

const TOKEN = 'bench-access-token';

/**
 * Draining a backlog of pushes against LINE's rate limit: `count` pushes already in the outbox and
 * queued, one real worker process (`dist/src/main/worker.js`), a LINE API double that enforces
 * `limit` requests/s on the push endpoint (token bucket, 429 beyond it, like LINE). The figure is
 * pushes delivered per second against the limit; lost (not sent) and duplicated (delivered twice to
 * one recipient) must both be 0.
 */
export async function pushDrainBench(opts: { count?: number; limit?: number } = {}): Promise<void> {
  const count = opts.count ?? 10_000;
  const limit = opts.limit ?? 2000;
  const bench = await benchDatabase('push_drain', 8);
  const line = await startLineApiDouble({ channelAccessToken: TOKEN, rateLimitPerSecond: limit });
  const queuePrefix = `bench_drain_${crypto.randomBytes(3).toString('hex')}`;
  const redis = createRedis('redis://127.0.0.1:6379', 'producer');
  const queues = new Queues(redis, queuePrefix, silentLogger);
  let worker: ReturnType<typeof spawnNode> | null = null;
  try {
    const users = Array.from({ length: count }, () => 'U' + crypto.randomBytes(16).toString('hex'));
    const rows = users.map((u, i) => ({
      kind: 'notify-shopper',
      recipient: u,
      dedupe_key: `bench:${i}`,
      messages: JSON.stringify([{ type: 'text', text: `訂單 L${100000 + i} 已出貨 🚚` }]),
    }));
    const ids: number[] = [];
    for (let i = 0; i < rows.length; i += 1000) {
      const got = await bench.db('outbox_messages').insert(rows.slice(i, i + 1000)).returning('id');
      ids.push(...got.map((r: { id: number }) => r.id));
    }
    for (let i = 0; i < ids.length; i += 1000) await queues.enqueueDeliveries(ids.slice(i, i + 1000));

    const t0 = Date.now();
    worker = spawnNode('dist/src/main/worker.js', {
      DATABASE_URL: bench.url, LINE_CHANNEL_SECRET: 'bench', LINE_CHANNEL_ACCESS_TOKEN: TOKEN,
      LINE_API_BASE_URL: line.url, LINE_DATA_API_BASE_URL: line.dataUrl, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent',
    });
    let first = 0;
    const cpu = cpuAccount({ worker });
    for (;;) {
      const n = line.delivered().length;
      if (n > 0 && !first) first = Date.now();
      if (n >= count || Date.now() - t0 > 180_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const cpuReport = cpu.report(line.delivered().length, 'push');
    const last = Math.max(...line.delivered().map((d) => d.at.getTime()));
    const seconds = (last - first) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const delivered = line.delivered();
    const perUser = new Map<string, number>();
    for (const d of delivered) perUser.set(d.to, (perUser.get(d.to) ?? 0) + 1);
    const duplicated = [...perUser.values()].filter((n) => n > 1).length;
    const [{ n: sent }] = await bench.db('outbox_messages').where({ status: 'sent' }).count<{ n: number }[]>({ n: '*' });
    const refused = line.requests.filter((r) => r.status === 429).length;
    const rate = (delivered.length - 1) / seconds;
    console.log(`\npush drain: ${count.toLocaleString('en-US')} queued pushes, one worker process, LINE double limited to ${limit}/s (429 beyond)`);
    console.log(`delivered ${delivered.length} in ${seconds.toFixed(2)} s (first to last): ${rate.toFixed(0)}/s, ratio to the limit ${(rate / limit).toFixed(2)} (target >= 0.9)`);
    console.log(cpuReport);
    console.log(`lost ${count - Number(sent)} (rows not sent), duplicated ${duplicated} (recipients with more than one), 429 answers ${refused}`);
  } finally {
    await stop(worker);
    await queues.close();
    redis.disconnect();
    await line.close();
    await dropKeys(queuePrefix);
    await bench.drop();
  }
}

if (require.main === module) {
  pushDrainBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
