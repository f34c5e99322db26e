import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import knexFactory from 'knex';
import { middleware } from '@line/bot-sdk';
import { parseConfig } from '../config';
import { createContainer } from '../container';
import { createDb, migrationConfig } from '../data/db';
import { silentLogger } from '../logger';
import { createApp } from '../web/app';
import { load } from './load';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const SECRET = 'bench-channel-secret';

function listen(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook/line`,
        close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
      }),
    ),
  );
}

/** A realistic webhook body: one text event from one user, unique webhookEventId per request. */
function request(i: number) {
  const body = JSON.stringify({
    destination: 'U0123456789abcdef0123456789abcdef',
    events: [
      {
        type: 'message', mode: 'active', timestamp: Date.now(),
        source: { type: 'user', userId: 'U4af4980629a1b2c3d4e5f60718293a4b' },
        webhookEventId: `01BENCH${process.pid}${i}${crypto.randomBytes(3).toString('hex')}`,
        deliveryContext: { isRedelivery: false }, replyToken: crypto.randomBytes(16).toString('hex'),
        message: { type: 'text', id: String(i), quoteToken: 'q', text: '商品' },
      },
    ],
  });
  const signature = crypto.createHmac('sha256', SECRET).update(body).digest('base64');
  return { body, headers: { 'content-type': 'application/json', 'x-line-signature': signature } };
}

/**
 * POST /webhook/line (signature check + durable PostgreSQL insert + enqueue) against a bare express
 * server that runs only the SDK middleware and answers 200, same machine, same load, same run.
 */
export async function webhookBench(opts: { seconds?: number; connections?: number } = {}): Promise<void> {
  const seconds = opts.seconds ?? 8;
  const connections = opts.connections ?? 16;
  const name = `bench_webhook_${crypto.randomBytes(3).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const db = createDb(url, { poolMax: 10 });
  await db.migrate.latest(migrationConfig());

  const bare = express();
  bare.post('/webhook/line', middleware({ channelSecret: SECRET }), (_req, res) => {
    res.status(200).json({});
  });
  const baseline = await listen(bare as unknown as http.RequestListener);

  const config = parseConfig({
    DATABASE_URL: url, LINE_CHANNEL_SECRET: SECRET, LINE_CHANNEL_ACCESS_TOKEN: 'bench', LOG_LEVEL: 'silent',
    QUEUE_PREFIX: `bench_${crypto.randomBytes(3).toString('hex')}`, LINE_API_BASE_URL: 'http://127.0.0.1:9',
  });
  const c = createContainer(config, { log: silentLogger, db });
  const ours = await listen(createApp(c) as unknown as http.RequestListener);

  try {
    await load({ url: baseline.url, seconds: 1, connections, request }); // warm-up
    await load({ url: ours.url, seconds: 1, connections, request });
    const b = await load({ url: baseline.url, seconds, connections, request });
    const o = await load({ url: ours.url, seconds, connections, request });
    const [{ n }] = await db('line_events').count<{ n: number }[]>({ n: '*' });
    const row = (label: string, r: typeof b) =>
      `${label.padEnd(44)} ${r.perSecond.toFixed(0).padStart(8)} req/s   p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(6)} ms   non-200 ${r.requests - (r.statuses[200] ?? 0)}`;
    console.log(`\nwebhook throughput (${connections} connections, ${seconds} s each)`);
    console.log(row('baseline: express + SDK middleware only', b));
    console.log(row('ours: + PostgreSQL inbox insert + enqueue', o));
    console.log(`ratio ours/baseline: ${(o.perSecond / b.perSecond).toFixed(2)}   (events stored: ${n})`);
    // The queue is not drained by a worker here; remove what the run enqueued.
    await c.queues.events.obliterate({ force: true });
  } finally {
    await baseline.close();
    await ours.close();
    await c.close();
    await db.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  }
}

if (require.main === module) {
  webhookBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
