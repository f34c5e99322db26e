import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { seedDemoCatalog } from '../../src/data/seed';
import { eventReplyKey } from '../../src/line/delivery';
import { startEcpaySandbox, EcpaySandbox } from '../../src/sandbox/ecpay-sandbox';
import { startLineApiDouble, LineApiDouble } from '../../src/sandbox/line-api-double';
import { startSinopacSandbox, SinopacSandbox } from '../../src/sandbox/sinopac-sandbox';
import { exitOf, freePort } from './child-process';
import { hiddenInputs } from './html-forms';
import { ecpayCheckout } from './members';
import { ACCESS_TOKEN, CHANNEL_SECRET, ECPAY_MERCHANT, newEventId, sign, SINOPAC_SHOP, TestEvent, waitFor } from './shop';
import { setStock } from './stock';
import { createTestDb, dropQueueKeys, TestDb, testQueuePrefix } from './test-db';

/**
 * The shop as production runs it: web and worker as separate processes of the built entry points
 * (`dist/src/main/web.js`, `worker.js`; `npm run build` first), on one PostgreSQL database and one
 * Redis prefix. The LINE API double and the bank sandboxes run in the test process; the test posts
 * signed webhooks to the web processes as LINE does.
 */
const ROOT = path.resolve(__dirname, '../..');
export const dist = (p: string) => path.join(ROOT, 'dist/src', p);

/** Deterministic random numbers (mulberry32), so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ProcShopOptions {
  label: string;
  webs: number;
  workers: number;
  owner: string;
  /** SKU → stock on hand at the start. */
  stock: Record<string, number>;
  /** Extra environment for the worker processes. */
  workerEnv?: Record<string, string>;
}

/** The sum of a Prometheus counter's series (all labels) in a /metrics text, optionally only series whose labels contain `labels`. */
export async function counterSum(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m && (m[1] ?? '').includes(labels)) sum += Number(m[2]);
  }
  return sum;
}

export interface WebProc {
  url: string;
  proc: ChildProcess;
}

export interface ProcShop {
  tdb: TestDb;
  prefix: string;
  line: LineApiDouble;
  sinopac: SinopacSandbox;
  ecpay: EcpaySandbox;
  webs: WebProc[];
  workers: ChildProcess[];
  /** `http://127.0.0.1:<WORKER_METRICS_PORT>` of each worker started with one (the first ones), in order. */
  workerMetricsUrls: string[];
  /** Output of every process this shop started (pino JSON lines at LOG_LEVEL=error, and anything on stderr). */
  logs(): string;
  startWorker(webIndex?: number, metricsPort?: number): ChildProcess;
  /** SIGKILL (no goodbye) and wait until the process is gone. */
  kill(p: ChildProcess): Promise<void>;
  textEvent(user: string, text: string): TestEvent;
  postbackEvent(user: string, data: string): TestEvent;
  /** Posts one signed webhook carrying `events` to web process `web` (round-robin when omitted); the HTTP status. */
  send(events: TestEvent[], web?: number): Promise<number>;
  close(): Promise<void>;
}

function baseEnv(o: { tdb: TestDb; prefix: string; line: LineApiDouble; sinopac: SinopacSandbox; ecpay: EcpaySandbox; owner: string }): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: o.tdb.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: o.prefix,
    LOG_LEVEL: 'error',
    LINE_CHANNEL_SECRET: CHANNEL_SECRET,
    LINE_CHANNEL_ACCESS_TOKEN: ACCESS_TOKEN,
    LINE_API_BASE_URL: o.line.url,
    LINE_DATA_API_BASE_URL: o.line.dataUrl,
    SHOP_OWNER_LINE_USER_IDS: o.owner,
    SINOPAC_SHOP_NO: SINOPAC_SHOP.shopNo,
    SINOPAC_HASH_A1: SINOPAC_SHOP.hashA1,
    SINOPAC_HASH_A2: SINOPAC_SHOP.hashA2,
    SINOPAC_HASH_B1: SINOPAC_SHOP.hashB1,
    SINOPAC_HASH_B2: SINOPAC_SHOP.hashB2,
    SINOPAC_KEY_ID: SINOPAC_SHOP.keyId,
    SINOPAC_API_BASE_URL: o.sinopac.apiBaseUrl,
    ECPAY_MERCHANT_ID: ECPAY_MERCHANT.merchantId,
    ECPAY_HASH_KEY: ECPAY_MERCHANT.hashKey,
    ECPAY_HASH_IV: ECPAY_MERCHANT.hashIv,
    ECPAY_API_BASE_URL: o.ecpay.url,
    ECPAY_CREDIT_CHECK_CODE: ECPAY_MERCHANT.creditCheckCode,
  };
}

export async function startProcShop(o: ProcShopOptions): Promise<ProcShop> {
  const tdb = await createTestDb(o.label, 4);
  await seedDemoCatalog(tdb.db);
  for (const [sku, qty] of Object.entries(o.stock)) await setStock(tdb.db, sku, qty);
  const prefix = testQueuePrefix(o.label);
  const line = await startLineApiDouble({ channelAccessToken: ACCESS_TOKEN });
  const sinopac = await startSinopacSandbox({ shops: [SINOPAC_SHOP], notifyRetryDelaysMs: [300, 600, 1000, 2000, 3000] });
  const ecpay = await startEcpaySandbox({ merchants: [ECPAY_MERCHANT], notifyRetryDelaysMs: [300, 600, 1000, 2000] });
  const env = baseEnv({ tdb, prefix, line, sinopac, ecpay, owner: o.owner });
  let logs = '';
  const all: ChildProcess[] = [];
  const spawnProc = (script: string, extra: Record<string, string>) => {
    const p = spawn(process.execPath, [dist(script)], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (d) => (logs += d));
    p.stderr!.on('data', (d) => (logs += d));
    all.push(p);
    return p;
  };

  const webs: WebProc[] = [];
  for (let i = 0; i < o.webs; i++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // Each web names itself in the bank's callback URLs (ECPay's checkout form is rendered by the web).
    webs.push({ url, proc: spawnProc('main/web.js', { PORT: String(port), PUBLIC_BASE_URL: url }) });
  }
  const workers: ChildProcess[] = [];
  let workerSeq = 0;
  const workerMetricsUrls: string[] = [];
  const startWorker = (webIndex?: number, metricsPort?: number) => {
    // A worker names a web in the callback URLs of the trades it creates: spread them over the webs.
    const web = webs[(webIndex ?? workerSeq++) % webs.length]!;
    const p = spawnProc('main/worker.js', { PUBLIC_BASE_URL: web.url, ...(metricsPort ? { WORKER_METRICS_PORT: String(metricsPort) } : {}), ...o.workerEnv });
    if (metricsPort) workerMetricsUrls.push(`http://127.0.0.1:${metricsPort}`);
    workers.push(p);
    return p;
  };
  for (let i = 0; i < o.workers; i++) startWorker(undefined, await freePort());
  for (const w of webs) await waitFor(() => fetch(`${w.url}/readyz`).then((r) => r.status === 200, () => false), `web ${w.url} ready`, 30_000);

  let rr = 0;
  const shop: ProcShop = {
    tdb, prefix, line, sinopac, ecpay, webs, workers, workerMetricsUrls,
    logs: () => logs,
    startWorker,
    async kill(p) {
      p.kill('SIGKILL');
      await exitOf(p);
    },
    textEvent(user, text) {
      return {
        type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user },
        webhookEventId: newEventId(), deliveryContext: { isRedelivery: false },
        replyToken: line.issueReplyToken(user),
        message: { type: 'text', id: String(Date.now()), quoteToken: 'q', text },
      };
    },
    postbackEvent(user, data) {
      return {
        type: 'postback', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user },
        webhookEventId: newEventId(), deliveryContext: { isRedelivery: false },
        replyToken: line.issueReplyToken(user),
        postback: { data },
      };
    },
    async send(events, web) {
      const target = webs[(web ?? rr++) % webs.length]!;
      const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events });
      const res = await fetch(`${target.url}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': sign(body) }, body });
      await res.arrayBuffer();
      return res.status;
    },
    async close() {
      for (const p of all) p.kill('SIGKILL');
      await Promise.all(all.map(exitOf));
      await line.close();
      await sinopac.close();
      await ecpay.close();
      await tdb.destroy();
      await dropQueueKeys(prefix);
    },
  };
  return shop;
}

/**
 * Resolves events once the worker processed them (line_events.processed_at), with one query per
 * 100 ms for all waiting shoppers rather than one each.
 */
export class ProcessedWatcher {
  private readonly waiting = new Map<string, Array<() => void>>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  constructor(private readonly shop: ProcShop) {}

  processed(webhookEventId: string, timeoutMs = 60_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`event ${webhookEventId} not processed within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiting.get(webhookEventId) ?? [];
      list.push(() => {
        clearTimeout(t);
        resolve();
      });
      this.waiting.set(webhookEventId, list);
      this.timer ??= setInterval(() => void this.poll(), 100);
    });
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const ids = [...this.waiting.keys()];
      if (ids.length === 0) return;
      const rows = await this.shop.tdb.db('line_events').whereIn('webhook_event_id', ids).whereNotNull('processed_at').pluck('webhook_event_id');
      for (const id of rows as string[]) {
        for (const f of this.waiting.get(id) ?? []) f();
        this.waiting.delete(id);
      }
    } catch {
      // Polled again in 100 ms.
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** A shopper's chat as the tests drive it: every event is sent, then awaited like a person waiting for the answer. */
export class Shopper {
  readonly events: TestEvent[] = [];
  constructor(readonly user: string, private readonly shop: ProcShop, private readonly watcher: ProcessedWatcher, private readonly web?: () => number) {}

  async deliver(e: TestEvent): Promise<string> {
    this.events.push(e);
    // LINE redelivers a webhook that was not answered 2xx; so does this shopper's "LINE".
    for (let i = 0; ; i++) {
      const status = await this.shop.send([e], this.web?.());
      if (status === 200) break;
      if (i >= 10) throw new Error(`webhook answered ${status} ten times`);
      await sleep(300);
    }
    await this.watcher.processed(e.webhookEventId);
    return e.webhookEventId;
  }
  say(text: string): Promise<string> {
    return this.deliver(this.shop.textEvent(this.user, text));
  }
  tap(data: string): Promise<string> {
    return this.deliver(this.shop.postbackEvent(this.user, data));
  }
  /** LINE delivering one of this shopper's events again (same webhookEventId, `isRedelivery`), to web `web`. */
  async redeliver(e: TestEvent, web?: number): Promise<number> {
    return this.shop.send([{ ...e, deliveryContext: { isRedelivery: true } }], web);
  }
  async latestOrder(): Promise<{ id: number; order_no: string; status: string; total: number } | undefined> {
    return this.shop.tdb.db('orders').where({ line_user_id: this.user }).orderBy('id', 'desc').first('id', 'order_no', 'status', 'total');
  }
}

/**
 * Home delivery chosen as a shopper does it: taps 宅配 for the order in the chat, opens the page
 * link of the answer (on the web its worker names) and saves the form there. Payment methods are
 * offered only after this.
 */
export async function chooseHomeDelivery(shop: ProcShop, s: Shopper, orderNo: string): Promise<void> {
  const eventId = await s.tap(`action=dlv&o=${orderNo}&m=home`);
  const row = await shop.tdb.db('outbox_messages').where({ dedupe_key: eventReplyKey(eventId) }).first('messages');
  const link = /"(http:\/\/127\.0\.0\.1:\d+\/delivery\/[A-Za-z0-9_-]+)"/.exec(JSON.stringify(row?.messages ?? null));
  if (!link) throw new Error(`no delivery page link in the answer to ${eventId}`);
  const url = link[1]!;
  const page = await fetch(url);
  const html = await page.text();
  if (page.status !== 200) throw new Error(`delivery page answered ${page.status}`);
  const fields = { _csrf: hiddenInputs(html)._csrf ?? '', op: 'save', key: 'home', name: '王小美', phone: '0912345678', zip: '110', address: '台北市信義區市府路1號' };
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin },
    body: new URLSearchParams(fields).toString(),
  });
  await res.arrayBuffer();
  if (res.status !== 303) throw new Error(`saving the delivery page answered ${res.status}`);
}

/** The attempt a pay tap (event) created. */
export async function attemptOf(shop: ProcShop, eventId: string): Promise<{ id: number; trade_no: string; public_ref: string; method: string } | undefined> {
  return shop.tdb.db('payment_attempts').where({ request_key: eventId }).first('id', 'trade_no', 'public_ref', 'method');
}

/** Pays an attempt at its bank's sandbox as the shopper would (ECPay: through the checkout page the web renders). */
export async function payAtBank(shop: ProcShop, attempt: { trade_no: string; public_ref: string; method: string }, web = 0): Promise<string> {
  switch (attempt.method) {
    case 'sinopac-atm':
      if (!(await shop.sinopac.payAtm(attempt.trade_no).delivered)) throw new Error('SinoPac could not notify');
      return attempt.trade_no;
    case 'sinopac-card':
      if (!(await shop.sinopac.payCard(attempt.trade_no).delivered)) throw new Error('SinoPac could not notify');
      return attempt.trade_no;
    case 'ecpay-credit':
    case 'ecpay-atm':
    case 'ecpay-cvs': {
      const tradeNo = await ecpayCheckout(`${shop.webs[web % shop.webs.length]!.url}/payments/ecpay/checkout/${attempt.public_ref}`);
      await shop.ecpay.pay(tradeNo, attempt.method === 'ecpay-cvs' ? { simulatePaid: true } : {});
      return tradeNo;
    }
    default:
      throw new Error(`no bank for ${attempt.method}`);
  }
}

/** Waits until nothing is left to do: every event processed, every bank notification handled, every message settled. */
export async function quiescent(shop: ProcShop, timeoutMs: number): Promise<{ waitedMs: number; pending: string }> {
  const t0 = Date.now();
  await shop.ecpay.idle();
  const db = shop.tdb.db;
  // What was still pending 3 s into the wait, if anything: names what a slow settlement waited for.
  let pending = '';
  await waitFor(async () => {
    const n = async (q: ReturnType<typeof db>) => Number((await q.count<{ n: number }[]>({ n: '*' }))[0]!.n);
    const events = await n(db('line_events').whereNull('processed_at').whereNull('failed_at'));
    const notes = await n(db('payment_notifications').whereNull('processed_at'));
    const out = await n(db('outbox_messages').whereIn('status', ['pending', 'sending']));
    if (!pending && Date.now() - t0 > 3000) {
      const which = await db('payment_notifications').whereNull('processed_at').select('provider', 'kind');
      pending = `${events} events, ${notes} bank notifications${which.length ? ` (${which.map((w) => `${w.provider} ${w.kind}`).join(', ')})` : ''}, ${out} messages`;
    }
    return events + notes + out === 0;
  }, 'every event, bank notification and message settled', timeoutMs);
  return { waitedMs: Date.now() - t0, pending };
}

interface Req {
  at: Date;
  path: string;
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * The exactly-once checks, counted at the LINE API double:
 * - every event sent was stored once, processed, not failed, and answered exactly once (an
 *   accepted reply with its token, or an accepted push of its reply row's retry key);
 * - every accepted push has a retry key of its own, and no recipient got the same content pushed twice;
 * - every outbox message is sent and was accepted by LINE exactly once.
 * Returns counts for the test's log.
 */
export async function expectExactlyOnce(shop: ProcShop, events: TestEvent[]): Promise<{ events: number; replies: number; pushes: number; answerMs: { p50: number; p99: number; max: number } }> {
  const db = shop.tdb.db;
  const ids = [...new Set(events.map((e) => e.webhookEventId))];
  const reqs = shop.line.requests as unknown as Req[];
  const accepted = (p: string) => reqs.filter((r) => r.path === p && r.status === 200);
  const replies = accepted('/v2/bot/message/reply');
  const pushes = accepted('/v2/bot/message/push');
  const repliesByToken = new Map<string, number>();
  const replyAt = new Map<string, number>();
  for (const r of replies) {
    const t = (r.body as { replyToken: string }).replyToken;
    repliesByToken.set(t, (repliesByToken.get(t) ?? 0) + 1);
    replyAt.set(t, r.at.getTime());
  }
  const pushesByKey = new Map<string, Req[]>();
  for (const p of pushes) {
    const k = p.headers['x-line-retry-key'] ?? '(none)';
    pushesByKey.set(k, [...(pushesByKey.get(k) ?? []), p]);
  }

  const stored = await db('line_events').whereIn('webhook_event_id', ids).select('webhook_event_id', 'processed_at', 'failed_at');
  const problems: string[] = [];
  if (stored.length !== ids.length) problems.push(`${ids.length} events sent, ${stored.length} stored`);
  for (const s of stored) if (!s.processed_at || s.failed_at) problems.push(`event ${s.webhook_event_id} not processed (failed: ${Boolean(s.failed_at)})`);
  const rows = await db('outbox_messages').whereIn('dedupe_key', ids.map(eventReplyKey)).select('dedupe_key', 'status', 'retry_key', 'delivered_via', 'reply_unclear', 'attempts');
  const rowByKey = new Map(rows.map((r) => [r.dedupe_key as string, r]));
  const tokenOf = new Map(events.map((e) => [e.webhookEventId, e.replyToken as string]));
  const sentAt = new Map(events.map((e) => [e.webhookEventId, e.timestamp as number]));
  const latencies: number[] = [];
  for (const id of ids) {
    const row = rowByKey.get(eventReplyKey(id));
    if (!row) {
      problems.push(`event ${id}: no reply written`);
      continue;
    }
    const n = (repliesByToken.get(tokenOf.get(id)!) ?? 0) + (pushesByKey.get(row.retry_key)?.length ?? 0);
    if (row.status !== 'sent' || n !== 1) {
      const ages = reqs
        .filter((r) => (r.path === '/v2/bot/message/reply' && (r.body as { replyToken?: string }).replyToken === tokenOf.get(id)) || r.headers['x-line-retry-key'] === row.retry_key)
        .map((r) => `${r.path.split('/').pop()} ${r.status} at +${r.at.getTime() - sentAt.get(id)!} ms`);
      problems.push(`event ${id}: reply ${row.status} via ${row.delivered_via} (unclear: ${row.reply_unclear}, attempts ${row.attempts}), answered ${n} times: ${ages.join(', ')}`);
    }
    const at = replyAt.get(tokenOf.get(id)!) ?? pushesByKey.get(row.retry_key)?.[0]?.at.getTime();
    if (at !== undefined) latencies.push(at - sentAt.get(id)!);
  }
  for (const [k, list] of pushesByKey) if (list.length !== 1) problems.push(`retry key ${k}: ${list.length} accepted pushes`);
  const byContent = new Map<string, number>();
  for (const p of pushes) {
    const b = p.body as { to: string; messages: unknown };
    const k = `${b.to} ${JSON.stringify(b.messages)}`;
    byContent.set(k, (byContent.get(k) ?? 0) + 1);
  }
  for (const [k, n] of byContent) if (n !== 1) problems.push(`pushed ${n} times: ${k.slice(0, 160)}`);
  // Every try of one push (whatever LINE answered: 429, 500, a timeout, 409) carried one retry key.
  const keysByContent = new Map<string, Set<string>>();
  for (const p of reqs.filter((r) => r.path === '/v2/bot/message/push')) {
    const b = p.body as { to: string; messages: unknown };
    const k = `${b.to} ${JSON.stringify(b.messages)}`;
    keysByContent.set(k, (keysByContent.get(k) ?? new Set()).add(p.headers['x-line-retry-key'] ?? '(none)'));
  }
  for (const [k, set] of keysByContent) if (set.size !== 1) problems.push(`one push tried under ${set.size} retry keys: ${k.slice(0, 160)}`);
  const notSent = await db('outbox_messages').whereNot('status', 'sent').select('id', 'kind', 'status', 'last_status');
  for (const r of notSent) problems.push(`outbox ${r.id} (${r.kind}) is ${r.status} (last status ${r.last_status})`);
  // Every message LINE accepted is one outbox row (pushes by retry key; replies by token, one row each).
  const keys = new Set((await db('outbox_messages').whereNotNull('retry_key').pluck('retry_key')) as string[]);
  for (const k of pushesByKey.keys()) if (!keys.has(k)) problems.push(`a push with retry key ${k} that no outbox row has`);
  expect(problems).toEqual([]);
  latencies.sort((a, b) => a - b);
  const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))] ?? 0;
  return { events: ids.length, replies: replies.length, pushes: pushes.length, answerMs: { p50: q(0.5), p99: q(0.99), max: latencies.at(-1) ?? 0 } };
}

/** Per order that should be paid: paid once (one history row, one paid attempt), one receipt to the shopper and one notice to the owner. */
export async function expectPaidOnce(shop: ProcShop, paid: Array<{ user: string; orderNo: string }>, owner: string): Promise<void> {
  const db = shop.tdb.db;
  const problems: string[] = [];
  const ownerTexts = shop.line.textsTo(owner);
  for (const { user, orderNo } of paid) {
    const o = await db('orders').where({ order_no: orderNo }).first('id', 'status');
    if (o?.status !== 'paid') {
      problems.push(`order ${orderNo} is ${o?.status}`);
      continue;
    }
    const histories = Number((await db('order_events').where({ order_id: o.id, to_status: 'paid' }).count<{ n: number }[]>({ n: '*' }))[0]!.n);
    const attempts = Number((await db('payment_attempts').where({ order_id: o.id, status: 'paid' }).count<{ n: number }[]>({ n: '*' }))[0]!.n);
    const receipts = shop.line.textsTo(user).filter((t) => t.startsWith(`已收到付款：訂單 ${orderNo}，`)).length;
    const notices = ownerTexts.filter((t) => t.startsWith(`💰 新付款：訂單 ${orderNo}，`)).length;
    if (histories !== 1 || attempts !== 1 || receipts !== 1 || notices !== 1) problems.push(`order ${orderNo}: ${histories} paid transitions, ${attempts} paid attempts, ${receipts} receipts, ${notices} owner notices`);
  }
  // Nothing else was paid either.
  const allPaid = (await db('orders').where({ status: 'paid' }).pluck('order_no')) as string[];
  const expected = new Set(paid.map((p) => p.orderNo));
  for (const no of allPaid) if (!expected.has(no)) problems.push(`order ${no} paid but never paid for`);
  expect(problems).toEqual([]);
}

/** Stock on hand is the start minus what paid orders took; reserved is what unpaid orders hold. */
export async function expectStock(shop: ProcShop, start: Record<string, number>): Promise<void> {
  const rows = await shop.tdb.db('products as p')
    .join('product_stock as s', 's.product_id', 'p.id')
    .whereIn('p.sku', Object.keys(start))
    .select('p.id', 'p.sku', 's.stock_on_hand', 's.stock_reserved');
  const sold = async (id: number, status: string) =>
    Number((await shop.tdb.db('order_lines as l').join('orders as o', 'o.id', 'l.order_id').where({ 'l.product_id': id, 'o.status': status }).sum<{ n: number }[]>({ n: 'l.qty' }))[0]!.n ?? 0);
  const got: Record<string, [number, number]> = {};
  const want: Record<string, [number, number]> = {};
  for (const r of rows) {
    got[r.sku] = [r.stock_on_hand, r.stock_reserved];
    want[r.sku] = [start[r.sku]! - (await sold(r.id, 'paid')), await sold(r.id, 'pending_payment')];
  }
  expect(got).toEqual(want);
}

/** The processes' error log lines, shortened, for a test's summary (what went wrong on the way, even when it recovered). */
export function errorLines(shop: ProcShop): string[] {
  return shop.logs().split('\n').filter((l) => l.trim()).map((l) => {
    try {
      const j = JSON.parse(l) as { msg?: string; err?: unknown; queue?: string };
      return [j.msg, j.queue, typeof j.err === 'string' ? j.err : j.err ? JSON.stringify(j.err).slice(0, 120) : ''].filter(Boolean).join(' | ');
    } catch {
      return l.slice(0, 200);
    }
  });
}

/** "none", or how many lines and the distinct ones (at most 5). */
export function summary(lines: string[]): string {
  if (lines.length === 0) return 'none';
  const distinct = [...new Set(lines)];
  return `${lines.length} (${distinct.slice(0, 5).join('; ')}${distinct.length > 5 ? '; …' : ''})`;
}

/** `npm run check:invariants` (the built CLI) against the shop's database. */
export function expectInvariants(shop: ProcShop): void {
  const r = spawnSync(process.execPath, [dist('cli/check-invariants.js')], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: shop.tdb.url }, encoding: 'utf8', timeout: 60_000 });
  expect({ code: r.status, out: r.stdout.trim(), err: r.stderr.trim() }).toEqual({
    code: 0,
    out: 'invariants hold: stock, reservations, payments and the member ledger are consistent',
    err: '',
  });
}
