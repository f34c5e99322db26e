import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import express from 'express';
import type { EcpayConfig } from '../../src/config';
import { checkMacValue } from '../../src/gateways/ecpay/check-mac-value';
import {
  EcpayClient,
  formatEcpayDate,
  formatEcpayDateTime,
  type EcpayCheckoutForm,
} from '../../src/gateways/ecpay/ecpay-client';
import { EcpayGateway, parseEcpayDate } from '../../src/gateways/ecpay/ecpay-gateway';
import { GatewayError } from '../../src/gateways/payment-gateway';
import { startEcpaySandbox, type EcpaySandbox } from '../../src/sandbox/ecpay-sandbox';

const MERCHANT = { merchantId: '3002607', hashKey: 'pwFHCqoQZGmho4w6', hashIv: 'EkRm7iFT261dpevs' };
const DAY_MS = 24 * 60 * 60 * 1000;

// ------------------------------------------------------------------------------------------------
// Helpers

let seq = 0;
/** A fresh MerchantTradeNo, [A-Za-z0-9]{1,20}. */
function tradeNo(): string {
  seq += 1;
  return `IT${Date.now().toString(36).toUpperCase()}${seq}`.slice(0, 20);
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function hiddenInputs(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    out[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
  }
  return out;
}

function formAction(html: string, id: string): string {
  const m = new RegExp(`<form id="${id}"[^>]*action="([^"]+)"`).exec(html);
  if (!m) throw new Error(`no form #${id} in page`);
  return unescapeHtml(m[1]!);
}

/** Posts a form as the shopper's browser would and returns the HTML page. */
async function browserPost(url: string, fields: Record<string, string>): Promise<{ status: number; html: string }> {
  const res = await axios.post<string>(url, new URLSearchParams(fields).toString(), {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    responseType: 'text',
    validateStatus: () => true,
  });
  return { status: res.status, html: res.data };
}

function messageCode(html: string): string | undefined {
  return /<dd id="message-code">([^<]*)<\/dd>/.exec(html)?.[1];
}

async function listen(app: express.Express | ((req: never, res: never) => void)): Promise<{ server: Server; url: string }> {
  const server = createServer(app as Parameters<typeof createServer>[0]);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

interface Received {
  path: string;
  fields: Record<string, string>;
  verification: ReturnType<EcpayClient['verifyCallback']>;
}

/** The shop's side: receives ECPay's server-to-server posts, verifies them, answers 1|OK unless told otherwise. */
async function startReceiver(verifier: () => EcpayClient) {
  const received: Received[] = [];
  /** MerchantTradeNo → how many more deliveries to refuse. */
  const refuse = new Map<string, number>();
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post(['/payments/ecpay/notify', '/payments/ecpay/payment-info'], (req, res) => {
    const fields = { ...(req.body as Record<string, string>) };
    const verification = verifier().verifyCallback(fields);
    received.push({ path: req.path, fields, verification });
    const left = refuse.get(fields.MerchantTradeNo ?? '') ?? 0;
    if (!verification.ok) return res.type('text/plain').send(`0|${verification.reason}`);
    if (left > 0) {
      refuse.set(fields.MerchantTradeNo!, left - 1);
      return res.type('text/plain').send('0|try again');
    }
    return res.type('text/plain').send('1|OK');
  });
  const { server, url } = await listen(app);
  return {
    url,
    received,
    refuse,
    forTrade: (no: string, path?: string) =>
      received.filter((r) => r.fields.MerchantTradeNo === no && (path === undefined || r.path === path)),
    close: () => closeServer(server),
  };
}

// ------------------------------------------------------------------------------------------------

describe('ECPay AIO client and gateway against the local sandbox', () => {
  let sandbox: EcpaySandbox;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let config: EcpayConfig;
  let client: EcpayClient;
  let gateway: EcpayGateway;

  beforeAll(async () => {
    sandbox = await startEcpaySandbox({ merchants: [MERCHANT], notifyRetryDelaysMs: [40, 40, 40, 40] });
    receiver = await startReceiver(() => client);
    config = {
      merchantId: MERCHANT.merchantId,
      hashKey: MERCHANT.hashKey,
      hashIv: MERCHANT.hashIv,
      apiBaseUrl: sandbox.url,
      isProduction: false,
    };
    client = new EcpayClient({ config, timeoutMs: 5000 });
    gateway = new EcpayGateway({ client, publicBaseUrl: receiver.url });
  });

  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });

  function formFor(method: 'ecpay-credit' | 'ecpay-atm' | 'ecpay-cvs', no: string, opts: { amount?: number; holdMs?: number } = {}) {
    const now = new Date();
    return gateway.checkoutFormFor({
      tradeNo: no,
      method,
      amount: opts.amount ?? 1280,
      itemLines: ['珍珠奶茶 x2', '雞排 (大) x1'],
      holdExpiresAt: new Date(now.getTime() + (opts.holdMs ?? 3 * DAY_MS + 60 * 60 * 1000)),
      orderNo: 'ORD20250101001',
      now,
    });
  }

  it('createPayment only hands out our checkout page; nothing reaches ECPay', async () => {
    const before = sandbox.trades().length;
    const res = await gateway.createPayment({
      tradeNo: tradeNo(),
      method: 'ecpay-credit',
      amount: 500,
      orderNo: 'ORD1',
      itemLines: ['商品 x1'],
      holdExpiresAt: new Date(Date.now() + 3600_000),
      publicRef: 'r3f_AbC-123',
    });
    expect(res).toEqual({
      kind: 'redirect',
      url: `${receiver.url}/payments/ecpay/checkout/r3f_AbC-123`,
      gatewayTradeId: null,
      raw: null,
    });
    expect(sandbox.trades()).toHaveLength(before);
  });

  it('credit: the form is accepted, paying posts ReturnURL until 1|OK, and the browser goes to OrderResultURL', async () => {
    const no = tradeNo();
    const form = formFor('ecpay-credit', no);
    expect(form.action).toBe(`${sandbox.url}/Cashier/AioCheckOut/V5`);
    expect(form.fields).toMatchObject({
      ReturnURL: `${receiver.url}/payments/ecpay/notify`,
      OrderResultURL: `${receiver.url}/payments/ecpay/result`,
      ClientBackURL: `${receiver.url}/payments/ecpay/back`,
      CustomField1: 'ORD20250101001',
      NeedExtraPaidInfo: 'Y',
      ChoosePayment: 'Credit',
    });
    expect(form.fields.PaymentInfoURL).toBeUndefined();

    const cashier = await browserPost(form.action, form.fields);
    expect(cashier.status).toBe(200);
    expect(cashier.html).toContain('NT$ 1,280');
    expect(cashier.html).toContain('珍珠奶茶 x2');
    expect(cashier.html).toContain('雞排 (大) x1');
    expect(messageCode(cashier.html)).toBeUndefined();

    receiver.refuse.set(no, 2); // the shop answers something other than 1|OK twice
    const afterPay = await browserPost(new URL(formAction(cashier.html, 'pay'), sandbox.url).toString(), {});
    expect(afterPay.status).toBe(200);
    expect(formAction(afterPay.html, 'result')).toBe(`${receiver.url}/payments/ecpay/result`);
    const browserResult = hiddenInputs(afterPay.html);
    expect(browserResult.RtnMsg).toBe('Succeeded');
    expect(client.verifyCallback(browserResult)).toEqual({ ok: true, fields: browserResult });

    await sandbox.idle();
    const notes = receiver.forTrade(no, '/payments/ecpay/notify');
    expect(notes).toHaveLength(3);
    for (const n of notes) expect(n.verification.ok).toBe(true);
    expect(notes.map((n) => n.fields.RtnMsg)).toEqual(['交易成功', 'paid', 'paid']);
    const first = notes[0]!.fields;
    const trade = sandbox.getTrade(no)!;
    expect(first).toMatchObject({
      MerchantID: MERCHANT.merchantId,
      MerchantTradeNo: no,
      RtnCode: '1',
      TradeAmt: '1280',
      SimulatePaid: '0',
      PaymentType: 'Credit_CreditCard',
      CustomField1: 'ORD20250101001',
      CustomField2: '',
      TradeNo: trade.tradeNo,
    });
    expect(first.TradeNo).toMatch(/^\d{16}$/);
    expect(first.gwsr).toMatch(/^\d+$/);
    expect(Math.abs(parseEcpayDate(first.PaymentDate!).getTime() - Date.now())).toBeLessThan(60_000);
    const log = sandbox.notifications.filter((n) => n.merchantTradeNo === no);
    expect(log.map((n) => [n.attempt, n.body])).toEqual([
      [1, '0|try again'],
      [2, '0|try again'],
      [3, '1|OK'],
    ]);
  });

  it('gives up after 5 deliveries when the shop never answers 1|OK', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no)));
    receiver.refuse.set(no, 100);
    await sandbox.pay(no);
    await sandbox.idle();
    expect(receiver.forTrade(no, '/payments/ecpay/notify')).toHaveLength(5);
    expect(sandbox.notifications.filter((n) => n.merchantTradeNo === no).map((n) => n.attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it('ATM: PaymentInfoURL with the virtual account, then ReturnURL when paid', async () => {
    const no = tradeNo();
    const form = formFor('ecpay-atm', no);
    expect(form.fields).toMatchObject({ ChoosePayment: 'ATM', ExpireDate: '3', PaymentInfoURL: `${receiver.url}/payments/ecpay/payment-info` });
    expect(form.fields.OrderResultURL).toBeUndefined();
    const expected = [formatEcpayDate(new Date(Date.now() + 3 * DAY_MS))];
    const page = await browserPost(form.action, form.fields);
    expected.push(formatEcpayDate(new Date(Date.now() + 3 * DAY_MS)));
    expect(page.status).toBe(200);

    const infos = receiver.forTrade(no, '/payments/ecpay/payment-info');
    expect(infos).toHaveLength(1);
    const info = infos[0]!;
    expect(info.verification.ok).toBe(true);
    expect(info.fields).toMatchObject({ RtnCode: '2', BankCode: '812', PaymentType: 'ATM_TAISHIN', TradeAmt: '1280' });
    expect(info.fields.vAccount).toMatch(/^\d{16}$/);
    expect(expected).toContain(info.fields.ExpireDate);
    expect(page.html).toContain(info.fields.vAccount!);
    expect(receiver.forTrade(no, '/payments/ecpay/notify')).toHaveLength(0);

    expect((await gateway.queryPayment({ tradeNo: no, method: 'ecpay-atm', createdAt: new Date() })).state).toBe('pending');
    await sandbox.pay(no);
    const notes = receiver.forTrade(no, '/payments/ecpay/notify');
    expect(notes).toHaveLength(1);
    expect(notes[0]!.verification.ok).toBe(true);
    expect(notes[0]!.fields).toMatchObject({ RtnCode: '1', PaymentType: 'ATM_TAISHIN', TradeAmt: '1280', SimulatePaid: '0' });
  });

  it('CVS: PaymentInfoURL with the store code and a deadline in minutes, then ReturnURL when paid', async () => {
    const no = tradeNo();
    const form = formFor('ecpay-cvs', no, { amount: 350, holdMs: 7 * DAY_MS });
    expect(form.fields).toMatchObject({ ChoosePayment: 'CVS', StoreExpireDate: '10080' });
    const started = Date.now();
    const page = await browserPost(form.action, form.fields);
    const info = receiver.forTrade(no, '/payments/ecpay/payment-info')[0]!;
    expect(info.verification.ok).toBe(true);
    expect(info.fields).toMatchObject({ RtnCode: '10100073', PaymentType: 'CVS_CVS', TradeAmt: '350' });
    expect(info.fields.PaymentNo).toMatch(/^[A-Z0-9]{14}$/);
    expect(page.html).toContain(info.fields.PaymentNo!);
    const deadline = parseEcpayDate(info.fields.ExpireDate!).getTime();
    expect(info.fields.ExpireDate).toMatch(/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(deadline).toBeGreaterThanOrEqual(Math.floor((started + 7 * DAY_MS) / 1000) * 1000 - 1000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 7 * DAY_MS);

    await sandbox.pay(no, { simulatePaid: true });
    const note = receiver.forTrade(no, '/payments/ecpay/notify')[0]!;
    expect(note.verification.ok).toBe(true);
    expect(note.fields).toMatchObject({ RtnCode: '1', PaymentType: 'CVS_CVS', SimulatePaid: '1', PaymentNo: info.fields.PaymentNo });
  });

  it('rejects a tampered form with 10200073 and creates no trade', async () => {
    const no = tradeNo();
    const form = formFor('ecpay-credit', no);
    const page = await browserPost(form.action, { ...form.fields, TotalAmount: '1' });
    expect(messageCode(page.html)).toBe('10200073');
    expect(page.html).toContain('CheckMacValue Error.');
    expect(page.html).toContain('訊息代碼');
    expect(sandbox.getTrade(no)).toBeUndefined();
    // The untampered form still goes through: the number was not consumed.
    expect(messageCode((await browserPost(form.action, form.fields)).html)).toBeUndefined();
  });

  it('rejects a reused MerchantTradeNo with 10300028', async () => {
    const no = tradeNo();
    expect(messageCode((await browserPost(...formArgs(formFor('ecpay-credit', no)))).html)).toBeUndefined();
    const again = await browserPost(...formArgs(formFor('ecpay-atm', no)));
    expect(messageCode(again.html)).toBe('10300028');
    expect(sandbox.getTrade(no)!.choosePayment).toBe('Credit');
  });

  it('rejects a correctly signed form that breaks the field rules', async () => {
    const fields: Record<string, string> = {
      MerchantID: MERCHANT.merchantId,
      MerchantTradeNo: 'bad_no',
      MerchantTradeDate: formatEcpayDateTime(new Date()),
      PaymentType: 'aio',
      TotalAmount: '12.5',
      TradeDesc: 'x',
      ItemName: 'x',
      ReturnURL: 'http://127.0.0.1/notify',
      ChoosePayment: 'Credit',
      EncryptType: '1',
    };
    fields.CheckMacValue = checkMacValue(fields, MERCHANT.hashKey, MERCHANT.hashIv);
    const page = await browserPost(`${sandbox.url}/Cashier/AioCheckOut/V5`, fields);
    expect(messageCode(page.html)).toBe('10100050');
    expect(page.html).toContain('MerchantTradeNo');
    expect(page.html).toContain('TotalAmount');
  });

  it('QueryTradeInfo: TradeStatus 0 before payment, 1 after, mapped by the gateway', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no, { amount: 990 })));
    const before = await client.queryTradeInfo(no);
    expect(before).toMatchObject({ MerchantTradeNo: no, TradeStatus: '0', TradeAmt: '990', PaymentDate: '' });
    expect(before.ItemName).toBe('珍珠奶茶 x2#雞排 (大) x1');
    const pending = await gateway.queryPayment({ tradeNo: no, method: 'ecpay-credit', createdAt: new Date() });
    expect(pending).toMatchObject({ state: 'pending', amount: 990, paidAt: null });

    await sandbox.pay(no);
    const after = await client.queryTradeInfo(no);
    expect(after.TradeStatus).toBe('1');
    expect(after.gwsr).toMatch(/^\d+$/); // NeedExtraPaidInfo=Y extras
    const paid = await gateway.queryPayment({ tradeNo: no, method: 'ecpay-credit', createdAt: new Date() });
    expect(paid).toMatchObject({
      state: 'paid',
      tradeNo: no,
      amount: 990,
      gatewayTradeId: sandbox.getTrade(no)!.tradeNo,
    });
    expect(paid.paidAt!.getTime()).toBe(Math.floor(sandbox.getTrade(no)!.paidAt!.getTime() / 1000) * 1000);
  });

  it('pay({ notify: false }) sends no ReturnURL; only QueryTradeInfo finds the payment', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no)));
    await sandbox.pay(no, { notify: false });
    await sandbox.idle();
    expect(receiver.forTrade(no)).toHaveLength(0);
    expect(sandbox.notifications.filter((n) => n.merchantTradeNo === no)).toHaveLength(0);
    expect((await gateway.queryPayment({ tradeNo: no, method: 'ecpay-credit', createdAt: new Date() })).state).toBe('paid');

    const again = await sandbox.notifyAgain(no);
    expect(again.body).toBe('1|OK');
    expect(receiver.forTrade(no)[0]!.fields.RtnMsg).toBe('paid');
  });

  it('a failed card payment is reported as failed by QueryTradeInfo', async () => {
    const no = tradeNo();
    const cashier = await browserPost(...formArgs(formFor('ecpay-credit', no)));
    const failed = await browserPost(new URL(formAction(cashier.html, 'fail'), sandbox.url).toString(), {});
    expect(failed.html).toContain('付款失敗');
    const status = await gateway.queryPayment({ tradeNo: no, method: 'ecpay-credit', createdAt: new Date() });
    expect(status.state).toBe('failed');
    expect(status.reason).toContain('10200095');
    expect(receiver.forTrade(no)).toHaveLength(0);
  });

  it('QueryTradeInfo of an unknown trade is pending with a reason, not an error', async () => {
    const status = await gateway.queryPayment({ tradeNo: 'NEVERCREATED1', method: 'ecpay-credit', createdAt: new Date() });
    expect(status).toMatchObject({ state: 'pending', amount: null, gatewayTradeId: null });
    expect(status.reason).toContain('10200047');
  });

  it('QueryTradeInfo outside the 3-minute TimeStamp window or with wrong keys is a non-retryable BAD_RESPONSE', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no)));
    const stale = new EcpayClient({ config, now: () => new Date(Date.now() - 4 * 60 * 1000) });
    await expect(stale.queryTradeInfo(no)).rejects.toMatchObject({ code: 'BAD_RESPONSE', retryable: false });
    const wrongKey = new EcpayClient({ config: { ...config, hashKey: 'xxxxxxxxxxxxxxxx' } });
    const err = await wrongKey.queryTradeInfo(no).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('BAD_RESPONSE');
    expect(JSON.stringify(err) + String(err)).not.toContain(MERCHANT.hashKey);
  });

  it('DoAction refunds: two partials summing to the total succeed, one more is refused', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no, { amount: 1000 })));
    await sandbox.pay(no);
    const ecpayTradeNo = sandbox.getTrade(no)!.tradeNo;

    const r1 = await gateway.refund({ tradeNo: no, gatewayTradeId: ecpayTradeNo, amount: 400, capturedAmount: 1000, refundedBefore: 0 });
    expect(r1.ok).toBe(true);
    const r2 = await gateway.refund({ tradeNo: no, gatewayTradeId: ecpayTradeNo, amount: 600, capturedAmount: 1000, refundedBefore: 400 });
    expect(r2.ok).toBe(true);
    expect(sandbox.refunds(no).map((r) => r.amount)).toEqual([400, 600]);

    // The shop's bookkeeping would refuse this locally; the bank must refuse it too.
    const r3 = await client.doAction({ merchantTradeNo: no, tradeNo: ecpayTradeNo, action: 'R', totalAmount: 1 });
    expect(r3.RtnCode).not.toBe('1');
    expect(r3.RtnMsg).toMatch(/exceeds/);
    expect(sandbox.refunds(no)).toHaveLength(2);
  });

  it('DoAction is refused for unpaid and non-credit trades', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no)));
    const ecpayTradeNo = sandbox.getTrade(no)!.tradeNo;
    const unpaid = await client.doAction({ merchantTradeNo: no, tradeNo: ecpayTradeNo, action: 'R', totalAmount: 1 });
    expect(unpaid.RtnCode).not.toBe('1');

    const atm = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-atm', atm)));
    await sandbox.pay(atm);
    const r = await gateway.refund({ tradeNo: atm, gatewayTradeId: sandbox.getTrade(atm)!.tradeNo, amount: 1, capturedAmount: 1280, refundedBefore: 0 });
    expect(r.ok).toBe(false);
  });

  it('gateway.refund refuses over-refunds and non-positive amounts locally, without calling ECPay', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no, { amount: 500 })));
    await sandbox.pay(no);
    const id = sandbox.getTrade(no)!.tradeNo;
    const spy = jest.spyOn(client, 'doAction');
    try {
      const over = await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 300, capturedAmount: 500, refundedBefore: 201 });
      expect(over.ok).toBe(false);
      expect(over.message).toMatch(/exceeds/);
      expect((await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 0, capturedAmount: 500, refundedBefore: 0 })).ok).toBe(false);
      expect((await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 1.5, capturedAmount: 500, refundedBefore: 0 })).ok).toBe(false);
      expect(spy).not.toHaveBeenCalled();
      expect(sandbox.refunds(no)).toHaveLength(0);
      // The exact remainder is allowed and does reach ECPay.
      expect((await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 299, capturedAmount: 500, refundedBefore: 201 })).ok).toBe(true);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('verifyCallback tells a bad MAC, another merchant and a malformed body apart', async () => {
    const no = tradeNo();
    await browserPost(...formArgs(formFor('ecpay-credit', no)));
    await sandbox.pay(no);
    const good = receiver.forTrade(no, '/payments/ecpay/notify')[0]!.fields;
    expect(client.verifyCallback(good).ok).toBe(true);
    expect(client.verifyCallback({ ...good, TradeAmt: '1' })).toEqual({ ok: false, reason: 'BAD_MAC' });
    const other: Record<string, string> = { ...good, MerchantID: '3002599' };
    other.CheckMacValue = checkMacValue(other, MERCHANT.hashKey, MERCHANT.hashIv);
    expect(client.verifyCallback(other)).toEqual({ ok: false, reason: 'WRONG_MERCHANT' });
    const { CheckMacValue: _mac, ...noMac } = good;
    expect(client.verifyCallback(noMac)).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(client.verifyCallback({ ...good, TradeAmt: ['1', '2'] } as unknown as Record<string, string>)).toEqual({
      ok: false,
      reason: 'MALFORMED',
    });
  });

  it('the sandbox index lists trades with everything HTML-escaped', async () => {
    const fields: Record<string, string> = {
      MerchantID: MERCHANT.merchantId,
      MerchantTradeNo: tradeNo(),
      MerchantTradeDate: formatEcpayDateTime(new Date()),
      PaymentType: 'aio',
      TotalAmount: '100',
      TradeDesc: 'x',
      ItemName: '<script>alert("x")</script>',
      ReturnURL: `${receiver.url}/payments/ecpay/notify`,
      ChoosePayment: 'Credit',
      EncryptType: '1',
    };
    fields.CheckMacValue = checkMacValue(fields, MERCHANT.hashKey, MERCHANT.hashIv);
    const cashier = await browserPost(`${sandbox.url}/Cashier/AioCheckOut/V5`, fields);
    expect(cashier.html).not.toContain('<script>alert');
    const index = await axios.get<string>(`${sandbox.url}/`, { responseType: 'text' });
    expect(index.headers['content-type']).toContain('text/html');
    expect(index.data).toContain('交易列表');
    expect(index.data).toContain(fields.MerchantTradeNo);
    expect(index.data).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(index.data).not.toContain('<script>alert');
  });
});

function formArgs(form: EcpayCheckoutForm): [string, Record<string, string>] {
  return [form.action, form.fields];
}

describe('EcpayClient checkout form', () => {
  const config: EcpayConfig = {
    merchantId: MERCHANT.merchantId,
    hashKey: MERCHANT.hashKey,
    hashIv: MERCHANT.hashIv,
    apiBaseUrl: 'https://payment-stage.ecpay.com.tw',
    isProduction: false,
  };
  const client = new EcpayClient({ config, now: () => new Date('2025-01-01T04:34:56Z') });
  const base = {
    merchantTradeNo: 'LB20250101A1B2C3',
    totalAmount: 1280,
    returnUrl: 'https://shop.example.com/payments/ecpay/notify',
    orderResultUrl: 'https://shop.example.com/payments/ecpay/result',
    paymentInfoUrl: 'https://shop.example.com/payments/ecpay/payment-info',
    clientBackUrl: 'https://shop.example.com/payments/ecpay/back',
  };

  it('signs the fields it posts, in Taipei time, with a plain ASCII TradeDesc', () => {
    const form = client.buildCheckoutForm({ ...base, itemLines: ['珍珠奶茶 x2'], choosePayment: 'Credit' });
    expect(form.action).toBe('https://payment-stage.ecpay.com.tw/Cashier/AioCheckOut/V5');
    expect(form.fields).toMatchObject({
      MerchantTradeDate: '2025/01/01 12:34:56',
      PaymentType: 'aio',
      EncryptType: '1',
      TradeDesc: 'LINE shop order',
      TotalAmount: '1280',
      NeedExtraPaidInfo: 'Y',
    });
    expect(form.fields.CheckMacValue).toBe(checkMacValue(form.fields, MERCHANT.hashKey, MERCHANT.hashIv));
    expect(client.buildCheckoutForm({ ...base, itemLines: ['x'], choosePayment: 'Credit', tradeDesc: '中文 order #1' }).fields.TradeDesc).toBe(
      'order 1',
    );
  });

  it('sanitises item names, keeps Chinese, joins with # and stays within 400 characters', () => {
    const f = client.buildCheckoutForm({
      ...base,
      itemLines: ['雞排 #1 [大] "辣"', 'Tea: <b>green</b>', '   ', 'A&B=C 100%'],
      choosePayment: 'Credit',
    }).fields;
    expect(f.ItemName).toBe('雞排 1 大 辣#Tea b green /b#A B C 100');
    const long = client.buildCheckoutForm({
      ...base,
      itemLines: Array.from({ length: 60 }, (_, i) => `珍珠奶茶特大杯 ${i} x1`),
      choosePayment: 'Credit',
    }).fields.ItemName!;
    expect(long.length).toBeLessThanOrEqual(400);
    expect(long.startsWith('珍珠奶茶特大杯 0 x1#珍珠奶茶特大杯 1 x1#')).toBe(true);
    const emoji = client.buildCheckoutForm({ ...base, itemLines: ['😀'.repeat(300)], choosePayment: 'Credit' }).fields.ItemName!;
    expect(emoji.length).toBeLessThanOrEqual(400);
    expect(emoji).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/); // no split surrogate pair
  });

  it('sends OrderResultURL only for Credit and PaymentInfoURL with clamped deadlines only for ATM / CVS', () => {
    const credit = client.buildCheckoutForm({ ...base, itemLines: ['x'], choosePayment: 'Credit', atmExpireDays: 5 }).fields;
    expect(credit.OrderResultURL).toBe(base.orderResultUrl);
    expect(credit.PaymentInfoURL).toBeUndefined();
    expect(credit.ExpireDate).toBeUndefined();
    const atm = client.buildCheckoutForm({ ...base, itemLines: ['x'], choosePayment: 'ATM', atmExpireDays: 90 }).fields;
    expect(atm).toMatchObject({ PaymentInfoURL: base.paymentInfoUrl, ExpireDate: '60' });
    expect(atm.OrderResultURL).toBeUndefined();
    const cvs = client.buildCheckoutForm({ ...base, itemLines: ['x'], choosePayment: 'CVS', cvsStoreExpireMinutes: 0 }).fields;
    expect(cvs).toMatchObject({ PaymentInfoURL: base.paymentInfoUrl, StoreExpireDate: '1' });
  });

  it('refuses trade numbers and amounts ECPay would reject', () => {
    expect(() => client.buildCheckoutForm({ ...base, merchantTradeNo: 'bad-no', itemLines: ['x'], choosePayment: 'Credit' })).toThrow(RangeError);
    expect(() => client.buildCheckoutForm({ ...base, merchantTradeNo: 'A'.repeat(21), itemLines: ['x'], choosePayment: 'Credit' })).toThrow(RangeError);
    expect(() => client.buildCheckoutForm({ ...base, totalAmount: 10.5, itemLines: ['x'], choosePayment: 'Credit' })).toThrow(RangeError);
    expect(() => client.buildCheckoutForm({ ...base, totalAmount: 0, itemLines: ['x'], choosePayment: 'Credit' })).toThrow(RangeError);
  });

  it('renders a UTF-8 zh-TW auto-submit page with every value HTML-escaped', () => {
    const html = client.renderAutoSubmitPage({
      action: 'https://payment-stage.ecpay.com.tw/Cashier/AioCheckOut/V5',
      fields: { ItemName: `A&B "q" 'x' <y>`, CheckMacValue: 'ABC' },
    });
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('<meta charset="utf-8">');
    expect(html).toContain('<meta name="viewport"');
    expect(html).toContain('lang="zh-Hant-TW"');
    expect(html).toContain('value="A&amp;B &quot;q&quot; &#39;x&#39; &lt;y&gt;"');
    expect(html).toContain('前往付款');
    expect(html).toContain('.submit()');
    expect(hiddenInputs(html)).toEqual({ ItemName: `A&B "q" 'x' <y>`, CheckMacValue: 'ABC' });
  });

  it('derives ATM days and CVS minutes from the stock hold, clamped', () => {
    const gw = new EcpayGateway({ client, publicBaseUrl: 'https://shop.example.com/' });
    const now = new Date('2025-01-01T00:00:00Z');
    const atm = (ms: number) =>
      gw.checkoutFormFor({ tradeNo: 'A1', method: 'ecpay-atm', amount: 100, itemLines: ['x'], orderNo: 'O1', now, holdExpiresAt: new Date(now.getTime() + ms) }).fields;
    // now is 2025/01/01 08:00 Taipei. ATM deadlines are whole Taipei days, so the days asked for
    // are the calendar days up to the hold's end: +2.9 days ends 2025/01/04 05:36 → 3 (deadline the
    // end of 01/04, not before the hold; rounding down gave 2, a deadline 6 hours short).
    expect(atm(2.9 * DAY_MS).ExpireDate).toBe('3');
    // +2 days 15 hours ends 2025/01/03 23:00 → 2 (the end of 01/03 covers it).
    expect(atm(2 * DAY_MS + 15 * 3600_000).ExpireDate).toBe('2');
    expect(atm(60_000).ExpireDate).toBe('1');
    expect(atm(400 * DAY_MS).ExpireDate).toBe('60');
    expect(atm(DAY_MS).ReturnURL).toBe('https://shop.example.com/payments/ecpay/notify');
    const cvs = (ms: number) =>
      gw.checkoutFormFor({ tradeNo: 'C1', method: 'ecpay-cvs', amount: 100, itemLines: ['x'], orderNo: 'O1', now, holdExpiresAt: new Date(now.getTime() + ms) }).fields;
    expect(cvs(90.5 * 60_000).StoreExpireDate).toBe('90');
    expect(cvs(-5).StoreExpireDate).toBe('1');
    expect(cvs(100 * DAY_MS).StoreExpireDate).toBe('86400');
    expect(() =>
      gw.checkoutFormFor({ tradeNo: 'S1', method: 'sinopac-atm', amount: 100, itemLines: ['x'], orderNo: 'O1', now, holdExpiresAt: now }),
    ).toThrow(GatewayError);
  });

  it('parseEcpayDate reads Taipei time; a date alone is the end of that day', () => {
    expect(parseEcpayDate('2025/10/14 23:35:34').toISOString()).toBe('2025-10-14T15:35:34.000Z');
    expect(parseEcpayDate('2025/01/04').toISOString()).toBe('2025-01-04T15:59:59.000Z');
    expect(() => parseEcpayDate('2025/02/30')).toThrow(RangeError);
    expect(() => parseEcpayDate('2025-01-04')).toThrow(RangeError);
    expect(formatEcpayDateTime(parseEcpayDate('2025/01/01 00:00:05'))).toBe('2025/01/01 00:00:05');
  });
});

describe('EcpayClient transport errors', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await closeServer(s);
  });

  async function fakeEcpay(handler: (req: express.Request, res: express.Response) => void): Promise<EcpayClient> {
    const app = express();
    app.use(handler);
    const { server, url } = await listen(app);
    servers.push(server);
    return new EcpayClient({
      config: { merchantId: MERCHANT.merchantId, hashKey: MERCHANT.hashKey, hashIv: MERCHANT.hashIv, apiBaseUrl: url, isProduction: false },
      timeoutMs: 300,
    });
  }

  it.each([
    [503, true],
    [403, true],
    [400, false],
  ])('HTTP %i is HTTP_STATUS, retryable=%s', async (status, retryable) => {
    const c = await fakeEcpay((_req, res) => {
      res.status(status).send('no');
    });
    await expect(c.queryTradeInfo('A1')).rejects.toMatchObject({ code: 'HTTP_STATUS', retryable, details: { status } });
  });

  it('an answer signed with other keys is BAD_SIGNATURE', async () => {
    const c = await fakeEcpay((_req, res) => {
      const f: Record<string, string> = { MerchantID: MERCHANT.merchantId, MerchantTradeNo: 'A1', TradeStatus: '1' };
      f.CheckMacValue = checkMacValue(f, 'otherkey00000000', 'otheriv000000000');
      res.send(Object.entries(f).map(([k, v]) => `${k}=${v}`).join('&'));
    });
    await expect(c.queryTradeInfo('A1')).rejects.toMatchObject({ code: 'BAD_SIGNATURE', retryable: false });
  });

  it('an answer about another trade is BAD_RESPONSE', async () => {
    const c = await fakeEcpay((_req, res) => {
      const f: Record<string, string> = { MerchantID: MERCHANT.merchantId, MerchantTradeNo: 'B2', TradeStatus: '1' };
      f.CheckMacValue = checkMacValue(f, MERCHANT.hashKey, MERCHANT.hashIv);
      res.send(Object.entries(f).map(([k, v]) => `${k}=${v}`).join('&'));
    });
    await expect(c.queryTradeInfo('A1')).rejects.toMatchObject({ code: 'BAD_RESPONSE' });
  });

  it('no answer in time is a retryable TIMEOUT for a query but not for a refund', async () => {
    const c = await fakeEcpay(() => {
      /* never answers */
    });
    await expect(c.queryTradeInfo('A1')).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
    await expect(c.doAction({ merchantTradeNo: 'A1', tradeNo: '1', action: 'R', totalAmount: 1 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      retryable: false,
    });
  });

  it('a refused connection is a retryable NETWORK error', async () => {
    const { server, url } = await listen(express());
    await closeServer(server);
    const c = new EcpayClient({
      config: { merchantId: MERCHANT.merchantId, hashKey: MERCHANT.hashKey, hashIv: MERCHANT.hashIv, apiBaseUrl: url, isProduction: false },
    });
    await expect(c.queryTradeInfo('A1')).rejects.toMatchObject({ code: 'NETWORK', retryable: true });
    await expect(c.doAction({ merchantTradeNo: 'A1', tradeNo: '1', action: 'R', totalAmount: 1 })).rejects.toMatchObject({
      code: 'NETWORK',
      retryable: true,
    });
  });
});

describe('sandbox shutdown', () => {
  it('close() cancels pending retries and closes connections promptly', async () => {
    const receiver = await startReceiver(() => client);
    const sb = await startEcpaySandbox({ merchants: [MERCHANT], notifyRetryDelaysMs: [60_000] });
    const client = new EcpayClient({
      config: { merchantId: MERCHANT.merchantId, hashKey: MERCHANT.hashKey, hashIv: MERCHANT.hashIv, apiBaseUrl: sb.url, isProduction: false },
    });
    try {
      const form = client.buildCheckoutForm({
        merchantTradeNo: tradeNo(),
        totalAmount: 100,
        itemLines: ['x'],
        choosePayment: 'Credit',
        returnUrl: `${receiver.url}/payments/ecpay/notify`,
        orderResultUrl: `${receiver.url}/payments/ecpay/result`,
        paymentInfoUrl: `${receiver.url}/payments/ecpay/payment-info`,
        clientBackUrl: `${receiver.url}/payments/ecpay/back`,
      });
      await browserPost(form.action, form.fields);
      receiver.refuse.set(form.fields.MerchantTradeNo!, 10);
      await sb.pay(form.fields.MerchantTradeNo!);
      expect(sb.notifications).toHaveLength(1);
      const started = Date.now();
      await sb.close();
      await sb.idle();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(sb.notifications).toHaveLength(1);
      await expect(axios.get(`${sb.url}/`, { timeout: 1000 })).rejects.toBeDefined();
    } finally {
      await sb.close();
      await receiver.close();
    }
  });
});
