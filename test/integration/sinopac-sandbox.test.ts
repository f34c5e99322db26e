import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import express from 'express';
import type { SinopacConfig } from '../../src/config';
import { GatewayError, type CreatePaymentInput } from '../../src/gateways/payment-gateway';
import { encryptMessage, hashId, sign } from '../../src/gateways/sinopac/sinopac-crypto';
import { SinopacClient } from '../../src/gateways/sinopac/sinopac-client';
import { SinopacGateway } from '../../src/gateways/sinopac/sinopac-gateway';
import { SINOPAC_SANDBOX_OTHER_SHOP_NO, startSinopacSandbox, type SinopacSandbox } from '../../src/sandbox/sinopac-sandbox';
import { unescapeHtml } from '../helpers/html-forms';

// The 2021 iThome contest sandbox shop (spec §9.1 V-H2) and the public example X-Key.
const SHOP = {
  shopNo: 'NA0249_001',
  hashA1: '86D50DEF3EB7400E',
  hashA2: '01FD27C09E5549E5',
  hashB1: '9E004965F4244953',
  hashB2: '7FB3385F414E4F91',
  keyId: 'b5e6986d-8636-4aa0-8c93-441ad14b2098',
};
const HASH_ID = hashId(SHOP.hashA1, SHOP.hashA2, SHOP.hashB1, SHOP.hashB2);
const TAIPEI_MS = 8 * 3600_000;

interface Received {
  notifies: Array<{ body: unknown; contentType: string | undefined }>;
  returns: Array<{ body: Record<string, string>; contentType: string | undefined }>;
  /** Status codes to answer the next BackendURL calls with (then 200 {"Status":"S"}). */
  notifyFailures: number[];
}

async function startReceiver(): Promise<{ url: string; received: Received; close: () => Promise<void> }> {
  const received: Received = { notifies: [], returns: [], notifyFailures: [] };
  const app = express();
  app.post('/sinopac/notify', express.json(), (req, res) => {
    received.notifies.push({ body: req.body, contentType: req.get('content-type') });
    const fail = received.notifyFailures.shift();
    if (fail) {
      res.status(fail).json({ Status: 'F' });
      return;
    }
    res.status(200).json({ Status: 'S' });
  });
  app.post('/sinopac/return', express.urlencoded({ extended: false }), (req, res) => {
    received.returns.push({ body: req.body as Record<string, string>, contentType: req.get('content-type') });
    res.status(200).type('html').send('<p>ok</p>');
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function waitFor<T>(fn: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function expectGatewayError(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected a GatewayError');
}

function formsOf(html: string): Array<{ action: string; method: string; fields: Record<string, string> }> {
  const out: Array<{ action: string; method: string; fields: Record<string, string> }> = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const attrs = m[1]!;
    const action = unescapeHtml(/action="([^"]*)"/.exec(attrs)?.[1] ?? '');
    const method = (/method="([^"]*)"/.exec(attrs)?.[1] ?? 'get').toLowerCase();
    const fields: Record<string, string> = {};
    for (const i of m[2]!.matchAll(/<input\b[^>]*name="([^"]*)"[^>]*value="([^"]*)"[^>]*>/g)) {
      fields[unescapeHtml(i[1]!)] = unescapeHtml(i[2]!);
    }
    out.push({ action, method, fields });
  }
  return out;
}

/** Taipei calendar date (yyyyMMdd) n days from today. */
function taipeiDatePlus(days: number): string {
  const d = new Date(Date.now() + TAIPEI_MS + days * 86_400_000);
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}

let seq = 0;
function newOrderNo(prefix = 'T'): string {
  seq += 1;
  // Not ending in 9 (the real sandbox would auto-pay those differently; spec §7).
  return `${prefix}${Date.now().toString(36).toUpperCase()}${String(seq).padStart(3, '0')}0`;
}

describe('SinoPac client and gateway against the local sandbox bank', () => {
  let sandbox: SinopacSandbox;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let config: SinopacConfig;
  let client: SinopacClient;
  let backendUrl: string;
  let returnUrl: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    backendUrl = `${receiver.url}/sinopac/notify`;
    returnUrl = `${receiver.url}/sinopac/return`;
    sandbox = await startSinopacSandbox({ shops: [SHOP], notifyRetryDelaysMs: [50, 100], hangMs: 2000 });
    config = { ...SHOP, apiBaseUrl: sandbox.apiBaseUrl };
    client = new SinopacClient({ config, timeoutMs: 3000 });
  });

  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });

  function atmRequest(orderNo: string, amount = 500) {
    return {
      orderNo,
      amount,
      prdtName: '虛擬帳號訂單',
      payType: 'A' as const,
      returnUrl,
      backendUrl,
      param1: 'ORD-1',
      atm: { expireDate: taipeiDatePlus(3) },
    };
  }

  function cardRequest(orderNo: string, amount = 1299, prdtName = 'LINE小舖訂單') {
    return {
      orderNo,
      amount,
      prdtName,
      payType: 'C' as const,
      returnUrl,
      backendUrl,
      card: { autoBilling: 'Y' as const, expMinutes: 10 },
    };
  }

  it('sandbox URLs: apiBaseUrl is the origin plus the default base path', () => {
    expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sandbox.apiBaseUrl).toBe(`${sandbox.url}/funBIZ-Sbx/QPay.WebAPI/api/`);
  });

  describe('ATM flow', () => {
    it('create → payAtm → BackendURL → OrderPayQuery says paid with the right amount', async () => {
      const orderNo = newOrderNo('A');
      const created = await client.orderCreate(atmRequest(orderNo, 944));
      expect(created.tsNo).toMatch(/^NA0249\d{8}$/);
      expect(created.amount).toBe(944);
      expect(created.atm?.atmPayNo).toMatch(/^\d{14}$/);
      expect(created.atm?.webAtmUrl?.startsWith(sandbox.url)).toBe(true);
      expect(created.atm?.otpUrl?.startsWith(sandbox.url)).toBe(true);

      // The bank saw ×100, the X-KeyID header and a fresh nonce for each call.
      const calls = sandbox.requests.filter((r) => r.endpoint === 'Order' && r.message?.OrderNo === orderNo);
      expect(calls).toHaveLength(1);
      expect(calls[0]!.keyId).toBe(SHOP.keyId);
      expect(calls[0]!.message).toMatchObject({ Amount: 94400, CurrencyID: 'TWD', PayType: 'A', Param1: 'ORD-1' });

      const before = receiver.received.notifies.length;
      const paid = sandbox.payAtm(orderNo);
      expect(paid.payToken).toMatch(/^[0-9a-f]{64}$/);
      await expect(paid.delivered).resolves.toBe(true);
      expect(receiver.received.notifies.length).toBe(before + 1);
      const note = receiver.received.notifies[before]!;
      expect(note.contentType).toMatch(/^application\/json/);
      expect(note.body).toEqual({ ShopNo: SHOP.shopNo, PayToken: paid.payToken });

      const q = await client.orderPayQuery(paid.payToken);
      expect(q.status).toBe('S');
      expect(q.result).toMatchObject({
        apType: 'PayOut',
        orderNo,
        tsNo: created.tsNo,
        shopNo: SHOP.shopNo,
        payType: 'A',
        status: 'S',
        amount: 944,
        amountCents: 94400,
      });
      expect(q.raw.TSResultContent).toMatchObject({ Amount: '94400' });
      expect(q.result?.payDate).toMatch(/^\d{12}$/);
    });

    it('payAtm with notify:false records the payment silently; notifyAgain re-sends the same PayToken', async () => {
      const orderNo = newOrderNo('A');
      await client.orderCreate(atmRequest(orderNo));
      const before = sandbox.notifications.length;
      const paid = sandbox.payAtm(orderNo, { notify: false });
      expect(paid.delivered).toBeNull();
      expect(sandbox.getOrder(orderNo)?.state).toBe('paid');
      expect(sandbox.notifications.length).toBe(before);

      const again = sandbox.notifyAgain(orderNo);
      expect(again.payToken).toBe(paid.payToken);
      await expect(again.delivered).resolves.toBe(true);
      const last = sandbox.notifications[sandbox.notifications.length - 1]!;
      expect(last).toMatchObject({ orderNo, payToken: paid.payToken, httpStatus: 200, ok: true, attempt: 1 });
      expect(() => sandbox.payAtm(orderNo)).toThrow(/already paid/);
    });

    it('BackendURL delivery retries until the merchant answers 200 {"Status":"S"}', async () => {
      const orderNo = newOrderNo('A');
      await client.orderCreate(atmRequest(orderNo));
      receiver.received.notifyFailures.push(500, 503);
      const paid = sandbox.payAtm(orderNo);
      await expect(paid.delivered).resolves.toBe(true);
      const attempts = sandbox.notifications.filter((n) => n.payToken === paid.payToken);
      expect(attempts.map((a) => [a.attempt, a.httpStatus, a.ok])).toEqual([
        [1, 500, false],
        [2, 503, false],
        [3, 200, true],
      ]);
    });

    it('OrderQuery reports pending (1A200) and paid (1A400, PayDate) rows, and filters by PayFlag', async () => {
      const orderNo = newOrderNo('A');
      const created = await client.orderCreate(atmRequest(orderNo, 120));
      const pending = await client.orderQuery({ orderNo, payType: 'A' });
      expect(pending.status).toBe('S');
      expect(pending.orders).toHaveLength(1);
      expect(pending.orders[0]).toMatchObject({ orderNo, tsNo: created.tsNo, payStatus: '1A200', payDate: '', amount: 120 });
      expect(pending.orders[0]!.expireDate).toBe(`${taipeiDatePlus(3)}2359`);
      expect((await client.orderQuery({ orderNo, payFlag: 'Y' })).orders).toHaveLength(0);

      sandbox.payAtm(orderNo, { notify: false });
      const paid = await client.orderQuery({ orderNo, payType: 'A', payFlag: 'Y' });
      expect(paid.orders).toHaveLength(1);
      expect(paid.orders[0]!.payStatus).toBe('1A400');
      expect(paid.orders[0]!.payDate).toMatch(/^\d{12}$/);
      expect((await client.orderQuery({ orderNo, payType: 'C' })).orders).toHaveLength(0);
    });

    it('a duplicate OrderNo is rejected with Status F (REJECTED, description in details)', async () => {
      const orderNo = newOrderNo('A');
      await client.orderCreate(atmRequest(orderNo));
      const err = await expectGatewayError(client.orderCreate(atmRequest(orderNo)));
      expect(err.code).toBe('REJECTED');
      expect(err.retryable).toBe(false);
      expect(err.details).toMatchObject({ code: 'E0201', orderNo });
      expect(String(err.details.description)).toContain('訂單編號重複');
    });
  });

  describe('card flow', () => {
    it('create → card page → pay form → BackendURL and the browser form POST to ReturnURL', async () => {
      const orderNo = newOrderNo('C');
      const created = await client.orderCreate(cardRequest(orderNo, 1299));
      const cardUrl = created.card!.cardPayUrl;
      expect(cardUrl.startsWith(`${sandbox.url}/pay/card/${created.tsNo}`)).toBe(true);

      const pageRes = await axios.get<string>(cardUrl, { responseType: 'text' });
      expect(pageRes.status).toBe(200);
      expect(pageRes.headers['content-type']).toMatch(/text\/html/);
      expect(pageRes.data).toContain('NT$ 1,299');
      expect(pageRes.data).toContain('付款');
      expect(pageRes.data).toContain('失敗');
      const forms = formsOf(pageRes.data);
      const payForm = forms.find((f) => f.action.endsWith('/pay'))!;
      expect(payForm.method).toBe('post');
      expect(forms.some((f) => f.action.endsWith('/fail'))).toBe(true);

      const notesBefore = receiver.received.notifies.length;
      const returnsBefore = receiver.received.returns.length;
      const payRes = await axios.post<string>(new URL(payForm.action, sandbox.url).toString(), '', {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        responseType: 'text',
      });
      expect(payRes.status).toBe(200);
      const back = formsOf(payRes.data)[0]!;
      expect(back.action).toBe(returnUrl);
      expect(back.method).toBe('post');
      expect(payRes.data).toContain('submit()');
      expect(back.fields.ShopNo).toBe(SHOP.shopNo);
      expect(back.fields.PayToken).toMatch(/^[0-9a-f]{64}$/);

      // What the shopper's browser does with that auto-submitting form.
      await axios.post(back.action, new URLSearchParams(back.fields).toString(), {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      expect(receiver.received.returns.length).toBe(returnsBefore + 1);
      const ret = receiver.received.returns[returnsBefore]!;
      expect(ret.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      expect(ret.body).toEqual({ ShopNo: SHOP.shopNo, PayToken: back.fields.PayToken });

      const note = await waitFor(() => receiver.received.notifies.slice(notesBefore).find(
        (n) => (n.body as { PayToken?: string }).PayToken === back.fields.PayToken,
      ));
      expect(note.body).toEqual({ ShopNo: SHOP.shopNo, PayToken: back.fields.PayToken });

      const q = await client.orderPayQuery(back.fields.PayToken!);
      expect(q.result).toMatchObject({ orderNo, payType: 'C', status: 'S', amount: 1299 });

      const again = await axios.get<string>(cardUrl, { responseType: 'text' });
      expect(again.data).toContain('已完成付款');
    });

    it('the card page escapes what it shows', async () => {
      const orderNo = newOrderNo('C');
      const created = await client.orderCreate(cardRequest(orderNo, 50, '<script>x()</script>&'));
      const html = (await axios.get<string>(created.card!.cardPayUrl, { responseType: 'text' })).data;
      expect(html).not.toContain('<script>x()');
      expect(html).toContain('&lt;script&gt;x()&lt;/script&gt;&amp;');
      const index = (await axios.get<string>(`${sandbox.url}/`, { responseType: 'text' })).data;
      expect(index).toContain('&lt;script&gt;x()&lt;/script&gt;&amp;');
      expect(index).not.toContain('<script>x()');
    });

    it('human pages: the WebATM page pays an ATM order; the index lists orders with working buttons', async () => {
      const atmNo = newOrderNo('A');
      const atm = await client.orderCreate(atmRequest(atmNo, 777));
      const atmHtml = (await axios.get<string>(atm.atm!.webAtmUrl!, { responseType: 'text' })).data;
      expect(atmHtml).toContain('807');
      expect(atmHtml).toContain(atm.atm!.atmPayNo);
      expect(atmHtml).toContain('NT$ 777');
      const payForm = formsOf(atmHtml)[0]!;
      const before = receiver.received.notifies.length;
      const paidRes = await axios.post<string>(new URL(payForm.action, sandbox.url).toString(), '', {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        responseType: 'text',
      });
      expect(paidRes.data).toContain('轉帳完成');
      expect(sandbox.getOrder(atmNo)?.state).toBe('paid');
      await waitFor(() => receiver.received.notifies.length > before);

      const cardNo = newOrderNo('C');
      const card = await client.orderCreate(cardRequest(cardNo, 42));
      const index = (await axios.get<string>(`${sandbox.url}/`, { responseType: 'text' })).data;
      expect(index).toContain('永豐銀行豐收款');
      expect(index).toContain(cardNo);
      expect(index).toContain(atmNo);
      const failAction = formsOf(index).find((f) => f.action === `/admin/${card.tsNo}/fail`);
      expect(failAction).toBeDefined();
      const res = await axios.post(`${sandbox.url}${failAction!.action}`, '', {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        maxRedirects: 0,
        validateStatus: () => true,
      });
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/');
      expect(sandbox.getOrder(cardNo)?.state).toBe('failed');
    });

    it('OrderQuery PayFlag for cards: Y captured, N not captured (unpaid, declined, authorised awaiting capture), O overdue', async () => {
      const flags = async (orderNo: string) => {
        const out: string[] = [];
        for (const payFlag of ['Y', 'N', 'O'] as const) {
          const q = await client.orderQuery({ orderNo, payType: 'C', payFlag });
          expect(q.status).toBe('S');
          if (q.orders.some((o) => o.orderNo === orderNo)) out.push(payFlag);
        }
        return out;
      };
      const orderNo = newOrderNo('C');
      await client.orderCreate(cardRequest(orderNo, 400));
      expect(await flags(orderNo)).toEqual(['N']);
      sandbox.failCard(orderNo, { notify: false });
      expect(await flags(orderNo)).toEqual(['N']);

      const notesBefore = receiver.received.notifies.length;
      const auth = sandbox.payCard(orderNo, { capture: false });
      expect(auth.delivered).toBeNull(); // the bank notifies a card payment when it is captured
      expect(sandbox.getOrder(orderNo)).toMatchObject({ state: 'paid', captured: false });
      // The row shows the authorisation (with dates) but not under PayFlag Y.
      const row = (await client.orderQuery({ orderNo, payType: 'C' })).orders[0]!;
      expect(row.payDate).toMatch(/^\d{12}$/);
      expect(row.approvedDate).toBe(row.payDate);
      expect(await flags(orderNo)).toEqual(['N']);

      const captured = sandbox.captureCard(orderNo);
      expect(captured.payToken).toBe(auth.payToken);
      await expect(captured.delivered).resolves.toBe(true);
      expect(receiver.received.notifies.slice(notesBefore).map((n) => (n.body as { PayToken: string }).PayToken)).toEqual([auth.payToken]);
      expect(await flags(orderNo)).toEqual(['Y']);
      expect(() => sandbox.captureCard(orderNo)).toThrow(/already captured/);
    });

    it('OrderQuery PayFlag O: a card link past its ExpMinutes, never paid', async () => {
      let clock = new Date();
      const sb = await startSinopacSandbox({ shops: [SHOP], now: () => clock });
      try {
        const c = new SinopacClient({ config: { ...SHOP, apiBaseUrl: sb.apiBaseUrl }, timeoutMs: 3000 });
        const orderNo = newOrderNo('C');
        await c.orderCreate({ ...cardRequest(orderNo, 100), card: { autoBilling: 'Y', expMinutes: 1 } });
        const listed = async (payFlag: 'Y' | 'N' | 'O') => (await c.orderQuery({ orderNo, payFlag })).orders.length;
        expect([await listed('Y'), await listed('N'), await listed('O')]).toEqual([0, 1, 0]);
        clock = new Date(clock.getTime() + 2 * 60_000);
        expect([await listed('Y'), await listed('N'), await listed('O')]).toEqual([0, 0, 1]);
      } finally {
        await sb.close();
      }
    });

    it('a failed card payment is reported by confirmPayToken as failed, with the reason', async () => {
      const gateway = new SinopacGateway({ client, shopNo: SHOP.shopNo, backendUrl, returnUrl });
      const orderNo = newOrderNo('C');
      await client.orderCreate(cardRequest(orderNo, 300));
      const failed = sandbox.failCard(orderNo, { reason: '卡片餘額不足' });
      await expect(failed.delivered).resolves.toBe(true);
      const status = await gateway.confirmPayToken(failed.payToken);
      expect(status).toMatchObject({ state: 'failed', tradeNo: orderNo, orderNoFromBank: orderNo, payType: 'C', shopNo: SHOP.shopNo, reason: '卡片餘額不足', paidAt: null });

      // The shopper may try again on the same link; the new attempt has its own PayToken.
      const paid = sandbox.payCard(orderNo);
      expect(paid.payToken).not.toBe(failed.payToken);
      const ok = await gateway.confirmPayToken(paid.payToken);
      expect(ok).toMatchObject({ state: 'paid', amount: 300, tradeNo: orderNo });
    });
  });

  describe('protocol failures map to GatewayError codes', () => {
    it('injected Nonce timeout → TIMEOUT (retryable); the sandbox keeps answering afterwards', async () => {
      const fast = new SinopacClient({ config, timeoutMs: 300 });
      sandbox.injectFailures('Nonce', ['timeout']);
      const started = Date.now();
      const err = await expectGatewayError(fast.orderQuery({ orderNo: 'NOPE0' }));
      expect(err.code).toBe('TIMEOUT');
      expect(err.retryable).toBe(true);
      expect(err.details).toMatchObject({ stage: 'nonce', mayHaveReachedBank: false });
      expect(Date.now() - started).toBeLessThan(1500);
      await expect(fast.orderQuery({ orderNo: 'NOPE0' })).resolves.toMatchObject({ status: 'S', orders: [] });
    });

    it('injected OrderCreate timeout → TIMEOUT; the order exists, so OrderQuery finds it (safe retry)', async () => {
      const fast = new SinopacClient({ config, timeoutMs: 300 });
      const orderNo = newOrderNo('A');
      sandbox.injectFailures('OrderCreate', ['timeout']);
      const err = await expectGatewayError(fast.orderCreate(atmRequest(orderNo)));
      expect(err.code).toBe('TIMEOUT');
      expect(err.retryable).toBe(true);
      expect(err.details).toMatchObject({ service: 'OrderCreate', stage: 'order', mayHaveReachedBank: true });
      const q = await fast.orderQuery({ orderNo });
      expect(q.orders).toHaveLength(1);
    });

    it('injected OrderQuery / OrderPayQuery timeouts → TIMEOUT', async () => {
      const fast = new SinopacClient({ config, timeoutMs: 300 });
      sandbox.injectFailures('OrderQuery', ['timeout']);
      expect((await expectGatewayError(fast.orderQuery({ orderNo: 'X0' }))).code).toBe('TIMEOUT');
      sandbox.injectFailures('OrderPayQuery', ['timeout']);
      expect((await expectGatewayError(fast.orderPayQuery('a'.repeat(64)))).code).toBe('TIMEOUT');
    });

    it('injected http500 → HTTP_STATUS, retryable (Nonce and Order)', async () => {
      sandbox.injectFailures('Nonce', ['http500']);
      const e1 = await expectGatewayError(client.orderQuery({ orderNo: 'X0' }));
      expect(e1).toMatchObject({ code: 'HTTP_STATUS', retryable: true });
      expect(e1.details).toMatchObject({ httpStatus: 500, stage: 'nonce' });

      sandbox.injectFailures('OrderCreate', ['http500']);
      const orderNo = newOrderNo('A');
      const e2 = await expectGatewayError(client.orderCreate(atmRequest(orderNo)));
      expect(e2).toMatchObject({ code: 'HTTP_STATUS', retryable: true });
      expect(e2.details).toMatchObject({ httpStatus: 500, stage: 'order' });
      // The 500 was not acted upon: a retry with the same OrderNo (and a new nonce) works.
      await expect(client.orderCreate(atmRequest(orderNo))).resolves.toMatchObject({ orderNo });
    });

    it('injected badSign → BAD_SIGNATURE, not retryable (every service)', async () => {
      sandbox.injectFailures('OrderPayQuery', ['badSign']);
      const e1 = await expectGatewayError(client.orderPayQuery('b'.repeat(64)));
      expect(e1).toMatchObject({ code: 'BAD_SIGNATURE', retryable: false });

      sandbox.injectFailures('OrderQuery', ['badSign']);
      expect((await expectGatewayError(client.orderQuery({ orderNo: 'X0' }))).code).toBe('BAD_SIGNATURE');

      sandbox.injectFailures('OrderCreate', ['badSign']);
      expect((await expectGatewayError(client.orderCreate(atmRequest(newOrderNo('A'))))).code).toBe('BAD_SIGNATURE');
    });

    it('injected statusF → REJECTED on OrderCreate (with the Description); a query reports it as status F', async () => {
      sandbox.injectFailures('OrderCreate', ['statusF']);
      const orderNo = newOrderNo('A');
      const err = await expectGatewayError(client.orderCreate(atmRequest(orderNo)));
      expect(err).toMatchObject({ code: 'REJECTED', retryable: false });
      expect(err.details).toMatchObject({ code: 'E9999', status: 'F', orderNo });
      expect(String(err.details.description)).toMatch(/^E9999 – /);

      sandbox.injectFailures('OrderPayQuery', ['statusF']);
      const q = await client.orderPayQuery('c'.repeat(64));
      expect(q).toMatchObject({ status: 'F', result: null });

      const gateway = new SinopacGateway({ client, shopNo: SHOP.shopNo, backendUrl, returnUrl });
      sandbox.injectFailures('OrderQuery', ['statusF']);
      const qe = await expectGatewayError(gateway.queryPayment({ tradeNo: orderNo, method: 'sinopac-atm', createdAt: new Date() }));
      expect(qe.code).toBe('REJECTED');
    });

    it('OrderPayQuery injections that keep the real, correctly signed answer: outer F with the result, another or no TSResultContent.ShopNo', async () => {
      const orderNo = newOrderNo('A');
      await client.orderCreate(atmRequest(orderNo, 250));
      const { payToken } = sandbox.payAtm(orderNo, { notify: false });

      sandbox.injectFailures('OrderPayQuery', ['statusFWithResult', 'resultOtherShopNo', 'resultNoShopNo']);
      const outerF = await client.orderPayQuery(payToken);
      expect(outerF).toMatchObject({ status: 'F', shopNo: SHOP.shopNo, result: { orderNo, status: 'S', shopNo: SHOP.shopNo, amount: 250 } });
      const other = await client.orderPayQuery(payToken);
      expect(other).toMatchObject({ status: 'S', result: { orderNo, status: 'S', shopNo: SINOPAC_SANDBOX_OTHER_SHOP_NO } });
      const none = await client.orderPayQuery(payToken);
      expect(none).toMatchObject({ status: 'S', result: { orderNo, status: 'S', shopNo: '' } });
      expect((await client.orderPayQuery(payToken)).result).toMatchObject({ status: 'S', shopNo: SHOP.shopNo });

      // What the gateway makes of them: not confirmed; paid results whose ShopNo is not ours.
      const gateway = new SinopacGateway({ client, shopNo: SHOP.shopNo, backendUrl, returnUrl });
      sandbox.injectFailures('OrderPayQuery', ['statusFWithResult', 'resultOtherShopNo', 'resultNoShopNo']);
      expect(await gateway.confirmPayToken(payToken)).toMatchObject({ confirmed: false, queryStatus: 'F', state: 'pending', paidAt: null });
      expect(await gateway.confirmPayToken(payToken)).toMatchObject({ confirmed: true, state: 'paid', shopNo: SINOPAC_SANDBOX_OTHER_SHOP_NO });
      expect(await gateway.confirmPayToken(payToken)).toMatchObject({ confirmed: true, state: 'paid', shopNo: '' });

      expect(() => sandbox.injectFailures('OrderQuery', ['resultNoShopNo'])).toThrow(/OrderPayQuery only/);
    });

    it('a Nonce answer without a Nonce → BAD_RESPONSE', async () => {
      sandbox.injectFailures('Nonce', ['statusF']);
      const err = await expectGatewayError(client.orderQuery({ orderNo: 'X0' }));
      expect(err).toMatchObject({ code: 'BAD_RESPONSE', retryable: false });
    });

    it('each injected failure is consumed by exactly one call', async () => {
      sandbox.injectFailures('OrderQuery', ['http500', 'badSign']);
      expect((await expectGatewayError(client.orderQuery({ orderNo: 'X0' }))).code).toBe('HTTP_STATUS');
      expect((await expectGatewayError(client.orderQuery({ orderNo: 'X0' }))).code).toBe('BAD_SIGNATURE');
      await expect(client.orderQuery({ orderNo: 'X0' })).resolves.toMatchObject({ status: 'S' });
    });

    it('a wrong X-KeyID is refused (HTTP 401 → HTTP_STATUS, not retryable) and never leaks keys', async () => {
      const wrong = new SinopacClient({ config: { ...config, keyId: 'wrong-key-id' } });
      const err = await expectGatewayError(wrong.orderQuery({ orderNo: 'X0' }));
      expect(err).toMatchObject({ code: 'HTTP_STATUS', retryable: false });
      expect(err.details).toMatchObject({ httpStatus: 401, stage: 'nonce' });
      const text = `${err.message} ${JSON.stringify(err.details)}`;
      for (const secret of [SHOP.hashA1, SHOP.hashA2, SHOP.hashB1, SHOP.hashB2, HASH_ID]) expect(text).not.toContain(secret);
      const last = sandbox.requests[sandbox.requests.length - 1]!;
      expect(last).toMatchObject({ endpoint: 'Nonce', keyId: 'wrong-key-id', httpStatus: 401 });
    });

    it('wrong hash keys: the bank cannot open the message (HTTP 400 → HTTP_STATUS)', async () => {
      const wrong = new SinopacClient({ config: { ...config, hashA1: '0000000000000000' } });
      const err = await expectGatewayError(wrong.orderQuery({ orderNo: 'X0' }));
      expect(err).toMatchObject({ code: 'HTTP_STATUS', retryable: false });
      expect(err.details).toMatchObject({ httpStatus: 400, stage: 'order' });
    });

    it('a nonce is single-use: the second Order call with it is refused', async () => {
      const headers = { 'Content-Type': 'application/json', 'X-KeyID': SHOP.keyId };
      const { data } = await axios.post<{ Nonce: string }>(`${sandbox.apiBaseUrl}Nonce`, { ShopNo: SHOP.shopNo }, { headers });
      const nonce = data.Nonce;
      expect(nonce).toMatch(/^[A-Za-z0-9+/=]+$/);
      expect(nonce.length).toBeGreaterThanOrEqual(100);
      const message = { ShopNo: SHOP.shopNo, OrderNo: 'X0' };
      const envelope = {
        Version: '1.0.0',
        ShopNo: SHOP.shopNo,
        APIService: 'OrderQuery',
        Sign: sign(message, nonce, HASH_ID),
        Nonce: nonce,
        Message: encryptMessage(JSON.stringify(message), HASH_ID, nonce),
      };
      const first = await axios.post(`${sandbox.apiBaseUrl}Order`, envelope, { headers, validateStatus: () => true });
      expect(first.status).toBe(200);
      expect(first.data.Nonce).not.toBe(nonce); // the response carries its own nonce
      const second = await axios.post(`${sandbox.apiBaseUrl}Order`, envelope, { headers, validateStatus: () => true });
      expect(second.status).toBe(400);
      expect(second.data.Message).toBeUndefined();
      expect(sandbox.requests[sandbox.requests.length - 1]).toMatchObject({ endpoint: 'Order', error: 'Nonce already used' });
    });

    it('a request whose Sign does not match is refused', async () => {
      const headers = { 'Content-Type': 'application/json', 'X-KeyID': SHOP.keyId };
      const { data } = await axios.post<{ Nonce: string }>(`${sandbox.apiBaseUrl}Nonce`, { ShopNo: SHOP.shopNo }, { headers });
      const message = { ShopNo: SHOP.shopNo, OrderNo: 'X0' };
      const envelope = {
        Version: '1.0.0',
        ShopNo: SHOP.shopNo,
        APIService: 'OrderQuery',
        Sign: sign({ ...message, OrderNo: 'X1' }, data.Nonce, HASH_ID),
        Nonce: data.Nonce,
        Message: encryptMessage(JSON.stringify(message), HASH_ID, data.Nonce),
      };
      const res = await axios.post(`${sandbox.apiBaseUrl}Order`, envelope, { headers, validateStatus: () => true });
      expect(res.status).toBe(400);
      expect(sandbox.requests[sandbox.requests.length - 1]).toMatchObject({ error: 'Sign does not verify' });
    });

    it('an unreachable bank → NETWORK (retryable)', async () => {
      const dead = http.createServer();
      await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
      const { port } = dead.address() as AddressInfo;
      await new Promise<void>((r) => dead.close(() => r()));
      const c = new SinopacClient({ config: { ...config, apiBaseUrl: `http://127.0.0.1:${port}/api/` }, timeoutMs: 1000 });
      const err = await expectGatewayError(c.orderQuery({ orderNo: 'X0' }));
      expect(err).toMatchObject({ code: 'NETWORK', retryable: true });
      expect(err.details).toMatchObject({ code: 'ECONNREFUSED', mayHaveReachedBank: false });
    });
  });

  describe('SinopacGateway', () => {
    // Wednesday 2030-03-13 10:00 in Taipei (02:00 UTC).
    const NOW = new Date('2030-03-13T02:00:00Z');
    const at = (iso: string) => new Date(iso);

    function gatewayAt(now: Date) {
      return new SinopacGateway({ client, shopNo: SHOP.shopNo, backendUrl, returnUrl, now: () => now });
    }

    function input(method: 'sinopac-atm' | 'sinopac-card', holdExpiresAt: Date, extra: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
      return {
        tradeNo: newOrderNo('G'),
        method,
        amount: 880,
        orderNo: 'ORD-20300313-001',
        itemLines: ['珍珠奶茶 x2'],
        holdExpiresAt,
        publicRef: 'ref',
        ...extra,
      };
    }

    function sentMessage(tradeNo: string): Record<string, unknown> {
      const r = sandbox.requests.find((x) => x.service === 'OrderCreate' && x.message?.OrderNo === tradeNo);
      expect(r).toBeDefined();
      return r!.message!;
    }

    it.each([
      ['three days later, 10:00 → the day before (its 23:59 is before the hold end)', '2030-03-16T02:00:00Z', '20300315', '2030-03-15T15:59:00Z'],
      ['exactly 23:59 Taipei → that day', '2030-03-16T15:59:00Z', '20300316', '2030-03-16T15:59:00Z'],
      ['00:30 Taipei (still the previous UTC day) → the Taipei day before', '2030-03-15T16:30:00Z', '20300315', '2030-03-15T15:59:00Z'],
      ['later today → at least today', '2030-03-13T04:00:00Z', '20300313', '2030-03-13T15:59:00Z'],
      ['already past → at least today', '2030-03-12T04:00:00Z', '20300313', '2030-03-13T15:59:00Z'],
    ])('ATM ExpireDate: %s', async (_label, hold, expireDate, expiresAt) => {
      const inp = input('sinopac-atm', at(hold));
      const res = await gatewayAt(NOW).createPayment(inp);
      expect(sentMessage(inp.tradeNo).ATMParam).toEqual({ ExpireDate: expireDate });
      expect(res.kind).toBe('virtual-account');
      if (res.kind !== 'virtual-account') return;
      expect(res.bankCode).toBe('807');
      expect(res.expiresAt.toISOString()).toBe(new Date(expiresAt).toISOString());
      const order = sandbox.getOrder(inp.tradeNo)!;
      expect(res.account).toBe(order.atmPayNo);
      expect(res.gatewayTradeId).toBe(order.tsNo);
      expect(order.amountCents).toBe(88000);
    });

    it.each([
      ['an hour left → capped at 30', 60 * 60_000, 30],
      ['10.5 minutes left → 10', 10.5 * 60_000, 10],
      ['20 seconds left → at least 1', 20_000, 1],
      ['already expired → at least 1', -60_000, 1],
    ])('card ExpMinutes: %s', async (_label, leftMs, expMinutes) => {
      const inp = input('sinopac-card', new Date(NOW.getTime() + leftMs));
      const res = await gatewayAt(NOW).createPayment(inp);
      expect(sentMessage(inp.tradeNo).CardParam).toEqual({ AutoBilling: 'Y', ExpMinutes: expMinutes });
      expect(res.kind).toBe('redirect');
      if (res.kind !== 'redirect') return;
      const order = sandbox.getOrder(inp.tradeNo)!;
      expect(res.url).toBe(order.cardPayUrl);
      expect(res.gatewayTradeId).toBe(order.tsNo);
    });

    it('PrdtName is sanitised (no \' " %, at most 60 UTF-8 bytes) and Param1 carries the order number', async () => {
      const inp = input('sinopac-card', new Date(NOW.getTime() + 3600_000), {
        itemLines: ['"特調" 100% 果汁 x1', "Tom's 手工餅乾 x3", '珍珠奶茶（大杯，半糖少冰）x2', '烏龍茶 x1'],
      });
      await gatewayAt(NOW).createPayment(inp);
      const m = sentMessage(inp.tradeNo);
      const name = String(m.PrdtName);
      expect(name).not.toMatch(/['"%]/);
      expect(Buffer.byteLength(name, 'utf8')).toBeLessThanOrEqual(60);
      expect(name.startsWith('特調 100 果汁 x1、Toms 手工餅乾 x3')).toBe(true);
      expect(name.endsWith('…')).toBe(true);
      expect(m.Param1).toBe('ORD-20300313-001');
      expect(m.ReturnURL).toBe(returnUrl);
      expect(m.BackendURL).toBe(backendUrl);
    });

    it('queryPayment: pending, then paid with the amount, and not-found for an unknown trade', async () => {
      const gw = gatewayAt(NOW);
      const inp = input('sinopac-atm', at('2030-03-16T02:00:00Z'));
      await gw.createPayment(inp);
      const ref = { tradeNo: inp.tradeNo, method: 'sinopac-atm' as const, createdAt: NOW };
      await expect(gw.queryPayment(ref)).resolves.toMatchObject({ state: 'pending', tradeNo: inp.tradeNo, amount: 880, paidAt: null });

      sandbox.payAtm(inp.tradeNo, { notify: false });
      const paid = await gw.queryPayment(ref);
      expect(paid).toMatchObject({ state: 'paid', tradeNo: inp.tradeNo, amount: 880, gatewayTradeId: sandbox.getOrder(inp.tradeNo)!.tsNo });
      expect(paid.paidAt).toBeInstanceOf(Date);
      expect(Math.abs(paid.paidAt!.getTime() - Date.now())).toBeLessThan(120_000);

      await expect(gw.queryPayment({ ...ref, tradeNo: newOrderNo('N') })).resolves.toMatchObject({ state: 'not-found', amount: null });
      // The same OrderNo under the other PayType is not this attempt.
      await expect(gw.queryPayment({ ...ref, method: 'sinopac-card' })).resolves.toMatchObject({ state: 'not-found' });
    });

    it('queryPayment for a card: a row that exists but is not under PayFlag Y is pending, even with a PayDate; captured is paid', async () => {
      const gw = gatewayAt(NOW);
      const inp = input('sinopac-card', new Date(NOW.getTime() + 3600_000));
      await gw.createPayment(inp);
      const ref = { tradeNo: inp.tradeNo, method: 'sinopac-card' as const, createdAt: NOW };
      await expect(gw.queryPayment(ref)).resolves.toMatchObject({ state: 'pending', amount: 880, paidAt: null });

      sandbox.payCard(inp.tradeNo, { capture: false });
      expect(sandbox.getOrder(inp.tradeNo)!.payDate).not.toBe('');
      await expect(gw.queryPayment(ref)).resolves.toMatchObject({ state: 'pending', amount: 880, paidAt: null });
      const asked = sandbox.requests.filter((r) => r.service === 'OrderQuery' && r.message?.OrderNo === inp.tradeNo).map((r) => r.message!.PayFlag ?? '-');
      expect(asked).toEqual(['-', 'Y', '-', 'Y']);

      sandbox.captureCard(inp.tradeNo, { notify: false });
      const paid = await gw.queryPayment(ref);
      expect(paid).toMatchObject({ state: 'paid', amount: 880, gatewayTradeId: sandbox.getOrder(inp.tradeNo)!.tsNo });
      expect(paid.paidAt).toBeInstanceOf(Date);
    });

    it('confirmPayToken: a paid ATM transfer, and an unknown PayToken stays pending', async () => {
      const gw = gatewayAt(NOW);
      const inp = input('sinopac-atm', at('2030-03-16T02:00:00Z'));
      const created = await gw.createPayment(inp);
      const { payToken } = sandbox.payAtm(inp.tradeNo, { notify: false });
      const s = await gw.confirmPayToken(payToken);
      expect(s).toMatchObject({
        state: 'paid',
        tradeNo: inp.tradeNo,
        orderNoFromBank: inp.tradeNo,
        amount: 880,
        shopNo: SHOP.shopNo,
        payType: 'A',
        gatewayTradeId: created.gatewayTradeId,
      });
      expect(s.paidAt).toBeInstanceOf(Date);

      const unknown = await gw.confirmPayToken('d'.repeat(64));
      expect(unknown).toMatchObject({ state: 'pending', confirmed: false, queryStatus: 'F', amount: null, orderNoFromBank: '', paidAt: null });
    });

    it('GatewayErrors pass through createPayment (REJECTED from the bank)', async () => {
      sandbox.injectFailures('OrderCreate', ['statusF']);
      const err = await expectGatewayError(gatewayAt(NOW).createPayment(input('sinopac-atm', at('2030-03-16T02:00:00Z'))));
      expect(err.code).toBe('REJECTED');
    });

    it('refuses methods of other providers and exposes no refund', () => {
      const gw = gatewayAt(NOW);
      expect(gw.provider).toBe('sinopac');
      expect(gw.methods).toEqual(['sinopac-atm', 'sinopac-card']);
      expect((gw as { refund?: unknown }).refund).toBeUndefined();
      return expect(gw.createPayment(input('ecpay-atm' as 'sinopac-atm', NOW))).rejects.toThrow(/ecpay-atm/);
    });
  });
});

describe('sandbox lifecycle', () => {
  it('close() does not wait for a hung (injected timeout) request', async () => {
    const sb = await startSinopacSandbox({ shops: [SHOP], hangMs: 30_000 });
    const c = new SinopacClient({ config: { ...SHOP, apiBaseUrl: sb.apiBaseUrl }, timeoutMs: 20_000 });
    sb.injectFailures('OrderQuery', ['timeout']);
    const pending = c.orderQuery({ orderNo: 'X0' }).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await waitFor(() => sb.requests.some((r) => r.service === 'OrderQuery'));
    const started = Date.now();
    await sb.close();
    expect(Date.now() - started).toBeLessThan(1000);
    const outcome = await pending;
    expect(outcome).toBeInstanceOf(GatewayError);
    expect((outcome as GatewayError).code).toBe('NETWORK');
  });

  it('an expired nonce (older than nonceTtlMs) is refused', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const sb = await startSinopacSandbox({ shops: [SHOP], now: () => now });
    try {
      const headers = { 'Content-Type': 'application/json', 'X-KeyID': SHOP.keyId };
      const { data } = await axios.post<{ Nonce: string }>(`${sb.apiBaseUrl}Nonce`, { ShopNo: SHOP.shopNo }, { headers });
      now = new Date(now.getTime() + 61_000);
      const message = { ShopNo: SHOP.shopNo, OrderNo: 'X0' };
      const res = await axios.post(
        `${sb.apiBaseUrl}Order`,
        {
          Version: '1.0.0',
          ShopNo: SHOP.shopNo,
          APIService: 'OrderQuery',
          Sign: sign(message, data.Nonce, HASH_ID),
          Nonce: data.Nonce,
          Message: encryptMessage(JSON.stringify(message), HASH_ID, data.Nonce),
        },
        { headers, validateStatus: () => true },
      );
      expect(res.status).toBe(400);
      expect(sb.requests[sb.requests.length - 1]).toMatchObject({ error: 'Nonce expired' });
    } finally {
      await sb.close();
    }
  });

  it('a custom basePath is served', async () => {
    const sb = await startSinopacSandbox({ shops: [SHOP], basePath: 'funBIZ/QPay.WebAPI/api' });
    try {
      expect(sb.apiBaseUrl).toBe(`${sb.url}/funBIZ/QPay.WebAPI/api/`);
      const c = new SinopacClient({ config: { ...SHOP, apiBaseUrl: sb.apiBaseUrl } });
      await expect(c.orderQuery({ orderNo: 'X0' })).resolves.toMatchObject({ status: 'S', orders: [] });
    } finally {
      await sb.close();
    }
  });
});
