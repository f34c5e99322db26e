import crypto from 'node:crypto';
import { seedDemoCatalog } from '../data/seed';
import { startLineApiDouble } from '../sandbox/line-api-double';
import { load } from './load';
import { benchDatabase, cpuAccount, dropKeys, freePort, rssSampler, spawnNode, stop, waitFor200 } from './procs';

const SECRET = 'bench-channel-secret';
const TOKEN = 'bench-access-token';

/**
 * The webhook as LINE meets it, measured from outside: the real web process (`dist/src/main/web.js`)
 * with a real worker process (`dist/src/main/worker.js`) answering every event (replies go to a LINE
 * API double), against a bare express process running only the SDK middleware. 50 connections of
 * signed one-event POSTs each; every event is durably stored before its 200 (group commit shares the
 * INSERTs). Also: each web process's peak RSS under that load, and the time from spawning our web
 * process to its first `/readyz` 200.
 */
export async function webhookBench(opts: { seconds?: number; connections?: number } = {}): Promise<void> {
  const seconds = opts.seconds ?? 10;
  const connections = opts.connections ?? 50;
  const bench = await benchDatabase('webhook', 4);
  await seedDemoCatalog(bench.db);
  const line = await startLineApiDouble({ channelAccessToken: TOKEN });
  const queuePrefix = `bench_webhook_${crypto.randomBytes(3).toString('hex')}`;
  const users = Array.from({ length: 500 }, () => 'U' + crypto.randomBytes(16).toString('hex'));
  const request = (i: number) => {
    const userId = users[i % users.length]!;
    const body = JSON.stringify({
      destination: 'U0123456789abcdef0123456789abcdef',
      events: [
        {
          type: 'message', mode: 'active', timestamp: Date.now(),
          source: { type: 'user', userId },
          webhookEventId: `01BENCH${crypto.randomBytes(10).toString('hex').toUpperCase()}`,
          deliveryContext: { isRedelivery: false }, replyToken: line.issueReplyToken(userId),
          message: { type: 'text', id: String(i), quoteToken: 'q', text: '說明' },
        },
      ],
    });
    const signature = crypto.createHmac('sha256', SECRET).update(body).digest('base64');
    return { body, headers: { 'content-type': 'application/json', 'x-line-signature': signature } };
  };

  const barePort = await freePort();
  const ourPort = await freePort();
  const env = {
    DATABASE_URL: bench.url, PORT: String(ourPort), PUBLIC_BASE_URL: `http://127.0.0.1:${ourPort}`,
    LINE_CHANNEL_SECRET: SECRET, LINE_CHANNEL_ACCESS_TOKEN: TOKEN, LINE_API_BASE_URL: line.url, LINE_DATA_API_BASE_URL: line.dataUrl,
    QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent',
  };
  const bare = spawnNode('dist/src/bench/bare-webhook-server.js', {}, [String(barePort), SECRET]);
  const t0 = Date.now();
  const web = spawnNode('dist/src/main/web.js', env);
  const worker = spawnNode('dist/src/main/worker.js', env);
  try {
    const readyMs = await waitFor200(`http://127.0.0.1:${ourPort}/readyz`, t0);
    await waitFor200(`http://127.0.0.1:${barePort}/readyz`, Date.now());
    const bareUrl = `http://127.0.0.1:${barePort}/webhook/line`;
    const ourUrl = `http://127.0.0.1:${ourPort}/webhook/line`;
    await load({ url: bareUrl, seconds: 2, connections, request }); // warm-up (JIT, pools, plans)
    await load({ url: ourUrl, seconds: 2, connections, request });

    const bareRss = rssSampler(bare.pid!);
    const b = await load({ url: bareUrl, seconds, connections, request });
    const bareRssPeak = bareRss.stop();
    const before = await bench.db('line_events').count<{ n: number }[]>({ n: '*' });
    const ourRss = rssSampler(web.pid!);
    const cpu = cpuAccount({ web, worker });
    const o = await load({ url: ourUrl, seconds, connections, request });
    const cpuReport = cpu.report(o.requests, 'webhook');
    const ourRssPeak = ourRss.stop();
    const after = await bench.db('line_events').count<{ n: number }[]>({ n: '*' });
    const processedDuring = await bench.db('line_events').whereNotNull('processed_at').count<{ n: number }[]>({ n: '*' });

    const row = (label: string, r: typeof b) =>
      `${label.padEnd(52)} ${r.perSecond.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(6)} ms   non-200 ${r.requests - (r.statuses[200] ?? 0)}`;
    console.log(`\nwebhook acknowledgement (${connections} connections, ${seconds} s each, separate processes, worker running)`);
    console.log(row('baseline: express + SDK middleware only', b));
    console.log(row('ours: web (inbox, group commit) + worker answering', o));
    console.log(`ratio ours/baseline: ${(o.perSecond / b.perSecond).toFixed(2)}   (target >= 0.5)`);
    console.log(`events stored in the run: ${after[0]!.n - before[0]!.n}; processed by the worker by its end: ${processedDuring[0]!.n} of ${after[0]!.n} in all`);
    console.log(`web RSS peak under load: ours ${ourRssPeak.toFixed(1)} MB, bare ${bareRssPeak.toFixed(1)} MB, ratio ${(ourRssPeak / bareRssPeak).toFixed(2)} (target <= 2)`);
    console.log(`web process start to first /readyz 200: ${readyMs} ms (target <= 2000)`);
    console.log(`during our run, ${cpuReport}`);
  } finally {
    await stop(web);
    await stop(worker);
    await stop(bare);
    await line.close();
    await dropKeys(queuePrefix);
    await bench.drop();
  }
}

if (require.main === module) {
  webhookBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
