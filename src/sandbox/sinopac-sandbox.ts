/**
 * A local stand-in for the SinoPac QPay WebAPI (specs/sinopac-qpay.md), for tests and `npm run dev`.
 *
 * It speaks the real protocol in both directions with the same crypto module as the client:
 * X-KeyID checks, single-use 60-second nonces, AES-256-CBC messages, Signs on requests and
 * responses, a new nonce on every response. It also plays the bank's pages (hosted card page,
 * WebATM page), fires BackendURL notifications with retries, posts the shopper's browser back to
 * ReturnURL, and lets tests inject failures.
 *
 * Behaviour the public material does not pin down (error codes, HTTP statuses of envelope-level
 * errors, card PayStatus codes) is this sandbox's own choice and is marked as such below.
 */
import { escapeHtml } from '../html';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import express, { type NextFunction, type Request, type Response } from 'express';
import pino from 'pino';
import { decryptMessage, encryptMessage, hashId as computeHashId, sign, verifySign } from '../gateways/sinopac/sinopac-crypto';

export interface SinopacSandboxShop {
  shopNo: string;
  hashA1: string;
  hashA2: string;
  hashB1: string;
  hashB2: string;
  keyId: string;
}

export type SinopacSandboxService = 'Nonce' | 'OrderCreate' | 'OrderPayQuery' | 'OrderQuery';
/**
 * Injected misbehaviour. Any service: 'timeout' (the answer comes after hangMs), 'http500', 'badSign'
 * (a valid answer with a wrong Sign), 'statusF' (a signed Status F answer with no result).
 * OrderPayQuery only, each a correctly signed answer about the real PayToken: 'statusFWithResult'
 * (outer Status F, TSResultContent as it is, e.g. Status S), 'resultOtherShopNo' (TSResultContent
 * names another shop), 'resultNoShopNo' (TSResultContent.ShopNo empty). The Sign covers only the
 * top-level scalars (spec §3.4), so none of the last three is caught by the Sign check.
 */
export type SinopacSandboxFailure =
  | 'timeout'
  /** 200 with a body that is not the bank's JSON at all (a proxy's error page, cut off). */
  | 'garbage'
  | 'http500'
  | 'badSign'
  | 'statusF'
  | 'statusFWithResult'
  | 'resultOtherShopNo'
  | 'resultNoShopNo';

const PAY_QUERY_ONLY_FAILURES: readonly SinopacSandboxFailure[] = ['statusFWithResult', 'resultOtherShopNo', 'resultNoShopNo'];
/** The ShopNo that 'resultOtherShopNo' puts in TSResultContent. */
export const SINOPAC_SANDBOX_OTHER_SHOP_NO = 'NA0999_001';

export interface SinopacSandboxOptions {
  shops: SinopacSandboxShop[];
  /** Default '/funBIZ-Sbx/QPay.WebAPI/api/'. */
  basePath?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  logger?: pino.Logger;
  /** Delays between BackendURL delivery attempts. Default [2000, 5000, 10000, 30000, 60000]. */
  notifyRetryDelaysMs?: number[];
  /** Timeout of one BackendURL delivery attempt. Default 10000. */
  notifyTimeoutMs?: number;
  /** How long an injected 'timeout' holds the response back. Default 20000. */
  hangMs?: number;
  /** Nonce lifetime. Default 60000 (spec §2.3). */
  nonceTtlMs?: number;
  /** Origin used in URLs handed out (card page, WebATM page). Default: the listening origin. */
  publicOrigin?: string;
  /** Clock for nonces, dates and deadlines. Default: real time. */
  now?: () => Date;
}

export interface SinopacSandboxPayEvent {
  payToken: string;
  /** 'S' paid, 'F' failed (TSResultContent.Status). */
  status: 'S' | 'F';
  description: string;
  /** yyyyMMddHHmm, Taipei. */
  payDate: string;
  at: Date;
}

export interface SinopacSandboxOrder {
  shopNo: string;
  orderNo: string;
  tsNo: string;
  /** ×100, as on the wire. */
  amountCents: number;
  payType: 'A' | 'C';
  prdtName: string;
  memo: string;
  param1: string;
  param2: string;
  param3: string;
  returnUrl: string;
  backendUrl: string;
  createdAt: Date;
  /** yyyyMMddHHmm, Taipei. */
  tsDate: string;
  /** ATM: yyyyMMdd. */
  atmExpireDate: string | null;
  atmPayNo: string | null;
  webAtmUrl: string | null;
  otpUrl: string | null;
  cardPayUrl: string | null;
  cardExpMinutes: number | null;
  /** Card: CardParam.AutoBilling as sent; ATM: null. */
  autoBilling: 'Y' | 'N' | null;
  /** 'paid' for a card means authorised; whether it was also captured (請款) is `captured`. */
  state: 'pending' | 'paid' | 'failed';
  /** ATM: transferred. Card: captured (請款), which OrderQuery's PayFlag Y reports (spec §6). */
  captured: boolean;
  /** yyyyMMddHHmm of the successful payment, or ''. */
  payDate: string;
  events: SinopacSandboxPayEvent[];
}

export interface SinopacSandboxRequest {
  at: Date;
  endpoint: 'Nonce' | 'Order';
  /** 'Nonce' or the envelope's APIService. */
  service: string;
  shopNo: string;
  keyId: string | undefined;
  /** The decrypted inner message (Order calls whose envelope could be opened), else null. */
  message: Record<string, unknown> | null;
  httpStatus: number;
  /** Why the sandbox refused the call, if it did. */
  error?: string;
  /** The injected failure consumed by this call, if any. */
  injected?: SinopacSandboxFailure;
}

export interface SinopacSandboxNotification {
  at: Date;
  shopNo: string;
  orderNo: string;
  payToken: string;
  url: string;
  attempt: number;
  httpStatus: number | null;
  ok: boolean;
  error?: string;
}

export interface SinopacSandboxPayResult {
  payToken: string;
  /** Settles true once the merchant accepted the BackendURL call, false when retries ran out (or the sandbox closed); null when not notified. */
  delivered: Promise<boolean> | null;
}

export interface SinopacSandbox {
  /** Origin, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** origin + basePath, ending in '/'. */
  readonly apiBaseUrl: string;
  close(): Promise<void>;
  payAtm(orderNo: string, opts?: { notify?: boolean }): SinopacSandboxPayResult;
  /**
   * The card is authorised; `capture` (default: the order's AutoBilling is Y) captures it at once.
   * BackendURL is called (default) only once captured: the bank notifies card payments on capture
   * (spec §5.1).
   */
  payCard(orderNo: string, opts?: { notify?: boolean; capture?: boolean }): SinopacSandboxPayResult;
  /** Captures an authorised card payment (the bank's auto-capture, or OrderMaintain P); notifies by default. */
  captureCard(orderNo: string, opts?: { notify?: boolean }): SinopacSandboxPayResult;
  failCard(orderNo: string, opts?: { notify?: boolean; reason?: string }): SinopacSandboxPayResult;
  /** Re-sends the latest payment event's PayToken to BackendURL (with the usual retries). */
  notifyAgain(orderNo: string): SinopacSandboxPayResult;
  /** Queues failures for a service; each is consumed by one (otherwise valid) call. */
  injectFailures(service: SinopacSandboxService, failures: SinopacSandboxFailure[]): void;
  /**
   * From now on every call of every service (Nonce included) fails this way, until null. Queued
   * injectFailures come first. Only the failures that apply to any service.
   */
  failEveryCall(failure: 'timeout' | 'http500' | 'badSign' | 'statusF' | 'garbage' | null): void;
  getOrder(orderNo: string): SinopacSandboxOrder | undefined;
  orders(): SinopacSandboxOrder[];
  readonly requests: readonly SinopacSandboxRequest[];
  readonly notifications: readonly SinopacSandboxNotification[];
}

type Json = Record<string, unknown>;

interface ShopState {
  shop: SinopacSandboxShop;
  hashId: string;
  serial: number;
}

const DEFAULT_BASE_PATH = '/funBIZ-Sbx/QPay.WebAPI/api/';
const TAIPEI_OFFSET_MS = 8 * 60 * 60 * 1000;
const SUCCESS = 'S0000 – 處理成功';
const SERVICES = ['OrderCreate', 'OrderPayQuery', 'OrderQuery'] as const;
const FORBIDDEN = /['"%]/;
/** .NET ticks at the Unix epoch, in ms: the bank's nonces start with a millisecond tick count. */
const DOTNET_EPOCH_MS = 62_135_596_800_000;

// Error codes below (other than S0000 / E0602) are the sandbox's own: the bank's table is not public.
const ERR = {
  orderNo: 'E0101 – 訂單編號格式錯誤',
  amount: 'E0102 – 金額錯誤',
  currency: 'E0103 – 幣別錯誤',
  prdtName: 'E0104 – 收款名稱格式錯誤',
  expireDate: 'E0105 – 繳費期限錯誤',
  url: 'E0106 – 網址格式錯誤',
  dateRange: 'E0107 – 日期區間錯誤',
  field: 'E0108 – 欄位格式錯誤',
  duplicate: 'E0201 – 訂單編號重複',
  noData: 'E0401 – 查無資料',
  noCondition: 'E0402 – 查詢條件不足',
  notEnabled: 'E0602 – 收款方式未啟用',
  injected: 'E9999 – 系統忙碌中（沙盒模擬錯誤）',
} as const;

function taipeiParts(d: Date): { y: string; mo: string; d: string; h: string; mi: string } {
  const t = new Date(d.getTime() + TAIPEI_OFFSET_MS);
  const p = (n: number) => String(n).padStart(2, '0');
  return { y: String(t.getUTCFullYear()), mo: p(t.getUTCMonth() + 1), d: p(t.getUTCDate()), h: p(t.getUTCHours()), mi: p(t.getUTCMinutes()) };
}
function taipeiMinute(d: Date): string {
  const p = taipeiParts(d);
  return `${p.y}${p.mo}${p.d}${p.h}${p.mi}`;
}
function taipeiDate(d: Date): string {
  const p = taipeiParts(d);
  return `${p.y}${p.mo}${p.d}`;
}
function isCalendarDate(yyyymmdd: string): boolean {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(yyyymmdd);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

export { escapeHtml };

function formatTwd(cents: number): string {
  return new Intl.NumberFormat('zh-TW', { maximumFractionDigits: 2 }).format(cents / 100);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="zh-Hant-TW">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Noto Sans TC","PingFang TC",sans-serif;margin:1.5rem;color:#222;max-width:60rem}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;font-size:.9rem}
.amount{font-size:1.6rem;font-weight:bold}.note{color:#666;font-size:.85rem}
form{display:inline}button{margin:.2rem;padding:.4rem .9rem;font-size:1rem}
</style>
</head>
<body>
${body}
</body>
</html>`;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 255) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function normaliseBasePath(p: string): string {
  let s = p.startsWith('/') ? p : `/${p}`;
  if (!s.endsWith('/')) s += '/';
  return s;
}

class SandboxImpl implements SinopacSandbox {
  url = '';
  apiBaseUrl = '';
  readonly requests: SinopacSandboxRequest[] = [];
  readonly notifications: SinopacSandboxNotification[] = [];

  private readonly shops = new Map<string, ShopState>();
  private readonly nonces = new Map<string, { shopNo: string; issuedAt: number; used: boolean }>();
  private readonly ordersByKey = new Map<string, SinopacSandboxOrder>(); // `${shopNo}\n${orderNo}`
  private readonly keyByTsNo = new Map<string, string>();
  private readonly payTokens = new Map<string, { key: string; event: SinopacSandboxPayEvent }>();
  private readonly atmPayNos = new Set<string>();
  private readonly failures = new Map<SinopacSandboxService, SinopacSandboxFailure[]>();
  private everyCall: SinopacSandboxFailure | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly onClose = new Set<() => void>();
  private readonly abort = new AbortController();
  private closed = false;
  private server: http.Server | null = null;
  private publicOrigin = '';

  readonly basePath: string;
  private readonly log: pino.Logger;
  private readonly retryDelays: number[];
  private readonly notifyTimeoutMs: number;
  private readonly hangMs: number;
  private readonly nonceTtlMs: number;
  private readonly now: () => Date;

  constructor(private readonly opts: SinopacSandboxOptions) {
    if (!opts.shops.length) throw new Error('the SinoPac sandbox needs at least one shop');
    for (const shop of opts.shops) {
      this.shops.set(shop.shopNo, {
        shop,
        hashId: computeHashId(shop.hashA1, shop.hashA2, shop.hashB1, shop.hashB2),
        serial: 0,
      });
    }
    this.basePath = normaliseBasePath(opts.basePath ?? DEFAULT_BASE_PATH);
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'sinopac-sandbox' });
    this.retryDelays = opts.notifyRetryDelaysMs ?? [2000, 5000, 10000, 30000, 60000];
    this.notifyTimeoutMs = opts.notifyTimeoutMs ?? 10_000;
    this.hangMs = opts.hangMs ?? 20_000;
    this.nonceTtlMs = opts.nonceTtlMs ?? 60_000;
    this.now = opts.now ?? (() => new Date());
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    const app = this.buildApp();
    const server = http.createServer(app);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.url = `http://${host}:${addr.port}`;
    this.apiBaseUrl = `${this.url}${this.basePath}`;
    this.publicOrigin = (this.opts.publicOrigin ?? this.url).replace(/\/+$/, '');
    this.log.info({ url: this.url, apiBaseUrl: this.apiBaseUrl }, 'SinoPac sandbox listening');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.abort.abort();
    for (const fn of this.onClose) fn();
    this.onClose.clear();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Hung (injected timeout) requests and keep-alive sockets must not hold close() up.
      server.closeAllConnections();
    });
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---------------------------------------------------------------- control API

  injectFailures(service: SinopacSandboxService, failures: SinopacSandboxFailure[]): void {
    const misplaced = failures.find((f) => PAY_QUERY_ONLY_FAILURES.includes(f) && service !== 'OrderPayQuery');
    if (misplaced) throw new Error(`injected failure ${misplaced} applies to OrderPayQuery only`);
    const q = this.failures.get(service) ?? [];
    q.push(...failures);
    this.failures.set(service, q);
  }

  failEveryCall(failure: 'timeout' | 'http500' | 'badSign' | 'statusF' | 'garbage' | null): void {
    this.everyCall = failure;
  }

  getOrder(orderNo: string): SinopacSandboxOrder | undefined {
    const o = this.findByOrderNo(orderNo);
    return o ? structuredClone(o) : undefined;
  }

  orders(): SinopacSandboxOrder[] {
    return [...this.ordersByKey.values()].map((o) => structuredClone(o));
  }

  payAtm(orderNo: string, opts: { notify?: boolean } = {}): SinopacSandboxPayResult {
    const order = this.requireOrder(orderNo);
    if (order.payType !== 'A') throw new Error(`order ${orderNo} is not an ATM order`);
    if (order.state === 'paid') throw new Error(`order ${orderNo} is already paid`);
    return this.recordPayment(order, 'S', '', opts.notify ?? true);
  }

  payCard(orderNo: string, opts: { notify?: boolean; capture?: boolean } = {}): SinopacSandboxPayResult {
    const order = this.requireOrder(orderNo);
    if (order.payType !== 'C') throw new Error(`order ${orderNo} is not a card order`);
    if (order.state === 'paid') throw new Error(`order ${orderNo} is already paid`);
    const capture = opts.capture ?? order.autoBilling === 'Y';
    return this.recordPayment(order, 'S', '', opts.notify ?? capture, capture);
  }

  captureCard(orderNo: string, opts: { notify?: boolean } = {}): SinopacSandboxPayResult {
    const order = this.requireOrder(orderNo);
    if (order.payType !== 'C') throw new Error(`order ${orderNo} is not a card order`);
    const last = order.events[order.events.length - 1];
    if (order.state !== 'paid' || !last) throw new Error(`order ${orderNo} has no authorised payment to capture`);
    if (order.captured) throw new Error(`order ${orderNo} is already captured`);
    order.captured = true;
    this.log.info({ orderNo: order.orderNo, tsNo: order.tsNo }, 'sandbox card payment captured');
    return { payToken: last.payToken, delivered: (opts.notify ?? true) ? this.deliver(order, last.payToken) : null };
  }

  failCard(orderNo: string, opts: { notify?: boolean; reason?: string } = {}): SinopacSandboxPayResult {
    const order = this.requireOrder(orderNo);
    if (order.payType !== 'C') throw new Error(`order ${orderNo} is not a card order`);
    if (order.state === 'paid') throw new Error(`order ${orderNo} is already paid`);
    return this.recordPayment(order, 'F', opts.reason ?? '授權失敗（沙盒模擬）', opts.notify ?? true);
  }

  notifyAgain(orderNo: string): SinopacSandboxPayResult {
    const order = this.requireOrder(orderNo);
    const last = order.events[order.events.length - 1];
    if (!last) throw new Error(`order ${orderNo} has no payment event to notify`);
    return { payToken: last.payToken, delivered: this.deliver(order, last.payToken) };
  }

  private findByOrderNo(orderNo: string): SinopacSandboxOrder | undefined {
    const matches = [...this.ordersByKey.values()].filter((o) => o.orderNo === orderNo);
    if (matches.length > 1) throw new Error(`OrderNo ${orderNo} exists in several shops`);
    return matches[0];
  }

  private requireOrder(orderNo: string): SinopacSandboxOrder {
    const o = this.findByOrderNo(orderNo);
    if (!o) throw new Error(`unknown order ${orderNo}`);
    return o;
  }

  private recordPayment(
    order: SinopacSandboxOrder,
    status: 'S' | 'F',
    description: string,
    notify: boolean,
    capture = order.autoBilling !== 'N',
  ): SinopacSandboxPayResult {
    const at = this.now();
    const event: SinopacSandboxPayEvent = {
      payToken: randomBytes(32).toString('hex'),
      status,
      description,
      payDate: taipeiMinute(at),
      at,
    };
    order.events.push(event);
    if (status === 'S') {
      order.state = 'paid';
      order.payDate = event.payDate;
      order.captured = order.payType === 'A' || capture;
    } else {
      order.state = 'failed';
      order.captured = false;
    }
    this.payTokens.set(event.payToken, { key: `${order.shopNo}\n${order.orderNo}`, event });
    this.log.info({ orderNo: order.orderNo, tsNo: order.tsNo, status }, 'sandbox payment recorded');
    return { payToken: event.payToken, delivered: notify ? this.deliver(order, event.payToken) : null };
  }

  // ---------------------------------------------------------------- BackendURL delivery

  private deliver(order: SinopacSandboxOrder, payToken: string): Promise<boolean> | null {
    if (!order.backendUrl || this.closed) return null;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (ok: boolean) => {
        if (settled) return;
        settled = true;
        this.onClose.delete(onClose);
        resolve(ok);
      };
      const onClose = () => finish(false);
      this.onClose.add(onClose);
      let attempt = 0;
      const run = async (): Promise<void> => {
        attempt += 1;
        const ok = await this.deliverOnce(order, payToken, attempt);
        if (ok) return finish(true);
        const delay = this.retryDelays[attempt - 1];
        if (delay === undefined || this.closed) return finish(false);
        this.later(delay, () => void run());
      };
      void run();
    });
  }

  private async deliverOnce(order: SinopacSandboxOrder, payToken: string, attempt: number): Promise<boolean> {
    const entry: SinopacSandboxNotification = {
      at: this.now(),
      shopNo: order.shopNo,
      orderNo: order.orderNo,
      payToken,
      url: order.backendUrl,
      attempt,
      httpStatus: null,
      ok: false,
    };
    try {
      const res = await axios.post(
        order.backendUrl,
        { ShopNo: order.shopNo, PayToken: payToken },
        {
          headers: { 'Content-Type': 'application/json' },
          timeout: this.notifyTimeoutMs,
          signal: this.abort.signal,
          validateStatus: () => true,
          maxRedirects: 0,
          responseType: 'text',
          transformResponse: [(d: unknown) => d],
        },
      );
      entry.httpStatus = res.status;
      let body: unknown;
      try {
        body = JSON.parse(String(res.data));
      } catch {
        body = undefined;
      }
      entry.ok = res.status === 200 && isObject(body) && body.Status === 'S';
      if (!entry.ok) entry.error = 'merchant did not answer HTTP 200 {"Status":"S"}';
    } catch (err) {
      entry.error = (err as { code?: string; message?: string }).code ?? (err as Error).message;
    }
    if (!this.closed) this.notifications.push(entry);
    this.log.info({ orderNo: order.orderNo, attempt, httpStatus: entry.httpStatus, ok: entry.ok }, 'sandbox BackendURL delivery');
    return entry.ok;
  }

  // ---------------------------------------------------------------- HTTP

  private buildApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    const api = express.Router();
    api.use(express.json({ limit: '256kb' }));
    api.post('/Nonce', (req, res) => this.handleNonce(req, res));
    api.post('/Order', (req, res) => this.handleOrder(req, res));
    app.use(this.basePath.replace(/\/$/, ''), api);

    const form = express.urlencoded({ extended: false, limit: '16kb' });
    app.get('/', (_req, res) => this.sendHtml(res, 200, this.indexPage()));
    app.get('/pay/card/:tsNo', (req, res) => this.cardPage(req, res));
    app.post('/pay/card/:tsNo/pay', form, (req, res) => this.cardSubmit(req, res, 'S'));
    app.post('/pay/card/:tsNo/fail', form, (req, res) => this.cardSubmit(req, res, 'F'));
    app.get('/pay/atm/:tsNo', (req, res) => this.atmPage(req, res));
    app.post('/pay/atm/:tsNo/pay', form, (req, res) => this.atmSubmit(req, res));
    app.post('/admin/:tsNo/:action', form, (req, res) => this.adminAction(req, res));
    app.use((_req: Request, res: Response) => {
      res.status(404).json({ Message: 'Not found' });
    });
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) this.log.error({ err }, 'sandbox error');
      if (!res.headersSent) res.status(status).json({ Message: status >= 500 ? 'An error has occurred.' : 'Bad request' });
    });
    return app;
  }

  private sendHtml(res: Response, status: number, html: string): void {
    res.status(status).type('html').set('Cache-Control', 'no-store').send(html);
  }

  private takeFailure(service: SinopacSandboxService): SinopacSandboxFailure | undefined {
    return this.failures.get(service)?.shift() ?? this.everyCall ?? undefined;
  }

  private sendGarbage(res: Response): void {
    res.status(200).type('application/json').send('{"Status":"S","Message":"<html><body>Service Unavailable \u0000');
  }

  /** Sends a response now, or after hangMs for an injected timeout (never once closed). */
  private respond(res: Response, status: number, body: unknown, hang: boolean): void {
    const send = () => {
      if (!res.headersSent && !res.destroyed) res.status(status).json(body);
    };
    if (hang) this.later(this.hangMs, send);
    else send();
  }

  private issueNonce(shopNo: string): string {
    const nowMs = this.now().getTime();
    for (const [n, e] of this.nonces) {
      if (nowMs - e.issuedAt > this.nonceTtlMs * 2) this.nonces.delete(n);
    }
    const nonce = this.newNonce();
    this.nonces.set(nonce, { shopNo, issuedAt: nowMs, used: false });
    return nonce;
  }

  private newNonce(): string {
    // Looks like the bank's: Base64 of "<ms ticks>.<digit>:<64 hex>" (108 characters). Opaque to clients.
    const raw = `${this.now().getTime() + DOTNET_EPOCH_MS}.${randomInt(10)}:${randomBytes(32).toString('hex')}`;
    return Buffer.from(raw, 'ascii').toString('base64');
  }

  private handleNonce(req: Request, res: Response): void {
    const body: unknown = req.body;
    const shopNo = isObject(body) ? str(body.ShopNo) : '';
    const keyId = req.get('x-keyid');
    const entry: SinopacSandboxRequest = { at: this.now(), endpoint: 'Nonce', service: 'Nonce', shopNo, keyId, message: null, httpStatus: 200 };
    this.requests.push(entry);
    const shop = this.shops.get(shopNo);
    if (!shop || keyId !== shop.shop.keyId) {
      entry.httpStatus = 401;
      entry.error = shop ? 'X-KeyID does not match the shop' : 'unknown ShopNo';
      res.status(401).json({ Message: 'Authorization has been denied for this request.' });
      return;
    }
    const failure = this.takeFailure('Nonce');
    entry.injected = failure;
    if (failure === 'garbage') return this.sendGarbage(res);
    if (failure === 'http500') {
      entry.httpStatus = 500;
      res.status(500).json({ Message: 'An error has occurred.' });
      return;
    }
    if (failure === 'badSign' || failure === 'statusF') {
      // A Nonce response has no Sign: both mean "200 without a Nonce" here.
      res.status(200).json({ Status: 'F', Description: ERR.injected });
      return;
    }
    this.respond(res, 200, { Nonce: this.issueNonce(shopNo) }, failure === 'timeout');
  }

  private handleOrder(req: Request, res: Response): void {
    const body: unknown = req.body;
    const env = isObject(body) ? body : {};
    const shopNo = str(env.ShopNo);
    const service = str(env.APIService);
    const keyId = req.get('x-keyid');
    const entry: SinopacSandboxRequest = { at: this.now(), endpoint: 'Order', service, shopNo, keyId, message: null, httpStatus: 200 };
    this.requests.push(entry);
    // Envelope-level refusals: the bank's exact form is unknown (spec §2.2); HTTP 4xx without Message.
    const refuse = (status: number, why: string) => {
      entry.httpStatus = status;
      entry.error = why;
      this.log.info({ service, shopNo, status, why }, 'sandbox refused Order call');
      res.status(status).json({ Status: 'F', Description: why });
    };

    const shop = this.shops.get(shopNo);
    if (!shop || keyId !== shop.shop.keyId) {
      entry.httpStatus = 401;
      entry.error = shop ? 'X-KeyID does not match the shop' : 'unknown ShopNo';
      res.status(401).json({ Message: 'Authorization has been denied for this request.' });
      return;
    }
    for (const f of ['Version', 'Sign', 'Nonce', 'Message'] as const) {
      if (typeof env[f] !== 'string' || env[f] === '') return refuse(400, `envelope field ${f} is missing`);
    }
    if (env.Version !== '1.0.0') return refuse(400, 'unsupported Version');
    const nonce = env.Nonce as string;
    const known = this.nonces.get(nonce);
    if (!known || known.shopNo !== shopNo) return refuse(400, 'unknown Nonce');
    if (known.used) return refuse(400, 'Nonce already used');
    known.used = true;
    if (this.now().getTime() - known.issuedAt > this.nonceTtlMs) return refuse(400, 'Nonce expired');
    if (!(SERVICES as readonly string[]).includes(service)) return refuse(400, 'unsupported APIService');

    let message: unknown;
    try {
      message = JSON.parse(decryptMessage(env.Message as string, shop.hashId, nonce));
    } catch {
      return refuse(400, 'Message could not be decrypted');
    }
    if (!isObject(message)) return refuse(400, 'Message is not a JSON object');
    entry.message = message;
    if (!verifySign(message, nonce, shop.hashId, env.Sign as string)) return refuse(400, 'Sign does not verify');
    if (message.ShopNo !== shopNo) return refuse(400, 'Message ShopNo differs from the envelope');

    const svc = service as (typeof SERVICES)[number];
    const failure = this.takeFailure(svc);
    entry.injected = failure;
    if (failure === 'garbage') return this.sendGarbage(res);
    if (failure === 'http500') {
      entry.httpStatus = 500;
      res.status(500).json({ Message: 'An error has occurred.' });
      return;
    }
    let inner: Json;
    if (failure === 'statusF') {
      inner = this.injectedFailure(svc, message);
    } else if (svc === 'OrderCreate') {
      inner = this.orderCreate(shop, message);
    } else if (svc === 'OrderPayQuery') {
      inner = this.orderPayQuery(shop, message);
      if (failure) inner = this.alterPayQueryAnswer(inner, failure);
    } else {
      inner = this.orderQuery(shop, message);
    }
    const respNonce = this.newNonce();
    let respSign = sign(inner, respNonce, shop.hashId);
    if (failure === 'badSign') respSign = (respSign[0] === 'A' ? 'B' : 'A') + respSign.slice(1);
    const envelope = {
      Version: '1.0.0',
      ShopNo: shopNo,
      APIService: svc,
      Sign: respSign,
      Nonce: respNonce,
      Message: encryptMessage(JSON.stringify(inner), shop.hashId, respNonce),
    };
    // For 'timeout' the bank has acted (e.g. the order exists) but the answer comes too late.
    this.respond(res, 200, envelope, failure === 'timeout');
  }

  // ---------------------------------------------------------------- services

  private injectedFailure(service: (typeof SERVICES)[number], m: Json): Json {
    const base: Json = { ShopNo: m.ShopNo };
    if (service === 'OrderCreate') base.OrderNo = str(m.OrderNo);
    if (service === 'OrderPayQuery') base.PayToken = str(m.PayToken);
    if (service !== 'OrderCreate') base.Date = taipeiMinute(this.now());
    return { ...base, Status: 'F', Description: ERR.injected };
  }

  /** The OrderPayQuery injections that keep a real answer but change part of it (see SinopacSandboxFailure). */
  private alterPayQueryAnswer(inner: Json, failure: SinopacSandboxFailure): Json {
    const ts = isObject(inner.TSResultContent) ? { ...inner.TSResultContent } : null;
    switch (failure) {
      case 'statusFWithResult':
        return { ...inner, Status: 'F', Description: ERR.injected };
      case 'resultOtherShopNo':
        return ts ? { ...inner, TSResultContent: { ...ts, ShopNo: SINOPAC_SANDBOX_OTHER_SHOP_NO } } : inner;
      case 'resultNoShopNo':
        return ts ? { ...inner, TSResultContent: { ...ts, ShopNo: '' } } : inner;
      default:
        return inner;
    }
  }

  private orderCreate(shop: ShopState, m: Json): Json {
    const orderNo = m.OrderNo;
    const fail = (description: string): Json => ({
      OrderNo: typeof orderNo === 'string' ? orderNo : '',
      ShopNo: shop.shop.shopNo,
      Status: 'F',
      Description: description,
    });
    if (typeof orderNo !== 'string' || orderNo === '' || orderNo.length > 50 || FORBIDDEN.test(orderNo)) return fail(ERR.orderNo);
    let cents: number;
    if (typeof m.Amount === 'number') cents = m.Amount;
    else if (typeof m.Amount === 'string' && /^\d+$/.test(m.Amount)) cents = Number(m.Amount);
    else return fail(ERR.amount);
    if (!Number.isSafeInteger(cents) || cents <= 0 || cents > 999_999_999) return fail(ERR.amount);
    if (m.CurrencyID !== 'TWD') return fail(ERR.currency);
    const prdtName = m.PrdtName;
    if (typeof prdtName !== 'string' || prdtName.trim() === '' || Buffer.byteLength(prdtName, 'utf8') > 60 || FORBIDDEN.test(prdtName)) {
      return fail(ERR.prdtName);
    }
    const memo = m.Memo ?? '';
    if (typeof memo !== 'string' || memo.length > 30 || FORBIDDEN.test(memo)) return fail(ERR.field);
    const params: string[] = [];
    for (const k of ['Param1', 'Param2', 'Param3'] as const) {
      const v = m[k] ?? '';
      if (typeof v !== 'string' || v.length > 255 || FORBIDDEN.test(v)) return fail(ERR.field);
      params.push(v);
    }
    if (!isHttpUrl(m.ReturnURL)) return fail(ERR.url);
    if (m.BackendURL !== undefined && m.BackendURL !== '' && !isHttpUrl(m.BackendURL)) return fail(ERR.url);

    const now = this.now();
    let atmExpireDate: string | null = null;
    let cardExpMinutes: number | null = null;
    if (m.PayType === 'A') {
      const p = isObject(m.ATMParam) ? m.ATMParam : {};
      const d = str(p.ExpireDate);
      if (!isCalendarDate(d) || d < taipeiDate(now)) return fail(ERR.expireDate);
      if (cents > 3_000_000) return fail(ERR.amount); // NT$30,000 ATM limit (spec §4.1)
      atmExpireDate = d;
    } else if (m.PayType === 'C') {
      const p = isObject(m.CardParam) ? m.CardParam : {};
      if (p.AutoBilling !== 'Y' && p.AutoBilling !== 'N') return fail(ERR.field);
      if (p.AutoBilling === 'Y' && p.ExpBillingDays !== undefined) return fail(ERR.dateRange);
      if (p.AutoBilling === 'N') {
        const days = p.ExpBillingDays;
        if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 7) return fail(ERR.dateRange);
      }
      const exp = p.ExpMinutes ?? 10;
      if (typeof exp !== 'number' || !Number.isInteger(exp) || exp < 1 || exp > 30) return fail(ERR.field);
      if ((p.PayTypeSub ?? 'ONE') !== 'ONE') return fail(ERR.notEnabled);
      cardExpMinutes = exp;
    } else {
      return fail(ERR.notEnabled);
    }
    const key = `${shop.shop.shopNo}\n${orderNo}`;
    if (this.ordersByKey.has(key)) return fail(ERR.duplicate);

    shop.serial += 1;
    const tsNo = `${shop.shop.shopNo.split('_')[0]!.toUpperCase()}${String(shop.serial).padStart(8, '0')}`;
    const tk = randomUUID();
    const order: SinopacSandboxOrder = {
      shopNo: shop.shop.shopNo,
      orderNo,
      tsNo,
      amountCents: cents,
      payType: m.PayType,
      prdtName,
      memo,
      param1: params[0]!,
      param2: params[1]!,
      param3: params[2]!,
      returnUrl: m.ReturnURL,
      backendUrl: typeof m.BackendURL === 'string' ? m.BackendURL : '',
      createdAt: now,
      tsDate: taipeiMinute(now),
      atmExpireDate,
      atmPayNo: null,
      webAtmUrl: null,
      otpUrl: null,
      cardPayUrl: null,
      cardExpMinutes,
      autoBilling: m.PayType === 'C' ? ((m.CardParam as Json).AutoBilling as 'Y' | 'N') : null,
      state: 'pending',
      captured: false,
      payDate: '',
      events: [],
    };
    const res: Json = {
      OrderNo: orderNo,
      ShopNo: shop.shop.shopNo,
      TSNo: tsNo,
      Amount: cents,
      Status: 'S',
      Description: SUCCESS,
      Param1: order.param1,
      Param2: order.param2,
      Param3: order.param3,
      PayType: order.payType,
    };
    const q = `TD=${encodeURIComponent(tsNo)}&TK=${tk}`;
    if (order.payType === 'A') {
      order.atmPayNo = this.newAtmPayNo();
      order.webAtmUrl = `${this.publicOrigin}/pay/atm/${encodeURIComponent(tsNo)}?via=webatm&${q}`;
      order.otpUrl = `${this.publicOrigin}/pay/atm/${encodeURIComponent(tsNo)}?via=otp&${q}`;
      res.ATMParam = { AtmPayNo: order.atmPayNo, WebAtmURL: order.webAtmUrl, OtpURL: order.otpUrl };
    } else {
      order.cardPayUrl = `${this.publicOrigin}/pay/card/${encodeURIComponent(tsNo)}?${q}`;
      res.CardParam = { CardPayURL: order.cardPayUrl };
    }
    this.ordersByKey.set(key, order);
    this.keyByTsNo.set(tsNo, key);
    this.log.info({ shopNo: order.shopNo, orderNo, tsNo, payType: order.payType }, 'sandbox order created');
    return res;
  }

  private newAtmPayNo(): string {
    for (;;) {
      const n = `9992${String(randomInt(0, 1_000_000_000)).padStart(10, '0')}`;
      if (!this.atmPayNos.has(n)) {
        this.atmPayNos.add(n);
        return n;
      }
    }
  }

  private orderPayQuery(shop: ShopState, m: Json): Json {
    const payToken = str(m.PayToken);
    const base: Json = { ShopNo: shop.shop.shopNo, PayToken: payToken, Date: taipeiMinute(this.now()) };
    const hit = this.payTokens.get(payToken);
    const order = hit ? this.ordersByKey.get(hit.key) : undefined;
    if (!hit || !order || order.shopNo !== shop.shop.shopNo) return { ...base, Status: 'F', Description: ERR.noData };
    const ev = hit.event;
    const ts: Json = {
      APType: 'PayOut',
      TSNo: order.tsNo,
      OrderNo: order.orderNo,
      ShopNo: order.shopNo,
      PayType: order.payType,
      Amount: String(order.amountCents),
      Status: ev.status,
      Description: ev.description,
      PayDate: ev.payDate,
      Param1: order.param1,
      Param2: order.param2,
      Param3: order.param3,
    };
    if (order.payType === 'C') {
      // Sandbox test card (Visa 4242…), the way the bank reports card numbers: first 6 / last 4.
      Object.assign(ts, { LeftCCNo: '424242', RightCCNo: '4242', CCExpDate: '1230' });
    }
    return { ...base, Status: 'S', Description: SUCCESS, TSResultContent: ts };
  }

  private overdue(o: SinopacSandboxOrder, now: Date): boolean {
    if (o.state === 'paid') return false;
    if (o.payType === 'A') return o.atmExpireDate !== null && taipeiDate(now) > o.atmExpireDate;
    return now.getTime() > o.createdAt.getTime() + (o.cardExpMinutes ?? 10) * 60_000;
  }

  private orderQuery(shop: ShopState, m: Json): Json {
    const now = this.now();
    const base: Json = { ShopNo: shop.shop.shopNo, Date: taipeiMinute(now) };
    const orderNo = str(m.OrderNo);
    const payType = str(m.PayType);
    const payFlag = str(m.PayFlag);
    const oS = str(m.OrderDateTimeS);
    const oE = str(m.OrderDateTimeE);
    const pS = str(m.PayDateTimeS);
    const pE = str(m.PayDateTimeE);
    if (!orderNo && !payType && !payFlag && !oS && !pS) return { ...base, Status: 'F', Description: ERR.noCondition };
    if ((oS && !oE) || (pS && !pE)) return { ...base, Status: 'F', Description: ERR.dateRange };
    if (payFlag && !['Y', 'N', 'O'].includes(payFlag)) return { ...base, Status: 'F', Description: ERR.field };
    if (payType && payType !== 'A' && payType !== 'C') return { ...base, Status: 'F', Description: ERR.field };

    const rows = [...this.ordersByKey.values()]
      .filter((o) => o.shopNo === shop.shop.shopNo)
      .filter((o) => !orderNo || o.orderNo === orderNo)
      .filter((o) => !payType || o.payType === payType)
      .filter((o) => {
        // Spec §6. ATM: Y transferred, N not yet, O overdue. Card: Y captured (已請款), N not captured
        // (unpaid, authorised awaiting capture, declined), O overdue.
        if (!payFlag) return true;
        const yes = o.state === 'paid' && o.captured;
        if (payFlag === 'Y') return yes;
        const od = this.overdue(o, now);
        return payFlag === 'O' ? od : !yes && !od;
      })
      .filter((o) => !oS || (o.tsDate >= oS && o.tsDate <= oE))
      .filter((o) => !pS || (o.payDate !== '' && o.payDate >= pS && o.payDate <= pE))
      .slice(0, 300)
      .map((o) => this.orderRow(o));
    // "No rows" is answered as success with an empty list: the bank's behaviour is undocumented.
    return { ...base, Status: 'S', Description: SUCCESS, OrderList: rows };
  }

  private orderRow(o: SinopacSandboxOrder): Json {
    const paid = o.state === 'paid';
    const row: Json = {
      // Sandbox choice (not public): PayDate is the payment (for cards the authorisation) time, so it
      // is set before a card is captured; only PayFlag Y tells a captured card (spec §6).
      OrderNo: o.orderNo,
      TSNo: o.tsNo,
      TSDate: o.tsDate,
      PayDate: o.payDate,
      Amount: o.amountCents,
      PayType: o.payType,
      // Only the ATM codes are known (1A200 awaiting, 1A400 paid); the sandbox uses them for cards
      // too (1A400 once captured). Card PayStatus codes are unknown: clients must not rely on them.
      PayStatus: paid && o.captured ? '1A400' : '1A200',
      ExpireDate: o.atmExpireDate ? `${o.atmExpireDate}2359` : '',
      RefundFlag: 'N',
      RefundStatus: '',
      RefundDate: '',
      RefundAmount: 0,
      PrdtName: o.prdtName,
      Memo: o.memo,
      Param1: o.param1,
      Param2: o.param2,
      Param3: o.param3,
    };
    if (o.payType === 'A') {
      row.ATMParam = {
        AtmPayNo: o.atmPayNo,
        WebAtmURL: o.webAtmUrl,
        OtpURL: o.otpUrl,
        BankNo: paid ? '822' : '',
        AcctNo: paid ? '00000012345678' : '',
      };
    } else {
      row.ApprovedDate = paid ? o.payDate : '';
      row.CardParam = {
        CardPayURL: o.cardPayUrl,
        LeftCCNo: paid ? '424242' : '',
        RightCCNo: paid ? '4242' : '',
        AuthCode: paid ? '777777' : '',
      };
    }
    return row;
  }

  // ---------------------------------------------------------------- pages (zh-TW)

  private orderByTsNo(tsNo: unknown): SinopacSandboxOrder | undefined {
    const key = typeof tsNo === 'string' ? this.keyByTsNo.get(tsNo) : undefined;
    return key ? this.ordersByKey.get(key) : undefined;
  }

  private notFound(res: Response): void {
    this.sendHtml(res, 404, page('查無交易', '<h1>查無此筆交易</h1><p>請回到商店重新付款。</p>'));
  }

  private cardExpired(o: SinopacSandboxOrder): boolean {
    return o.state !== 'paid' && this.overdue(o, this.now());
  }

  private cardPage(req: Request, res: Response): void {
    const o = this.orderByTsNo(req.params.tsNo);
    if (!o || o.payType !== 'C') return this.notFound(res);
    if (o.state === 'paid') {
      return this.sendHtml(res, 200, page('已付款', `<h1>此筆交易已完成付款</h1><p>訂單編號：${escapeHtml(o.orderNo)}</p>`));
    }
    if (this.cardExpired(o)) {
      return this.sendHtml(res, 410, page('付款連結已逾期', '<h1>付款連結已逾期</h1><p>請回到商店重新取得付款連結。</p>'));
    }
    const ts = escapeHtml(encodeURIComponent(o.tsNo));
    const retry = o.state === 'failed' ? '<p>上一次付款未成功，您可以再試一次。</p>' : '';
    this.sendHtml(
      res,
      200,
      page(
        '信用卡付款（永豐銀行沙盒）',
        `<h1>信用卡付款</h1>
<p class="note">永豐銀行豐收款 — 本機沙盒模擬頁面，不會產生真實交易。</p>
${retry}
<table>
<tr><th>商店代號</th><td>${escapeHtml(o.shopNo)}</td></tr>
<tr><th>訂單編號</th><td>${escapeHtml(o.orderNo)}</td></tr>
<tr><th>交易序號</th><td>${escapeHtml(o.tsNo)}</td></tr>
<tr><th>收款名稱</th><td>${escapeHtml(o.prdtName)}</td></tr>
<tr><th>金額</th><td class="amount">NT$ ${escapeHtml(formatTwd(o.amountCents))}</td></tr>
</table>
<p>
<form method="post" action="/pay/card/${ts}/pay"><button type="submit">付款</button></form>
<form method="post" action="/pay/card/${ts}/fail"><button type="submit">失敗</button></form>
</p>`,
      ),
    );
  }

  private cardSubmit(req: Request, res: Response, status: 'S' | 'F'): void {
    const o = this.orderByTsNo(req.params.tsNo);
    if (!o || o.payType !== 'C') return this.notFound(res);
    if (o.state === 'paid') {
      return this.sendHtml(res, 409, page('已付款', '<h1>此筆交易已完成付款</h1><p>請勿重複付款。</p>'));
    }
    if (this.cardExpired(o)) {
      return this.sendHtml(res, 410, page('付款連結已逾期', '<h1>付款連結已逾期</h1><p>請回到商店重新取得付款連結。</p>'));
    }
    // An authorise-only order (AutoBilling N) is notified when captured, not now (spec §5.1).
    const { payToken } = this.recordPayment(o, status, status === 'S' ? '' : '授權失敗（沙盒模擬）', status === 'F' || o.autoBilling !== 'N');
    // The browser goes back to the shop with a form POST (spec §5.2).
    this.sendHtml(
      res,
      200,
      page(
        status === 'S' ? '付款完成' : '付款失敗',
        `<h1>${status === 'S' ? '付款完成' : '付款失敗'}，正在返回商店…</h1>
<form id="back" method="post" action="${escapeHtml(o.returnUrl)}" enctype="application/x-www-form-urlencoded">
<input type="hidden" name="ShopNo" value="${escapeHtml(o.shopNo)}">
<input type="hidden" name="PayToken" value="${escapeHtml(payToken)}">
<noscript><button type="submit">返回商店</button></noscript>
</form>
<script>document.getElementById('back').submit();</script>`,
      ),
    );
  }

  private atmPage(req: Request, res: Response): void {
    const o = this.orderByTsNo(req.params.tsNo);
    if (!o || o.payType !== 'A') return this.notFound(res);
    const state = o.state === 'paid' ? '已付款' : this.overdue(o, this.now()) ? '已逾期' : '待付款';
    const button =
      o.state === 'paid' || this.overdue(o, this.now())
        ? ''
        : `<form method="post" action="/pay/atm/${escapeHtml(encodeURIComponent(o.tsNo))}/pay"><button type="submit">模擬轉帳付款</button></form>`;
    this.sendHtml(
      res,
      200,
      page(
        'ATM 轉帳付款（永豐銀行沙盒）',
        `<h1>ATM 轉帳付款</h1>
<p class="note">永豐銀行豐收款 — 本機沙盒模擬頁面，不會產生真實交易。</p>
<table>
<tr><th>銀行代碼</th><td>807（永豐銀行）</td></tr>
<tr><th>轉帳帳號</th><td>${escapeHtml(o.atmPayNo)}</td></tr>
<tr><th>金額</th><td class="amount">NT$ ${escapeHtml(formatTwd(o.amountCents))}</td></tr>
<tr><th>繳費期限</th><td>${escapeHtml(o.atmExpireDate)} 23:59</td></tr>
<tr><th>狀態</th><td>${escapeHtml(state)}</td></tr>
</table>
<p>${button}</p>`,
      ),
    );
  }

  private atmSubmit(req: Request, res: Response): void {
    const o = this.orderByTsNo(req.params.tsNo);
    if (!o || o.payType !== 'A') return this.notFound(res);
    if (o.state === 'paid') return this.sendHtml(res, 409, page('已付款', '<h1>此筆交易已完成付款</h1>'));
    if (this.overdue(o, this.now())) return this.sendHtml(res, 410, page('已逾期', '<h1>已超過繳費期限</h1>'));
    this.recordPayment(o, 'S', '', true);
    this.sendHtml(res, 200, page('付款完成', '<h1>轉帳完成</h1><p>商店將另行通知您付款結果。</p>'));
  }

  private adminAction(req: Request, res: Response): void {
    const o = this.orderByTsNo(req.params.tsNo);
    if (!o) return this.notFound(res);
    try {
      switch (req.params.action) {
        case 'pay':
          if (o.payType === 'A') this.payAtm(o.orderNo);
          else this.payCard(o.orderNo);
          break;
        case 'fail':
          this.failCard(o.orderNo);
          break;
        case 'capture':
          this.captureCard(o.orderNo);
          break;
        case 'notify':
          this.notifyAgain(o.orderNo);
          break;
        default:
          return this.notFound(res);
      }
    } catch (err) {
      return this.sendHtml(res, 409, page('無法執行', `<h1>無法執行</h1><p>${escapeHtml((err as Error).message)}</p><p><a href="/">返回列表</a></p>`));
    }
    res.redirect(303, '/');
  }

  private indexPage(): string {
    const now = this.now();
    const stateText = (o: SinopacSandboxOrder) =>
      o.state === 'paid' ? (o.captured ? '已付款' : '已授權（未請款）') : o.state === 'failed' ? '付款失敗' : this.overdue(o, now) ? '已逾期' : '待付款';
    const rows = [...this.ordersByKey.values()]
      .reverse()
      .map((o) => {
        const ts = escapeHtml(encodeURIComponent(o.tsNo));
        const btn = (action: string, label: string) =>
          `<form method="post" action="/admin/${ts}/${action}"><button type="submit">${escapeHtml(label)}</button></form>`;
        const actions = [
          o.state !== 'paid' ? btn('pay', '付款') : '',
          o.payType === 'C' && o.state !== 'paid' ? btn('fail', '失敗') : '',
          o.payType === 'C' && o.state === 'paid' && !o.captured ? btn('capture', '請款') : '',
          o.events.length ? btn('notify', '重送通知') : '',
        ].join('');
        const link = o.payType === 'C' ? o.cardPayUrl : o.webAtmUrl;
        return `<tr>
<td>${escapeHtml(o.shopNo)}</td><td>${escapeHtml(o.orderNo)}</td>
<td>${link ? `<a href="${escapeHtml(link)}">${escapeHtml(o.tsNo)}</a>` : escapeHtml(o.tsNo)}</td>
<td>${o.payType === 'A' ? `ATM 虛擬帳號 ${escapeHtml(o.atmPayNo)}` : '信用卡'}</td>
<td>${escapeHtml(o.prdtName)}</td>
<td>NT$ ${escapeHtml(formatTwd(o.amountCents))}</td>
<td>${escapeHtml(stateText(o))}</td>
<td>${actions}</td>
</tr>`;
      })
      .join('\n');
    const notes = this.notifications
      .slice(-20)
      .reverse()
      .map(
        (n) =>
          `<tr><td>${escapeHtml(taipeiMinute(n.at))}</td><td>${escapeHtml(n.orderNo)}</td><td>${escapeHtml(n.attempt)}</td><td>${escapeHtml(n.httpStatus ?? '—')}</td><td>${n.ok ? '成功' : '失敗'}</td><td>${escapeHtml(n.url)}</td></tr>`,
      )
      .join('\n');
    return page(
      '永豐銀行豐收款沙盒',
      `<h1>永豐銀行豐收款（本機沙盒）</h1>
<p class="note">API 位址：${escapeHtml(this.apiBaseUrl)}</p>
<h2>訂單</h2>
${rows ? `<table><tr><th>商店代號</th><th>訂單編號</th><th>交易序號</th><th>付款方式</th><th>收款名稱</th><th>金額</th><th>狀態</th><th>操作</th></tr>${rows}</table>` : '<p>目前沒有訂單。</p>'}
<h2>最近的付款通知（BackendURL）</h2>
${notes ? `<table><tr><th>時間</th><th>訂單編號</th><th>次數</th><th>HTTP</th><th>結果</th><th>網址</th></tr>${notes}</table>` : '<p>尚無通知。</p>'}`,
    );
  }
}

/** Starts the sandbox bank on 127.0.0.1 (port 0 = any free port). */
export async function startSinopacSandbox(opts: SinopacSandboxOptions): Promise<SinopacSandbox> {
  const sandbox = new SandboxImpl(opts);
  await sandbox.start();
  return sandbox;
}
