import { randomUUID } from 'node:crypto';
import { messagingApi } from '@line/bot-sdk';
import { httpError, type LineErrorBody, parseBody } from '../helpers/line-errors';
import { startLineApiDouble, type LineApiDouble } from '../../src/sandbox/line-api-double';

const TOKEN = 'test-channel-access-token';
const ALICE = `U${'a1'.repeat(16)}`;
const BOB = `U${'b2'.repeat(16)}`;
const GROUP = `C${'c3'.repeat(16)}`;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const text = (t: string): messagingApi.TextMessage => ({ type: 'text', text: t });


function bubble(label = 'Buy', data = 'act=add&sku=X'): messagingApi.FlexBubble {
  return {
    type: 'bubble',
    body: { type: 'box', layout: 'vertical', contents: [{ type: 'text', text: 'Item' }] },
    footer: {
      type: 'box',
      layout: 'vertical',
      contents: [{ type: 'button', action: { type: 'postback', label, data } }],
    },
  };
}

describe('LINE API double (driven through @line/bot-sdk)', () => {
  let double: LineApiDouble;
  let client: messagingApi.MessagingApiClient;

  beforeAll(async () => {
    double = await startLineApiDouble({ channelAccessToken: TOKEN });
    client = new messagingApi.MessagingApiClient({ channelAccessToken: TOKEN, baseURL: double.url });
  });

  afterAll(async () => {
    await double.close();
  });

  beforeEach(() => {
    double.reset();
  });

  test('listens on 127.0.0.1 and exposes an origin-only url', () => {
    expect(double.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  describe('reply', () => {
    test('a valid token works once; the second use gets 400 Invalid reply token', async () => {
      const replyToken = double.issueReplyToken(ALICE);
      expect(replyToken).toMatch(/^[0-9a-f]{32}$/);

      const first = await client.replyMessageWithHttpInfo({ replyToken, messages: [text('hello')] });
      expect(first.httpResponse.status).toBe(200);
      expect(first.httpResponse.headers.get('x-line-request-id')).toMatch(UUID_RE);
      expect(first.body.sentMessages).toHaveLength(1);
      expect(first.body.sentMessages[0]!.id).toMatch(/^\d{18}$/);
      expect(typeof first.body.sentMessages[0]!.quoteToken).toBe('string');

      const err = await httpError(client.replyMessage({ replyToken, messages: [text('again')] }));
      expect(err.status).toBe(400);
      expect(parseBody(err)).toEqual({ message: 'Invalid reply token' });
      expect(err.headers.get('x-line-request-id')).toMatch(UUID_RE);

      expect(double.delivered()).toEqual([
        expect.objectContaining({ kind: 'reply', to: ALICE, messages: [text('hello')] }),
      ]);
      expect(double.requests.map((r) => r.status)).toEqual([200, 400]);
    });

    test('a token the double never issued gets 400', async () => {
      const err = await httpError(
        client.replyMessage({ replyToken: '0f3779fba3b349968c5d07db31eabf65', messages: [text('x')] }),
      );
      expect(err.status).toBe(400);
      expect(parseBody(err).message).toBe('Invalid reply token');
      expect(double.delivered()).toEqual([]);
    });

    test('an expired token gets 400', async () => {
      const shortLived = await startLineApiDouble({ channelAccessToken: TOKEN, replyTokenTtlMs: 20 });
      try {
        const c = new messagingApi.MessagingApiClient({ channelAccessToken: TOKEN, baseURL: shortLived.url });
        const replyToken = shortLived.issueReplyToken(ALICE);
        await new Promise((r) => setTimeout(r, 60));
        const err = await httpError(c.replyMessage({ replyToken, messages: [text('late')] }));
        expect(err.status).toBe(400);
        expect(parseBody(err).message).toBe('Invalid reply token');
        expect(shortLived.delivered()).toEqual([]);
      } finally {
        await shortLived.close();
      }
    });

    test('a rejected reply (invalid messages) does not consume the token', async () => {
      const replyToken = double.issueReplyToken(ALICE);
      const err = await httpError(client.replyMessage({ replyToken, messages: [text('')] }));
      expect(err.status).toBe(400);
      await expect(client.replyMessage({ replyToken, messages: [text('ok')] })).resolves.toEqual({
        sentMessages: [expect.objectContaining({ id: expect.any(String) })],
      });
    });

    test('X-Line-Retry-Key on reply is rejected with 400', async () => {
      const replyToken = double.issueReplyToken(ALICE);
      const res = await fetch(`${double.url}/v2/bot/message/reply`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'x-line-retry-key': randomUUID(),
        },
        body: JSON.stringify({ replyToken, messages: [text('hi')] }),
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('x-line-request-id')).toMatch(UUID_RE);
      expect(double.delivered()).toEqual([]);
      // The token was not consumed by the rejected request.
      await expect(client.replyMessage({ replyToken, messages: [text('hi')] })).resolves.toBeDefined();
    });
  });

  describe('push and retry keys', () => {
    test('push with a retry key → 200; the same key again → 409 with x-line-accepted-request-id', async () => {
      const key = randomUUID();
      const first = await client.pushMessageWithHttpInfo({ to: ALICE, messages: [text('paid')] }, key);
      expect(first.httpResponse.status).toBe(200);
      const firstRequestId = first.httpResponse.headers.get('x-line-request-id');
      expect(firstRequestId).toMatch(UUID_RE);

      const err = await httpError(client.pushMessage({ to: ALICE, messages: [text('paid')] }, key));
      expect(err.status).toBe(409);
      expect(err.headers.get('x-line-accepted-request-id')).toBe(firstRequestId);
      const retryRequestId = err.headers.get('x-line-request-id');
      expect(retryRequestId).toMatch(UUID_RE);
      expect(retryRequestId).not.toBe(firstRequestId);
      expect(parseBody(err)).toEqual({
        message: 'The retry key is already accepted',
        sentMessages: first.body.sentMessages,
      });

      expect(double.deliveredTo(ALICE)).toEqual([
        expect.objectContaining({ kind: 'push', to: ALICE, retryKey: key, requestId: firstRequestId }),
      ]);
      expect(double.requests.map((r) => r.headers['x-line-retry-key'])).toEqual([key, key]);
      expect(double.requests.map((r) => r.headers['authorization'])).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    });

    test('injected 429 then 500, then success with the same key: key accepted once', async () => {
      double.injectFailures('/v2/bot/message/push', [{ status: 429 }, { status: 500 }]);
      const key = randomUUID();
      const req = { to: ALICE, messages: [text('order ORD-1 paid')] };

      const e1 = await httpError(client.pushMessage(req, key));
      expect(e1.status).toBe(429);
      expect(parseBody(e1).message).toBe('The API rate limit has been exceeded. Try again later.');
      const e2 = await httpError(client.pushMessage(req, key));
      expect(e2.status).toBe(500);
      const ok = await client.pushMessageWithHttpInfo(req, key);
      expect(ok.httpResponse.status).toBe(200);

      const pushes = double.requests.filter((r) => r.path === '/v2/bot/message/push');
      expect(pushes.map((r) => r.status)).toEqual([429, 500, 200]);
      expect(pushes.every((r) => r.headers['x-line-retry-key'] === key)).toBe(true);
      expect(pushes.every((r) => JSON.stringify(r.body) === JSON.stringify(req))).toBe(true);
      expect(double.delivered()).toHaveLength(1);

      // A fourth attempt proves the key was accepted exactly once, by the third request.
      const e4 = await httpError(client.pushMessage(req, key));
      expect(e4.status).toBe(409);
      expect(e4.headers.get('x-line-accepted-request-id')).toBe(ok.httpResponse.headers.get('x-line-request-id'));
      expect(double.delivered()).toHaveLength(1);
    });

    test('injected status with a custom body is returned verbatim', async () => {
      double.injectFailures('/v2/bot/message/push', [{ status: 429, body: { message: 'You have reached your monthly limit.' } }]);
      const err = await httpError(client.pushMessage({ to: ALICE, messages: [text('x')] }));
      expect(err.status).toBe(429);
      expect(parseBody(err)).toEqual({ message: 'You have reached your monthly limit.' });
      // Injection consumed: the next request is handled normally.
      await expect(client.pushMessage({ to: ALICE, messages: [text('x')] })).resolves.toBeDefined();
    });

    test('hang injection: the client gives up, LINE accepted anyway, the retry gets 409', async () => {
      double.injectFailures('/v2/bot/message/push', [{ hangMs: 1500 }]);
      const key = randomUUID();
      const req = { to: ALICE, messages: [text('your payment was received')] };

      await expect(
        fetch(`${double.url}/v2/bot/message/push`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-line-retry-key': key },
          body: JSON.stringify(req),
          signal: AbortSignal.timeout(100),
        }),
      ).rejects.toThrow();

      expect(double.requests).toHaveLength(1);
      const acceptedId = double.requests[0]!.requestId;

      const err = await httpError(client.pushMessage(req, key));
      expect(err.status).toBe(409);
      expect(err.headers.get('x-line-accepted-request-id')).toBe(acceptedId);
      expect(double.deliveredTo(ALICE)).toEqual([expect.objectContaining({ requestId: acceptedId, retryKey: key })]);
    });

    test('a hung request completes normally after the hang', async () => {
      double.injectFailures('/v2/bot/message/push', [{ hangMs: 150 }]);
      const started = Date.now();
      const res = await client.pushMessageWithHttpInfo({ to: ALICE, messages: [text('slow')] });
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(res.httpResponse.status).toBe(200);
      expect(res.body.sentMessages).toHaveLength(1);
    });

    test('malformed retry key → 400; malformed `to` → 400; group ids are accepted', async () => {
      const badKey = await httpError(client.pushMessage({ to: ALICE, messages: [text('x')] }, 'not-a-uuid'));
      expect(badKey.status).toBe(400);

      const badTo = await httpError(client.pushMessage({ to: 'alice', messages: [text('x')] }));
      expect(badTo.status).toBe(400);
      expect(parseBody(badTo).details).toEqual([expect.objectContaining({ property: 'to' })]);

      await expect(client.pushMessage({ to: GROUP, messages: [text('x')] })).resolves.toBeDefined();
      expect(double.delivered().map((d) => d.to)).toEqual([GROUP]);
    });

    test('multicast → 200 {} with one delivery per recipient; retry key conflicts; > 500 ids → 400', async () => {
      const key = randomUUID();
      const res = await client.multicastWithHttpInfo({ to: [ALICE, BOB], messages: [text('sale')] }, key);
      expect(res.httpResponse.status).toBe(200);
      expect(res.body).toEqual({});
      expect(double.delivered().map((d) => [d.kind, d.to])).toEqual([
        ['multicast', ALICE],
        ['multicast', BOB],
      ]);

      const dup = await httpError(client.multicast({ to: [ALICE, BOB], messages: [text('sale')] }, key));
      expect(dup.status).toBe(409);
      expect(dup.headers.get('x-line-accepted-request-id')).toBe(res.httpResponse.headers.get('x-line-request-id'));

      const many = Array.from({ length: 501 }, (_, i) => `U${i.toString(16).padStart(32, '0')}`);
      const tooMany = await httpError(client.multicast({ to: many, messages: [text('x')] }));
      expect(tooMany.status).toBe(400);
      expect(parseBody(tooMany).details).toEqual([{ message: 'Size must be between 1 and 500', property: 'to' }]);
    });

    test('quota endpoints report type none and the pushed-message count', async () => {
      await client.pushMessage({ to: ALICE, messages: [text('a'), text('b')] });
      await client.multicast({ to: [ALICE, BOB], messages: [text('c')] });
      await client.replyMessage({ replyToken: double.issueReplyToken(ALICE), messages: [text('free')] });
      await expect(client.getMessageQuota()).resolves.toEqual({ type: 'none' });
      // One per recipient per request; replies are free (spec §2.6).
      await expect(client.getMessageQuotaConsumption()).resolves.toEqual({ totalUsage: 3 });
    });
  });

  describe('auth, profile, loading animation', () => {
    test('a bad bearer token → 401 (and the request is recorded)', async () => {
      const bad = new messagingApi.MessagingApiClient({ channelAccessToken: 'wrong', baseURL: double.url });
      const err = await httpError(bad.pushMessage({ to: ALICE, messages: [text('x')] }));
      expect(err.status).toBe(401);
      expect(parseBody(err)).toEqual({
        message:
          'Authentication failed due to the following reason: invalid token. Confirm that the access token in the authorization header is valid.',
      });
      expect(err.headers.get('x-line-request-id')).toMatch(UUID_RE);

      const noAuth = await fetch(`${double.url}/v2/bot/profile/${ALICE}`);
      expect(noAuth.status).toBe(401);

      expect(double.requests.map((r) => [r.status, r.headers['authorization']])).toEqual([
        [401, 'Bearer wrong'],
        [401, undefined],
      ]);
      expect(double.delivered()).toEqual([]);
    });

    test('profile: configured 200, generated 200, unavailable 404', async () => {
      double.setProfile(ALICE, { displayName: 'Alice', pictureUrl: 'https://example.com/a.png', language: 'en' });
      await expect(client.getProfile(ALICE)).resolves.toEqual({
        displayName: 'Alice',
        userId: ALICE,
        pictureUrl: 'https://example.com/a.png',
        language: 'en',
      });

      const generated = await client.getProfile(BOB);
      expect(generated.userId).toBe(BOB);
      expect(generated.displayName).toBe(`測試用戶 ${BOB.slice(-4)}`);

      double.setProfile(BOB, null);
      const err = await httpError(client.getProfile(BOB));
      expect(err.status).toBe(404);
      expect(parseBody(err)).toEqual({ message: 'Not found' });
    });

    test('loading animation: 202 for a user; 400 for bad loadingSeconds or a group chat', async () => {
      const ok = await client.showLoadingAnimationWithHttpInfo({ chatId: ALICE, loadingSeconds: 20 });
      expect(ok.httpResponse.status).toBe(202);
      expect(ok.body).toEqual({});
      await expect(client.showLoadingAnimation({ chatId: ALICE })).resolves.toEqual({});

      const badSeconds = await httpError(client.showLoadingAnimation({ chatId: ALICE, loadingSeconds: 7 }));
      expect(badSeconds.status).toBe(400);
      expect(parseBody(badSeconds).details).toEqual([expect.objectContaining({ property: 'loadingSeconds' })]);

      const tooLong = await httpError(client.showLoadingAnimation({ chatId: ALICE, loadingSeconds: 65 }));
      expect(tooLong.status).toBe(400);

      const group = await httpError(client.showLoadingAnimation({ chatId: GROUP }));
      expect(group.status).toBe(400);
      expect(parseBody(group).details).toEqual([expect.objectContaining({ property: 'chatId' })]);
    });
  });

  describe('message validation', () => {
    test('6 messages → 400 with details', async () => {
      const messages = Array.from({ length: 6 }, (_, i) => text(`m${i}`));
      const err = await httpError(client.pushMessage({ to: ALICE, messages }));
      expect(err.status).toBe(400);
      expect(parseBody(err)).toEqual({
        message: 'The request body has 1 error(s)',
        details: [{ message: 'Size must be between 1 and 5', property: 'messages' }],
      });
    });

    test('empty text and text over 5000 UTF-16 units → 400 with details', async () => {
      const err = await httpError(
        client.pushMessage({ to: ALICE, messages: [text(''), text('😀'.repeat(2501))] }),
      );
      expect(err.status).toBe(400);
      expect(parseBody(err)).toEqual({
        message: 'The request body has 2 error(s)',
        details: [
          { message: 'May not be empty', property: 'messages[0].text' },
          { message: 'Length must be between 0 and 5000', property: 'messages[1].text' },
        ],
      });
      // Exactly 5000 code units is fine.
      await expect(client.pushMessage({ to: ALICE, messages: [text('😀'.repeat(2500))] })).resolves.toBeDefined();
    });

    test('carousel with 13 bubbles → 400', async () => {
      const flex: messagingApi.FlexMessage = {
        type: 'flex',
        altText: 'Catalog',
        contents: { type: 'carousel', contents: Array.from({ length: 13 }, () => bubble()) },
      };
      const err = await httpError(client.pushMessage({ to: ALICE, messages: [flex] }));
      expect(err.status).toBe(400);
      expect(parseBody(err).details).toEqual([
        { message: 'Size must be between 1 and 12', property: 'messages[0].contents.contents' },
      ]);

      const twelve = { ...flex, contents: { type: 'carousel' as const, contents: Array.from({ length: 12 }, () => bubble()) } };
      await expect(client.pushMessage({ to: ALICE, messages: [twelve] })).resolves.toBeDefined();
    });

    test('postback data of 301 chars → 400 pointing at the action', async () => {
      const flex: messagingApi.FlexMessage = { type: 'flex', altText: 'Item', contents: bubble('Buy', 'd'.repeat(301)) };
      const err = await httpError(client.pushMessage({ to: ALICE, messages: [flex] }));
      expect(err.status).toBe(400);
      expect(parseBody(err).details).toEqual([
        { message: 'Length must be between 0 and 300', property: 'messages[0].contents.footer.contents[0].action.data' },
      ]);

      const ok: messagingApi.FlexMessage = { type: 'flex', altText: 'Item', contents: bubble('Buy', 'd'.repeat(300)) };
      await expect(client.pushMessage({ to: ALICE, messages: [ok] })).resolves.toBeDefined();
    });

    test('flex without altText, unknown type, oversized bubble → 400 with every error listed', async () => {
      const bigBubble = bubble();
      bigBubble.body = {
        type: 'box',
        layout: 'vertical',
        contents: Array.from({ length: 40 }, () => ({ type: 'text' as const, text: 'x'.repeat(1000) })),
      };
      const messages = [
        { type: 'flex', contents: bubble() },
        { type: 'carrier-pigeon' },
        { type: 'flex', altText: 'big', contents: bigBubble },
      ] as unknown as messagingApi.Message[];
      const err = await httpError(client.pushMessage({ to: ALICE, messages }));
      expect(err.status).toBe(400);
      const body = parseBody(err);
      expect(body.message).toBe('The request body has 3 error(s)');
      expect(body.details!.map((d) => d.property)).toEqual([
        'messages[0].altText',
        'messages[1].type',
        'messages[2].contents',
      ]);
    });

    test('bad JSON → 400, body over 2 MB → 413', async () => {
      const badJson = await fetch(`${double.url}/v2/bot/message/push`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: '{"to": "x", ',
      });
      expect(badJson.status).toBe(400);
      expect(((await badJson.json()) as LineErrorBody).message).toMatch(/^The request body could not be parsed as JSON/);

      const huge = await fetch(`${double.url}/v2/bot/message/push`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: ALICE, messages: [text('x'.repeat(2 * 1024 * 1024))] }),
      });
      expect(huge.status).toBe(413);
      expect(huge.headers.get('x-line-request-id')).toMatch(UUID_RE);
      expect(double.requests.map((r) => r.status)).toEqual([400, 413]);
      expect(double.delivered()).toEqual([]);
    });
  });

  describe('inspection helpers', () => {
    test('textsTo returns texts and flex altTexts in order, per user', async () => {
      await client.replyMessage({ replyToken: double.issueReplyToken(ALICE), messages: [text('welcome')] });
      await client.pushMessage({
        to: ALICE,
        messages: [{ type: 'flex', altText: 'Order #1042: payment received', contents: bubble() }, text('thanks')],
      });
      await client.pushMessage({ to: BOB, messages: [text('for bob')] });
      await client.multicast({ to: [ALICE, BOB], messages: [text('sale!')] });

      expect(double.textsTo(ALICE)).toEqual(['welcome', 'Order #1042: payment received', 'thanks', 'sale!']);
      expect(double.textsTo(BOB)).toEqual(['for bob', 'sale!']);
      expect(double.deliveredTo(ALICE).map((d) => d.kind)).toEqual(['reply', 'push', 'multicast']);
    });

    test('GET /__double/delivered and /__double/requests need no auth', async () => {
      await client.pushMessage({ to: ALICE, messages: [text('hi')] });

      const delivered = await fetch(`${double.url}/__double/delivered`);
      expect(delivered.status).toBe(200);
      expect(await delivered.json()).toEqual([
        expect.objectContaining({ kind: 'push', to: ALICE, messages: [text('hi')], at: expect.any(String) }),
      ]);

      const requests = await fetch(`${double.url}/__double/requests`);
      expect(requests.status).toBe(200);
      expect(await requests.json()).toEqual([
        expect.objectContaining({ method: 'POST', path: '/v2/bot/message/push', status: 200 }),
      ]);
      // Inspection calls themselves are not recorded.
      expect(double.requests).toHaveLength(1);
    });

    test('reset clears records, tokens, retry keys and injections', async () => {
      const key = randomUUID();
      const replyToken = double.issueReplyToken(ALICE);
      await client.pushMessage({ to: ALICE, messages: [text('1')] }, key);
      double.injectFailures('/v2/bot/message/push', [{ status: 500 }]);
      double.reset();

      expect(double.requests).toEqual([]);
      expect(double.delivered()).toEqual([]);
      // Key forgotten and the injection dropped: the same key is accepted again.
      await expect(client.pushMessage({ to: ALICE, messages: [text('1')] }, key)).resolves.toBeDefined();
      // Token forgotten.
      const err = await httpError(client.replyMessage({ replyToken, messages: [text('x')] }));
      expect(err.status).toBe(400);
    });
  });
});

describe('LINE API double lifecycle', () => {
  test('close() ends hung connections', async () => {
    const double = await startLineApiDouble({ channelAccessToken: TOKEN });
    let closed = false;
    try {
      double.injectFailures('/v2/bot/message/push', [{ hangMs: 30_000 }]);
      const pending = fetch(`${double.url}/v2/bot/message/push`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: ALICE, messages: [text('x')] }),
      });
      const settled = pending.then(
        () => 'resolved',
        () => 'rejected',
      );
      while (double.requests.length === 0) await new Promise((r) => setTimeout(r, 5));

      const started = Date.now();
      await double.close();
      closed = true;
      await expect(settled).resolves.toBe('rejected');
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      if (!closed) await double.close();
    }
  });

  test('close() is idempotent and refuses new connections afterwards', async () => {
    const double = await startLineApiDouble({ channelAccessToken: TOKEN });
    await double.close();
    await double.close();
    await expect(fetch(`${double.url}/v2/bot/message/quota`)).rejects.toThrow();
  });
});
