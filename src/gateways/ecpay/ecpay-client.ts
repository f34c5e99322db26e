import { escapeHtml } from '../../html';
import { PAGE } from '../../texts';
import type { EcpayConfig } from '../../config';
import { GatewayError } from '../payment-gateway';
import { checkMacValue, verifyCheckMacValue } from './check-mac-value';
import { EcpayHostClient, renderAutoSubmitPage, type EcpayForm, type EcpayHostOptions } from './ecpay-http';

/**
 * ECPay AIO protocol client (specs/ecpay-aio.md). Builds the browser-posted AioCheckOut form,
 * verifies notifications, and calls the two server-to-server APIs the shop needs
 * (QueryTradeInfo/V5 and CreditDetail/DoAction). No database, no express, no process.env.
 */

export type EcpayChoosePayment = 'Credit' | 'ATM' | 'CVS';
export type EcpayDoActionType = 'C' | 'R' | 'E' | 'N';

export { MemoryCallGate, RATE_LIMIT_PAUSE_MS, type EcpayCallGate } from './ecpay-http';

export interface EcpayClientOptions extends EcpayHostOptions {
  config: EcpayConfig;
}

export interface CheckoutFormInput {
  /** Our trade number for this attempt, [A-Za-z0-9]{1,20}, never reused. */
  merchantTradeNo: string;
  /** Integer TWD. */
  totalAmount: number;
  /** One line per item, e.g. "珍珠奶茶 x2"; sanitised and joined with '#'. */
  itemLines: string[];
  /** Plain ASCII; anything else is dropped. Default 'LINE shop order'. */
  tradeDesc?: string;
  choosePayment: EcpayChoosePayment;
  returnUrl: string;
  /** Credit only (ECPay ignores it for ATM/CVS). */
  orderResultUrl: string;
  /** ATM/CVS only. */
  paymentInfoUrl: string;
  clientBackUrl: string;
  /** ATM: days to pay, 1–60 (default: ECPay's 3). */
  atmExpireDays?: number;
  /** CVS: minutes to pay, 1–86400 (default: ECPay's 10080). */
  cvsStoreExpireMinutes?: number;
  customField1?: string;
  customField2?: string;
  /** Defaults to now(). */
  merchantTradeDate?: Date;
}

/** The AioCheckOut/V5 form: `action` is its absolute URL on the configured host. */
export type EcpayCheckoutForm = EcpayForm;

export type EcpayCallbackVerification =
  | { ok: true; fields: Record<string, string> }
  | { ok: false; reason: 'BAD_MAC' | 'WRONG_MERCHANT' | 'MALFORMED' };

export interface DoActionInput {
  merchantTradeNo: string;
  /** ECPay's TradeNo. */
  tradeNo: string;
  action: EcpayDoActionType;
  /** Integer TWD the action applies to. */
  totalAmount: number;
}

export type DoActionResult = Record<string, string> & { RtnCode: string; RtnMsg: string };

/** CreditDetail/QueryTrade/V2 answer (spec §10.2): RtnMsg empty means OK. */
export interface CreditTradeDetail {
  RtnMsg: string;
  RtnValue: {
    TradeID?: string | number;
    amount?: string | number;
    clsamt?: string | number;
    authtime?: string;
    /** 已授權 (authorised) / 要關帳 (capture requested) / 已關帳 (captured), or something else. */
    status?: string;
    close_data?: unknown[];
  } | null;
}

const ITEM_NAME_MAX = 400;
const TRADE_DESC_MAX = 200;
const CUSTOM_FIELD_MAX = 50;
const DEFAULT_TRADE_DESC = 'LINE shop order';
const DEFAULT_ITEM_NAME = '商品';
const TAIPEI_OFFSET_MS = 8 * 60 * 60 * 1000;
const MERCHANT_TRADE_NO = /^[A-Za-z0-9]{1,20}$/;
/** AIO V5 messages are signed with SHA-256 only (EncryptType=1); MD5 belongs to other ECPay APIs (spec §3.1). */
const SHA256_ONLY = { algorithms: ['sha256'] } as const;

// ---------------------------------------------------------------------------------------------
// Small helpers shared with the gateway and the sandbox.

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export { escapeHtml };

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `yyyy/MM/dd HH:mm:ss` in Asia/Taipei (UTC+8 all year: Taiwan has no daylight saving time). */
export function formatEcpayDateTime(d: Date): string {
  const t = new Date(d.getTime() + TAIPEI_OFFSET_MS);
  return (
    `${t.getUTCFullYear()}/${pad(t.getUTCMonth() + 1)}/${pad(t.getUTCDate())} ` +
    `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}`
  );
}

/** `yyyy/MM/dd` in Asia/Taipei. */
export function formatEcpayDate(d: Date): string {
  return formatEcpayDateTime(d).slice(0, 10);
}

/**
 * Item names: '#' is ECPay's line separator; quotes, brackets, colons and angle brackets have broken
 * MACs or been rejected in the wild (spec §5.4, §12); '&', '=' and '%' would corrupt QueryTradeInfo's
 * raw answer, which echoes ItemName unencoded (§9.2). They become spaces; letters in any script
 * (Chinese included) and ordinary punctuation are kept.
 */
export function sanitizeItemLine(line: string): string {
  return line
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]/g, ' ')
    .replace(/[#"'`<>[\]{}:\\|&^~%=]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Joins sanitised lines with '#', keeping the result within `max` UTF-16 units without splitting a character. */
export function buildItemName(lines: readonly string[], max = ITEM_NAME_MAX): string {
  const clean = lines.map(sanitizeItemLine).filter((l) => l !== '');
  const joined = clean.length > 0 ? clean.join('#') : DEFAULT_ITEM_NAME;
  if (joined.length <= max) return joined;
  let out = '';
  for (const ch of joined) {
    if (out.length + ch.length > max - 1) break;
    out += ch;
  }
  return `${out.replace(/[#\s]+$/, '')}…`;
}

function plainAsciiDesc(desc: string | undefined): string {
  if (desc === undefined) return DEFAULT_TRADE_DESC;
  const clean = desc
    .replace(/[^A-Za-z0-9 .,()_-]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, TRADE_DESC_MAX)
    .trim();
  return clean === '' ? DEFAULT_TRADE_DESC : clean;
}

function customField(name: string, v: string): string {
  // ECPay allows only a few punctuation characters here; our values are ids, so be strict.
  if (v.length > CUSTOM_FIELD_MAX || !/^[A-Za-z0-9 ,.#()$[\];%{}:/?&@!_-]*$/.test(v)) {
    throw new RangeError(`${name} must be at most ${CUSTOM_FIELD_MAX} characters of letters, digits and ECPay-safe punctuation`);
  }
  return v;
}

function clampInt(n: number, lo: number, hi: number): number {
  if (!Number.isFinite(n)) return lo;
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

/** Parses a url-encoded answer the way ECPay's PHP SDK does: a literal '+' is data, not a space (spec §9.2). */
export function parseEcpayRawBody(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(body.replace(/[\r\n]+$/, '').replace(/\+/g, '%2B'))) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------

export class EcpayClient extends EcpayHostClient {
  private readonly config: EcpayConfig;

  constructor(opts: EcpayClientOptions) {
    super(opts.config.apiBaseUrl, opts);
    this.config = opts.config;
  }

  get merchantId(): string {
    return this.config.merchantId;
  }

  /** Builds the AioCheckOut/V5 form the shopper's browser must post (spec §5). */
  buildCheckoutForm(input: CheckoutFormInput): EcpayCheckoutForm {
    if (!MERCHANT_TRADE_NO.test(input.merchantTradeNo)) {
      throw new RangeError('merchantTradeNo must match [A-Za-z0-9]{1,20}');
    }
    if (!Number.isSafeInteger(input.totalAmount) || input.totalAmount < 1) {
      throw new RangeError('totalAmount must be a positive integer (TWD)');
    }
    if (input.returnUrl === input.orderResultUrl) {
      throw new RangeError('ReturnURL must not equal OrderResultURL');
    }
    const fields: Record<string, string> = {
      MerchantID: this.config.merchantId,
      MerchantTradeNo: input.merchantTradeNo,
      MerchantTradeDate: formatEcpayDateTime(input.merchantTradeDate ?? this.now()),
      PaymentType: 'aio',
      TotalAmount: String(input.totalAmount),
      TradeDesc: plainAsciiDesc(input.tradeDesc),
      ItemName: buildItemName(input.itemLines),
      ReturnURL: input.returnUrl,
      ChoosePayment: input.choosePayment,
      EncryptType: '1',
      ClientBackURL: input.clientBackUrl,
      // Y so that notifications and queries carry gwsr (CreditRefundId) and the payer details.
      NeedExtraPaidInfo: 'Y',
    };
    if (input.choosePayment === 'Credit') {
      fields.OrderResultURL = input.orderResultUrl;
    } else {
      fields.PaymentInfoURL = input.paymentInfoUrl;
      if (input.choosePayment === 'ATM' && input.atmExpireDays !== undefined) {
        fields.ExpireDate = String(clampInt(input.atmExpireDays, 1, 60));
      }
      if (input.choosePayment === 'CVS' && input.cvsStoreExpireMinutes !== undefined) {
        fields.StoreExpireDate = String(clampInt(input.cvsStoreExpireMinutes, 1, 86400));
      }
    }
    if (input.customField1 !== undefined) fields.CustomField1 = customField('customField1', input.customField1);
    if (input.customField2 !== undefined) fields.CustomField2 = customField('customField2', input.customField2);
    fields.CheckMacValue = checkMacValue(fields, this.config.hashKey, this.config.hashIv);
    return { action: `${this.origin}/Cashier/AioCheckOut/V5`, fields };
  }

  /** A complete UTF-8 page that posts the form on load, with a button in case scripts are off. */
  renderAutoSubmitPage(form: EcpayCheckoutForm, opts: { title?: string } = {}): string {
    return renderAutoSubmitPage(
      form,
      { title: opts.title ?? PAGE.ecpayRedirectTitle, body: PAGE.ecpayRedirectBody, button: PAGE.ecpayRedirectButton },
      'ecpay-checkout',
    );
  }

  /**
   * Checks a ReturnURL / PaymentInfoURL / OrderResultURL body: the MAC over every received field
   * except CheckMacValue, then that it is addressed to our merchant. Fields come back unchanged.
   */
  verifyCallback(body: Record<string, unknown>): EcpayCallbackVerification {
    if (body === null || typeof body !== 'object') return { ok: false, reason: 'MALFORMED' };
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) {
      if (typeof v !== 'string') return { ok: false, reason: 'MALFORMED' };
      fields[k] = v;
    }
    if (!fields.CheckMacValue || !fields.MerchantID || !fields.MerchantTradeNo) {
      return { ok: false, reason: 'MALFORMED' };
    }
    if (!verifyCheckMacValue(fields, this.config.hashKey, this.config.hashIv, SHA256_ONLY)) {
      return { ok: false, reason: 'BAD_MAC' };
    }
    if (fields.MerchantID !== this.config.merchantId) return { ok: false, reason: 'WRONG_MERCHANT' };
    return { ok: true, fields };
  }

  /** QueryTradeInfo/V5 (spec §9): the authoritative state of one trade, MAC-verified. */
  async queryTradeInfo(merchantTradeNo: string): Promise<Record<string, string>> {
    if (!MERCHANT_TRADE_NO.test(merchantTradeNo)) {
      throw new RangeError('merchantTradeNo must match [A-Za-z0-9]{1,20}');
    }
    const params: Record<string, string> = {
      MerchantID: this.config.merchantId,
      MerchantTradeNo: merchantTradeNo,
      TimeStamp: String(Math.floor(this.now().getTime() / 1000)),
    };
    params.CheckMacValue = checkMacValue(params, this.config.hashKey, this.config.hashIv);
    const body = await this.post('/Cashier/QueryTradeInfo/V5', params, 'QueryTradeInfo', true);
    const fields = parseEcpayRawBody(body);
    if (!fields.CheckMacValue) {
      // ECPay answers errors (bad MAC, stale TimeStamp, unknown parameters) without a MAC.
      throw new GatewayError('BAD_RESPONSE', 'QueryTradeInfo answered without CheckMacValue', false, {
        body: body.slice(0, 200),
      });
    }
    if (!verifyCheckMacValue(fields, this.config.hashKey, this.config.hashIv, SHA256_ONLY)) {
      throw new GatewayError('BAD_SIGNATURE', 'QueryTradeInfo answer failed CheckMacValue verification', false, {
        merchantTradeNo,
      });
    }
    if (fields.MerchantID !== this.config.merchantId || fields.MerchantTradeNo !== merchantTradeNo) {
      throw new GatewayError('BAD_RESPONSE', 'QueryTradeInfo answered for another trade', false, {
        merchantTradeNo,
        answeredMerchantId: fields.MerchantID,
        answeredMerchantTradeNo: fields.MerchantTradeNo,
      });
    }
    if (fields.TradeStatus === undefined) {
      throw new GatewayError('BAD_RESPONSE', 'QueryTradeInfo answer has no TradeStatus', false, { merchantTradeNo });
    }
    return fields;
  }

  /**
   * CreditDetail/DoAction (spec §10): capture (C), refund (R), cancel capture (E), abandon (N).
   * The answer carries no MAC. A refund is not idempotent, so a timeout or a connection lost after
   * sending is reported as not retryable: the outcome is unknown and must be checked first.
   */
  async doAction(input: DoActionInput): Promise<DoActionResult> {
    if (!MERCHANT_TRADE_NO.test(input.merchantTradeNo)) {
      throw new RangeError('merchantTradeNo must match [A-Za-z0-9]{1,20}');
    }
    if (!Number.isSafeInteger(input.totalAmount) || input.totalAmount < 1) {
      throw new RangeError('totalAmount must be a positive integer (TWD)');
    }
    const params: Record<string, string> = {
      MerchantID: this.config.merchantId,
      MerchantTradeNo: input.merchantTradeNo,
      TradeNo: input.tradeNo,
      Action: input.action,
      TotalAmount: String(input.totalAmount),
    };
    params.CheckMacValue = checkMacValue(params, this.config.hashKey, this.config.hashIv);
    const body = await this.post('/CreditDetail/DoAction', params, 'DoAction', false);
    const fields: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(body.trim())) fields[k] = v;
    if (fields.RtnCode === undefined) {
      throw new GatewayError('BAD_RESPONSE', 'DoAction answer has no RtnCode', false, { body: body.slice(0, 200) });
    }
    if (fields.CheckMacValue && !verifyCheckMacValue(fields, this.config.hashKey, this.config.hashIv, SHA256_ONLY)) {
      throw new GatewayError('BAD_SIGNATURE', 'DoAction answer failed CheckMacValue verification', false, {
        merchantTradeNo: input.merchantTradeNo,
      });
    }
    return { ...fields, RtnCode: fields.RtnCode, RtnMsg: fields.RtnMsg ?? '' };
  }

  /** True when CreditDetail/QueryTrade/V2 can be asked (ECPAY_CREDIT_CHECK_CODE is set). */
  get canQueryCreditTrade(): boolean {
    return typeof this.config.creditCheckCode === 'string' && this.config.creditCheckCode !== '';
  }

  /**
   * CreditDetail/QueryTrade/V2 (spec §10.2, production only): one card authorisation by its
   * CreditRefundId (gwsr), with its capture state. The answer is JSON and carries no MAC.
   */
  async queryCreditTrade(input: { creditRefundId: string; creditAmount: number }): Promise<CreditTradeDetail> {
    if (!this.canQueryCreditTrade) throw new RangeError('ECPAY_CREDIT_CHECK_CODE is not configured');
    if (!/^\d{1,20}$/.test(input.creditRefundId)) throw new RangeError('creditRefundId must be digits');
    if (!Number.isSafeInteger(input.creditAmount) || input.creditAmount < 1) {
      throw new RangeError('creditAmount must be a positive integer (TWD)');
    }
    const params: Record<string, string> = {
      MerchantID: this.config.merchantId,
      CreditRefundId: input.creditRefundId,
      CreditAmount: String(input.creditAmount),
      CreditCheckCode: this.config.creditCheckCode!,
    };
    params.CheckMacValue = checkMacValue(params, this.config.hashKey, this.config.hashIv);
    const body = await this.post('/CreditDetail/QueryTrade/V2', params, 'QueryTrade', true);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new GatewayError('BAD_RESPONSE', 'QueryTrade/V2 answer is not JSON', false, { body: body.slice(0, 200) });
    }
    const o = parsed as Partial<CreditTradeDetail> | null;
    if (!o || typeof o !== 'object' || typeof o.RtnMsg !== 'string') {
      throw new GatewayError('BAD_RESPONSE', 'QueryTrade/V2 answer has no RtnMsg', false, { body: body.slice(0, 200) });
    }
    const value = o.RtnValue && typeof o.RtnValue === 'object' ? o.RtnValue : null;
    return { RtnMsg: o.RtnMsg, RtnValue: value };
  }
}
