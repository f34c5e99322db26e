import { UnrecoverableError, Worker } from 'bullmq';
import { parseConfig } from '../../src/config';
import { createRedis } from '../../src/data/redis';
import { QUEUE_NAMES } from '../../src/jobs/queues';
import { createContainer } from '../../src/container';
import { withTransaction } from '../../src/data/db';
import { addOutboxMessage, REPLY_TOKEN_SURELY_VALID_MS } from '../../src/line/delivery';
import { silentLogger } from '../../src/logger';
import { createApp } from '../../src/web/app';
import { WEBHOOK_STORE_BUDGET_MS } from '../../src/web/line-webhook';
import { count, newUserId, settled, sign, startShop, TestShop, waitFor, ACCESS_TOKEN, CHANNEL_SECRET } from '../helpers/shop';
import { PrivateRedis } from '../../src/sandbox/private-redis';
import { dropQueueKeys, testQueuePrefix } from '../helpers/test-db';

describe('when Redis goes away', () => {
  let redis: PrivateRedis;
  let shop: TestShop;
  beforeAll(async () => {
    redis = await PrivateRedis.create();
    shop = await startShop({ label: 'redis_outage', env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await shop.close();
    await redis.stop();
  });

  test('webhooks are still answered 200 and stored; after Redis returns every event is processed exactly once', async () => {
    await redis.stop();
    const users = [newUserId(), newUserId(), newUserId()];
    const ids: string[] = [];
    for (const u of users) {
      const e = shop.textEvent(u, 'help');
      ids.push(e.webhookEventId);
      expect(await shop.sendEvents([e])).toBe(200);
      // LINE's redelivery of the same event while Redis is down is stored once.
      expect(await shop.sendEvents([{ ...e, deliveryContext: { isRedelivery: true } }])).toBe(200);
    }
    expect(await count(shop.c, 'line_events')).toBe(3);
    expect(await shop.c.db('line_events').whereNotNull('processed_at').count<{ n: number }[]>({ n: '*' }).then((r) => Number(r[0]!.n))).toBe(0);
    expect(shop.line.delivered()).toHaveLength(0);

    await redis.start();
    for (const id of ids) await settled(shop, id, 30_000);
    // Let any duplicate job (sweeper + original enqueue) run before counting.
    await new Promise((r) => setTimeout(r, 1500));
    for (const u of users) expect(shop.line.deliveredTo(u)).toHaveLength(1);
    const rows = await shop.c.db('line_events').select('processed_at', 'failed_at');
    expect(rows.every((r) => r.processed_at && !r.failed_at)).toBe(true);
  });
});

describe('when PostgreSQL is unreachable', () => {
  test('the webhook answers 503 (so LINE redelivers) and readyz says so', async () => {
    const prefix = testQueuePrefix('pgdown');
    const config = parseConfig({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing',
      QUEUE_PREFIX: prefix,
      LINE_CHANNEL_SECRET: CHANNEL_SECRET,
      LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
      LINE_API_BASE_URL: 'http://127.0.0.1:1',
      LOG_LEVEL: 'silent',
    });
    const c = createContainer(config, { log: silentLogger });
    const server = createApp(c).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const body = JSON.stringify({
        destination: 'U0',
        events: [{ type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: newUserId() }, webhookEventId: '01PGDOWN', deliveryContext: { isRedelivery: false }, replyToken: 'x', message: { type: 'text', id: '1', text: 'hi' } }],
      });
      const res = await fetch(`${url}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': sign(body) }, body });
      expect(res.status).toBe(503);
      expect(await res.text()).not.toMatch(/ECONNREFUSED|stack|at /);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ postgres: false });
    } finally {
      await new Promise((r) => server.close(r));
      await c.close();
      await dropQueueKeys(prefix);
    }
  });
});

describe('when PostgreSQL is slow to take the events', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'pg_slow' });
  });
  afterAll(async () => {
    await shop.close();
  });

  test('the webhook answers 503 within LINE\'s 2 s; the redelivery afterwards is stored once and answered once', async () => {
    const user = newUserId();
    const event = shop.textEvent(user, 'help');
    const lock = await shop.c.db.transaction();
    let status: number;
    let elapsed: number;
    try {
      await lock.raw('LOCK TABLE line_events IN ACCESS EXCLUSIVE MODE');
      const t0 = Date.now();
      status = await shop.sendEvents([event]);
      elapsed = Date.now() - t0;
    } finally {
      await lock.rollback();
    }
    expect(status).toBe(503);
    // Answered by the store budget (the table stays locked throughout), inside LINE's 2 s.
    expect(elapsed).toBeGreaterThanOrEqual(WEBHOOK_STORE_BUDGET_MS - 20);
    expect(elapsed).toBeLessThan(2000);
    // The insert that was waiting for the lock may land now; LINE redelivers the same event anyway.
    expect(await shop.sendEvents([{ ...event, deliveryContext: { isRedelivery: true } }])).toBe(200);
    await settled(shop, event.webhookEventId);
    expect(await count(shop.c, 'line_events', { webhook_event_id: event.webhookEventId })).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
  });
});

describe('message delivery', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'delivery' });
  });
  afterAll(async () => {
    await shop.close();
  });

  async function push(user: string, text: string, dedupeKey?: string): Promise<number> {
    const id = await withTransaction(shop.c.db, (trx) =>
      addOutboxMessage(trx, { recipient: user, messages: [{ type: 'text', text }], kind: 'test', dedupeKey }),
    );
    await shop.c.queues.enqueueDeliveries([id!]);
    return id!;
  }

  test('a push that meets 429, then 500, then 200 is delivered exactly once, every attempt with the same retry key', async () => {
    const user = newUserId();
    shop.line.injectFailures('/v2/bot/message/push', [{ status: 429, body: { message: 'The API rate limit has been exceeded. Try again later.' } }, { status: 500 }]);
    const id = await push(user, '付款成功');
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'sent', 'push sent', 30_000);
    const attempts = shop.line.requests.filter((r) => r.path === '/v2/bot/message/push' && (r.body as { to?: string }).to === user);
    expect(attempts.map((a) => a.status)).toEqual([429, 500, 200]);
    const keys = new Set(attempts.map((a) => a.headers['x-line-retry-key']));
    expect(keys.size).toBe(1);
    const row = await shop.c.db('outbox_messages').where({ id }).first();
    expect([...keys][0]).toBe(row.retry_key);
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
    // The 429 (rate limit) does not use up an attempt: the 500 and the 200 are the two counted.
    expect(row).toMatchObject({ status: 'sent', attempts: 2, delivered_via: 'push' });
  });

  test('a push whose answer times out is retried with the same key; LINE answers 409 and it counts as delivered once', async () => {
    const user = newUserId();
    shop.line.injectFailures('/v2/bot/message/push', [{ hangMs: 4000 }]);
    const id = await push(user, '已出貨');
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'sent', 'push sent', 30_000);
    const row = await shop.c.db('outbox_messages').where({ id }).first();
    expect(row.last_status).toBe(409);
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
  });

  async function reply(user: string, text: string, deadlineInMs: number, tokenAgeMs = 0): Promise<number> {
    const id = await withTransaction(shop.c.db, (trx) =>
      addOutboxMessage(trx, {
        recipient: user,
        messages: [{ type: 'text', text }],
        kind: 'reply',
        replyToken: shop.line.issueReplyToken(user),
        replyDeadline: new Date(Date.now() + deadlineInMs),
        replyTokenAt: new Date(Date.now() - tokenAgeMs),
      }),
    );
    await shop.c.queues.enqueueDeliveries([id!]);
    return id!;
  }
  const requestsTo = (user: string, path: string) =>
    shop.line.requests.filter((r) => r.path === path && ((r.body as { to?: string }).to === user || JSON.stringify(r.body).includes(user)));

  test('a reply whose answer is lost is not sent again as a push: the retried reply finds its token used and counts as delivered once', async () => {
    const user = newUserId();
    shop.line.injectFailures('/v2/bot/message/reply', [{ hangMs: 4000 }]); // delivered, but the answer comes after our 2 s timeout
    const id = await reply(user, '已加入購物車', 50_000);
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'sent', 'reply settled', 30_000);
    const row = await shop.c.db('outbox_messages').where({ id }).first();
    expect(row).toMatchObject({ status: 'sent', delivered_via: 'reply', reply_unclear: true, last_status: 400, attempts: 2 });
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
    expect(requestsTo(user, '/v2/bot/message/push')).toHaveLength(0);
  });

  test('the same lost answer once the token is old enough to have expired: its refusal proves nothing, so the message is pushed', async () => {
    const user = newUserId();
    shop.line.injectFailures('/v2/bot/message/reply', [{ hangMs: 4000 }]);
    const id = await reply(user, '已出貨', 50_000, REPLY_TOKEN_SURELY_VALID_MS + 5_000);
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'sent', 'message settled', 30_000);
    const row = await shop.c.db('outbox_messages').where({ id }).first();
    expect(row).toMatchObject({ status: 'sent', delivered_via: 'push', reply_unclear: true });
    expect(requestsTo(user, '/v2/bot/message/push').map((p) => p.headers['x-line-retry-key'])).toEqual([row.retry_key]);
    // The first reply did arrive: the shopper may see it twice, which beats never seeing it.
    expect(shop.line.deliveredTo(user)).toHaveLength(2);
  });

  test('a reply answered 500 (not delivered) is tried again as a reply while its token is fresh, and delivered once', async () => {
    const user = newUserId();
    shop.line.injectFailures('/v2/bot/message/reply', [{ status: 500 }]);
    const id = await reply(user, '訂單已成立', 50_000);
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'sent', 'reply sent', 30_000);
    const row = await shop.c.db('outbox_messages').where({ id }).first();
    expect(row).toMatchObject({ status: 'sent', delivered_via: 'reply', last_status: 200, attempts: 2 });
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
    expect(requestsTo(user, '/v2/bot/message/push')).toHaveLength(0);
  });

  test('a reply whose token is past its deadline goes out as a push, with its retry key', async () => {
    const user = newUserId();
    const id = await reply(user, '您好', -1000);
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'sent', 'push sent', 15_000);
    const row = await shop.c.db('outbox_messages').where({ id }).first();
    expect(row).toMatchObject({ status: 'sent', delivered_via: 'push', attempts: 1 });
    const pushes = requestsTo(user, '/v2/bot/message/push');
    expect(pushes.map((p) => p.headers['x-line-retry-key'])).toEqual([row.retry_key]);
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
  });

  test('other 4xx answers are recorded as undeliverable and not retried', async () => {
    const user = newUserId();
    shop.line.injectFailures('/v2/bot/message/push', [{ status: 400, body: { message: 'Failed to send messages' } }]);
    const id = await push(user, '測試');
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'undeliverable', 'undeliverable', 15_000);
    await new Promise((r) => setTimeout(r, 1500));
    const attempts = shop.line.requests.filter((r) => r.path === '/v2/bot/message/push' && (r.body as { to?: string }).to === user);
    expect(attempts).toHaveLength(1);
    expect(shop.line.deliveredTo(user)).toHaveLength(0);
  });

  test('a notification written twice under one dedupe key is pushed once', async () => {
    const user = newUserId();
    await push(user, '收到款項', `test:${user}`);
    const second = await withTransaction(shop.c.db, (trx) =>
      addOutboxMessage(trx, { recipient: user, messages: [{ type: 'text', text: '收到款項' }], kind: 'test', dedupeKey: `test:${user}` }),
    );
    expect(second).toBeNull();
    await waitFor(() => shop.line.deliveredTo(user).length === 1, 'one push');
    await new Promise((r) => setTimeout(r, 800));
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
  });

  test('a user who unfollowed gets no pushes (recorded as undeliverable)', async () => {
    const user = newUserId();
    await shop.c.db('line_users').insert({ user_id: user, following: false });
    const id = await push(user, '優惠通知');
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id }).first()).status === 'undeliverable', 'undeliverable');
    expect(shop.line.deliveredTo(user)).toHaveLength(0);
  });
});

describe('when a finished job still holds the id of work that is not done', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'stale_job', workers: false });
  });
  afterAll(async () => {
    await shop.close();
  });

  /** Runs one job of a queue through `processor` in a worker of the test's own (not the shop's). */
  async function finishWith(queue: string, jobId: string, processor: () => Promise<unknown>, state: 'failed' | 'completed'): Promise<void> {
    const connection = createRedis(shop.config.redisUrl, 'worker');
    const w = new Worker(queue, processor, { connection, prefix: shop.config.queuePrefix });
    try {
      const q = queue === QUEUE_NAMES.events ? shop.c.queues.events : shop.c.queues.deliveries;
      await waitFor(async () => (await q.getJobState(jobId)) === state, `${jobId} ${state}`);
    } finally {
      await w.close();
      connection.disconnect();
    }
  }

  test('the sweepers replace a failed event job and a completed delivery job under the same ids, and both are done', async () => {
    const user = newUserId();
    const event = shop.textEvent(user, 'help');
    expect(await shop.sendEvents([event])).toBe(200);
    const inboxId = (await shop.c.db('line_events').where({ webhook_event_id: event.webhookEventId }).first('id')).id;
    // Failed for good without our bookkeeping (as BullMQ fails a job that stalled too often).
    await finishWith(QUEUE_NAMES.events, `evt-${inboxId}`, async () => {
      throw new UnrecoverableError('stalled too often (simulated)');
    }, 'failed');

    const other = newUserId();
    const msgId = await withTransaction(shop.c.db, (trx) =>
      addOutboxMessage(trx, { recipient: other, messages: [{ type: 'text', text: '已出貨' }], kind: 'test' }),
    );
    await shop.c.queues.enqueueDeliveries([msgId!]);
    // Completed while the row stayed claimed by a run that died (its claim has since run out).
    await finishWith(QUEUE_NAMES.deliveries, `msg-${msgId}`, async () => 'skipped', 'completed');
    await shop.c.db('outbox_messages').where({ id: msgId }).update({ status: 'sending', attempts: 1, claimed_until: shop.c.db.raw("now() - interval '1 second'") });

    await shop.startWorkers();
    await settled(shop, event.webhookEventId);
    await waitFor(async () => (await shop.c.db('outbox_messages').where({ id: msgId }).first()).status === 'sent', 'the stuck message sent');
    expect(shop.line.deliveredTo(user).map((d) => d.kind)).toEqual(['reply']);
    expect(shop.line.deliveredTo(other).map((d) => d.kind)).toEqual(['push']);
  });
});
