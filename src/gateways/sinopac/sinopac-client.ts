/**
 * Transport for the SinoPac QPay WebAPI (specs/sinopac-qpay.md §1–§6).
 *
 * Every call is Nonce → Order, back to back, with a fresh nonce. A response is believed only after
 * the envelope, the decryption (IV from the *response* nonce) and the Sign over the decrypted
 * object have all been checked. Amounts cross this API as integer TWD; the ×100 of the bank's
 * wire format stays inside this file.
 */
import axios, { type AxiosResponse } from 'axios';
import pino from 'pino';
import type { SinopacConfig } from '../../config';
import { GatewayError } from '../payment-gateway';
import { decryptMessage, encryptMessage, hashId as computeHashId, sign, verifySign } from './sinopac-crypto';

export type SinopacService = 'OrderCreate' | 'OrderPayQuery' | 'OrderQuery';
export type SinopacPayType = 'A' | 'C';

export interface SinopacClientOptions {
  config: SinopacConfig;
  /** Per HTTP request (the Nonce call and the Order call each get this much). Default 15000. */
  timeoutMs?: number;
  logger?: pino.Logger;
}

export interface SinopacOrderCreateRequest {
  /** Bank OrderNo: our trade number, [A-Za-z0-9_-]{1,50}. */
  orderNo: string;
  /** Integer TWD (sent as ×100). */
  amount: number;
  /** Already sanitised: no ' " %, at most 60 UTF-8 bytes. */
  prdtName: string;
  payType: SinopacPayType;
  returnUrl: string;
  backendUrl: string;
  memo?: string;
  param1?: string;
  param2?: string;
  param3?: string;
  /** Required for payType 'A'. */
  atm?: { expireDate: string /* yyyyMMdd, Taipei */ };
  /** Required for payType 'C'. */
  card?: {
    autoBilling: 'Y' | 'N';
    expMinutes?: number;
    expBillingDays?: number;
    payTypeSub?: string;
  };
}

export interface SinopacOrderCreateResult {
  orderNo: string;
  shopNo: string;
  tsNo: string;
  /** Integer TWD. */
  amount: number;
  description: string;
  payType: SinopacPayType;
  atm: { atmPayNo: string; webAtmUrl: string | null; otpUrl: string | null } | null;
  card: { cardPayUrl: string } | null;
  /** The verified, decrypted bank message. */
  raw: Record<string, unknown>;
}

export interface SinopacTsResult {
  apType: string;
  tsNo: string;
  orderNo: string;
  shopNo: string;
  payType: string;
  /** Integer TWD, or null when the bank's value is missing or not a whole number of TWD. */
  amount: number | null;
  /** The bank's value, ×100 (parsed from its string form), or null when not numeric. */
  amountCents: number | null;
  status: string;
  description: string;
  /** yyyyMMddHHmm (Taipei) or ''. */
  payDate: string;
  param1: string;
  param2: string;
  param3: string;
}

export interface SinopacPayQueryResult {
  shopNo: string;
  payToken: string;
  date: string;
  /** Query-level status (S/F): says only whether the query itself worked. */
  status: string;
  description: string;
  /** The payment result; null when the bank sent none. */
  result: SinopacTsResult | null;
  raw: Record<string, unknown>;
}

export interface SinopacOrderQueryRow {
  orderNo: string;
  tsNo: string;
  tsDate: string;
  payDate: string;
  approvedDate: string;
  /** Integer TWD, or null when not a whole number of TWD. */
  amount: number | null;
  amountCents: number | null;
  payType: string;
  payStatus: string;
  /** ATM: yyyyMMddHHmm (end of the deadline day); may be '' for cards. */
  expireDate: string;
  refundFlag: string;
  param1: string;
  raw: Record<string, unknown>;
}

export interface SinopacOrderQueryResult {
  shopNo: string;
  date: string;
  status: string;
  description: string;
  orders: SinopacOrderQueryRow[];
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

const ORDER_NO_RE = /^[A-Za-z0-9_-]{1,50}$/;
const MAX_CENTS = 999_999_999; // 9 digits on the wire (spec §4)

function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return '';
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a ×100 amount (number or numeric string). */
function centsOf(v: unknown): number | null {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d+$/.test(v.trim())) n = Number(v.trim());
  else return null;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function twdOf(cents: number | null): number | null {
  if (cents === null || cents % 100 !== 0) return null;
  return cents / 100;
}

function descriptionCode(description: string): string {
  return description.trim().split(/\s+/)[0] ?? '';
}

function snippet(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

export class SinopacClient {
  readonly shopNo: string;
  private readonly hashIdValue: string;
  private readonly keyId: string;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly log: pino.Logger;

  constructor(opts: SinopacClientOptions) {
    const c = opts.config;
    if (!c.shopNo) throw new Error('SinoPac shopNo is required');
    if (!c.keyId) throw new Error('SinoPac keyId is required');
    this.shopNo = c.shopNo;
    this.keyId = c.keyId;
    this.hashIdValue = computeHashId(c.hashA1, c.hashA2, c.hashB1, c.hashB2);
    if (!/^[0-9A-F]{32}$/.test(this.hashIdValue)) throw new Error('SinoPac HashID derivation failed');
    this.baseUrl = c.apiBaseUrl.endsWith('/') ? c.apiBaseUrl : `${c.apiBaseUrl}/`;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    if (!(this.timeoutMs > 0)) throw new Error('timeoutMs must be positive');
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'sinopac-client', shopNo: c.shopNo });
  }

  /** OrderCreate. Throws GatewayError REJECTED when the bank answers Status F. */
  async orderCreate(req: SinopacOrderCreateRequest): Promise<SinopacOrderCreateResult> {
    const message = this.buildOrderCreateMessage(req);
    const res = await this.call('OrderCreate', message);
    const status = str(res.Status);
    const description = str(res.Description);
    if (status !== 'S') {
      throw new GatewayError('REJECTED', `SinoPac OrderCreate rejected: ${description || status || 'no status'}`, false, {
        service: 'OrderCreate',
        orderNo: req.orderNo,
        status,
        code: descriptionCode(description),
        description,
      });
    }
    const bad = (why: string): GatewayError =>
      new GatewayError('BAD_RESPONSE', `SinoPac OrderCreate response ${why}`, false, {
        service: 'OrderCreate',
        orderNo: req.orderNo,
      });
    if (str(res.OrderNo) !== req.orderNo) throw bad('names another OrderNo');
    const cents = centsOf(res.Amount);
    if (cents !== null && cents !== req.amount * 100) throw bad('states another Amount');
    const tsNo = str(res.TSNo);
    if (!tsNo) throw bad('has no TSNo');
    const payType = (str(res.PayType) || req.payType) as SinopacPayType;
    if (payType !== req.payType) throw bad('states another PayType');

    let atm: SinopacOrderCreateResult['atm'] = null;
    let card: SinopacOrderCreateResult['card'] = null;
    if (req.payType === 'A') {
      const p = isObject(res.ATMParam) ? res.ATMParam : {};
      const atmPayNo = str(p.AtmPayNo);
      if (!/^\d{10,20}$/.test(atmPayNo)) throw bad('has no usable ATMParam.AtmPayNo');
      atm = { atmPayNo, webAtmUrl: str(p.WebAtmURL) || null, otpUrl: str(p.OtpURL) || null };
    } else {
      const p = isObject(res.CardParam) ? res.CardParam : {};
      const cardPayUrl = str(p.CardPayURL);
      if (!/^https?:\/\//i.test(cardPayUrl)) throw bad('has no usable CardParam.CardPayURL');
      card = { cardPayUrl };
    }
    return {
      orderNo: req.orderNo,
      shopNo: str(res.ShopNo) || this.shopNo,
      tsNo,
      amount: req.amount,
      description,
      payType,
      atm,
      card,
      raw: res,
    };
  }

  /** OrderPayQuery: the authoritative result behind a BackendURL / ReturnURL PayToken. */
  async orderPayQuery(payToken: string): Promise<SinopacPayQueryResult> {
    if (typeof payToken !== 'string' || payToken.trim() === '' || payToken.length > 100) {
      throw new RangeError('PayToken must be a non-empty string of at most 100 characters');
    }
    const res = await this.call('OrderPayQuery', { ShopNo: this.shopNo, PayToken: payToken });
    const ts = isObject(res.TSResultContent) ? res.TSResultContent : null;
    let result: SinopacTsResult | null = null;
    if (ts) {
      const amountCents = centsOf(ts.Amount);
      result = {
        apType: str(ts.APType),
        tsNo: str(ts.TSNo),
        orderNo: str(ts.OrderNo),
        shopNo: str(ts.ShopNo),
        payType: str(ts.PayType),
        amount: twdOf(amountCents),
        amountCents,
        status: str(ts.Status),
        description: str(ts.Description),
        payDate: str(ts.PayDate),
        param1: str(ts.Param1),
        param2: str(ts.Param2),
        param3: str(ts.Param3),
      };
    }
    return {
      shopNo: str(res.ShopNo),
      payToken: str(res.PayToken) || payToken,
      date: str(res.Date),
      status: str(res.Status),
      description: str(res.Description),
      result,
      raw: res,
    };
  }

  /** OrderQuery by OrderNo (optionally narrowed by PayType / PayFlag). */
  async orderQuery(q: { orderNo: string; payType?: SinopacPayType; payFlag?: 'Y' | 'N' | 'O' }): Promise<SinopacOrderQueryResult> {
    if (!ORDER_NO_RE.test(q.orderNo)) throw new RangeError('orderNo must match [A-Za-z0-9_-]{1,50}');
    const message: Json = { ShopNo: this.shopNo, OrderNo: q.orderNo };
    if (q.payType) message.PayType = q.payType;
    if (q.payFlag) message.PayFlag = q.payFlag;
    const res = await this.call('OrderQuery', message);
    const list = Array.isArray(res.OrderList) ? res.OrderList : [];
    const orders: SinopacOrderQueryRow[] = list.filter(isObject).map((row) => {
      const amountCents = centsOf(row.Amount);
      return {
        orderNo: str(row.OrderNo),
        tsNo: str(row.TSNo),
        tsDate: str(row.TSDate),
        payDate: str(row.PayDate),
        approvedDate: str(row.ApprovedDate),
        amount: twdOf(amountCents),
        amountCents,
        payType: str(row.PayType),
        payStatus: str(row.PayStatus),
        expireDate: str(row.ExpireDate),
        refundFlag: str(row.RefundFlag),
        param1: str(row.Param1),
        raw: row,
      };
    });
    return {
      shopNo: str(res.ShopNo),
      date: str(res.Date),
      status: str(res.Status),
      description: str(res.Description),
      orders,
      raw: res,
    };
  }

  private buildOrderCreateMessage(req: SinopacOrderCreateRequest): Json {
    if (!ORDER_NO_RE.test(req.orderNo)) throw new RangeError('orderNo must match [A-Za-z0-9_-]{1,50}');
    if (!Number.isSafeInteger(req.amount) || req.amount <= 0 || req.amount * 100 > MAX_CENTS) {
      throw new RangeError('amount must be a positive integer TWD of at most 9,999,999');
    }
    if (!req.prdtName || /['"%]/.test(req.prdtName) || Buffer.byteLength(req.prdtName, 'utf8') > 60) {
      throw new RangeError("prdtName must be 1–60 UTF-8 bytes without ' \" %");
    }
    for (const [name, v] of [
      ['memo', req.memo],
      ['param1', req.param1],
      ['param2', req.param2],
      ['param3', req.param3],
    ] as const) {
      if (v !== undefined && /['"%]/.test(v)) throw new RangeError(`${name} must not contain ' " %`);
    }
    const m: Json = {
      ShopNo: this.shopNo,
      OrderNo: req.orderNo,
      Amount: req.amount * 100,
      CurrencyID: 'TWD',
      PrdtName: req.prdtName,
    };
    // Empty optional fields are omitted (spec §3.3 recommendation; they are unsigned anyway).
    if (req.memo) m.Memo = req.memo;
    if (req.param1) m.Param1 = req.param1;
    if (req.param2) m.Param2 = req.param2;
    if (req.param3) m.Param3 = req.param3;
    m.ReturnURL = req.returnUrl;
    m.BackendURL = req.backendUrl;
    m.PayType = req.payType;
    if (req.payType === 'A') {
      if (!req.atm || !/^\d{8}$/.test(req.atm.expireDate)) throw new RangeError('atm.expireDate (yyyyMMdd) is required for PayType A');
      m.ATMParam = { ExpireDate: req.atm.expireDate };
    } else if (req.payType === 'C') {
      if (!req.card) throw new RangeError('card parameters are required for PayType C');
      const cp: Json = { AutoBilling: req.card.autoBilling };
      if (req.card.expBillingDays !== undefined) cp.ExpBillingDays = req.card.expBillingDays;
      if (req.card.expMinutes !== undefined) {
        if (!Number.isInteger(req.card.expMinutes) || req.card.expMinutes < 1 || req.card.expMinutes > 30) {
          throw new RangeError('card.expMinutes must be an integer 1–30');
        }
        cp.ExpMinutes = req.card.expMinutes;
      }
      if (req.card.payTypeSub) cp.PayTypeSub = req.card.payTypeSub;
      m.CardParam = cp;
    } else {
      throw new RangeError('payType must be A or C');
    }
    return m;
  }

  /** One protocol round trip: Nonce, then Order with the envelope; returns the verified inner message. */
  private async call(service: SinopacService, message: Json): Promise<Json> {
    const started = Date.now();
    const ctx = { service, orderNo: typeof message.OrderNo === 'string' ? message.OrderNo : undefined };
    const nonce = await this.fetchNonce(service);

    const envelope = {
      Version: '1.0.0',
      ShopNo: this.shopNo,
      APIService: service,
      Sign: sign(message, nonce, this.hashIdValue),
      Nonce: nonce,
      Message: encryptMessage(JSON.stringify(message), this.hashIdValue, nonce),
    };
    const res = await this.post(`${this.baseUrl}Order`, envelope, service, 'order');
    const body = this.parseBody(res, service, 'order');

    const bad = (why: string, extra: Record<string, unknown> = {}): GatewayError =>
      new GatewayError('BAD_RESPONSE', `SinoPac ${service} response ${why}`, false, { ...ctx, ...extra });
    const respNonce = body.Nonce;
    const respMessage = body.Message;
    if (typeof respNonce !== 'string' || respNonce === '' || typeof respMessage !== 'string' || respMessage === '') {
      // Spec §2.2: without Message/Nonce the bank may put Status/Description at the top level [U].
      throw bad('has no Message/Nonce', {
        status: str(body.Status) || undefined,
        description: str(body.Description) || undefined,
      });
    }
    if (body.ShopNo !== this.shopNo) throw bad('names another ShopNo', { received: str(body.ShopNo) });
    if (body.APIService !== service) throw bad('names another APIService', { received: str(body.APIService) });
    if (typeof body.Sign !== 'string' || body.Sign === '') {
      throw new GatewayError('BAD_SIGNATURE', `SinoPac ${service} response has no Sign`, false, ctx);
    }

    let inner: unknown;
    try {
      inner = JSON.parse(decryptMessage(respMessage, this.hashIdValue, respNonce));
    } catch (err) {
      // A message that does not decrypt to JSON under our key is not authentic (or not for us).
      this.log.warn({ ...ctx, envelope: body }, 'SinoPac response could not be decrypted');
      throw new GatewayError('BAD_SIGNATURE', `SinoPac ${service} response could not be decrypted`, false, {
        ...ctx,
        reason: (err as Error).message,
      });
    }
    if (!isObject(inner)) {
      throw new GatewayError('BAD_SIGNATURE', `SinoPac ${service} response did not decrypt to an object`, false, ctx);
    }
    if (!verifySign(inner, respNonce, this.hashIdValue, body.Sign)) {
      // Spec §3.5 caveat: keep the raw envelope (no key material in it) for diagnosis.
      this.log.warn({ ...ctx, envelope: body }, 'SinoPac response Sign mismatch');
      throw new GatewayError('BAD_SIGNATURE', `SinoPac ${service} response Sign does not verify`, false, ctx);
    }
    if (inner.ShopNo !== undefined && inner.ShopNo !== this.shopNo) {
      throw bad('message names another ShopNo', { received: str(inner.ShopNo) });
    }
    this.log.debug(
      { ...ctx, status: str(inner.Status), description: str(inner.Description), ms: Date.now() - started },
      'SinoPac call done',
    );
    return inner;
  }

  private async fetchNonce(service: SinopacService): Promise<string> {
    const res = await this.post(`${this.baseUrl}Nonce`, { ShopNo: this.shopNo }, service, 'nonce');
    const body = this.parseBody(res, service, 'nonce');
    const nonce = body.Nonce;
    if (typeof nonce !== 'string' || nonce.trim() === '' || nonce.length > 1000) {
      throw new GatewayError('BAD_RESPONSE', `SinoPac Nonce response for ${service} has no Nonce`, false, {
        service,
        stage: 'nonce',
        status: str(body.Status) || undefined,
        description: str(body.Description) || undefined,
      });
    }
    return nonce;
  }

  private async post(url: string, body: unknown, service: SinopacService, stage: 'nonce' | 'order'): Promise<AxiosResponse<string>> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    // Once the Order request is on the wire the bank may have acted on it (spec §4 safe retry rule).
    const details = { service, stage, mayHaveReachedBank: stage === 'order' };
    try {
      return await axios.post<string>(url, JSON.stringify(body), {
        headers: { 'Content-Type': 'application/json; charset=utf-8', 'X-KeyID': this.keyId, Accept: 'application/json' },
        timeout: this.timeoutMs,
        signal: controller.signal,
        responseType: 'text',
        transformResponse: [(d: unknown) => d],
        validateStatus: () => true,
        maxRedirects: 0,
        transitional: { clarifyTimeoutError: true },
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const timedOut =
        controller.signal.aborted || e.code === 'ETIMEDOUT' || e.code === 'ECONNABORTED' || e.code === 'ERR_CANCELED';
      if (timedOut) {
        this.log.warn(details, 'SinoPac request timed out');
        throw new GatewayError('TIMEOUT', `SinoPac ${service} ${stage} request timed out after ${this.timeoutMs} ms`, true, details);
      }
      this.log.warn({ ...details, code: e.code }, 'SinoPac request failed');
      throw new GatewayError('NETWORK', `SinoPac ${service} ${stage} request failed: ${e.code ?? e.message ?? 'network error'}`, true, {
        ...details,
        // A refused connection never reached the bank.
        mayHaveReachedBank: stage === 'order' && e.code !== 'ECONNREFUSED' && e.code !== 'ENOTFOUND',
        code: e.code,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private parseBody(res: AxiosResponse<string>, service: SinopacService, stage: 'nonce' | 'order'): Json {
    if (res.status !== 200) {
      const retryable = res.status >= 500;
      this.log.warn({ service, stage, httpStatus: res.status }, 'SinoPac HTTP status');
      throw new GatewayError('HTTP_STATUS', `SinoPac ${service} ${stage} answered HTTP ${res.status}`, retryable, {
        service,
        stage,
        httpStatus: res.status,
        body: snippet(res.data),
      });
    }
    let parsed: unknown;
    try {
      parsed = typeof res.data === 'string' ? JSON.parse(res.data) : res.data;
    } catch {
      parsed = undefined;
    }
    if (!isObject(parsed)) {
      throw new GatewayError('BAD_RESPONSE', `SinoPac ${service} ${stage} response is not a JSON object`, false, {
        service,
        stage,
        body: snippet(res.data),
      });
    }
    return parsed;
  }
}
