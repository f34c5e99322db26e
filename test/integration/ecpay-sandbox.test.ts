import type { Server } from 'node:http';
import axios from 'axios';
import express from 'express';
import type { EcpayConfig } from '../../src/config';
import { checkMacValue } from '../../src/gateways/ecpay/check-mac-value';
import {
  EcpayClient,
  MemoryCallGate,
  RATE_LIMIT_PAUSE_MS,
  formatEcpayDate,
  formatEcpayDateTime,
  type EcpayCheckoutForm,
} from '../../src/gateways/ecpay/ecpay-client';
import { EcpayGateway, parseEcpayDate } from '../../src/gateways/ecpay/ecpay-gateway';
import { taipeiAt, TestClock } from '../helpers/shop';
import { GatewayError } from '../../src/gateways/payment-gateway';
import { startEcpaySandbox, type EcpaySandbox } from '../../src/sandbox/ecpay-sandbox';
import { browserPost, closeServer, formAction, hiddenInputs, listen } from '../helpers/html-forms';

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

function messageCode(html: string): string | undefined {
  return /<dd id="message-code">([^<]*)<\/dd>/.exec(html)?.[1];
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

describe('card refunds and the capture state (spec §10.2), sandbox and gateway on one clock', () => {
  const CHECK_CODE = '48215907';
  const clock = new TestClock();
  let sandbox: EcpaySandbox;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let config: EcpayConfig;
  let client: EcpayClient;
  let gateway: EcpayGateway;
  /** The same merchant without ECPAY_CREDIT_CHECK_CODE: the capture state comes from the clock. */
  let clockGateway: EcpayGateway;

  beforeAll(async () => {
    sandbox = await startEcpaySandbox({ merchants: [{ ...MERCHANT, creditCheckCode: CHECK_CODE }], notifyRetryDelaysMs: [40, 40, 40, 40], now: clock.now });
    receiver = await startReceiver(() => client);
    config = { ...MERCHANT, apiBaseUrl: sandbox.url, isProduction: false, creditCheckCode: CHECK_CODE };
    client = new EcpayClient({ config, timeoutMs: 5000, now: clock.now });
    gateway = new EcpayGateway({ client, publicBaseUrl: receiver.url, now: clock.now });
    const plain = new EcpayClient({ config: { ...config, creditCheckCode: null }, timeoutMs: 5000, now: clock.now });
    clockGateway = new EcpayGateway({ client: plain, publicBaseUrl: receiver.url, now: clock.now });
  });
  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });

  /** A card trade of `amount` paid at `hhmm` Taipei today. */
  async function paidCard(amount: number, hhmm = '10:00', method: 'ecpay-credit' | 'ecpay-atm' = 'ecpay-credit') {
    clock.set(taipeiAt(hhmm));
    const no = tradeNo();
    const now = new Date();
    const form = gateway.checkoutFormFor({ tradeNo: no, method, amount, itemLines: ['x'], holdExpiresAt: new Date(now.getTime() + 3 * DAY_MS), orderNo: 'O1', now });
    await browserPost(form.action, form.fields);
    await sandbox.pay(no);
    return { no, id: sandbox.getTrade(no)!.tradeNo, gwsr: sandbox.getTrade(no)!.gwsr! };
  }
  const actions = (no: string) => sandbox.actions(no).map((a) => `${a.action}${a.amount}`);

  it('two partials that add up to the total: C then R, then R; one more is refused by ECPay too', async () => {
    const { no, id } = await paidCard(1000);
    const r1 = await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 400, capturedAmount: 1000, refundedBefore: 0 });
    expect(r1).toMatchObject({ ok: true, raw: { captureState: 'authorised', captureStateFrom: 'QueryTrade/V2' } });
    const r2 = await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 600, capturedAmount: 1000, refundedBefore: 400 });
    expect(r2).toMatchObject({ ok: true, raw: { captureState: 'capture-requested' } });
    expect(actions(no)).toEqual(['C1000', 'R400', 'R600']);
    expect(sandbox.refunds(no).map((r) => r.amount)).toEqual([400, 600]);
    // The shop's bookkeeping would refuse this locally; the bank must refuse it too.
    const r3 = await client.doAction({ merchantTradeNo: no, tradeNo: id, action: 'R', totalAmount: 1 });
    expect(r3.RtnCode).not.toBe('1');
    expect(r3.RtnMsg).toMatch(/exceeds/);
    expect(sandbox.refunds(no)).toHaveLength(2);
  });

  it('DoAction is refused for unpaid and non-credit trades; the gateway refuses ATM payments without a DoAction', async () => {
    clock.set(taipeiAt('10:00'));
    const no = tradeNo();
    const now = new Date();
    const form = gateway.checkoutFormFor({ tradeNo: no, method: 'ecpay-credit', amount: 1280, itemLines: ['x'], holdExpiresAt: new Date(now.getTime() + DAY_MS), orderNo: 'O1', now });
    await browserPost(form.action, form.fields);
    const unpaid = await client.doAction({ merchantTradeNo: no, tradeNo: sandbox.getTrade(no)!.tradeNo, action: 'R', totalAmount: 1 });
    expect(unpaid.RtnCode).not.toBe('1');
    expect((await gateway.refund({ tradeNo: no, gatewayTradeId: sandbox.getTrade(no)!.tradeNo, amount: 1, capturedAmount: 1280, refundedBefore: 0 })).ok).toBe(false);

    const atm = await paidCard(1280, '10:00', 'ecpay-atm');
    const r = await gateway.refund({ tradeNo: atm.no, gatewayTradeId: atm.id, amount: 1, capturedAmount: 1280, refundedBefore: 0 });
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/not a card payment/);
    expect(sandbox.actions(atm.no)).toEqual([]);
  });

  it('gateway.refund refuses over-refunds and non-positive amounts locally, without calling ECPay', async () => {
    const { no, id } = await paidCard(500);
    const spy = jest.spyOn(client, 'doAction');
    const query = jest.spyOn(client, 'queryTradeInfo');
    try {
      const over = await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 300, capturedAmount: 500, refundedBefore: 201 });
      expect(over.ok).toBe(false);
      expect(over.message).toMatch(/exceeds/);
      expect((await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 0, capturedAmount: 500, refundedBefore: 0 })).ok).toBe(false);
      expect((await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 1.5, capturedAmount: 500, refundedBefore: 0 })).ok).toBe(false);
      expect(spy).not.toHaveBeenCalled();
      expect(query).not.toHaveBeenCalled();
      expect(sandbox.refunds(no)).toHaveLength(0);
      // The exact remainder is allowed and does reach ECPay (uncaptured: C, then R).
      expect((await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 299, capturedAmount: 500, refundedBefore: 201 })).ok).toBe(true);
      expect(spy.mock.calls.map(([i]) => `${i.action}${i.totalAmount}`)).toEqual(['C500', 'R299']);
    } finally {
      spy.mockRestore();
      query.mockRestore();
    }
  });

  it('the sandbox models the capture state: C / E / N / R only where they fit, the 20:15 run captures, 20:15–20:30 refuses everything; QueryTrade/V2 reports it', async () => {
    const { no, id, gwsr } = await paidCard(1280, '10:00');
    const act = (action: 'C' | 'R' | 'E' | 'N', totalAmount: number) => client.doAction({ merchantTradeNo: no, tradeNo: id, action, totalAmount });
    const state = async () => (await client.queryCreditTrade({ creditRefundId: gwsr, creditAmount: 1280 })).RtnValue;

    expect(await state()).toMatchObject({ status: '已授權', amount: 1280, clsamt: 0, TradeID: id });
    expect(await act('R', 100)).toMatchObject({ RtnCode: '0', RtnMsg: 'Action R is not allowed for a trade in state 已授權.' });
    expect(await act('E', 1280)).toMatchObject({ RtnCode: '0' });
    expect(await act('C', 1280)).toMatchObject({ RtnCode: '1' });
    expect(await state()).toMatchObject({ status: '要關帳', clsamt: 1280 });
    expect(await act('N', 1280)).toMatchObject({ RtnCode: '0', RtnMsg: 'Action N is not allowed for a trade in state 要關帳.' });
    expect(await act('C', 1280)).toMatchObject({ RtnCode: '0' });
    expect(await act('E', 1280)).toMatchObject({ RtnCode: '1' });
    expect(await state()).toMatchObject({ status: '已授權', clsamt: 0 });

    clock.set(taipeiAt('20:14'));
    expect(await state()).toMatchObject({ status: '已授權' });
    clock.set(taipeiAt('20:20'));
    // Captured by the 20:15 run; no DoAction of any kind until 20:30.
    expect(await state()).toMatchObject({ status: '已關帳', clsamt: 1280 });
    for (const a of ['C', 'R', 'E', 'N'] as const) {
      expect(await act(a, a === 'R' ? 100 : 1280)).toMatchObject({ RtnCode: '0', RtnMsg: 'DoAction is not available during the daily capture (20:15-20:30).' });
    }
    clock.set(taipeiAt('20:30'));
    expect(await act('N', 1280)).toMatchObject({ RtnCode: '0', RtnMsg: 'Action N is not allowed for a trade in state 已關帳.' });
    expect(await act('R', 1280)).toMatchObject({ RtnCode: '1' });
    expect(actions(no)).toEqual(['C1280', 'E1280', 'R1280']);

    // QueryTrade/V2 refusals.
    const other = new EcpayClient({ config: { ...config, creditCheckCode: '00000000' }, now: clock.now });
    expect((await other.queryCreditTrade({ creditRefundId: gwsr, creditAmount: 1280 })).RtnMsg).toBe('error');
    expect((await client.queryCreditTrade({ creditRefundId: '1', creditAmount: 1280 })).RtnMsg).toBe('error_nopay');
    expect((await client.queryCreditTrade({ creditRefundId: gwsr, creditAmount: 1279 })).RtnMsg).toBe('error_nopay');
  });

  it('a full refund of a trade whose capture was requested (by the dashboard, say) is E then N', async () => {
    const { no, id } = await paidCard(700, '11:00');
    expect((await client.doAction({ merchantTradeNo: no, tradeNo: id, action: 'C', totalAmount: 700 })).RtnCode).toBe('1');
    const r = await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 700, capturedAmount: 700, refundedBefore: 0 });
    expect(r).toMatchObject({ ok: true, raw: { captureState: 'capture-requested', steps: [{ action: 'E' }, { action: 'N' }] } });
    expect(actions(no)).toEqual(['C700', 'E700', 'N700']);
    expect(sandbox.getTrade(no)!.capture).toBe('abandoned');
  });

  it('inside 20:15–20:30 the gateway sends nothing: refundDelayMs and a PAUSED error both say "until 20:30"', async () => {
    const { no, id } = await paidCard(300, '09:00');
    clock.set(taipeiAt('20:15'));
    const delay = gateway.refundDelayMs();
    expect(delay).toBeGreaterThan(14.9 * 60_000);
    expect(delay).toBeLessThanOrEqual(15 * 60_000);
    const err = await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 300, capturedAmount: 300, refundedBefore: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'PAUSED', retryable: true });
    expect((err as GatewayError).retryAfterMs).toBeGreaterThan(14.9 * 60_000);
    expect(sandbox.actions(no)).toEqual([]);
    clock.set(taipeiAt('20:29'));
    expect(gateway.refundDelayMs()).toBeGreaterThan(0);
    clock.set(taipeiAt('20:30'));
    expect(gateway.refundDelayMs()).toBe(0);
    expect(await gateway.refund({ tradeNo: no, gatewayTradeId: id, amount: 300, capturedAmount: 300, refundedBefore: 0 })).toMatchObject({ ok: true, raw: { captureState: 'captured' } });
    expect(actions(no)).toEqual(['R300']);
  });

  it('without ECPAY_CREDIT_CHECK_CODE the state comes from the payment time and the 20:15 auto-capture', async () => {
    const full = await paidCard(400, '10:00');
    expect(await clockGateway.refund({ tradeNo: full.no, gatewayTradeId: full.id, amount: 400, capturedAmount: 400, refundedBefore: 0 })).toMatchObject({
      ok: true,
      raw: { captureState: 'authorised', captureStateFrom: 'clock' },
    });
    expect(actions(full.no)).toEqual(['N400']);

    const part = await paidCard(400, '10:00');
    clock.set(taipeiAt('12:00'));
    expect((await clockGateway.refund({ tradeNo: part.no, gatewayTradeId: part.id, amount: 100, capturedAmount: 400, refundedBefore: 0 })).ok).toBe(true);
    // A refund already made today means our C went first: R alone now.
    expect((await clockGateway.refund({ tradeNo: part.no, gatewayTradeId: part.id, amount: 100, capturedAmount: 400, refundedBefore: 100 })).ok).toBe(true);
    expect(actions(part.no)).toEqual(['C400', 'R100', 'R100']);
    // The next day, after the 20:15 run.
    clock.set(taipeiAt('08:00', 1));
    expect(await clockGateway.refund({ tradeNo: part.no, gatewayTradeId: part.id, amount: 200, capturedAmount: 400, refundedBefore: 200 })).toMatchObject({ ok: true, raw: { captureState: 'captured' } });
    expect(actions(part.no)).toEqual(['C400', 'R100', 'R100', 'R200']);
  });
});

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

  it.each([
    [500, false],
    [504, false],
    [503, true],
  ])('DoAction (money moves) answered HTTP %i: retryable=%s (only a 503 says it was not served)', async (status, retryable) => {
    const c = await fakeEcpay((_req, res) => {
      res.status(status).send('no');
    });
    await expect(c.doAction({ merchantTradeNo: 'E1', tradeNo: '2412011234567890', action: 'R', totalAmount: 100 })).rejects.toMatchObject({
      code: 'HTTP_STATUS',
      retryable,
      details: { status },
    });
  });

  it('after an HTTP 403 nothing more is sent for 30 minutes: PAUSED, through a gate shared by clients', async () => {
    let hits = 0;
    const app = express();
    app.use((_req, res) => {
      hits += 1;
      res.status(403).send('Forbidden');
    });
    const { server, url } = await listen(app);
    servers.push(server);
    const gate = new MemoryCallGate();
    const cfg = { merchantId: MERCHANT.merchantId, hashKey: MERCHANT.hashKey, hashIv: MERCHANT.hashIv, apiBaseUrl: url, isProduction: false };
    const a = new EcpayClient({ config: cfg, timeoutMs: 300, gate });
    const b = new EcpayClient({ config: cfg, timeoutMs: 300, gate });
    const first = await a.queryTradeInfo('A1').catch((e: unknown) => e);
    expect(first).toMatchObject({ code: 'HTTP_STATUS', retryable: true, details: { status: 403, retryAfterMs: RATE_LIMIT_PAUSE_MS } });
    expect(RATE_LIMIT_PAUSE_MS).toBe(30 * 60_000);
    expect(hits).toBe(1);
    const paused = await b.queryTradeInfo('A1').catch((e: unknown) => e);
    expect(paused).toMatchObject({ code: 'PAUSED', retryable: true });
    expect((paused as GatewayError).retryAfterMs).toBeGreaterThan(29 * 60_000);
    await expect(a.doAction({ merchantTradeNo: 'A1', tradeNo: '1', action: 'R', totalAmount: 1 })).rejects.toMatchObject({ code: 'PAUSED' });
    expect(hits).toBe(1);
    expect(await b.pausedForMs()).toBeGreaterThan(29 * 60_000);
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
