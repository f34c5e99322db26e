import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { checkMacValue, verifyCheckMacValue } from '../gateways/ecpay/check-mac-value';
import { escapeHtml, formatEcpayDate, formatEcpayDateTime } from '../gateways/ecpay/ecpay-client';
import { doActionBlockedForMs, nextDailyCapture, parseEcpayDate } from '../gateways/ecpay/ecpay-gateway';
import { autoSubmitPage, digits, errorPage, formatTwd, listenSandbox, listPage, page, stringFields } from './ecpay-sandbox-pages';
import { FormNotifier, type FormDelivery } from './form-notifier';

/**
 * A local stand-in for ECPay's AIO payment host (specs/ecpay-aio.md), for tests and `npm run dev`.
 *
 * It checks what real ECPay checks (CheckMacValue, required fields, unique MerchantTradeNo,
 * QueryTradeInfo's 3-minute TimeStamp window), shows a zh-TW cashier, and sends ReturnURL /
 * PaymentInfoURL notifications server-to-server with ECPay's retry behaviour (re-sent until the
 * answer is exactly `1|OK`, at most 5 deliveries, re-sends carry RtnMsg=paid).
 *
 * Where the spec marks ECPay's behaviour as uncertain, the sandbox picks one plausible answer:
 * - cashier errors other than 10200073 / 10300028 / 10200141 use the invented code 10100050;
 * - QueryTradeInfo with a bad MAC or stale TimeStamp answers plain text without a MAC;
 * - QueryTradeInfo for an unknown trade answers a signed body with TradeStatus 10200047;
 * - a failed card payment sends no ReturnURL and then reports TradeStatus 10200095;
 * - DoAction refusals answer RtnCode 0 with an explanatory RtnMsg (ECPay's own codes and texts for
 *   them are not in the spec): an action that does not fit the capture state ("Action R is not
 *   allowed for a trade in state 已授權."), a call during 20:15–20:30 Taipei ("DoAction is not
 *   available during the daily capture (20:15-20:30)."), an over-refund ("… exceeds …");
 * - CreditDetail/QueryTrade/V2 answers JSON with numbers as numbers, `status` 已放棄 after N, and
 *   RtnMsg `error` for a bad MAC / CheckCode, `error_nopay` for an unknown CreditRefundId.
 *
 * Card capture follows spec §10.2 with daily auto-capture on (ECPay's default): a paid card trade
 * is 已授權 (authorised) until the next 20:15 Asia/Taipei, when ECPay's daily run captures it
 * (已關帳); C requests a capture (要關帳, captured by that day's run), E cancels the request, N
 * abandons an authorisation, R refunds a requested or done capture. The clock is `now`.
 */

export interface EcpaySandboxMerchant {
  merchantId: string;
  hashKey: string;
  hashIv: string;
  /** The dashboard's CreditCheckCode; CreditDetail/QueryTrade/V2 refuses other values (and all, without one). */
  creditCheckCode?: string;
}

export interface EcpaySandboxOptions {
  merchants: EcpaySandboxMerchant[];
  /** 0 (default) picks a free port. */
  port?: number;
  host?: '127.0.0.1';
  logger?: Logger;
  /** Waits between deliveries of one notification; at most 4 are used (5 deliveries in all). */
  notifyRetryDelaysMs?: number[];
  /** Timeout of each notification POST to the shop. */
  notifyTimeoutMs?: number;
  now?: () => Date;
}

export type SandboxChoosePayment = 'Credit' | 'ATM' | 'CVS';
export type SandboxTradeStatus = 'created' | 'code-issued' | 'paid' | 'failed' | 'voided';

export interface SandboxRefund {
  amount: number;
  at: Date;
}

/** Capture state of a card authorisation (spec §10.2). */
export type SandboxCaptureState = 'authorised' | 'capture-requested' | 'captured' | 'abandoned';

/** One accepted DoAction. */
export interface SandboxAction {
  action: 'C' | 'R' | 'E' | 'N';
  amount: number;
  at: Date;
  /** The capture state the action was taken in. */
  from: SandboxCaptureState;
}

const CAPTURE_LABEL: Record<SandboxCaptureState, string> = {
  authorised: '已授權',
  'capture-requested': '要關帳',
  captured: '已關帳',
  abandoned: '已放棄',
};

export interface SandboxTrade {
  merchantId: string;
  merchantTradeNo: string;
  /** ECPay's 16-digit TradeNo. */
  tradeNo: string;
  choosePayment: SandboxChoosePayment;
  /** ECPay PaymentType: Credit_CreditCard, ATM_TAISHIN, CVS_CVS. */
  paymentType: string;
  totalAmount: number;
  itemName: string;
  tradeDesc: string;
  merchantTradeDate: string;
  tradeDate: Date;
  returnUrl: string;
  orderResultUrl: string | null;
  paymentInfoUrl: string | null;
  clientBackUrl: string | null;
  needExtraPaidInfo: boolean;
  customFields: [string, string, string, string];
  status: SandboxTradeStatus;
  paidAt: Date | null;
  simulatePaid: boolean;
  /** Credit authorisation serial (CreditRefundId). */
  gwsr: string | null;
  bankCode: string | null;
  vAccount: string | null;
  paymentNo: string | null;
  /** ExpireDate as sent in PaymentInfoURL (ATM `yyyy/MM/dd`, CVS `yyyy/MM/dd HH:mm:ss`). */
  expireDate: string | null;
  paymentDeadline: Date | null;
  refunds: SandboxRefund[];
  /** Card trades once paid: the capture state; null otherwise. */
  capture: SandboxCaptureState | null;
  /** When `capture` last changed (authorisation, C, E, a daily capture). */
  captureSince: Date | null;
  /** Amount requested for capture or captured (QueryTrade/V2 `clsamt`). */
  capturedAmount: number;
  /** Every accepted DoAction, oldest first. */
  actions: SandboxAction[];
  /** The form as the browser posted it. */
  checkoutFields: Record<string, string>;
}

/** One delivery of ReturnURL or PaymentInfoURL (url, attempt, fields, the shop's answer). */
export interface SandboxNotification extends FormDelivery {
  kind: 'ReturnURL' | 'PaymentInfoURL';
  merchantTradeNo: string;
}

export interface PayOptions {
  /** Default true. False records the payment without posting ReturnURL (only QueryTradeInfo sees it). */
  notify?: boolean;
  /** SimulatePaid=1, as the dashboard's 模擬付款 button sends. */
  simulatePaid?: boolean;
  /** Only needed when two sandbox merchants use the same MerchantTradeNo. */
  merchantId?: string;
}

export interface SandboxApiRequest {
  method: string;
  path: string;
  /** HTTP status answered. */
  status: number;
  at: Date;
}

export interface EcpaySandbox {
  /** Origin to use as ECPAY_API_BASE_URL. */
  readonly url: string;
  /** Every request to ECPay's own paths (/Cashier/…, /CreditDetail/…), oldest first (live array). */
  readonly apiRequests: readonly SandboxApiRequest[];
  /**
   * Test injection: the next `times` requests to `path` (e.g. '/Cashier/QueryTradeInfo/V5') are
   * answered with this HTTP status and nothing else happens — 403 is how ECPay says "too fast,
   * wait about 30 minutes" (spec §1.1, §11).
   */
  injectHttpStatus(path: string, status: number, times?: number): void;
  /**
   * Test injection: from now on, every server-to-server call (every /Cashier/… and /CreditDetail/…
   * path except the shopper's cashier, AioCheckOut) fails: 'timeout' holds the answer back for
   * `hangMs` (default 20 s, then the real answer), 'garbage' answers 200 with a body that is no
   * ECPay answer at all. null ends it. Queued injectHttpStatus answers come first.
   */
  failEveryCall(mode: 'timeout' | 'garbage' | null, opts?: { hangMs?: number }): void;
  /** Log of every notification delivery, oldest first (live array). */
  readonly notifications: readonly SandboxNotification[];
  /** Pays a credit trade, or an ATM / CVS trade whose code was issued; resolves after the first ReturnURL delivery. */
  pay(merchantTradeNo: string, opts?: PayOptions): Promise<SandboxTrade>;
  /** Marks an unpaid trade failed (no notification is sent). */
  fail(merchantTradeNo: string, opts?: { merchantId?: string }): SandboxTrade;
  /** One more delivery of the latest notification (ReturnURL when paid, else PaymentInfoURL), RtnMsg=paid. */
  notifyAgain(merchantTradeNo: string, opts?: { merchantId?: string }): Promise<SandboxNotification>;
  getTrade(merchantTradeNo: string, opts?: { merchantId?: string }): SandboxTrade | undefined;
  trades(): SandboxTrade[];
  refunds(merchantTradeNo: string, opts?: { merchantId?: string }): SandboxRefund[];
  /** Every accepted DoAction of a trade (C, R, E, N), oldest first. */
  actions(merchantTradeNo: string, opts?: { merchantId?: string }): SandboxAction[];
  /** Resolves once no notification is being delivered or waiting for a retry. */
  idle(): Promise<void>;
  /** Stops retry timers, aborts deliveries in flight, closes the server and its connections. */
  close(): Promise<void>;
}

const DEFAULT_RETRY_DELAYS_MS = [2000, 5000, 15000, 60000];
const MAX_DELIVERIES = 5;
const QUERY_TIMESTAMP_WINDOW_S = 180;
const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;

const ERR_PARAMETER = '10100050';
const ERR_CHECK_MAC = '10200073';
const ERR_DUPLICATE = '10300028';
const ERR_MERCHANT = '10200141';
const TRADE_STATUS_NOT_FOUND = '10200047';
const TRADE_STATUS_FAILED = '10200095';

const REQUIRED_CHECKOUT_FIELDS = [
  'MerchantID',
  'MerchantTradeNo',
  'MerchantTradeDate',
  'PaymentType',
  'TotalAmount',
  'TradeDesc',
  'ItemName',
  'ReturnURL',
  'ChoosePayment',
  'EncryptType',
  'CheckMacValue',
] as const;

/** NeedExtraPaidInfo=Y block (spec §6.3), in the shape of the real stage payload R1. */
const EXTRA_FIELD_NAMES = [
  'AlipayID',
  'AlipayTradeNo',
  'amount',
  'ATMAccBank',
  'ATMAccNo',
  'auth_code',
  'card4no',
  'card6no',
  'eci',
  'ExecTimes',
  'Frequency',
  'gwsr',
  'PayFrom',
  'PaymentNo',
  'PeriodAmount',
  'PeriodType',
  'process_date',
  'red_dan',
  'red_de_amt',
  'red_ok_amt',
  'red_yet',
  'staed',
  'stage',
  'stast',
  'TenpayTradeNo',
  'TotalSuccessAmount',
  'TotalSuccessTimes',
  'WebATMAccBank',
  'WebATMAccNo',
  'WebATMBankName',
] as const;

function backLink(trade: SandboxTrade): string {
  return trade.clientBackUrl ? `  <p><a href="${escapeHtml(trade.clientBackUrl)}">返回商店</a></p>` : '';
}

function statusText(s: SandboxTradeStatus): string {
  switch (s) {
    case 'created':
      return '待付款';
    case 'code-issued':
      return '已取號，待繳費';
    case 'paid':
      return '已付款';
    case 'failed':
      return '付款失敗';
    case 'voided':
      return '已放棄授權';
  }
}

function snapshot(t: SandboxTrade): SandboxTrade {
  return {
    ...t,
    customFields: [...t.customFields],
    refunds: t.refunds.map((r) => ({ ...r })),
    actions: t.actions.map((a) => ({ ...a })),
    checkoutFields: { ...t.checkoutFields },
  };
}

export async function startEcpaySandbox(opts: EcpaySandboxOptions): Promise<EcpaySandbox> {
  const merchants = new Map(opts.merchants.map((m) => [m.merchantId, m]));
  const host = opts.host ?? '127.0.0.1';
  const retryDelays = (opts.notifyRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS).slice(0, MAX_DELIVERIES - 1);
  const notifyTimeoutMs = opts.notifyTimeoutMs ?? 10000;
  const now = opts.now ?? (() => new Date());
  const log = opts.logger;

  /** By ECPay TradeNo. */
  const tradesByNo = new Map<string, SandboxTrade>();
  /** `${merchantId}\n${merchantTradeNo}` → TradeNo; never deleted, so a MerchantTradeNo is unique forever. */
  const tradeIndex = new Map<string, string>();
  const notifications: SandboxNotification[] = [];
  const notifier = new FormNotifier({ retryDelaysMs: retryDelays, timeoutMs: notifyTimeoutMs, now });

  const key = (merchantId: string, merchantTradeNo: string) => `${merchantId}\n${merchantTradeNo}`;

  function find(merchantTradeNo: string, merchantId?: string): SandboxTrade | undefined {
    if (merchantId !== undefined) {
      const no = tradeIndex.get(key(merchantId, merchantTradeNo));
      return no === undefined ? undefined : tradesByNo.get(no);
    }
    let found: SandboxTrade | undefined;
    for (const t of tradesByNo.values()) if (t.merchantTradeNo === merchantTradeNo) found = t;
    return found;
  }

  function mustFind(merchantTradeNo: string, merchantId?: string): SandboxTrade {
    const t = find(merchantTradeNo, merchantId);
    if (!t) throw new Error(`ecpay sandbox: no trade ${merchantTradeNo}`);
    return t;
  }

  function sign(trade: SandboxTrade, fields: Record<string, string>): Record<string, string> {
    const m = merchants.get(trade.merchantId)!;
    return { ...fields, CheckMacValue: checkMacValue(fields, m.hashKey, m.hashIv) };
  }

  function newTradeNo(): string {
    for (;;) {
      const stamp = formatEcpayDateTime(now()).replace(/\D/g, '').slice(2, 14);
      const no = `${stamp}${digits(4)}`;
      if (!tradesByNo.has(no)) return no;
    }
  }

  function chargeFee(t: SandboxTrade): string {
    if (t.choosePayment === 'Credit') return String(Math.max(1, Math.round(t.totalAmount * 0.0275)));
    return t.choosePayment === 'ATM' ? '10' : '28';
  }

  function customFieldEntries(t: SandboxTrade): Record<string, string> {
    return {
      CustomField1: t.customFields[0],
      CustomField2: t.customFields[1],
      CustomField3: t.customFields[2],
      CustomField4: t.customFields[3],
    };
  }

  function extraFields(t: SandboxTrade): Record<string, string> {
    const x: Record<string, string> = Object.fromEntries(EXTRA_FIELD_NAMES.map((n) => [n, '']));
    const paidAt = t.paidAt ? formatEcpayDateTime(t.paidAt) : '';
    if (t.choosePayment === 'Credit') {
      Object.assign(x, {
        amount: String(t.totalAmount),
        auth_code: '777777',
        card4no: '2222',
        card6no: '431195',
        eci: '0',
        gwsr: t.gwsr ?? '',
        process_date: paidAt,
        red_dan: '0',
        red_de_amt: '0',
        red_ok_amt: '0',
        red_yet: '0',
        staed: '0',
        stage: '0',
        stast: '0',
      });
    } else if (t.choosePayment === 'ATM' && t.status === 'paid') {
      Object.assign(x, { ATMAccBank: '812', ATMAccNo: '12345' });
    } else if (t.choosePayment === 'CVS') {
      Object.assign(x, { PaymentNo: t.paymentNo ?? '', PayFrom: t.status === 'paid' ? 'family' : '' });
    }
    return x;
  }

  function returnFields(t: SandboxTrade, rtnMsg: string): Record<string, string> {
    const f: Record<string, string> = {
      MerchantID: t.merchantId,
      MerchantTradeNo: t.merchantTradeNo,
      StoreID: '',
      RtnCode: '1',
      RtnMsg: rtnMsg,
      TradeNo: t.tradeNo,
      TradeAmt: String(t.totalAmount),
      PaymentDate: t.paidAt ? formatEcpayDateTime(t.paidAt) : '',
      PaymentType: t.paymentType,
      PaymentTypeChargeFee: chargeFee(t),
      TradeDate: formatEcpayDateTime(t.tradeDate),
      SimulatePaid: t.simulatePaid ? '1' : '0',
      ...customFieldEntries(t),
      ...(t.needExtraPaidInfo ? extraFields(t) : {}),
    };
    return sign(t, f);
  }

  function paymentInfoFields(t: SandboxTrade): Record<string, string> {
    const f: Record<string, string> = {
      MerchantID: t.merchantId,
      MerchantTradeNo: t.merchantTradeNo,
      StoreID: '',
      RtnCode: t.choosePayment === 'ATM' ? '2' : '10100073',
      RtnMsg: t.choosePayment === 'ATM' ? 'Get VirtualAccount Succeeded' : 'Get CVS Code Succeeded.',
      TradeNo: t.tradeNo,
      TradeAmt: String(t.totalAmount),
      PaymentType: t.paymentType,
      TradeDate: formatEcpayDateTime(t.tradeDate),
      ...customFieldEntries(t),
      ExpireDate: t.expireDate ?? '',
    };
    if (t.choosePayment === 'ATM') {
      f.BankCode = t.bankCode ?? '';
      f.vAccount = t.vAccount ?? '';
    } else {
      f.PaymentNo = t.paymentNo ?? '';
    }
    return sign(t, f);
  }

  function record(kind: SandboxNotification['kind'], t: SandboxTrade, d: FormDelivery): SandboxNotification {
    const rec: SandboxNotification = { kind, merchantTradeNo: t.merchantTradeNo, ...d };
    notifications.push(rec);
    log?.info(
      { kind, merchantTradeNo: t.merchantTradeNo, attempt: d.attempt, status: d.status, error: d.error },
      'ecpay sandbox notification delivered',
    );
    return rec;
  }

  /** One delivery, outside any retry chain (the 重送通知 button, notifyAgain). */
  function deliver(kind: SandboxNotification['kind'], t: SandboxTrade, url: string, fields: Record<string, string>): Promise<SandboxNotification> {
    return notifier.track(notifier.deliver(url, fields, 1).then((d) => record(kind, t, d)));
  }

  /**
   * Delivers a notification and keeps re-sending it in the background until `1|OK` (at most 5
   * deliveries). Resolves with the first delivery; the whole chain is tracked for idle().
   */
  function notifyWithRetries(
    kind: SandboxNotification['kind'],
    t: SandboxTrade,
    url: string,
    fieldsFor: (attempt: number) => Record<string, string>,
  ): Promise<SandboxNotification> {
    return notifier.send(url, fieldsFor, (d) => record(kind, t, d));
  }

  function sendReturnUrl(t: SandboxTrade): Promise<SandboxNotification> {
    // The first server notification says 交易成功; ECPay's re-sends say paid (spec §6.2).
    return notifyWithRetries('ReturnURL', t, t.returnUrl, (attempt) =>
      returnFields(t, attempt === 1 ? '交易成功' : 'paid'),
    );
  }

  function issueCode(t: SandboxTrade): void {
    const at = now();
    if (t.choosePayment === 'ATM') {
      const days = Number(t.checkoutFields.ExpireDate ?? '3');
      t.bankCode = '812';
      t.vAccount = `9103${digits(12)}`;
      t.expireDate = formatEcpayDate(new Date(at.getTime() + days * DAY_MS));
    } else {
      const minutes = Math.min(Number(t.checkoutFields.StoreExpireDate ?? '10080'), 86400);
      t.paymentNo = `LLL${digits(11)}`;
      t.expireDate = formatEcpayDateTime(new Date(at.getTime() + minutes * MINUTE_MS));
    }
    t.paymentDeadline = parseEcpayDate(t.expireDate);
    t.status = 'code-issued';
  }

  /** ECPay's daily run at 20:15 Taipei (auto-capture on): authorisations and requested captures become captured. */
  function settle(t: SandboxTrade): SandboxTrade {
    if ((t.capture === 'authorised' || t.capture === 'capture-requested') && t.captureSince) {
      const run = nextDailyCapture(t.captureSince);
      if (now().getTime() >= run.getTime()) {
        if (t.capture === 'authorised') t.capturedAmount = t.totalAmount;
        t.capture = 'captured';
        t.captureSince = run;
      }
    }
    return t;
  }

  async function payTrade(t: SandboxTrade, o: PayOptions): Promise<SandboxTrade> {
    if (t.status === 'paid' || t.status === 'voided') throw new Error(`ecpay sandbox: ${t.merchantTradeNo} is already paid`);
    if (t.status === 'failed') throw new Error(`ecpay sandbox: ${t.merchantTradeNo} has failed`);
    if (t.choosePayment !== 'Credit' && t.status !== 'code-issued') {
      throw new Error(`ecpay sandbox: ${t.merchantTradeNo} has no payment code yet`);
    }
    const at = now();
    if (t.paymentDeadline && at.getTime() > t.paymentDeadline.getTime()) {
      throw new Error(`ecpay sandbox: the payment code of ${t.merchantTradeNo} has expired`);
    }
    t.status = 'paid';
    t.paidAt = at;
    t.simulatePaid = o.simulatePaid === true;
    if (t.choosePayment === 'Credit') {
      t.gwsr = digits(8);
      t.capture = 'authorised';
      t.captureSince = at;
      t.capturedAmount = 0;
    }
    log?.info({ merchantTradeNo: t.merchantTradeNo, notify: o.notify !== false }, 'ecpay sandbox trade paid');
    if (o.notify !== false) await sendReturnUrl(t);
    return snapshot(t);
  }

  function failTrade(t: SandboxTrade): SandboxTrade {
    if (t.status === 'paid' || t.status === 'voided') throw new Error(`ecpay sandbox: ${t.merchantTradeNo} is already paid`);
    t.status = 'failed';
    return snapshot(t);
  }

  // ------------------------------------------------------------------------------------------
  // HTTP

  const app = express();
  app.disable('x-powered-by');
  const apiRequests: SandboxApiRequest[] = [];
  const injected = new Map<string, { status: number; times: number }>();
  let everyCall: { mode: 'timeout' | 'garbage'; hangMs: number } | null = null;
  const hung = new Set<NodeJS.Timeout>();
  app.use((req: Request, res: Response, next) => {
    if (!/^\/(?:Cashier|CreditDetail)\//.test(req.path)) return next();
    const rec: SandboxApiRequest = { method: req.method, path: req.path, status: 0, at: now() };
    apiRequests.push(rec);
    res.on('finish', () => {
      rec.status = res.statusCode;
    });
    const inj = injected.get(req.path);
    if (inj && inj.times > 0) {
      inj.times -= 1;
      rec.status = inj.status;
      return res.status(inj.status).type('text/html; charset=utf-8').send(inj.status === 403 ? 'Forbidden' : `HTTP ${inj.status}`);
    }
    if (everyCall && req.path !== '/Cashier/AioCheckOut/V5') {
      if (everyCall.mode === 'garbage') {
        return res.status(200).type('text/html; charset=utf-8').send('<html><body>\u0000系統維護中 ¿?&&==%%<b>CheckMacValue=</body>');
      }
      const t = setTimeout(() => {
        hung.delete(t);
        if (!res.destroyed && !res.headersSent) next();
      }, everyCall.hangMs);
      t.unref();
      hung.add(t);
      return;
    }
    return next();
  });
  app.use(express.urlencoded({ extended: false, limit: '100kb', parameterLimit: 200 }));

  const sendHtml = (res: Response, html: string, status = 200) =>
    res.status(status).type('text/html; charset=utf-8').send(html);

  app.post('/Cashier/AioCheckOut/V5', async (req: Request, res: Response) => {
    const f = stringFields(req.body ?? {});
    if (!f) return sendHtml(res, errorPage(ERR_PARAMETER, 'Parameter Error. Duplicated parameter.'));
    const missing = REQUIRED_CHECKOUT_FIELDS.filter((n) => f[n] === undefined || (f[n] === '' && n !== 'TradeDesc'));
    if (missing.length > 0) {
      return sendHtml(res, errorPage(ERR_PARAMETER, `Parameter Error. ${missing.join(', ')} Not In Spec.`));
    }
    const merchant = merchants.get(f.MerchantID!);
    if (!merchant) return sendHtml(res, errorPage(ERR_MERCHANT, '廠商尚未啟用金流服務。'));
    if (!verifyCheckMacValue(f, merchant.hashKey, merchant.hashIv, { algorithms: ['sha256'] })) {
      log?.warn({ merchantTradeNo: f.MerchantTradeNo }, 'ecpay sandbox checkout: CheckMacValue mismatch');
      return sendHtml(res, errorPage(ERR_CHECK_MAC, 'CheckMacValue Error.'));
    }
    const problems: string[] = [];
    if (f.EncryptType !== '1') problems.push('EncryptType');
    if (f.PaymentType !== 'aio') problems.push('PaymentType');
    if (!/^[A-Za-z0-9]{1,20}$/.test(f.MerchantTradeNo!)) problems.push('MerchantTradeNo');
    if (!/^[1-9]\d{0,8}$/.test(f.TotalAmount!)) problems.push('TotalAmount');
    if (!/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}$/.test(f.MerchantTradeDate!)) problems.push('MerchantTradeDate');
    if (!['Credit', 'ATM', 'CVS'].includes(f.ChoosePayment!)) problems.push('ChoosePayment');
    if (f.ItemName!.length > 400) problems.push('ItemName');
    if (f.TradeDesc!.length > 200) problems.push('TradeDesc');
    if (f.OrderResultURL !== undefined && f.OrderResultURL === f.ReturnURL) problems.push('OrderResultURL');
    if (f.ChoosePayment === 'ATM' && f.ExpireDate !== undefined) {
      if (!/^\d+$/.test(f.ExpireDate) || Number(f.ExpireDate) < 1 || Number(f.ExpireDate) > 60) problems.push('ExpireDate');
    }
    if (f.ChoosePayment === 'CVS' && f.StoreExpireDate !== undefined) {
      if (!/^\d+$/.test(f.StoreExpireDate) || Number(f.StoreExpireDate) < 1) problems.push('StoreExpireDate');
    }
    for (const n of ['CustomField1', 'CustomField2', 'CustomField3', 'CustomField4']) {
      if ((f[n] ?? '').length > 50) problems.push(n);
    }
    if (problems.length > 0) {
      return sendHtml(res, errorPage(ERR_PARAMETER, `Parameter Error. ${problems.join(', ')} Not In Spec.`));
    }
    const k = key(f.MerchantID!, f.MerchantTradeNo!);
    if (tradeIndex.has(k)) return sendHtml(res, errorPage(ERR_DUPLICATE, '訂單編號重覆，建立失敗。'));

    const choose = f.ChoosePayment as SandboxChoosePayment;
    const t: SandboxTrade = {
      merchantId: f.MerchantID!,
      merchantTradeNo: f.MerchantTradeNo!,
      tradeNo: newTradeNo(),
      choosePayment: choose,
      paymentType: choose === 'Credit' ? 'Credit_CreditCard' : choose === 'ATM' ? 'ATM_TAISHIN' : 'CVS_CVS',
      totalAmount: Number(f.TotalAmount),
      itemName: f.ItemName!,
      tradeDesc: f.TradeDesc!,
      merchantTradeDate: f.MerchantTradeDate!,
      tradeDate: now(),
      returnUrl: f.ReturnURL!,
      orderResultUrl: f.OrderResultURL || null,
      paymentInfoUrl: f.PaymentInfoURL || null,
      clientBackUrl: f.ClientBackURL || null,
      needExtraPaidInfo: f.NeedExtraPaidInfo === 'Y',
      customFields: [f.CustomField1 ?? '', f.CustomField2 ?? '', f.CustomField3 ?? '', f.CustomField4 ?? ''],
      status: 'created',
      paidAt: null,
      simulatePaid: false,
      gwsr: null,
      bankCode: null,
      vAccount: null,
      paymentNo: null,
      expireDate: null,
      paymentDeadline: null,
      refunds: [],
      capture: null,
      captureSince: null,
      capturedAmount: 0,
      actions: [],
      checkoutFields: { ...f },
    };
    tradesByNo.set(t.tradeNo, t);
    tradeIndex.set(k, t.tradeNo);
    log?.info({ merchantTradeNo: t.merchantTradeNo, tradeNo: t.tradeNo, choose }, 'ecpay sandbox trade created');

    const items = t.itemName
      .split('#')
      .map((i) => `      <li>${escapeHtml(i)}</li>`)
      .join('\n');
    const summary = `  <dl>
    <dt>商店訂單編號</dt><dd id="merchant-trade-no">${escapeHtml(t.merchantTradeNo)}</dd>
    <dt>綠界交易編號</dt><dd id="trade-no">${escapeHtml(t.tradeNo)}</dd>
    <dt>付款金額</dt><dd id="amount">${escapeHtml(formatTwd(t.totalAmount))}</dd>
    <dt>商品明細</dt><dd><ul id="items">
${items}
    </ul></dd>`;

    if (choose === 'Credit') {
      return sendHtml(
        res,
        page(
          '綠界科技 - 信用卡付款',
          `  <h1>信用卡付款</h1>
${summary}
  </dl>
  <form id="pay" class="inline" method="post" action="/sandbox/trades/${escapeHtml(t.tradeNo)}/pay">
    <button type="submit">付款</button>
  </form>
  <form id="fail" class="inline" method="post" action="/sandbox/trades/${escapeHtml(t.tradeNo)}/fail">
    <button type="submit" class="secondary">失敗</button>
  </form>`,
        ),
      );
    }

    issueCode(t);
    if (t.paymentInfoUrl) {
      await notifyWithRetries('PaymentInfoURL', t, t.paymentInfoUrl, () => paymentInfoFields(t));
    }
    const info =
      choose === 'ATM'
        ? `    <dt>銀行代碼</dt><dd id="bank-code">${escapeHtml(t.bankCode ?? '')}</dd>
    <dt>轉帳帳號</dt><dd id="v-account">${escapeHtml(t.vAccount ?? '')}</dd>`
        : `    <dt>超商繳費代碼</dt><dd id="payment-no">${escapeHtml(t.paymentNo ?? '')}</dd>`;
    return sendHtml(
      res,
      page(
        choose === 'ATM' ? '綠界科技 - ATM 轉帳資訊' : '綠界科技 - 超商代碼繳費資訊',
        `  <h1>${choose === 'ATM' ? 'ATM 轉帳資訊' : '超商代碼繳費資訊'}</h1>
${summary}
${info}
    <dt>繳費期限</dt><dd id="expire-date">${escapeHtml(t.expireDate ?? '')}</dd>
  </dl>
${backLink(t)}`,
      ),
    );
  });

  /** Cashier and index buttons. `from=index` sends the browser back to the index. */
  app.post('/sandbox/trades/:tradeNo/:action', async (req: Request, res: Response) => {
    const t = tradesByNo.get(String(req.params.tradeNo));
    const action = String(req.params.action);
    const fromIndex = stringFields(req.body ?? {})?.from === 'index';
    if (!t || !['pay', 'fail', 'notify'].includes(action)) {
      return sendHtml(res, errorPage(ERR_PARAMETER, '查無此筆交易。'), 404);
    }
    try {
      if (action === 'pay') await payTrade(t, {});
      else if (action === 'fail') failTrade(t);
      else if (t.status === 'paid') await deliver('ReturnURL', t, t.returnUrl, returnFields(t, 'paid'));
      else if (t.status === 'code-issued' && t.paymentInfoUrl) {
        await deliver('PaymentInfoURL', t, t.paymentInfoUrl, paymentInfoFields(t));
      }
    } catch (err) {
      return sendHtml(res, errorPage(ERR_PARAMETER, err instanceof Error ? err.message : String(err)), 409);
    }
    if (fromIndex) return res.redirect(303, '/');
    if (action === 'pay' && t.choosePayment === 'Credit' && t.orderResultUrl) {
      // Browser-side result, sent once (spec §7).
      return sendHtml(res, autoSubmitPage(t.orderResultUrl, returnFields(t, 'Succeeded'), '付款完成，正在返回商店…'));
    }
    const title = action === 'fail' ? '付款失敗' : '付款完成';
    return sendHtml(res, page(`綠界科技 - ${title}`, `  <h1>${title}</h1>\n${backLink(t)}`));
  });

  app.post('/Cashier/QueryTradeInfo/V5', (req: Request, res: Response) => {
    const f = stringFields(req.body ?? {});
    const text = (s: string) => res.status(200).type('text/html; charset=utf-8').send(s);
    if (!f || !f.MerchantID || !f.MerchantTradeNo || !f.TimeStamp || !f.CheckMacValue) {
      return text('Parameter Error.');
    }
    const merchant = merchants.get(f.MerchantID);
    if (!merchant) return text('MerchantID Error.');
    if (!verifyCheckMacValue(f, merchant.hashKey, merchant.hashIv, { algorithms: ['sha256'] })) return text('CheckMacValue Error.');
    const ts = Number(f.TimeStamp);
    if (!/^\d+$/.test(f.TimeStamp) || Math.abs(now().getTime() / 1000 - ts) > QUERY_TIMESTAMP_WINDOW_S) {
      return text('TimeStamp Error.');
    }
    const t = find(f.MerchantTradeNo, f.MerchantID);
    let fields: Record<string, string>;
    if (!t) {
      fields = {
        MerchantID: f.MerchantID,
        MerchantTradeNo: f.MerchantTradeNo,
        StoreID: '',
        TradeNo: '',
        TradeAmt: '',
        PaymentDate: '',
        PaymentType: '',
        HandlingCharge: '',
        PaymentTypeChargeFee: '',
        TradeDate: '',
        TradeStatus: TRADE_STATUS_NOT_FOUND,
        ItemName: '',
        CustomField1: '',
        CustomField2: '',
        CustomField3: '',
        CustomField4: '',
      };
      fields.CheckMacValue = checkMacValue(fields, merchant.hashKey, merchant.hashIv);
    } else {
      const paid = t.status === 'paid' || t.status === 'voided';
      const fee = paid ? chargeFee(t) : '0';
      fields = sign(t, {
        MerchantID: t.merchantId,
        MerchantTradeNo: t.merchantTradeNo,
        StoreID: '',
        TradeNo: t.tradeNo,
        TradeAmt: String(t.totalAmount),
        PaymentDate: paid && t.paidAt ? formatEcpayDateTime(t.paidAt) : '',
        PaymentType: t.paymentType,
        HandlingCharge: fee,
        PaymentTypeChargeFee: fee,
        TradeDate: formatEcpayDateTime(t.tradeDate),
        TradeStatus: paid ? '1' : t.status === 'failed' ? TRADE_STATUS_FAILED : '0',
        ItemName: t.itemName,
        ...customFieldEntries(t),
        ...(t.needExtraPaidInfo ? extraFields(t) : {}),
      });
    }
    // ECPay's answer: sorted by name, values raw (not url-encoded), CheckMacValue last (spec §9.2).
    const mac = fields.CheckMacValue!;
    const body = Object.keys(fields)
      .filter((n) => n !== 'CheckMacValue')
      .sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0))
      .map((n) => `${n}=${fields[n]}`)
      .concat(`CheckMacValue=${mac}`)
      .join('&');
    return text(body);
  });

  app.post('/CreditDetail/DoAction', (req: Request, res: Response) => {
    const f = stringFields(req.body ?? {});
    const answer = (fields: Record<string, string>) =>
      res.status(200).type('text/html; charset=utf-8').send(new URLSearchParams(fields).toString());
    const refuse = (msg: string) =>
      answer({
        MerchantID: f?.MerchantID ?? '',
        MerchantTradeNo: f?.MerchantTradeNo ?? '',
        TradeNo: f?.TradeNo ?? '',
        RtnCode: '0',
        RtnMsg: msg,
      });
    if (!f || !f.MerchantID || !f.MerchantTradeNo || !f.TradeNo || !f.Action || !f.TotalAmount || !f.CheckMacValue) {
      return refuse('Parameter Error.');
    }
    const merchant = merchants.get(f.MerchantID);
    if (!merchant) return refuse('MerchantID Error.');
    if (!verifyCheckMacValue(f, merchant.hashKey, merchant.hashIv, { algorithms: ['sha256'] })) return refuse('CheckMacValue Error.');
    const t = find(f.MerchantTradeNo, f.MerchantID);
    if (!t || t.tradeNo !== f.TradeNo) return refuse('Trade not found.');
    if (t.choosePayment !== 'Credit') return refuse('Only credit card trades support DoAction.');
    if (t.status !== 'paid') return refuse(t.status === 'voided' ? 'Authorisation already abandoned.' : 'Trade is not paid.');
    if (!/^[1-9]\d*$/.test(f.TotalAmount)) return refuse('TotalAmount Error.');
    if (!['C', 'R', 'E', 'N'].includes(f.Action)) return refuse('Action Error.');
    // ECPay's daily capture runs at 20:15; DoAction is not to be called until 20:30 (spec §10.2).
    if (doActionBlockedForMs(now()) > 0) return refuse('DoAction is not available during the daily capture (20:15-20:30).');
    settle(t);
    const action = f.Action as SandboxAction['action'];
    const from = t.capture ?? 'authorised';
    const notAllowed = () => refuse(`Action ${action} is not allowed for a trade in state ${CAPTURE_LABEL[from]}.`);
    const amount = Number(f.TotalAmount);
    const refunded = t.refunds.reduce((s, r) => s + r.amount, 0);
    switch (action) {
      case 'C':
        if (from !== 'authorised') return notAllowed();
        if (amount > t.totalAmount) return refuse('TotalAmount Error.');
        t.capture = 'capture-requested';
        t.capturedAmount = amount;
        t.captureSince = now();
        break;
      case 'E':
        if (from !== 'capture-requested') return notAllowed();
        if (refunded > 0) return refuse('Cannot cancel a capture that has refunds.');
        t.capture = 'authorised';
        t.capturedAmount = 0;
        t.captureSince = now();
        break;
      case 'N':
        if (from !== 'authorised') return notAllowed();
        if (amount !== t.totalAmount) return refuse('TotalAmount must be the authorised amount.');
        t.capture = 'abandoned';
        t.captureSince = now();
        t.status = 'voided';
        break;
      case 'R':
        if (from !== 'capture-requested' && from !== 'captured') return notAllowed();
        if (refunded + amount > t.capturedAmount) {
          return refuse(`Refund amount exceeds the captured amount (refunded ${refunded} of ${t.capturedAmount}).`);
        }
        t.refunds.push({ amount, at: now() });
        break;
    }
    t.actions.push({ action, amount, at: now(), from });
    log?.info({ merchantTradeNo: t.merchantTradeNo, action, amount, from, to: t.capture }, 'ecpay sandbox DoAction');
    return answer({
      MerchantID: t.merchantId,
      MerchantTradeNo: t.merchantTradeNo,
      TradeNo: t.tradeNo,
      RtnCode: '1',
      RtnMsg: 'Success',
    });
  });

  app.post('/CreditDetail/QueryTrade/V2', (req: Request, res: Response) => {
    const json = (o: unknown) => res.status(200).type('application/json; charset=utf-8').send(JSON.stringify(o));
    const f = stringFields(req.body ?? {});
    if (!f || !f.MerchantID || !f.CreditRefundId || !f.CreditAmount || !f.CreditCheckCode || !f.CheckMacValue) {
      return json({ RtnMsg: 'error', RtnValue: null });
    }
    const merchant = merchants.get(f.MerchantID);
    if (!merchant) return json({ RtnMsg: 'error_Stop', RtnValue: null });
    if (!verifyCheckMacValue(f, merchant.hashKey, merchant.hashIv, { algorithms: ['sha256'] })) return json({ RtnMsg: 'error', RtnValue: null });
    if (merchant.creditCheckCode === undefined || f.CreditCheckCode !== merchant.creditCheckCode) return json({ RtnMsg: 'error', RtnValue: null });
    const t = [...tradesByNo.values()].find((x) => x.merchantId === f.MerchantID && x.gwsr !== null && x.gwsr === f.CreditRefundId);
    if (!t || String(t.totalAmount) !== f.CreditAmount || t.capture === null) return json({ RtnMsg: 'error_nopay', RtnValue: null });
    settle(t);
    return json({
      RtnMsg: '',
      RtnValue: {
        TradeID: t.tradeNo,
        amount: t.totalAmount,
        clsamt: t.capturedAmount,
        authtime: t.paidAt ? formatEcpayDateTime(t.paidAt) : '',
        status: CAPTURE_LABEL[t.capture!],
        close_data: t.actions
          .filter((a) => a.action === 'C' || a.action === 'R')
          .map((a) => ({ status: a.action === 'C' ? '要關帳' : '退刷', amount: a.amount, datetime: formatEcpayDateTime(a.at) })),
      },
    });
  });

  app.get('/', (_req: Request, res: Response) => {
    const rows = [...tradesByNo.values()]
      .reverse()
      .map((t) => {
        const btn = (action: string, label: string, cls = '') =>
          `<form class="inline" method="post" action="/sandbox/trades/${escapeHtml(t.tradeNo)}/${action}">` +
          `<input type="hidden" name="from" value="index"><button type="submit"${cls ? ` class="${cls}"` : ''}>${label}</button></form>`;
        const canPay = t.status === 'created' ? t.choosePayment === 'Credit' : t.status === 'code-issued';
        const buttons = [
          canPay ? btn('pay', '付款') : '',
          t.status === 'created' || t.status === 'code-issued' ? btn('fail', '失敗', 'secondary') : '',
          t.status === 'paid' || (t.status === 'code-issued' && t.paymentInfoUrl) ? btn('notify', '重送通知', 'secondary') : '',
        ].join('');
        const code =
          t.choosePayment === 'ATM' && t.vAccount
            ? `(${t.bankCode ?? ''}) ${t.vAccount}`
            : t.choosePayment === 'CVS' && t.paymentNo
              ? t.paymentNo
              : '';
        const info = code ? `${escapeHtml(code)}<br>期限 ${escapeHtml(t.expireDate ?? '')}` : '';
        const refunded = t.refunds.reduce((s, r) => s + r.amount, 0);
        return `    <tr>
      <td>${escapeHtml(formatEcpayDateTime(t.tradeDate))}</td>
      <td>${escapeHtml(t.merchantTradeNo)}<br><small>${escapeHtml(t.tradeNo)}</small></td>
      <td>${escapeHtml(t.choosePayment)}</td>
      <td>${escapeHtml(formatTwd(t.totalAmount))}${refunded > 0 ? `<br><small>已退 ${escapeHtml(formatTwd(refunded))}</small>` : ''}</td>
      <td>${escapeHtml(t.itemName.split('#').join('、'))}</td>
      <td>${escapeHtml(statusText(t.status))}${t.simulatePaid ? '（模擬）' : ''}${settle(t).capture ? `<br><small>${escapeHtml(CAPTURE_LABEL[t.capture!])}</small>` : ''}</td>
      <td>${info}</td>
      <td>${buttons}</td>
    </tr>`;
      })
      .join('\n');
    sendHtml(res, listPage('綠界模擬環境 - 交易列表', '交易列表', ['建立時間', '訂單編號', '付款方式', '金額', '商品', '狀態', '繳費資訊', '操作'], rows, '尚無交易'));
  });

  const { url, close } = await listenSandbox(app, opts.port ?? 0, host, notifier);
  log?.info({ url, merchants: [...merchants.keys()] }, 'ecpay sandbox listening');

  return {
    url,
    notifications,
    apiRequests,
    injectHttpStatus: (path, status, times = 1) => {
      injected.set(path, { status, times });
    },
    failEveryCall: (mode, o = {}) => {
      everyCall = mode ? { mode, hangMs: o.hangMs ?? 20_000 } : null;
    },
    pay: (merchantTradeNo, o = {}) => payTrade(mustFind(merchantTradeNo, o.merchantId), o),
    fail: (merchantTradeNo, o = {}) => failTrade(mustFind(merchantTradeNo, o.merchantId)),
    notifyAgain: async (merchantTradeNo, o = {}) => {
      const t = mustFind(merchantTradeNo, o.merchantId);
      if (t.status === 'paid') return deliver('ReturnURL', t, t.returnUrl, returnFields(t, 'paid'));
      if (t.status === 'code-issued' && t.paymentInfoUrl) {
        return deliver('PaymentInfoURL', t, t.paymentInfoUrl, paymentInfoFields(t));
      }
      throw new Error(`ecpay sandbox: ${merchantTradeNo} has nothing to notify`);
    },
    getTrade: (merchantTradeNo, o = {}) => {
      const t = find(merchantTradeNo, o.merchantId);
      return t ? snapshot(settle(t)) : undefined;
    },
    trades: () => [...tradesByNo.values()].map((t) => snapshot(settle(t))),
    refunds: (merchantTradeNo, o = {}) => (find(merchantTradeNo, o.merchantId)?.refunds ?? []).map((r) => ({ ...r })),
    actions: (merchantTradeNo, o = {}) => (find(merchantTradeNo, o.merchantId)?.actions ?? []).map((a) => ({ ...a })),
    idle: () => notifier.idle(),
    close: async () => {
      for (const t of hung) clearTimeout(t);
      hung.clear();
      await close();
    },
  };
}
