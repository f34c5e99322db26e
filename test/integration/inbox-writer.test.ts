import { InboxRow, InboxWriter } from '../../src/data/inbox-writer';
import { newUserId, startShop, TestShop } from '../helpers/shop';
import { createTestDb, TestDb } from '../helpers/test-db';

const row = (id: string, payload = '{"type":"message"}'): InboxRow => ({
  webhook_event_id: id,
  event_type: 'message',
  source_user_id: null,
  payload,
  payload_original: null,
});

describe('the inbox writer (group commit)', () => {
  let tdb: TestDb;
  beforeAll(async () => {
    tdb = await createTestDb('inbox_writer');
  });
  afterAll(async () => {
    await tdb?.destroy();
  });

  it('requests that arrive while an INSERT commits share the next one, and each learns only its own new ids', async () => {
    const stored: number[][] = [];
    const w = new InboxWriter(tdb.db, { concurrency: 1, onStored: (ids) => stored.push(ids) });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => w.store([row(`g${i}a`), row(`g${i}b`)])));
    expect(w.batches).toBe(2); // the first request alone, then the 49 that queued behind it
    expect(results.every((ids) => ids.length === 2)).toBe(true);
    expect(new Set(results.flat()).size).toBe(100);
    expect(stored.flat().sort()).toEqual(results.flat().sort());
    const rows = await tdb.db('line_events').whereIn('id', results[7]!).orderBy('id').pluck('webhook_event_id');
    expect(rows).toEqual(['g7a', 'g7b']);
  });

  it('an event sent twice (a redelivery racing the first delivery) is stored once; the later request is told it is not new', async () => {
    const w = new InboxWriter(tdb.db, { concurrency: 1 });
    const [a, b, c] = await Promise.all([w.store([row('d1')]), w.store([row('d2'), row('d3')]), w.store([row('d3'), row('d4')])]);
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(2);
    expect(c).toHaveLength(1);
    expect(await tdb.db('line_events').whereIn('webhook_event_id', ['d1', 'd2', 'd3', 'd4']).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 4 }]);
    expect(await w.store([row('d4')])).toEqual([]);
  });

  it('a value PostgreSQL refuses fails its own request only; the rest of the batch is stored', async () => {
    const w = new InboxWriter(tdb.db, { concurrency: 1 });
    const first = w.store([row('b0')]);
    const outcomes = await Promise.allSettled([first, w.store([row('b1')]), w.store([row('b2', '{not json')]), w.store([row('b3')])]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason.code).toBe('22P02');
    expect(await tdb.db('line_events').whereIn('webhook_event_id', ['b1', 'b2', 'b3']).orderBy('webhook_event_id').pluck('webhook_event_id')).toEqual(['b1', 'b3']);
  });
});

describe('the webhook with group commit', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'webhook_group', workers: false });
  });
  afterAll(async () => {
    await shop?.close();
  });

  it('answers 200 to 60 concurrent requests only once each one\'s event is committed, sharing INSERTs while one is held up', async () => {
    const user = newUserId();
    const events = Array.from({ length: 60 }, (_, i) => shop.textEvent(user, `說明 ${i}`));
    // A slow commit, as under load: the first INSERTs wait on this lock while the other requests queue.
    const lock = await shop.c.db.transaction();
    await lock.raw('LOCK TABLE line_events IN SHARE MODE');
    const answers = Promise.all(
      events.map(async (e) => {
        const status = await shop.sendEvents([e]);
        // Read right after the 200: a row committed later could not be seen here.
        const stored = await shop.c.db('line_events').where({ webhook_event_id: e.webhookEventId }).first('id');
        return { status, stored: Boolean(stored) };
      }),
    );
    await new Promise((r) => setTimeout(r, 600));
    await lock.commit();
    const seenAtAnswer = await answers;
    expect(seenAtAnswer.every((r) => r.status === 200 && r.stored)).toBe(true);
    const { n } = (await shop.c.db('line_events').where({ source_user_id: user }).count<{ n: number }[]>({ n: '*' }))[0]!;
    expect(n).toBe(60);
    const metrics = await (await fetch(`${shop.url}/metrics`)).text();
    const inserts = Number(/^lineshop_inbox_inserts_total (\d+)$/m.exec(metrics)![1]);
    expect(inserts).toBeGreaterThan(0);
    expect(inserts).toBeLessThanOrEqual(10);
  });
});
