import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Config, parseConfig } from '../../src/config';
import { Container, createContainer } from '../../src/container';
import { startWorkers } from '../../src/jobs/worker';
import { silentLogger } from '../../src/logger';
import { seedDemoCatalog } from '../../src/data/seed';
import { startEcpaySandbox, EcpaySandbox } from '../../src/sandbox/ecpay-sandbox';
import { startEcpayLogisticsSandbox, EcpayLogisticsSandbox } from '../../src/sandbox/ecpay-logistics-sandbox';
import { startLineApiDouble, LineApiDouble } from '../../src/sandbox/line-api-double';
import { startSinopacSandbox, SinopacSandbox } from '../../src/sandbox/sinopac-sandbox';
import { createApp } from '../../src/web/app';
import { createTestDb, dropQueueKeys, TestDb, testQueuePrefix } from './test-db';

export const CHANNEL_SECRET = 'test-channel-secret-0123456789ab';
export const ACCESS_TOKEN = 'test-access-token';
export const SINOPAC_SHOP = {
  shopNo: 'NA0249_001',
  hashA1: '86D50DEF3EB7400E',
  hashA2: '01FD27C09E5549E5',
  hashB1: '9E004965F4244953',
  hashB2: '7FB3385F414E4F91',
  keyId: 'b5e6986d-8636-4aa0-8c93-441ad14b2098',
};
/** ECPay logistics' public C2C stage account (specs/ecpay-logistics.md §2). */
export const LOGISTICS_MERCHANT = { merchantId: '2000933', hashKey: 'XBERn1YOvpM9nfZc', hashIv: 'h1ONHk4P4yqbl5LK', kind: 'C2C' as const };
export const ECPAY_MERCHANT = { merchantId: '3002607', hashKey: 'pwFHCqoQZGmho4w6', hashIv: 'EkRm7iFT261dpevs', creditCheckCode: '25834791' };

/**
 * The clock of the ECPay sandbox and of the shop's ECPay calls (QueryTradeInfo TimeStamp, the daily
 * capture at 20:15 Taipei): real time shifted by an offset, so a test can stand at a given Taipei
 * time of day and let time run on from there.
 */
export class TestClock {
  private offsetMs = 0;
  readonly now = (): Date => new Date(Date.now() + this.offsetMs);
  set(at: Date): void {
    this.offsetMs = at.getTime() - Date.now();
  }
  reset(): void {
    this.offsetMs = 0;
  }
}

/** Today's date in Asia/Taipei (plus dayOffset days) at hh:mm Taipei time. */
export function taipeiAt(hhmm: string, dayOffset = 0): Date {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  const day = Math.floor((Date.now() + 8 * 3600_000) / 86_400_000) + dayOffset;
  return new Date(day * 86_400_000 + (h * 60 + m) * 60_000 - 8 * 3600_000);
}

export const newUserId = () => 'U' + crypto.randomBytes(16).toString('hex');

export function sign(body: string, secret = CHANNEL_SECRET): string {
  return crypto.createHmac('sha256', secret).update(body).digest('base64');
}

let eventSeq = 0;
export const newEventId = () => `01TEST${Date.now().toString(36).toUpperCase()}${(eventSeq++).toString(36).toUpperCase()}${crypto.randomBytes(4).toString('hex').toUpperCase()}`;

/** A webhook event as the tests build it: LINE's JSON shape, loosely typed. */
export type TestEvent = { webhookEventId: string; [key: string]: unknown };

export interface ShopOptions {
  label: string;
  sinopac?: boolean;
  ecpay?: boolean;
  workers?: boolean;
  owners?: string[];
  env?: Record<string, string>;
  /** Start the ECPay logistics sandbox (C2C stage account) and configure store pickup. */
  logistics?: boolean;
  seed?: boolean;
  poolMax?: number;
  /** Use an existing database instead of creating one. */
  testDb?: TestDb;
}

export interface TestShop {
  tdb: TestDb;
  config: Config;
  c: Container;
  url: string;
  line: LineApiDouble;
  sinopac: SinopacSandbox | null;
  ecpay: EcpaySandbox | null;
  logistics: EcpayLogisticsSandbox | null;
  /** Shared by the ECPay sandbox and the shop's ECPay gateway. */
  ecpayClock: TestClock;
  stopWorkers(): Promise<void>;
  startWorkers(): Promise<void>;
  post(body: string, signature?: string | null): Promise<{ status: number; body: string }>;
  sendEvents(events: object[]): Promise<number>;
  textEvent(userId: string, text: string, opts?: { eventId?: string; redelivery?: boolean }): TestEvent;
  postbackEvent(userId: string, data: string, opts?: { eventId?: string }): TestEvent;
  say(userId: string, text: string): Promise<string>;
  tap(userId: string, data: string): Promise<string>;
  close(): Promise<void>;
}

export async function waitFor<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, what: string, timeoutMs = 15000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Counts rows of a table matching a where clause. */
export async function count(c: Container, table: string, where: Record<string, unknown> = {}): Promise<number> {
  const [{ n }] = await c.db(table).where(where).count<{ n: number }[]>({ n: '*' });
  return Number(n);
}

export async function startShop(o: ShopOptions): Promise<TestShop> {
  const tdb = o.testDb ?? (await createTestDb(o.label, o.poolMax ?? 10));
  if (o.seed !== false) await seedDemoCatalog(tdb.db);
  const line = await startLineApiDouble({ channelAccessToken: ACCESS_TOKEN });
  const sinopac = o.sinopac ? await startSinopacSandbox({ shops: [SINOPAC_SHOP], notifyRetryDelaysMs: [300, 600, 1000, 2000, 3000] }) : null;
  const ecpayClock = new TestClock();
  const logistics = o.logistics ? await startEcpayLogisticsSandbox({ merchants: [LOGISTICS_MERCHANT], notifyRetryDelaysMs: [300, 600, 1000] }) : null;
  const ecpay = o.ecpay ? await startEcpaySandbox({ merchants: [ECPAY_MERCHANT], notifyRetryDelaysMs: [300, 600, 1000, 2000], now: ecpayClock.now }) : null;

  let handler: http.RequestListener = (_req, res) => res.end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const env: Record<string, string> = {
    DATABASE_URL: tdb.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    PUBLIC_BASE_URL: url,
    QUEUE_PREFIX: testQueuePrefix(o.label),
    LOG_LEVEL: 'silent',
    LINE_CHANNEL_SECRET: CHANNEL_SECRET,
    LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
    LINE_API_BASE_URL: line.url,
    LINE_DATA_API_BASE_URL: line.dataUrl,
    SHOP_OWNER_LINE_USER_IDS: (o.owners ?? []).join(','),
    // Tests of other features keep their amounts: no delivery fee unless a test sets one.
    SHIPPING_HOME_FEE: '0',
    SHIPPING_CVS_FEE: '0',
    ...(logistics
      ? {
          ECPAY_LOGISTICS_MERCHANT_ID: LOGISTICS_MERCHANT.merchantId,
          ECPAY_LOGISTICS_HASH_KEY: LOGISTICS_MERCHANT.hashKey,
          ECPAY_LOGISTICS_HASH_IV: LOGISTICS_MERCHANT.hashIv,
          ECPAY_LOGISTICS_SENDER_NAME: '陳大明',
          ECPAY_LOGISTICS_SENDER_CELLPHONE: '0911222333',
          ECPAY_LOGISTICS_API_BASE_URL: logistics.url,
        }
      : {}),
    ...(sinopac
      ? {
          SINOPAC_SHOP_NO: SINOPAC_SHOP.shopNo,
          SINOPAC_HASH_A1: SINOPAC_SHOP.hashA1,
          SINOPAC_HASH_A2: SINOPAC_SHOP.hashA2,
          SINOPAC_HASH_B1: SINOPAC_SHOP.hashB1,
          SINOPAC_HASH_B2: SINOPAC_SHOP.hashB2,
          SINOPAC_KEY_ID: SINOPAC_SHOP.keyId,
          SINOPAC_API_BASE_URL: sinopac.apiBaseUrl,
        }
      : {}),
    ...(ecpay
      ? {
          ECPAY_MERCHANT_ID: ECPAY_MERCHANT.merchantId,
          ECPAY_HASH_KEY: ECPAY_MERCHANT.hashKey,
          ECPAY_HASH_IV: ECPAY_MERCHANT.hashIv,
          ECPAY_API_BASE_URL: ecpay.url,
          ECPAY_CREDIT_CHECK_CODE: ECPAY_MERCHANT.creditCheckCode,
        }
      : {}),
    ...o.env,
  };
  const config = parseConfig(env);
  const c = createContainer(config, { log: silentLogger, db: tdb.db, lineTimeoutMs: 2000, gatewayTimeoutMs: 2000, ecpayNow: ecpayClock.now });
  const app = createApp(c);
  handler = app as unknown as http.RequestListener;

  let workers: Awaited<ReturnType<typeof startWorkers>> | null = null;
  const shop: TestShop = {
    tdb, config, c, url, line, sinopac, ecpay, logistics, ecpayClock,
    async startWorkers() {
      if (!workers) workers = await startWorkers(c, { sweepEveryMs: 400, sweepGraceMs: 300, concurrency: 4 });
    },
    async stopWorkers() {
      if (workers) await workers.close();
      workers = null;
    },
    async post(body, signature) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (signature !== null) headers['x-line-signature'] = signature ?? sign(body);
      const res = await fetch(`${url}/webhook/line`, { method: 'POST', headers, body });
      return { status: res.status, body: await res.text() };
    },
    async sendEvents(events) {
      const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events });
      return (await shop.post(body)).status;
    },
    textEvent(userId, text, opts = {}) {
      return {
        type: 'message',
        mode: 'active',
        timestamp: Date.now(),
        source: { type: 'user', userId },
        webhookEventId: opts.eventId ?? newEventId(),
        deliveryContext: { isRedelivery: opts.redelivery ?? false },
        replyToken: line.issueReplyToken(userId),
        message: { type: 'text', id: String(Date.now()), quoteToken: 'q', text },
      };
    },
    postbackEvent(userId, data, opts = {}) {
      return {
        type: 'postback',
        mode: 'active',
        timestamp: Date.now(),
        source: { type: 'user', userId },
        webhookEventId: opts.eventId ?? newEventId(),
        deliveryContext: { isRedelivery: false },
        replyToken: line.issueReplyToken(userId),
        postback: { data },
      };
    },
    async say(userId, text) {
      const e = shop.textEvent(userId, text);
      const status = await shop.sendEvents([e]);
      if (status !== 200) throw new Error(`webhook answered ${status}`);
      return e.webhookEventId;
    },
    async tap(userId, data) {
      const e = shop.postbackEvent(userId, data);
      const status = await shop.sendEvents([e]);
      if (status !== 200) throw new Error(`webhook answered ${status}`);
      return e.webhookEventId;
    },
    async close() {
      await shop.stopWorkers();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await c.close();
      await line.close();
      await sinopac?.close();
      await ecpay?.close();
      await logistics?.close();
      if (!o.testDb) await tdb.destroy();
      await dropQueueKeys(config.queuePrefix, env.REDIS_URL);
    },
  };
  if (o.workers !== false) await shop.startWorkers();
  return shop;
}

/** Waits until the event with this webhookEventId was processed and its messages delivered. */
export async function settled(shop: TestShop, webhookEventId: string, timeoutMs = 15000): Promise<void> {
  await waitFor(async () => {
    const e = await shop.c.db('line_events').where({ webhook_event_id: webhookEventId }).first('processed_at');
    if (!e?.processed_at) return false;
    const pending = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(pending[0]!.n) === 0;
  }, `event ${webhookEventId} settled`, timeoutMs);
}
