import { validateSignature } from '@line/bot-sdk';
import { count, newEventId, newUserId, settled, sign, startShop, TestShop, waitFor } from '../helpers/shop';
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

/**
 * LINE escapes every character of a text or postback in its JSON body, so a shopper (or a fuzzer)
 * can send U+0000 or half of a surrogate pair, which PostgreSQL's jsonb refuses. The bodies here are
 * written by hand as LINE sends them: `\u0000` and `\ud800` as 6-character escapes (JSON.stringify
 * would never write a lone surrogate escape of its own from a well-formed string).
 */
describe('events with U+0000 or lone surrogates (jsonb cannot hold them as sent)', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'webhook_unicode' });
  });
  afterAll(async () => {
    await shop.close();
  });

  /** `escapedText` is already JSON string content (escapes included), put into the body as is. */
  const rawTextEvent = (user: string, id: string, escapedText: string) =>
    `{"type":"message","mode":"active","timestamp":${Date.now()},"source":{"type":"user","userId":"${user}"},` +
    `"webhookEventId":"${id}","deliveryContext":{"isRedelivery":false},"replyToken":"${shop.line.issueReplyToken(user)}",` +
    `"message":{"type":"text","id":"${Date.now()}","quoteToken":"q","text":"${escapedText}"}}`;
  const rawPostbackEvent = (user: string, id: string, escapedData: string) =>
    `{"type":"postback","mode":"active","timestamp":${Date.now()},"source":{"type":"user","userId":"${user}"},` +
    `"webhookEventId":"${id}","deliveryContext":{"isRedelivery":false},"replyToken":"${shop.line.issueReplyToken(user)}",` +
    `"postback":{"data":"${escapedData}"}}`;
  const rawBody = (events: string[]) => `{"destination":"U0123456789abcdef0123456789abcdef","events":[${events.join(',')}]}`;

  test('a body mixing a clean event with U+0000 and lone-surrogate events: 200, every event stored once and answered once by reply', async () => {
    const [clean, nul, high, low, postback] = [newUserId(), newUserId(), newUserId(), newUserId(), newUserId()];
    const ids = [newEventId(), newEventId(), newEventId(), newEventId(), newEventId()];
    const body = rawBody([
      rawTextEvent(clean, ids[0]!, 'help'),
      rawTextEvent(nul, ids[1]!, 'help\\u0000'),
      rawTextEvent(high, ids[2]!, '\\ud800商品'),
      rawTextEvent(low, ids[3]!, '購物車\\udc00'),
      rawPostbackEvent(postback, ids[4]!, 'action=cart&x=\\u0000\\udfff'),
    ]);
    expect(body).toContain('\\u0000'); // the escape itself is in the body, as LINE sends it
    const res = await shop.post(body);
    expect(res.status).toBe(200);
    for (const id of ids) await settled(shop, id);

    const rows = await shop.c.db('line_events').whereIn('webhook_event_id', ids).select('webhook_event_id', 'processed_at', 'failed_at', 'payload');
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => r.processed_at && !r.failed_at)).toBe(true);
    const payloadOf = (id: string) => rows.find((r) => r.webhook_event_id === id)!.payload;
    // Stored with U+FFFD where jsonb cannot hold the character; everything else as sent.
    expect(payloadOf(ids[1]!).message.text).toBe('help\uFFFD');
    expect(payloadOf(ids[2]!).message.text).toBe('\uFFFD商品');
    expect(payloadOf(ids[3]!).message.text).toBe('購物車\uFFFD');
    expect(payloadOf(ids[4]!).postback.data).toBe('action=cart&x=\uFFFD\uFFFD');
    expect(payloadOf(ids[0]!).message.text).toBe('help');

    for (const u of [clean, nul, high, low, postback]) {
      expect(shop.line.deliveredTo(u).map((d) => d.kind)).toEqual(['reply']);
    }
    expect(shop.line.textsTo(clean)[0]).toContain('購物說明');
    // What the sanitized text means: not a command, so the usual friendly hint.
    for (const u of [nul, high, low]) expect(shop.line.textsTo(u)).toEqual([expect.stringContaining('看不懂')]);
    // The postback still says action=cart: the (empty) cart.
    expect(shop.line.textsTo(postback)).toEqual([expect.stringContaining('購物車是空的')]);

    // LINE's redelivery of the same body stores nothing new and answers nothing again.
    expect((await shop.post(body)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 800));
    expect(await shop.c.db('line_events').whereIn('webhook_event_id', ids).count<{ n: number }[]>({ n: '*' }).then((r) => Number(r[0]!.n))).toBe(5);
    for (const u of [clean, nul, high, low, postback]) expect(shop.line.deliveredTo(u)).toHaveLength(1);
  });

  test('the event exactly as LINE sent it is kept next to the sanitized payload, only when the two differ', async () => {
    const [a, b] = [newUserId(), newUserId()];
    const [ia, ib] = [newEventId(), newEventId()];
    expect((await shop.post(rawBody([rawTextEvent(a, ia, 'x\\u0000\\ud83d\\ude00\\udc00'), rawTextEvent(b, ib, 'help')]))).status).toBe(200);
    const rows = await shop.c.db('line_events').whereIn('webhook_event_id', [ia, ib]).select('webhook_event_id', 'payload', 'payload_original');
    const ra = rows.find((r) => r.webhook_event_id === ia)!;
    expect(ra.payload.message.text).toBe('x\uFFFD\u{1F600}\uFFFD');
    expect(JSON.parse(ra.payload_original).message.text).toBe('x\u0000\u{1F600}\udc00');
    expect(rows.find((r) => r.webhook_event_id === ib)!.payload_original).toBeNull();
  });

  test('fuzz: 300 texts and postbacks of random UTF-16 code units, all escaped as LINE escapes them, are all stored and answered once by reply', async () => {
    // A small deterministic generator, so a failure can be replayed.
    let seed = 20261204;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const pick = (): string => {
      switch (rnd(8)) {
        case 0: return '\\u0000';
        case 1: return `\\u${(0xd800 + rnd(0x400)).toString(16)}`; // lone high surrogate
        case 2: return `\\u${(0xdc00 + rnd(0x400)).toString(16)}`; // lone low surrogate
        case 3: return `\\u${(0xd800 + rnd(0x400)).toString(16)}\\u${(0xdc00 + rnd(0x400)).toString(16)}`; // a valid pair
        case 4: return `\\u${rnd(0x20).toString(16).padStart(4, '0')}`; // control characters
        case 5: return ['\\"', '\\\\', '\\/', '\\n', '\\t'][rnd(5)]!;
        case 6: return ['商', '品', 'a', 'Z', '1', ' ', '+', '&', '='][rnd(9)]!;
        default: return `\\u${(0x20 + rnd(0xd800 - 0x20)).toString(16).padStart(4, '0')}`;
      }
    };
    const users: string[] = [];
    const ids: string[] = [];
    for (let batch = 0; batch < 15; batch++) {
      const events: string[] = [];
      for (let i = 0; i < 20; i++) {
        const user = newUserId();
        const id = newEventId();
        const s = Array.from({ length: 1 + rnd(12) }, pick).join('');
        events.push(i % 2 ? rawPostbackEvent(user, id, s) : rawTextEvent(user, id, s));
        users.push(user);
        ids.push(id);
      }
      const res = await shop.post(rawBody(events));
      expect(res.status).toBe(200);
    }
    await waitFor(async () => {
      const n = await shop.c.db('line_events').whereIn('webhook_event_id', ids).whereNotNull('processed_at').count<{ n: number }[]>({ n: '*' });
      return Number(n[0]!.n) === ids.length;
    }, 'every fuzzed event processed', 60_000);
    await waitFor(() => users.every((u) => shop.line.deliveredTo(u).length > 0), 'every fuzzed event answered', 30_000);
    for (const u of users) expect(shop.line.deliveredTo(u).map((d) => d.kind)).toEqual(['reply']);
    expect(await shop.c.db('line_events').whereIn('webhook_event_id', ids).whereNotNull('failed_at').count<{ n: number }[]>({ n: '*' }).then((r) => Number(r[0]!.n))).toBe(0);
  });
});
