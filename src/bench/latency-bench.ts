import crypto from 'node:crypto';
import http from 'node:http';
import { seedDemoCatalog } from '../data/seed';
import { startLineApiDouble } from '../sandbox/line-api-double';
import { benchDatabase, cpuAccount, dropKeys, freePort, spawnNode, stop, waitFor200 } from './procs';

const SECRET = 'bench-channel-secret';
const TOKEN = 'bench-access-token';

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

/**
 * Reply latency at a steady rate (open loop: a request every 1/rate s, whatever the answers do),
 * from the moment an event is posted to the moment the LINE API double records the reply: webhook,
 * inbox, queue, the worker's transaction, the delivery job and the reply call. Real web and worker
 * processes. Each event comes from its own user, so replies are told apart by recipient. The
 * baseline is the same clock around a bare round trip to the double itself.
 */
export async function latencyBench(opts: { seconds?: number; rate?: number } = {}): Promise<void> {
  const seconds = opts.seconds ?? 15;
  const rate = opts.rate ?? 200;
  const bench = await benchDatabase('latency', 4);
  await seedDemoCatalog(bench.db);
  const line = await startLineApiDouble({ channelAccessToken: TOKEN });
  const queuePrefix = `bench_latency_${crypto.randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const env = {
    DATABASE_URL: bench.url, PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    LINE_CHANNEL_SECRET: SECRET, LINE_CHANNEL_ACCESS_TOKEN: TOKEN, LINE_API_BASE_URL: line.url, LINE_DATA_API_BASE_URL: line.dataUrl,
    QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent',
  };
  const web = spawnNode('dist/src/main/web.js', env);
  const worker = spawnNode('dist/src/main/worker.js', env);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const url = new URL(`http://127.0.0.1:${port}/webhook/line`);
  const posted = new Map<string, number>();
  let non200 = 0;
  const post = (userId: string, text: string) => {
    const body = JSON.stringify({
      destination: 'U0123456789abcdef0123456789abcdef',
      events: [
        {
          type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId },
          webhookEventId: `01LAT${crypto.randomBytes(10).toString('hex').toUpperCase()}`,
          deliveryContext: { isRedelivery: false }, replyToken: line.issueReplyToken(userId),
          message: { type: 'text', id: '1', quoteToken: 'q', text },
        },
      ],
    });
    const signature = crypto.createHmac('sha256', SECRET).update(body).digest('base64');
    posted.set(userId, Date.now());
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-line-signature': signature, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        if (res.statusCode !== 200) non200++;
        res.resume();
      },
    );
    req.on('error', () => non200++);
    req.end(body);
  };
  try {
    await waitFor200(`http://127.0.0.1:${port}/readyz`, Date.now());
    await waitFor200(`http://127.0.0.1:${port}/readyz`, Date.now());
    // Warm-up at the same rate, not measured.
    const run = async (secs: number, tag: string) => {
      const users: string[] = [];
      const start = Date.now();
      for (let i = 0; Date.now() - start < secs * 1000; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const u = 'U' + crypto.randomBytes(16).toString('hex');
        users.push(u);
        post(u, tag);
      }
      return users;
    };
    await run(3, '說明');
    line.reset();
    posted.clear();
    const cpu = cpuAccount({ web, worker });
    const users = await run(seconds, '說明');
    const deadline = Date.now() + 30_000;
    const byUser = () => new Map(line.delivered().filter((d) => d.kind === 'reply').map((d) => [d.to, d.at.getTime()]));
    let replies = byUser();
    while (users.some((u) => !replies.has(u)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      replies = byUser();
    }
    const cpuReport = cpu.report(users.length, 'event');
    const lat = users.filter((u) => replies.has(u)).map((u) => replies.get(u)! - posted.get(u)!).sort((a, b) => a - b);
    const measured = new Set(users);
    const pushes = line.delivered().filter((d) => d.kind === 'push' && measured.has(d.to)).length;
    const warmupPushes = line.delivered().filter((d) => d.kind === 'push' && !measured.has(d.to)).length;

    // Baseline: the double's own round trip (a reply call) with the same clock.
    const base: number[] = [];
    for (let i = 0; i < 200; i++) {
      const u = 'U' + crypto.randomBytes(16).toString('hex');
      const t = Date.now();
      await fetch(`${line.url}/v2/bot/message/reply`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ replyToken: line.issueReplyToken(u), messages: [{ type: 'text', text: 'x' }] }),
      }).then((r) => r.text());
      base.push(Date.now() - t);
    }
    base.sort((a, b) => a - b);
    console.log(`\nreply latency at a steady ${rate} events/s for ${seconds} s (event posted -> reply recorded at the LINE double; web + worker processes)`);
    console.log(`events ${users.length}, replies ${lat.length}, missing ${users.length - lat.length}, sent as push instead ${pushes} (warm-up events' replies late enough to be pushes: ${warmupPushes}), non-200 webhooks ${non200}`);
    console.log(`ours:     p50 ${pct(lat, 0.5)} ms   p90 ${pct(lat, 0.9)} ms   p99 ${pct(lat, 0.99)} ms   max ${lat.at(-1)} ms   (target p99 <= 100 ms)`);
    console.log(`baseline: one reply call to the double: p50 ${pct(base, 0.5)} ms   p99 ${pct(base, 0.99)} ms`);
    console.log(`processed ${(users.length / ((Math.max(...replies.values()) - Math.min(...posted.values())) / 1000)).toFixed(0)} events/s from the first post to the last reply`);
    console.log(cpuReport);
  } finally {
    agent.destroy();
    await stop(web);
    await stop(worker);
    await line.close();
    await dropKeys(queuePrefix);
    await bench.drop();
  }
}

if (require.main === module) {
  latencyBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
