import {
  GatewayError,
  type CreatePaymentInput,
  type CreatePaymentResult,
  type PaymentGateway,
  type PaymentMethod,
  type PaymentStatus,
  type RefundInput,
  type RefundResult,
} from '../payment-gateway';
import type { EcpayCheckoutForm, EcpayChoosePayment, EcpayClient } from './ecpay-client';

/**
 * ECPay behind the shop's PaymentGateway interface. ECPay creates the trade only when the shopper's
 * browser posts the AioCheckOut form, so createPayment() just hands out our own checkout page URL;
 * the web layer renders that page with checkoutFormFor() when the shopper opens it.
 */

export interface EcpayGatewayOptions {
  client: EcpayClient;
  /** How ECPay and browsers reach this server, without a trailing slash. */
  publicBaseUrl: string;
  now?: () => Date;
}

export interface EcpayCheckoutInput {
  /** Our MerchantTradeNo for this attempt. */
  tradeNo: string;
  method: PaymentMethod;
  /** Integer TWD. */
  amount: number;
  itemLines: string[];
  /** ATM / CVS payment deadlines are derived from the end of the stock hold. */
  holdExpiresAt: Date;
  /** Human order number, echoed by ECPay in CustomField1. */
  orderNo: string;
  /** Used for MerchantTradeDate and the deadlines; defaults to the gateway's clock. */
  now?: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;
const TAIPEI_OFFSET_MS = 8 * 60 * 60 * 1000;

const CHOOSE_PAYMENT: Partial<Record<PaymentMethod, EcpayChoosePayment>> = {
  'ecpay-credit': 'Credit',
  'ecpay-atm': 'ATM',
  'ecpay-cvs': 'CVS',
};

/** TradeStatus 10200095: the buyer never chose a payment method; the trade is dead (spec §9.2). */
const TRADE_STATUS_NO_METHOD_CHOSEN = '10200095';

/**
 * Parses ECPay's `yyyy/MM/dd HH:mm:ss` or `yyyy/MM/dd` as Asia/Taipei time (UTC+8, no DST).
 * A date alone means the end of that day (23:59:59), which is how ATM deadlines are meant.
 * Throws RangeError for anything else, including impossible dates such as 2025/02/30.
 */
export function parseEcpayDate(s: string): Date {
  const m = /^(\d{4})\/(\d{1,2})\/(\d{1,2})(?: (\d{1,2}):(\d{2}):(\d{2}))?$/.exec(s.trim());
  if (!m) throw new RangeError(`not an ECPay date: ${JSON.stringify(s).slice(0, 40)}`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dateOnly = m[4] === undefined;
  const [h, mi, sec] = dateOnly ? [23, 59, 59] : [Number(m[4]), Number(m[5]), Number(m[6])];
  const local = Date.UTC(y, mo - 1, d, h, mi, sec);
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== y ||
    check.getUTCMonth() !== mo - 1 ||
    check.getUTCDate() !== d ||
    check.getUTCHours() !== h ||
    check.getUTCMinutes() !== mi ||
    check.getUTCSeconds() !== sec
  ) {
    throw new RangeError(`not an ECPay date: ${JSON.stringify(s).slice(0, 40)}`);
  }
  return new Date(local - TAIPEI_OFFSET_MS);
}

/** Days since the epoch of a moment's Asia/Taipei calendar date. */
const taipeiDayNumber = (d: Date): number => Math.floor((d.getTime() + TAIPEI_OFFSET_MS) / DAY_MS);

/**
 * ATM ExpireDate (days, 1–60). ECPay's ATM deadline is a calendar date in Taipei (the whole day),
 * `days` after the trade's date, so the fewest days whose deadline is not before the hold's end is
 * the number of Taipei calendar days between now and that end. A 3-day hold gets 3 (rounding the
 * remaining time down would give 2 and a deadline up to a day short). The deadline may run past
 * the hold by the rest of that day; PaymentInfoURL then moves the hold to the deadline.
 */
export function atmExpireDays(now: Date, holdExpiresAt: Date): number {
  return clamp(taipeiDayNumber(holdExpiresAt) - taipeiDayNumber(now), 1, 60);
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

function intOrNull(s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  return Number(s);
}

function dateOrNull(s: string | undefined): Date | null {
  if (!s) return null;
  try {
    return parseEcpayDate(s);
  } catch {
    return null;
  }
}

export class EcpayGateway implements PaymentGateway {
  readonly provider = 'ecpay' as const;
  readonly methods: readonly PaymentMethod[] = ['ecpay-credit', 'ecpay-atm', 'ecpay-cvs'];

  private readonly client: EcpayClient;
  private readonly publicBaseUrl: string;
  private readonly now: () => Date;

  constructor(opts: EcpayGatewayOptions) {
    this.client = opts.client;
    this.publicBaseUrl = opts.publicBaseUrl.replace(/\/+$/, '');
    this.now = opts.now ?? (() => new Date());
  }

  /** No remote call: ECPay needs the shopper's browser to post the form from our checkout page. */
  async createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult> {
    this.chooseFor(input.method);
    if (!input.publicRef) throw new RangeError('publicRef is required for ECPay checkout links');
    return {
      kind: 'redirect',
      url: `${this.publicBaseUrl}/payments/ecpay/checkout/${encodeURIComponent(input.publicRef)}`,
      gatewayTradeId: null,
      raw: null,
    };
  }

  /** The AioCheckOut form for one attempt, with our callback URLs and deadlines matched to the hold. */
  checkoutFormFor(input: EcpayCheckoutInput): EcpayCheckoutForm {
    const choosePayment = this.chooseFor(input.method);
    const now = input.now ?? this.now();
    const remainingMs = input.holdExpiresAt.getTime() - now.getTime();
    return this.client.buildCheckoutForm({
      merchantTradeNo: input.tradeNo,
      totalAmount: input.amount,
      itemLines: input.itemLines,
      choosePayment,
      returnUrl: `${this.publicBaseUrl}/payments/ecpay/notify`,
      paymentInfoUrl: `${this.publicBaseUrl}/payments/ecpay/payment-info`,
      orderResultUrl: `${this.publicBaseUrl}/payments/ecpay/result`,
      // ECPay's "back to shop" link; it must differ from ReturnURL and carries no result.
      clientBackUrl: `${this.publicBaseUrl}/payments/ecpay/back`,
      atmExpireDays: choosePayment === 'ATM' ? atmExpireDays(now, input.holdExpiresAt) : undefined,
      cvsStoreExpireMinutes: choosePayment === 'CVS' ? clamp(Math.floor(remainingMs / MINUTE_MS), 1, 86400) : undefined,
      customField1: input.orderNo,
      merchantTradeDate: now,
    });
  }

  /** The auto-submitting checkout page for one attempt (what GET /payments/ecpay/checkout/:ref serves). */
  checkoutPageFor(input: EcpayCheckoutInput): string {
    return this.client.renderAutoSubmitPage(this.checkoutFormFor(input));
  }

  async queryPayment(ref: { tradeNo: string; method: PaymentMethod; createdAt: Date }): Promise<PaymentStatus> {
    const f = await this.client.queryTradeInfo(ref.tradeNo);
    const base = {
      tradeNo: ref.tradeNo,
      amount: intOrNull(f.TradeAmt),
      gatewayTradeId: f.TradeNo ? f.TradeNo : null,
      raw: f,
      ...(f.SimulatePaid !== undefined ? { simulated: f.SimulatePaid === '1' } : {}),
    };
    switch (f.TradeStatus) {
      case '1':
        return { ...base, state: 'paid', paidAt: dateOrNull(f.PaymentDate) };
      case '0':
        return { ...base, state: 'pending', paidAt: null };
      case TRADE_STATUS_NO_METHOD_CHOSEN:
        return {
          ...base,
          state: 'failed',
          paidAt: null,
          reason: `TradeStatus ${TRADE_STATUS_NO_METHOD_CHOSEN}: no payment method was chosen`,
        };
      default:
        // Undocumented status: not paid, but not provably dead either; surface it for the owner.
        return { ...base, state: 'pending', paidAt: null, reason: `TradeStatus ${f.TradeStatus ?? '(none)'}` };
    }
  }

  /**
   * Refunds through DoAction Action=R. Amounts that cannot be right are refused here without a
   * remote call. Transport failures throw GatewayError (a refund timeout is not retryable: its
   * outcome is unknown).
   */
  async refund(input: RefundInput): Promise<RefundResult> {
    const { amount, refundedBefore, capturedAmount } = input;
    if (!Number.isSafeInteger(amount) || amount < 1) {
      return { ok: false, message: 'refund amount must be a positive integer', raw: null };
    }
    if (!Number.isSafeInteger(refundedBefore) || refundedBefore < 0 || refundedBefore + amount > capturedAmount) {
      return {
        ok: false,
        message: `refund of ${amount} exceeds what remains (${Math.max(0, capturedAmount - refundedBefore)} of ${capturedAmount})`,
        raw: null,
      };
    }
    if (!input.gatewayTradeId) {
      return { ok: false, message: 'ECPay TradeNo is required for a refund', raw: null };
    }
    const res = await this.client.doAction({
      merchantTradeNo: input.tradeNo,
      tradeNo: input.gatewayTradeId,
      action: 'R',
      totalAmount: amount,
    });
    return { ok: res.RtnCode === '1', message: res.RtnMsg || `RtnCode ${res.RtnCode}`, raw: res };
  }

  /** Milliseconds left of ECPay's pause after an HTTP 403 (0: ECPay may be called). */
  callsPausedForMs(): Promise<number> {
    return this.client.pausedForMs();
  }

  private chooseFor(method: PaymentMethod): EcpayChoosePayment {
    const c = CHOOSE_PAYMENT[method];
    if (!c) throw new GatewayError('REJECTED', `method ${method} is not served by ECPay`, false, { method });
    return c;
  }
}
