import { newUserId, settled, startShop, TestShop } from '../helpers/shop';

let shop: TestShop;
beforeAll(async () => {
  shop = await startShop({ label: 'metrics', sinopac: true });
});
afterAll(async () => {
  await shop?.close();
});

async function scrape(): Promise<string> {
  const res = await fetch(`${shop.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

/** The value of one sample line, e.g. metric('lineshop_webhook_requests_total{status="200"}'). */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('GET /metrics', () => {
  it('counts webhooks and their events, callbacks by route and status, and deliveries by way and outcome', async () => {
    const user = newUserId();
    await settled(shop, await shop.say(user, '商品'));
    await settled(shop, await shop.say(user, '說明'));
    expect((await shop.post('{"events":[]}', 'bad-signature')).status).toBe(401);
    const refused = await fetch(`${shop.url}/payments/sinopac/notify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ShopNo":"other"}' });
    expect(refused.status).toBe(400);

    const text = await scrape();
    expect(sample(text, 'lineshop_webhook_requests_total{status="200"}')).toBe(2);
    expect(sample(text, 'lineshop_webhook_requests_total{status="401"}')).toBe(1);
    expect(sample(text, 'lineshop_webhook_events_total')).toBe(2);
    expect(sample(text, 'lineshop_webhook_duration_seconds_count')).toBe(3);
    expect(sample(text, 'lineshop_bank_callbacks_total{route="sinopac-notify",status="400"}')).toBe(1);
    expect(sample(text, 'lineshop_line_deliveries_total{via="reply",result="sent",status="200"}')).toBe(2);
  });

  it('reports the backlog from PostgreSQL and Redis: events waiting in the inbox, messages waiting in the outbox, jobs per queue', async () => {
    await shop.stopWorkers();
    const user = newUserId();
    await shop.say(user, '購物車');
    await shop.c.db('outbox_messages').insert({ kind: 'test', recipient: user, messages: JSON.stringify([{ type: 'text', text: 'hi' }]), created_at: shop.c.db.raw("now() - interval '90 seconds'") });
    const text = await scrape();
    expect(sample(text, 'lineshop_inbox_backlog{what="count"}')).toBe(1);
    expect(sample(text, 'lineshop_outbox_backlog{what="count"}')).toBe(1);
    expect(sample(text, 'lineshop_outbox_backlog{what="oldest_seconds"}')).toBeGreaterThanOrEqual(89);
    expect(sample(text, 'lineshop_queue_jobs{queue="line-events",state="waiting"}')).toBe(1);
    expect(text).toContain('lineshop_process_resident_memory_bytes');
    await shop.startWorkers();
  });
});
