import { addOutboxMessage } from '../../src/line/delivery';
import { newUserId, startShop, TestShop, waitFor } from '../helpers/shop';

let shop: TestShop;
beforeAll(async () => {
  // Our own limiter well above the double's, so LINE's 429s are what holds deliveries back.
  shop = await startShop({ label: 'delivery_rate', workers: false, env: { LINE_MESSAGES_PER_SECOND: '5000' } });
});
afterAll(async () => {
  await shop?.close();
});

async function queuePushes(n: number, tag: string): Promise<{ users: string[]; ids: number[] }> {
  const users = Array.from({ length: n }, () => newUserId());
  const ids = await shop.c.db.transaction(async (trx) => {
    const out: number[] = [];
    for (const [i, user] of users.entries()) {
      const id = await addOutboxMessage(trx, { recipient: user, messages: [{ type: 'text', text: `${tag} ${i}` }], kind: 'test', dedupeKey: `${tag}:${i}` });
      out.push(id!);
    }
    return out;
  });
  await shop.c.queues.enqueueDeliveries(ids);
  return { users, ids };
}

const rows = (ids: number[]) => shop.c.db('outbox_messages').whereIn('id', ids).select('id', 'status', 'attempts', 'retry_key');

describe('deliveries under LINE\'s rate limit', () => {
  it('every message is delivered exactly once when LINE answers 429 for going too fast; none is failed or given up', async () => {
    shop.line.setRateLimit(60);
    await shop.startWorkers();
    const { users, ids } = await queuePushes(240, 'burst');
    await waitFor(async () => (await rows(ids)).every((r) => r.status === 'sent'), 'all 240 sent', 40_000);
    const refused = shop.line.requests.filter((r) => r.path === '/v2/bot/message/push' && r.status === 429).length;
    expect(refused).toBeGreaterThan(0);
    for (const u of users) expect(shop.line.deliveredTo(u)).toHaveLength(1);
    // A refused try does not count as one: each message was accepted on its first counted attempt.
    expect((await rows(ids)).every((r) => r.attempts === 1)).toBe(true);
    await shop.stopWorkers();
    shop.line.setRateLimit(null);
  });

  it('a 429 that says when to come back (Retry-After) pauses the queue that long, then the message goes out once with its retry key', async () => {
    shop.line.injectFailures('/v2/bot/message/push', [{ status: 429, headers: { 'retry-after': '2' } }]);
    await shop.startWorkers();
    const t0 = Date.now();
    const { users, ids } = await queuePushes(3, 'retry-after');
    await waitFor(async () => (await rows(ids)).every((r) => r.status === 'sent'), 'all 3 sent', 20_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    const pushes = shop.line.requests.filter((r) => r.path === '/v2/bot/message/push' && users.includes((r.body as { to: string }).to));
    expect(pushes.filter((r) => r.status === 429)).toHaveLength(1);
    for (const u of users) expect(shop.line.deliveredTo(u)).toHaveLength(1);
    const first = pushes.find((r) => r.status === 429)!;
    const again = pushes.find((r) => r.status === 200 && (r.body as { to: string }).to === (first.body as { to: string }).to)!;
    expect(again.headers['x-line-retry-key']).toBe(first.headers['x-line-retry-key']);
    await shop.stopWorkers();
  });
});
