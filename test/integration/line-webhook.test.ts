import { validateSignature } from '@line/bot-sdk';
import { count, newUserId, settled, sign, startShop, TestShop, waitFor } from '../helpers/shop';
import { setStock } from '../helpers/stock';

describe('POST /webhook/line', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'webhook' });
  });
  afterAll(async () => {
    await shop.close();
  });

  test('the official signature vector (spec §1.3) verifies, with the SDK and with our signer', () => {
    const body = '{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}';
    const secret = '8c570fa6dd201bb328f1c1eac23a96d8';
    expect(sign(body, secret)).toBe('GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=');
    expect(validateSignature(body, secret, 'GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=')).toBe(true);
  });

  test('the connectivity check (no events) gets 200 and stores nothing', async () => {
    const before = await count(shop.c, 'line_events');
    const res = await shop.post('{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}');
    expect(res.status).toBe(200);
    expect(await count(shop.c, 'line_events')).toBe(before);
  });

  test('a signed text event produces exactly one reply; three deliveries of it, one reply and one stored event', async () => {
    const user = newUserId();
    const event = shop.textEvent(user, 'help');
    expect(await shop.sendEvents([event])).toBe(200);
    await settled(shop, event.webhookEventId);
    event.deliveryContext = { isRedelivery: true };
    expect(await shop.sendEvents([event])).toBe(200);
    expect(await shop.sendEvents([event])).toBe(200);
    // Give a wrongly enqueued duplicate every chance to show up before counting.
    await new Promise((r) => setTimeout(r, 800));
    await settled(shop, event.webhookEventId);
    expect(await count(shop.c, 'line_events', { webhook_event_id: event.webhookEventId })).toBe(1);
    const sends = shop.line.deliveredTo(user);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.kind).toBe('reply');
    expect(shop.line.textsTo(user)[0]).toContain('購物說明');
  });

  test('a bad or missing signature gets 401 and stores nothing', async () => {
    const before = await count(shop.c, 'line_events');
    const body = JSON.stringify({ destination: 'U0', events: [shop.textEvent(newUserId(), 'menu')] });
    expect((await shop.post(body, sign(body, 'some-other-secret'))).status).toBe(401);
    expect((await shop.post(body, null)).status).toBe(401);
    expect((await shop.post(body + ' ', sign(body))).status).toBe(401);
    expect(await count(shop.c, 'line_events')).toBe(before);
  });

  test('malformed JSON with a valid signature gets 400; a body that is not a callback gets 400', async () => {
    const before = await count(shop.c, 'line_events');
    const bad = '{"destination":"U0","events":[{';
    expect((await shop.post(bad, sign(bad))).status).toBe(400);
    const notCallback = '{"hello":"world"}';
    expect((await shop.post(notCallback, sign(notCallback))).status).toBe(400);
    const noId = JSON.stringify({ destination: 'U0', events: [{ type: 'message' }] });
    expect((await shop.post(noId, sign(noId))).status).toBe(400);
    expect(await count(shop.c, 'line_events')).toBe(before);
  });

  test('a body over 2 MB gets 413 and stores nothing', async () => {
    const before = await count(shop.c, 'line_events');
    const big = JSON.stringify({ destination: 'U0', events: [], pad: 'x'.repeat(2 * 1024 * 1024 + 10) });
    expect((await shop.post(big, sign(big))).status).toBe(413);
    expect(await count(shop.c, 'line_events')).toBe(before);
  });

  test('several events from different users in one POST are each stored and answered', async () => {
    const a = newUserId();
    const b = newUserId();
    const ea = shop.textEvent(a, '商品');
    const eb = shop.textEvent(b, 'ｈｅｌｐ');
    expect(await shop.sendEvents([ea, eb])).toBe(200);
    await settled(shop, ea.webhookEventId);
    await settled(shop, eb.webhookEventId);
    expect(shop.line.textsTo(a)[0]).toMatch(/商品目錄/);
    expect(shop.line.textsTo(b)[0]).toContain('購物說明');
  });

  test('follow greets and records the user; unfollow marks them; standby events send nothing', async () => {
    const user = newUserId();
    shop.line.setProfile(user, { displayName: '小美' });
    const follow = { type: 'follow', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user }, webhookEventId: `01F${Date.now()}`, deliveryContext: { isRedelivery: false }, replyToken: shop.line.issueReplyToken(user), follow: { isUnblocked: false } };
    await shop.sendEvents([follow]);
    await settled(shop, follow.webhookEventId);
    expect(shop.line.textsTo(user)[0]).toContain('小美，歡迎光臨');
    const row = await shop.c.db('line_users').where({ user_id: user }).first();
    expect(row).toMatchObject({ display_name: '小美', following: true });

    const standby = { ...shop.textEvent(user, 'menu'), mode: 'standby', replyToken: undefined };
    const sid = standby.webhookEventId;
    await shop.sendEvents([standby]);
    await settled(shop, sid);
    const unfollow = { type: 'unfollow', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user }, webhookEventId: `01U${Date.now()}`, deliveryContext: { isRedelivery: false } };
    await shop.sendEvents([unfollow]);
    await settled(shop, unfollow.webhookEventId);
    expect(shop.line.deliveredTo(user)).toHaveLength(1);
    expect(await shop.c.db('line_users').where({ user_id: user }).first()).toMatchObject({ following: false });
  });

  test('a group gets a polite 1:1 note and no shop behaviour', async () => {
    const groupId = 'C' + 'a'.repeat(32);
    const user = newUserId();
    const e = { ...shop.textEvent(user, 'menu'), source: { type: 'group', groupId, userId: user }, replyToken: shop.line.issueReplyToken(groupId) };
    await shop.sendEvents([e]);
    await settled(shop, e.webhookEventId);
    expect(shop.line.textsTo(groupId)).toEqual([expect.stringContaining('私訊')]);
  });

  test('unknown text gets a friendly hint, never an error', async () => {
    const user = newUserId();
    const id = await shop.say(user, '你們有賣珍珠奶茶嗎？');
    await settled(shop, id);
    expect(shop.line.textsTo(user)).toEqual([expect.stringContaining('看不懂')]);
  });

  test('GET /healthz and /readyz', async () => {
    expect((await fetch(`${shop.url}/healthz`)).status).toBe(200);
    const r = await fetch(`${shop.url}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ postgres: true, redis: true });
  });

  test('an event whose reply token went stale is delivered by push instead', async () => {
    const user = newUserId();
    const e = shop.textEvent(user, 'help');
    e.replyToken = 'f'.repeat(32); // never issued by the double: LINE would refuse it
    await shop.sendEvents([e]);
    await settled(shop, e.webhookEventId);
    const sends = shop.line.deliveredTo(user);
    expect(sends.map((s) => s.kind)).toEqual(['push']);
    await waitFor(() => shop.line.requests.some((r) => r.path === '/v2/bot/message/reply' && r.status === 400), 'refused reply');
  });

  test('a redelivered event from 25 minutes ago is answered by push, without trying its dead reply token', async () => {
    const user = newUserId();
    const e = shop.textEvent(user, 'help', { redelivery: true });
    e.timestamp = Date.now() - 25 * 60_000;
    const repliesBefore = shop.line.requests.filter((r) => r.path === '/v2/bot/message/reply').length;
    await shop.sendEvents([e]);
    await settled(shop, e.webhookEventId);
    expect(shop.line.deliveredTo(user).map((s) => s.kind)).toEqual(['push']);
    expect(shop.line.requests.filter((r) => r.path === '/v2/bot/message/reply').length).toBe(repliesBefore);
  });

  test('a catalog larger than 12 products pages with a "more" postback', async () => {
    const cat = await shop.c.db('categories').first('id');
    await shop.c.db('products').insert(
      Array.from({ length: 15 }, (_, i) => ({
        sku: `PAGE-${i}`, category_id: cat.id, name: `分頁測試商品 ${i}`, price: 100 + i, image_url: 'https://images.example.com/p.jpg', sort_order: 100 + i,
      })),
    );
    for (let i = 0; i < 15; i++) await setStock(shop.c.db, `PAGE-${i}`, 3);
    const user = newUserId();
    const id = await shop.say(user, 'menu');
    await settled(shop, id);
    const first = shop.line.deliveredTo(user)[0]!.messages[0] as { altText: string; contents: { type: string; contents: Array<{ footer: { contents: Array<{ action: { data: string; label: string } }> } }> } };
    expect(first.altText).toBe('商品目錄（第 1/3 頁）');
    expect(first.contents.type).toBe('carousel');
    expect(first.contents.contents).toHaveLength(12);
    const more = first.contents.contents[11]!.footer.contents[0]!.action;
    expect(more).toMatchObject({ label: '下一頁', data: 'action=menu&page=2' });
    const id2 = await shop.tap(user, more.data);
    await settled(shop, id2);
    expect(shop.line.textsTo(user)[1]).toBe('商品目錄（第 2/3 頁）');
    const id3 = await shop.tap(user, 'action=menu&page=3');
    await settled(shop, id3);
    const last = shop.line.deliveredTo(user)[2]!.messages[0] as { altText: string; contents: { contents: unknown[] } };
    expect(last.altText).toBe('商品目錄（第 3/3 頁）');
    expect(last.contents.contents).toHaveLength(25 - 22);
    await shop.c.db('products').where('sku', 'like', 'PAGE-%').delete();
  });
});

describe('each stored event takes effect exactly once', () => {
  let shop: TestShop;
  beforeAll(async () => {
    // No workers: the test drives processing itself.
    shop = await startShop({ label: 'exactly_once', workers: false });
  });
  afterAll(async () => {
    await shop.close();
  });

  async function store(user: string, text: string): Promise<number> {
    const event = shop.textEvent(user, text);
    expect(await shop.sendEvents([event])).toBe(200);
    return (await shop.c.db('line_events').where({ webhook_event_id: event.webhookEventId }).first('id')).id;
  }
  const cartQty = async (user: string, sku: string) =>
    (await shop.c.db('cart_lines as cl').join('carts as c', 'c.id', 'cl.cart_id').join('products as p', 'p.id', 'cl.product_id')
      .where({ 'c.line_user_id': user, 'p.sku': sku }).first('cl.qty'))?.qty ?? 0;

  test('three workers processing the same event at once: one applies it, two see it done; one cart change, one reply', async () => {
    const user = newUserId();
    const id = await store(user, 'cart TEA-001 +1');
    const webhookEventId = (await shop.c.db('line_events').where({ id }).first('webhook_event_id')).webhook_event_id;
    const outcomes = await Promise.all([1, 2, 3].map(() => shop.c.bot.processInboxEvent(id)));
    expect(outcomes.sort()).toEqual(['already', 'already', 'processed']);
    expect(await cartQty(user, 'TEA-001')).toBe(1);
    expect(await count(shop.c, 'outbox_messages', { dedupe_key: `event:${webhookEventId}:reply` })).toBe(1);
    expect(await shop.c.bot.processInboxEvent(id)).toBe('already');
    expect(await cartQty(user, 'TEA-001')).toBe(1);
  });

  test('a transaction that fails after the effects were applied leaves nothing behind; the retry applies them once', async () => {
    const user = newUserId();
    const id = await store(user, 'cart SNK-001 +2');
    const db = shop.c.db;
    // The reply insert (the last write of the event's transaction) fails while the flag row exists.
    await db.raw('CREATE TABLE fail_outbox (on_ bool)');
    await db.raw(`CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF EXISTS (SELECT 1 FROM fail_outbox) THEN RAISE EXCEPTION 'outbox insert refused by the test'; END IF; RETURN NEW; END $$`);
    await db.raw('CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox_messages FOR EACH ROW EXECUTE FUNCTION fail_outbox()');
    try {
      await db('fail_outbox').insert({ on_: true });
      await expect(shop.c.bot.processInboxEvent(id)).rejects.toThrow(/outbox insert refused/);
      expect(await cartQty(user, 'SNK-001')).toBe(0);
      expect((await db('line_events').where({ id }).first('processed_at')).processed_at).toBeNull();
      await db('fail_outbox').delete();
      expect(await shop.c.bot.processInboxEvent(id)).toBe('processed');
      expect(await shop.c.bot.processInboxEvent(id)).toBe('already');
      expect(await cartQty(user, 'SNK-001')).toBe(2);
      const eventId = (await db('line_events').where({ id }).first('webhook_event_id')).webhook_event_id;
      expect(await count(shop.c, 'outbox_messages', { dedupe_key: `event:${eventId}:reply` })).toBe(1);
    } finally {
      await db.raw('DROP TRIGGER fail_outbox ON outbox_messages');
      await db.raw('DROP FUNCTION fail_outbox()');
      await db.raw('DROP TABLE fail_outbox');
    }
  });
});
