import axios from 'axios';
import express from 'express';
import type { EcpayLogisticsConfig } from '../../src/config';
import {
  EcpayLogisticsClient,
  LOGISTICS_ACK,
  LogisticsRejectedError,
  goodsNameFor,
  logisticsNack,
  newLogisticsTradeNo,
  newMapToken,
  type CreateShipmentInput,
  type CvsSubType,
  type LogisticsNotification,
  type MapReplyResult,
} from '../../src/gateways/ecpay-logistics';
import { MemoryCallGate, RATE_LIMIT_PAUSE_MS } from '../../src/gateways/ecpay/ecpay-http';
import { GatewayError } from '../../src/gateways/payment-gateway';
import { startEcpayLogisticsSandbox, type EcpayLogisticsSandbox } from '../../src/sandbox/ecpay-logistics-sandbox';
import { browserPost, closeServer, formAction, hiddenInputs, listen } from '../helpers/html-forms';

// Public stage accounts (specs/ecpay-logistics.md §2).
const C2C = { merchantId: '2000933', hashKey: 'XBERn1YOvpM9nfZc', hashIv: 'h1ONHk4P4yqbl5LK', kind: 'C2C' as const };
const B2C = { merchantId: '2000132', hashKey: '5294y06JbISpM5x9', hashIv: 'v77hoKGq4kWxNNIS', kind: 'B2C' as const };
const RETRY_MS = 40;

interface Received {
  fields: Record<string, string>;
  verification: ReturnType<EcpayLogisticsClient['verifyNotification']>;
}

/**
 * The shop's side: the map reply (a browser POST) and the status notify endpoint (server to
 * server), both checked with the client as the real routes will.
 */
async function startShopSide(client: () => EcpayLogisticsClient) {
  const notifications: Received[] = [];
  const mapReplies: MapReplyResult[] = [];
  /** AllPayLogisticsID → how many more deliveries to refuse. */
  const refuse = new Map<string, number>();
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post('/logistics/ecpay/map-reply', (req, res) => {
    const result = client().parseMapReply(req.body);
    mapReplies.push(result);
    res.status(result.ok ? 200 : 400).type('text/html').send(result.ok ? '<p>門市已選好</p>' : '<p>門市資料有誤</p>');
  });
  app.post('/logistics/ecpay/notify', (req, res) => {
    const fields = { ...(req.body as Record<string, string>) };
    const verification = client().verifyNotification(fields);
    notifications.push({ fields, verification });
    if (!verification.ok) return res.type('text/plain').send(logisticsNack(verification.reason));
    const left = refuse.get(fields.AllPayLogisticsID ?? '') ?? 0;
    if (left > 0) {
      refuse.set(fields.AllPayLogisticsID!, left - 1);
      return res.status(500).type('text/plain').send('0|busy');
    }
    return res.type('text/plain').send(LOGISTICS_ACK);
  });
  const { server, url } = await listen(app);
  const verified = (id: string): LogisticsNotification[] =>
    notifications.flatMap((n) => (n.verification.ok && n.verification.notification.allPayLogisticsId === id ? [n.verification.notification] : []));
  return { url, notifications, mapReplies, refuse, verified, close: () => closeServer(server) };
}

function configFor(
  merchant: typeof C2C | typeof B2C,
  apiBaseUrl: string,
  subTypes: readonly CvsSubType[] = merchant.kind === 'C2C' ? ['UNIMARTC2C', 'FAMIC2C', 'HILIFEC2C', 'OKMARTC2C'] : ['UNIMART', 'FAMI', 'HILIFE'],
): EcpayLogisticsConfig {
  return {
    merchantId: merchant.merchantId,
    hashKey: merchant.hashKey,
    hashIv: merchant.hashIv,
    apiBaseUrl,
    isProduction: false,
    subTypes,
    senderName: '陳大明',
    senderCellPhone: '0911222333',
  };
}

describe('ECPay logistics client against the local logistics sandbox', () => {
  let sandbox: EcpayLogisticsSandbox;
  let shop: Awaited<ReturnType<typeof startShopSide>>;
  let client: EcpayLogisticsClient;

  beforeAll(async () => {
    sandbox = await startEcpayLogisticsSandbox({ merchants: [C2C, B2C], notifyRetryDelaysMs: Array(9).fill(RETRY_MS) });
    shop = await startShopSide(() => client);
    client = new EcpayLogisticsClient({ config: configFor(C2C, sandbox.url), timeoutMs: 3000 });
  });

  afterAll(async () => {
    await sandbox.close();
    await shop.close();
  });

  afterEach(async () => {
    await sandbox.idle();
  });

  function shipmentInput(over: Partial<CreateShipmentInput> = {}): CreateShipmentInput {
    return {
      merchantTradeNo: newLogisticsTradeNo('T'),
      subType: 'UNIMARTC2C',
      goodsAmount: 280,
      cashOnPickup: false,
      goodsName: goodsNameFor(['珍珠奶茶', '雞排']),
      receiverName: '王小美',
      receiverCellPhone: '0933222111',
      receiverStoreId: '131386',
      serverReplyUrl: `${shop.url}/logistics/ecpay/notify`,
      ...over,
    };
  }

  /** Opens the map as the buyer's browser: our form → ECPay's store list → pick → auto-submit to our reply URL. */
  async function pickStore(form: { action: string; fields: Record<string, string> }, storeId: string) {
    const map = await browserPost(form.action, form.fields);
    expect(map.status).toBe(200);
    const choice = [...map.html.matchAll(/<form class="store" method="post" action="([^"]+)">\s*<input type="hidden" name="session" value="([^"]+)">\s*<input type="hidden" name="store" value="([^"]+)">/g)];
    const picked = choice.find((m) => m[3] === storeId);
    if (!picked) throw new Error(`store ${storeId} is not on the map`);
    const chosen = await browserPost(`${sandbox.url}${picked[1]}`, { session: picked[2]!, store: storeId });
    const back = await browserPost(formAction(chosen.html, 'result'), hiddenInputs(chosen.html));
    return { mapHtml: map.html, reply: hiddenInputs(chosen.html), back };
  }

  // --------------------------------------------------------------------------------------------
  // Store map

  it('map: the signed form opens the chain\'s open stores; the chosen one comes back to ServerReplyURL with our token', async () => {
    const token = newMapToken();
    const form = client.mapForm({ subType: 'UNIMARTC2C', token, serverReplyUrl: `${shop.url}/logistics/ecpay/map-reply`, cashOnPickup: false });
    expect(form.action).toBe(`${sandbox.url}/Express/map`);
    expect(form.fields).toMatchObject({ LogisticsType: 'CVS', LogisticsSubType: 'UNIMARTC2C', IsCollection: 'N', Device: '1', ExtraData: token });
    expect(form.fields.CheckMacValue).toMatch(/^[0-9A-F]{32}$/);

    const page = client.renderFormPage(form);
    expect(formAction(page, 'ecpay-map')).toBe(form.action);
    expect(hiddenInputs(page)).toEqual(form.fields);
    expect(page).toContain('正在開啟超商門市地圖');

    const { mapHtml, reply, back } = await pickStore(form, '131386');
    expect(mapHtml).toContain('896539');
    expect(mapHtml).not.toContain('006598');
    expect(reply).not.toHaveProperty('CheckMacValue');
    expect(back.status).toBe(200);
    expect(shop.mapReplies.at(-1)).toEqual({
      ok: true,
      store: {
        token,
        merchantTradeNo: form.fields.MerchantTradeNo,
        subType: 'UNIMARTC2C',
        storeId: '131386',
        storeName: '鑫忠孝門市',
        storeAddress: '臺北市中正區忠孝西路一段50號1樓',
        outside: false,
      },
    });
  });

  it('map: FamilyMart returns a telephone and flags an outlying-island store; cash on pickup is carried to the map', async () => {
    const form = client.mapForm({ subType: 'FAMIC2C', token: 'tok_famima-1', serverReplyUrl: `${shop.url}/logistics/ecpay/map-reply`, cashOnPickup: true });
    const { mapHtml } = await pickStore(form, '018540');
    expect(mapHtml).toContain('取貨付款');
    const last = shop.mapReplies.at(-1)!;
    expect(last.ok && last.store).toMatchObject({ token: 'tok_famima-1', storeId: '018540', storeTelephone: '082-320003', outside: true });
  });

  it('map: a closed store is not offered; an unsigned-but-tampered reply is refused field by field', async () => {
    sandbox.setStoreClosed('OKMARTC2C', '1046', true);
    try {
      const form = client.mapForm({ subType: 'OKMARTC2C', token: 'okToken', serverReplyUrl: `${shop.url}/logistics/ecpay/map-reply`, cashOnPickup: false });
      await expect(pickStore(form, '1046')).rejects.toThrow('not on the map');
      const { reply } = await pickStore(form, '1328');
      expect(client.parseMapReply(reply, { subType: 'OKMARTC2C' }).ok).toBe(true);
      expect(client.parseMapReply({ ...reply, MerchantID: '2000132' })).toMatchObject({ ok: false, reason: 'WRONG_MERCHANT' });
      expect(client.parseMapReply(reply, { subType: 'FAMIC2C' })).toMatchObject({ ok: false, reason: 'BAD_SUB_TYPE' });
      expect(client.parseMapReply({ ...reply, LogisticsSubType: 'TCAT' })).toMatchObject({ ok: false, reason: 'BAD_SUB_TYPE' });
      expect(client.parseMapReply({ ...reply, CVSStoreID: '13<b>' })).toMatchObject({ ok: false, reason: 'BAD_STORE' });
      expect(client.parseMapReply({ ...reply, CVSStoreName: '' })).toMatchObject({ ok: false, reason: 'BAD_STORE' });
      expect(client.parseMapReply({ ...reply, ExtraData: 'not a token!' })).toMatchObject({ ok: false, reason: 'MALFORMED' });
      expect(client.parseMapReply({ ...reply, CVSStoreID: ['1328', '1046'] })).toMatchObject({ ok: false, reason: 'MALFORMED' });
      expect(client.parseMapReply({ ...reply, CheckMacValue: 'A'.repeat(32) })).toMatchObject({ ok: false, reason: 'MALFORMED' });
    } finally {
      sandbox.setStoreClosed('OKMARTC2C', '1046', false);
    }
  });

  it('map: ECPay refuses a sub-type the account does not have, and a map form whose MAC was tampered with', async () => {
    const wrongKind = new EcpayLogisticsClient({ config: configFor(C2C, sandbox.url, ['FAMI']) });
    const b2cOnC2c = await browserPost(`${sandbox.url}/Express/map`, wrongKind.mapForm({ subType: 'FAMI', token: 't1', serverReplyUrl: `${shop.url}/r`, cashOnPickup: false }).fields);
    expect(b2cOnC2c.status).toBe(400);
    expect(b2cOnC2c.html).toContain('找不到加密金鑰');
    const form = client.mapForm({ subType: 'HILIFEC2C', token: 't2', serverReplyUrl: `${shop.url}/r`, cashOnPickup: false });
    const tampered = await browserPost(form.action, { ...form.fields, IsCollection: 'Y' });
    expect(tampered.html).toContain('CheckMacValue Error');
    expect(() => client.mapForm({ subType: 'FAMI', token: 't3', serverReplyUrl: `${shop.url}/r`, cashOnPickup: false })).toThrow(RangeError);
  });

  // --------------------------------------------------------------------------------------------
  // Express/Create

  it('create (prepaid, 7-ELEVEN C2C): 1| answer verified, drop-off codes returned, IsCollection=N sent explicitly, creation status notified', async () => {
    const input = shipmentInput();
    const created = await client.createShipment(input);
    expect(created).toMatchObject({
      merchantTradeNo: input.merchantTradeNo,
      subType: 'UNIMARTC2C',
      rtnCode: 300,
      rtnMsg: '訂單處理中(已收到訂單資料)',
      status: { state: 'created', group: 'created', terminal: false },
    });
    expect(created.allPayLogisticsId).toMatch(/^\d+$/);
    expect(created.cvsPaymentNo).toMatch(/^[A-Z]\d{7}$/);
    expect(created.cvsValidationNo).toMatch(/^\d{4}$/);
    expect(created.updatedAt).toBeInstanceOf(Date);

    const atEcpay = sandbox.getShipment({ allPayLogisticsId: created.allPayLogisticsId })!;
    expect(atEcpay.createFields).toMatchObject({
      IsCollection: 'N',
      GoodsName: '珍珠奶茶等2件',
      SenderName: '陳大明',
      SenderCellPhone: '0911222333',
      ReceiverStoreID: '131386',
      LogisticsC2CReplyURL: input.serverReplyUrl,
    });
    expect(atEcpay.createFields).not.toHaveProperty('CollectionAmount');

    await sandbox.idle();
    const [first] = shop.verified(created.allPayLogisticsId);
    expect(first).toMatchObject({ kind: 'status', rtnCode: 300, merchantTradeNo: input.merchantTradeNo, status: { state: 'created' } });
  });

  it('create (cash on pickup, FamilyMart; Hi-Life answers 2001): CollectionAmount equals GoodsAmount', async () => {
    const fami = await client.createShipment(shipmentInput({ subType: 'FAMIC2C', receiverStoreId: '006598', cashOnPickup: true, goodsAmount: 1280 }));
    expect(fami.cvsPaymentNo).toMatch(/^\d{11}$/);
    expect(fami.cvsValidationNo).toBe('');
    expect(sandbox.getShipment({ allPayLogisticsId: fami.allPayLogisticsId })!.createFields).toMatchObject({
      IsCollection: 'Y',
      CollectionAmount: '1280',
      GoodsAmount: '1280',
    });
    expect(sandbox.getShipment({ allPayLogisticsId: fami.allPayLogisticsId })!.createFields).not.toHaveProperty('LogisticsC2CReplyURL');
    const hilife = await client.createShipment(shipmentInput({ subType: 'HILIFEC2C', receiverStoreId: '3305' }));
    expect(hilife).toMatchObject({ rtnCode: 2001, status: { state: 'created' } });
  });

  it('create: a MerchantTradeNo is used once; the second create is refused as DUPLICATE_TRADE_NO, not retryable', async () => {
    const input = shipmentInput();
    await client.createShipment(input);
    const err = await client.createShipment(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LogisticsRejectedError);
    expect(err).toMatchObject({ code: 'REJECTED', reason: 'DUPLICATE_TRADE_NO', retryable: false, rtnMsg: 'MerchantTradeNo重複' });
    expect(sandbox.shipments().filter((s) => s.merchantTradeNo === input.merchantTradeNo)).toHaveLength(1);
  });

  it('create: wrong keys are refused by ECPay (HTTP 500 0|CheckMacValue驗證錯誤) as BAD_MAC; nothing is created', async () => {
    const wrongKeys = new EcpayLogisticsClient({ config: { ...configFor(C2C, sandbox.url), hashKey: '5294y06JbISpM5x9' } });
    const before = sandbox.shipments().length;
    const err = await wrongKeys.createShipment(shipmentInput()).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'BAD_MAC', rtnMsg: 'CheckMacValue驗證錯誤', retryable: false });
    expect(sandbox.apiRequests.at(-1)).toMatchObject({ path: '/Express/Create', status: 500 });
    expect(sandbox.shipments()).toHaveLength(before);
  });

  it('create: an answer altered on the way (a drop-off code changed) fails CheckMacValue and is not believed', async () => {
    const app = express();
    app.use(express.text({ type: '*/*' }));
    app.post('/Express/Create', async (req, res) => {
      const upstream = await axios.post<string>(`${sandbox.url}/Express/Create`, req.body, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        responseType: 'text',
        transformResponse: [(d: unknown) => d],
      });
      const altered = upstream.data.replace(/CVSPaymentNo=([A-Z])(\d)/, (_m, letter: string, d: string) => `CVSPaymentNo=${letter}${(Number(d) + 1) % 10}`);
      expect(altered).not.toBe(upstream.data);
      res.type('text/html').send(altered);
    });
    const proxy = await listen(app);
    try {
      const proxied = new EcpayLogisticsClient({ config: configFor(C2C, proxy.url) });
      const err = await proxied.createShipment(shipmentInput()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ code: 'BAD_SIGNATURE', retryable: false });
    } finally {
      await closeServer(proxy.server);
    }
  });

  it('create: field rules are ECPay\'s — a closed store is refused as STORE, bad input never leaves the shop', async () => {
    sandbox.setStoreClosed('UNIMARTC2C', '244963', true);
    try {
      const err = await client.createShipment(shipmentInput({ receiverStoreId: '244963' })).catch((e: unknown) => e);
      expect(err).toMatchObject({ reason: 'STORE', retryable: false });
    } finally {
      sandbox.setStoreClosed('UNIMARTC2C', '244963', false);
    }
    const sent = sandbox.apiRequests.length;
    for (const bad of [
      { receiverName: '王小美1' },
      { receiverName: 'Mark Lee' },
      { receiverCellPhone: '0227001234' },
      { goodsName: 'Tea & <cake>' },
      { goodsAmount: 20001 },
      { goodsAmount: 12.5 },
      { receiverStoreId: '1328' },
      { subType: 'FAMI' as const },
      { merchantTradeNo: 'has-dash' },
    ]) {
      await expect(client.createShipment(shipmentInput(bad))).rejects.toThrow(RangeError);
    }
    expect(sandbox.apiRequests.length).toBe(sent);
  });

  it('create: a timeout is not retried (the outcome is unknown); querying by MerchantTradeNo finds the shipment', async () => {
    const slow = new EcpayLogisticsClient({ config: configFor(C2C, sandbox.url), timeoutMs: 200 });
    const input = shipmentInput();
    sandbox.injectDelay('/Express/Create', 600);
    const before = sandbox.apiRequests.filter((r) => r.path === '/Express/Create').length;
    const err = await slow.createShipment(input).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT', retryable: false });
    expect(sandbox.apiRequests.filter((r) => r.path === '/Express/Create').length).toBe(before + 1);
    const found = await client.queryShipment({ merchantTradeNo: input.merchantTradeNo });
    expect(found).toMatchObject({ merchantTradeNo: input.merchantTradeNo, statusCode: 300, status: { state: 'created' } });
  });

  it('an HTTP 403 pauses every call through the same gate for 30 minutes; nothing is sent meanwhile', async () => {
    const gate = new MemoryCallGate();
    const gated = new EcpayLogisticsClient({ config: configFor(C2C, sandbox.url), gate });
    sandbox.injectHttpStatus('/Helper/QueryLogisticsTradeInfo/V5', 403);
    const err = await gated.queryShipment({ allPayLogisticsId: '1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HTTP_STATUS', retryable: true, retryAfterMs: RATE_LIMIT_PAUSE_MS });
    const sent = sandbox.apiRequests.length;
    await expect(gated.createShipment(shipmentInput())).rejects.toMatchObject({ code: 'PAUSED', retryable: true });
    expect(sandbox.apiRequests.length).toBe(sent);
    expect(await gated.pausedForMs()).toBeGreaterThan(29 * 60_000);
  });

  // --------------------------------------------------------------------------------------------
  // Status notifications

  it('status: the 7-ELEVEN C2C happy path arrives signed and maps to shipped → arrived → picked up', async () => {
    const created = await client.createShipment(shipmentInput());
    await sandbox.idle();
    for (let i = 0; i < 4; i++) await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.idle();
    const seen = shop.verified(created.allPayLogisticsId).map((n) => n.kind === 'status' && [n.rtnCode, n.status.state]);
    expect(seen).toEqual([
      [300, 'created'],
      [2068, 'shipped'],
      [2030, 'shipped'],
      [2073, 'arrived_at_store'],
      [2067, 'picked_up'],
    ]);
    const last = shop.verified(created.allPayLogisticsId).at(-1)!;
    expect(last).toMatchObject({ kind: 'status', rtnMsg: '買家已到店取貨', cvsPaymentNo: created.cvsPaymentNo, cvsValidationNo: created.cvsValidationNo, goodsAmount: 280 });
    expect(last.kind === 'status' && last.updatedAt).toBeInstanceOf(Date);
    await expect(sandbox.advance(created.allPayLogisticsId, 'next')).rejects.toThrow('finished');
  });

  it('status: a notification not answered 1|OK is re-sent, unchanged, until it is', async () => {
    const created = await client.createShipment(shipmentInput({ subType: 'FAMIC2C', receiverStoreId: '001779' }));
    await sandbox.idle();
    shop.refuse.set(created.allPayLogisticsId, 2);
    const first = await sandbox.advance(created.allPayLogisticsId, 'next');
    expect(first).toMatchObject({ attempt: 1, status: 500, body: '0|busy' });
    await sandbox.idle();
    const deliveries = sandbox.notifications.filter((n) => n.allPayLogisticsId === created.allPayLogisticsId && n.fields.RtnCode === '3032');
    expect(deliveries.map((d) => [d.attempt, d.body])).toEqual([
      [1, '0|busy'],
      [2, '0|busy'],
      [3, LOGISTICS_ACK],
    ]);
    expect(new Set(deliveries.map((d) => d.fields.CheckMacValue)).size).toBe(1);
    expect(new Set(deliveries.map((d) => d.fields.UpdateStatusDate)).size).toBe(1);
  });

  it('status: a forged or altered notification is refused with 0| (and ECPay would re-send the real one)', async () => {
    const created = await client.createShipment(shipmentInput({ subType: 'OKMARTC2C', receiverStoreId: '1328' }));
    await sandbox.idle();
    const real = sandbox.notifications.find((n) => n.allPayLogisticsId === created.allPayLogisticsId)!.fields;
    const post = (fields: Record<string, string>) =>
      axios.post<string>(`${shop.url}/logistics/ecpay/notify`, new URLSearchParams(fields).toString(), { responseType: 'text' });
    expect((await post({ ...real, RtnCode: '3022' })).data).toBe('0|BAD_MAC');
    expect((await post({ ...real, CheckMacValue: 'x' })).data).toBe('0|BAD_MAC');
    const { CheckMacValue: _mac, ...unsigned } = real;
    expect((await post(unsigned)).data).toBe('0|MALFORMED');
    expect(client.verifyNotification({ ...real, RtnCode: ['3022', '300'] })).toEqual({ ok: false, reason: 'MALFORMED' });
    const otherMerchant = new EcpayLogisticsClient({ config: { ...configFor(C2C, sandbox.url), merchantId: '2000934' } });
    expect(otherMerchant.verifyNotification(real)).toEqual({ ok: false, reason: 'WRONG_MERCHANT' });
    expect((await post(real)).data).toBe(LOGISTICS_ACK);
  });

  it('status: a parcel left at the store goes back (unclaimed → back at the sender store → collected)', async () => {
    const created = await client.createShipment(shipmentInput({ subType: 'FAMIC2C', receiverStoreId: '006598' }));
    await expect(sandbox.advance(created.allPayLogisticsId, 'return')).rejects.toThrow('pickup store');
    for (let i = 0; i < 3; i++) await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.advance(created.allPayLogisticsId, 'return');
    await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.idle();
    const tail = shop.verified(created.allPayLogisticsId).slice(-4).map((n) => n.kind === 'status' && [n.rtnCode, n.status.group, n.status.terminal]);
    expect(tail).toEqual([
      [3018, 'at_store', false],
      [3020, 'unclaimed', false],
      [3019, 'returned_to_sender_store', false],
      [3023, 'return_collected', true],
    ]);
  });

  it('status: a closed 7-ELEVEN store is reported twice (status 2104 and the C2C store-change notice); UpdateStoreInfo sends it to a new store', async () => {
    const created = await client.createShipment(shipmentInput({ receiverStoreId: '896539' }));
    await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.advance(created.allPayLogisticsId, 'store-closed');
    await sandbox.idle();
    const closed = shop.verified(created.allPayLogisticsId).slice(-2);
    expect(closed.map((n) => [n.kind, n.status.state])).toEqual(
      expect.arrayContaining([
        ['status', 'store_closed'],
        ['store-change', 'store_closed'],
      ]),
    );
    expect(closed.find((n) => n.kind === 'store-change')).toMatchObject({ store: 'pickup', change: 'closed', storeId: '896539' });
    await expect(sandbox.advance(created.allPayLogisticsId, 'next')).rejects.toThrow('new store');

    const codes = { subType: 'UNIMARTC2C' as const, allPayLogisticsId: created.allPayLogisticsId, cvsPaymentNo: created.cvsPaymentNo, cvsValidationNo: created.cvsValidationNo };
    await expect(client.updateStore({ ...codes, cvsValidationNo: '0000', store: 'pickup', storeId: '131386' })).rejects.toMatchObject({ code: 'REJECTED' });
    await client.updateStore({ ...codes, store: 'pickup', storeId: '131386' });
    await sandbox.idle();
    expect(shop.verified(created.allPayLogisticsId).at(-1)).toMatchObject({ kind: 'status', rtnCode: 2105, status: { state: 'store_changed' } });
    await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.advance(created.allPayLogisticsId, 'next');
    await sandbox.idle();
    expect(shop.verified(created.allPayLogisticsId).slice(-2).map((n) => n.kind === 'status' && n.rtnCode)).toEqual([2073, 2067]);
    expect(sandbox.getShipment({ allPayLogisticsId: created.allPayLogisticsId })!.receiverStoreId).toBe('131386');
  });

  it('cancel: a 7-ELEVEN C2C shipment not yet dropped off is cancelled (9999); other chains have no cancel API', async () => {
    const created = await client.createShipment(shipmentInput());
    await client.cancelShipment({ subType: 'UNIMARTC2C', allPayLogisticsId: created.allPayLogisticsId, cvsPaymentNo: created.cvsPaymentNo, cvsValidationNo: created.cvsValidationNo });
    await sandbox.idle();
    expect(shop.verified(created.allPayLogisticsId).at(-1)).toMatchObject({ rtnCode: 9999, status: { state: 'cancelled', terminal: true } });
    await expect(client.cancelShipment({ subType: 'FAMIC2C', allPayLogisticsId: '1', cvsPaymentNo: '1' })).rejects.toThrow(RangeError);
  });

  // --------------------------------------------------------------------------------------------
  // Query, print

  it('query: by AllPayLogisticsID or MerchantTradeNo, the verified state; COD payout after pickup', async () => {
    const input = shipmentInput({ subType: 'OKMARTC2C', receiverStoreId: '1328', cashOnPickup: true, goodsAmount: 1000 });
    const created = await client.createShipment(input);
    for (let i = 0; i < 4; i++) await sandbox.advance(created.allPayLogisticsId, 'next');
    const info = await client.queryShipment({ allPayLogisticsId: created.allPayLogisticsId });
    expect(info).toMatchObject({
      allPayLogisticsId: created.allPayLogisticsId,
      merchantTradeNo: input.merchantTradeNo,
      logisticsType: 'CVS',
      subType: 'OKMARTC2C',
      goodsAmount: 1000,
      statusCode: 3022,
      status: { state: 'picked_up', terminal: true },
      handlingCharge: 65,
      collectionAmount: 1000,
      collectionAllocateAmount: 1000 - 65 - 8,
      cvsPaymentNo: created.cvsPaymentNo,
    });
    expect(info.collectionAllocateDate).toMatch(/^\d{4}\/\d{2}\/\d{2}$/);
    expect((await client.queryShipment({ merchantTradeNo: input.merchantTradeNo })).allPayLogisticsId).toBe(created.allPayLogisticsId);
  });

  it('query: an unknown shipment is NOT_FOUND; a clock more than 3 minutes off gets TIMESTAMP (retryable)', async () => {
    await expect(client.queryShipment({ merchantTradeNo: 'NOSUCHSHIPMENT1' })).rejects.toMatchObject({ reason: 'NOT_FOUND', retryable: false });
    const late = new EcpayLogisticsClient({ config: configFor(C2C, sandbox.url), now: () => new Date(Date.now() - 10 * 60_000) });
    await expect(late.queryShipment({ allPayLogisticsId: '1' })).rejects.toMatchObject({ reason: 'TIMESTAMP', retryable: true });
  });

  it('print: the signed label form opens the chain\'s print page with the drop-off code', async () => {
    const created = await client.createShipment(shipmentInput());
    const form = client.printForm({ subType: 'UNIMARTC2C', allPayLogisticsId: created.allPayLogisticsId, cvsPaymentNo: created.cvsPaymentNo, cvsValidationNo: created.cvsValidationNo });
    expect(form.action).toBe(`${sandbox.url}/Express/PrintUniMartC2COrderInfo`);
    const label = await browserPost(form.action, form.fields);
    expect(label.html).toContain(created.cvsPaymentNo);
    expect(label.html).toContain(created.cvsValidationNo);
    expect(formAction(client.renderFormPage(form, 'print'), 'ecpay-print')).toBe(form.action);
    const forged = await browserPost(form.action, { ...form.fields, CVSPaymentNo: 'C0000000' });
    expect(forged.status).toBe(500);
  });

  it('B2C account: B2C sub-types only; no drop-off code, the shipment number comes from Query', async () => {
    const b2c = new EcpayLogisticsClient({ config: configFor(B2C, sandbox.url) });
    const received: ReturnType<EcpayLogisticsClient['verifyNotification']>[] = [];
    const app = express();
    app.use(express.urlencoded({ extended: false }));
    app.post('/notify', (req, res) => {
      received.push(b2c.verifyNotification(req.body));
      res.type('text/plain').send(LOGISTICS_ACK);
    });
    const b2cShop = await listen(app);
    try {
      const created = await b2c.createShipment(shipmentInput({ subType: 'UNIMART', receiverStoreId: '131386', serverReplyUrl: `${b2cShop.url}/notify` }));
      expect(created).toMatchObject({ cvsPaymentNo: '', cvsValidationNo: '', rtnCode: 300 });
      const info = await b2c.queryShipment({ allPayLogisticsId: created.allPayLogisticsId });
      expect(info.shipmentNo).toMatch(/^\d{11}$/);
      expect(info.subType).toBe('UNIMART');
      await sandbox.advance(created.allPayLogisticsId, 'next');
      await sandbox.idle();
      expect(received.map((v) => v.ok && v.notification.kind === 'status' && [v.notification.rtnCode, v.notification.status.state])).toEqual([
        [300, 'created'],
        [310, 'created'],
      ]);
    } finally {
      await closeServer(b2cShop.server);
    }
    const onC2c = new EcpayLogisticsClient({ config: configFor(C2C, sandbox.url, ['UNIMART']) });
    await expect(onC2c.createShipment(shipmentInput({ subType: 'UNIMART' }))).rejects.toMatchObject({ reason: 'OTHER', rtnMsg: 'LogisticsSubType Error' });
  });

  it('the index page lists shipments and its buttons move them, notifying the shop', async () => {
    const created = await client.createShipment(shipmentInput({ subType: 'HILIFEC2C', receiverStoreId: '2751' }));
    await sandbox.idle();
    const index = await axios.get<string>(`${sandbox.url}/`, { responseType: 'text' });
    expect(index.data).toContain(created.allPayLogisticsId);
    expect(index.data).toContain('→ 賣家已到門市寄件');
    const moved = await axios.post(`${sandbox.url}/sandbox/shipments/${created.allPayLogisticsId}/next`, '', { maxRedirects: 0, validateStatus: () => true });
    expect(moved.status).toBe(303);
    await sandbox.idle();
    expect(shop.verified(created.allPayLogisticsId).at(-1)).toMatchObject({ rtnCode: 3032, status: { state: 'shipped' } });
  });
});
