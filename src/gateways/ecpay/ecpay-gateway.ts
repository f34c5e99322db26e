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
import type { EcpayCheckoutForm, EcpayChoosePayment, EcpayClient, EcpayDoActionType } from './ecpay-client';

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

/**
 * Capture states of a card authorisation (spec §10.2, as CreditDetail/QueryTrade/V2 names them):
 * 已授權 authorised → 要關帳 capture requested → 已關帳 captured.
 */
export type CaptureState = 'authorised' | 'capture-requested' | 'captured';

export const CAPTURE_STATUS: Readonly<Record<string, CaptureState>> = {
  已授權: 'authorised',
  要關帳: 'capture-requested',
  已關帳: 'captured',
};

/** ECPay's daily auto-capture runs at 20:15 Asia/Taipei; DoAction must not be called 20:15–20:30 (spec §10.2). */
const DAILY_CAPTURE_MS = (20 * 60 + 15) * MINUTE_MS;
const CAPTURE_WINDOW_MS = 15 * MINUTE_MS;

/** The first daily capture (20:15 Taipei) after `d`. */
export function nextDailyCapture(d: Date): Date {
  const local = d.getTime() + TAIPEI_OFFSET_MS;
  let at = Math.floor(local / DAY_MS) * DAY_MS + DAILY_CAPTURE_MS;
  if (at <= local) at += DAY_MS;
  return new Date(at - TAIPEI_OFFSET_MS);
}

/** Milliseconds until DoAction may be called: until 20:30 Taipei inside the 20:15–20:30 window, else 0. */
export function doActionBlockedForMs(now: Date): number {
  const t = (((now.getTime() + TAIPEI_OFFSET_MS) % DAY_MS) + DAY_MS) % DAY_MS;
  return t >= DAILY_CAPTURE_MS && t < DAILY_CAPTURE_MS + CAPTURE_WINDOW_MS ? DAILY_CAPTURE_MS + CAPTURE_WINDOW_MS - t : 0;
}

export interface RefundStep {
  action: EcpayDoActionType;
  totalAmount: number;
}

/**
 * The DoAction calls a refund needs in each capture state (spec §10.2's table). "Full" means the
 * whole trade amount with nothing refunded before; anything else is partial.
 *
 * | want    | 已授權   | 要關帳   | 已關帳 |
 * | full    | N        | E then N | R      |
 * | partial | C then R | R        | R      |
 */
type DoneStep = RefundStep & { RtnCode: string; RtnMsg: string };

/** The part of a refund plan that went through before a try was interrupted. */
interface RefundProgress {
  plan: RefundStep[];
  steps: DoneStep[];
  captureState: string;
}

const DO_ACTIONS = new Set(['C', 'R', 'E', 'N']);

/** The progress an earlier try left, if it is one (a plan, and a strict prefix of it done). */
function asRefundProgress(v: unknown): RefundProgress | null {
  const p = v as Partial<RefundProgress> | null | undefined;
  if (!p || !Array.isArray(p.plan) || !Array.isArray(p.steps)) return null;
  const isStep = (s: unknown): s is RefundStep =>
    !!s && typeof s === 'object' && DO_ACTIONS.has((s as RefundStep).action) && Number.isSafeInteger((s as RefundStep).totalAmount);
  if (!p.plan.every(isStep) || !p.steps.every(isStep)) return null;
  if (p.steps.length === 0 || p.steps.length >= p.plan.length) return null;
  const prefixMatches = p.steps.every((s, i) => s.action === p.plan![i]!.action && s.totalAmount === p.plan![i]!.totalAmount && (s as DoneStep).RtnCode === '1');
  return prefixMatches ? { plan: p.plan, steps: p.steps as DoneStep[], captureState: String(p.captureState ?? '') } : null;
}

export function planRefund(state: CaptureState, full: boolean, amount: number, tradeAmount: number, requestedCapture = tradeAmount): RefundStep[] {
  switch (state) {
    case 'authorised':
      return full ? [{ action: 'N', totalAmount: tradeAmount }] : [{ action: 'C', totalAmount: tradeAmount }, { action: 'R', totalAmount: amount }];
    case 'capture-requested':
      return full ? [{ action: 'E', totalAmount: requestedCapture }, { action: 'N', totalAmount: tradeAmount }] : [{ action: 'R', totalAmount: amount }];
    case 'captured':
      return [{ action: 'R', totalAmount: amount }];
  }
}

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

/** An ECPay date, or null when it is missing or unreadable. */
export function dateOrNull(s: string | undefined): Date | null {
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

  /** Milliseconds until DoAction may be called (ECPay's daily capture, 20:15–20:30 Taipei); 0: now. */
  refundDelayMs(): number {
    return doActionBlockedForMs(this.now());
  }

  /**
   * Refunds a card payment with the DoAction calls its capture state needs (spec §10.2): N to
   * abandon an uncaptured authorisation in full, C then R for part of one, E then N for a full
   * refund of a requested capture, R once captured. The state comes from CreditDetail/QueryTrade/V2
   * when ECPAY_CREDIT_CHECK_CODE is set; otherwise from the payment time and the daily 20:15
   * auto-capture (ECPay's default), a refund already made today meaning our own C was sent.
   *
   * Amounts that cannot be right are refused without a remote call. Before anything reaches
   * DoAction, a retryable failure throws (the caller may try again) and any other ends the refund
   * as not done; once a DoAction was sent, transport failures throw GatewayError and a lost answer
   * is not retryable (its outcome is unknown). Inside 20:15–20:30 nothing is sent: GatewayError
   * PAUSED with the wait in details.retryAfterMs.
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
    this.assertDoActionAllowed();

    // What ECPay has: paid, a card trade, our amount; gwsr and PaymentDate for the capture state.
    let info: Record<string, string>;
    try {
      info = await this.client.queryTradeInfo(input.tradeNo);
    } catch (err) {
      return this.failedBeforeSending(err, 'QueryTradeInfo');
    }
    const refuse = (message: string) => ({ ok: false, message, raw: { TradeStatus: info.TradeStatus, PaymentType: info.PaymentType } });
    if (info.TradeStatus !== '1') return refuse(`TradeStatus ${info.TradeStatus ?? '(none)'}: the trade is not paid`);
    if (!(info.PaymentType ?? '').startsWith('Credit')) return refuse(`PaymentType ${info.PaymentType ?? '(none)'} is not a card payment`);
    const tradeAmount = intOrNull(info.TradeAmt);
    if (tradeAmount === null || tradeAmount !== capturedAmount) return refuse(`TradeAmt ${info.TradeAmt ?? '(none)'} is not the paid amount ${capturedAmount}`);
    if (info.TradeNo && info.TradeNo !== input.gatewayTradeId) return refuse('TradeNo differs from the recorded one');

    // An earlier try of this refund got part of its plan through (say C, then the R met a 403 or the
    // 20:15 window): carry on with that plan after the steps done; the capture state has moved.
    const resumed = asRefundProgress(input.progress);
    if (resumed) return this.runPlan(input, resumed.plan, resumed.steps, { captureState: resumed.captureState, captureStateFrom: 'resumed' });

    let state: CaptureState;
    let source: 'QueryTrade/V2' | 'clock';
    let requestedCapture = tradeAmount;
    if (this.client.canQueryCreditTrade && info.gwsr) {
      let detail;
      try {
        detail = await this.client.queryCreditTrade({ creditRefundId: info.gwsr, creditAmount: tradeAmount });
      } catch (err) {
        return this.failedBeforeSending(err, 'QueryTrade/V2');
      }
      if (detail.RtnMsg !== '') return refuse(`QueryTrade/V2: ${detail.RtnMsg}`);
      const status = String(detail.RtnValue?.status ?? '');
      const known = CAPTURE_STATUS[status];
      if (!known) return refuse(`QueryTrade/V2: a trade in state "${status}" cannot be refunded online`);
      state = known;
      source = 'QueryTrade/V2';
      const clsamt = Number(detail.RtnValue?.clsamt);
      if (state === 'capture-requested' && Number.isSafeInteger(clsamt) && clsamt > 0) requestedCapture = clsamt;
    } else {
      const paidAt = dateOrNull(info.PaymentDate) ?? dateOrNull(info.process_date);
      if (!paidAt) return refuse('no PaymentDate to tell the capture state from');
      source = 'clock';
      state = this.now().getTime() >= nextDailyCapture(paidAt).getTime() ? 'captured' : refundedBefore > 0 ? 'capture-requested' : 'authorised';
    }

    const full = refundedBefore === 0 && amount === tradeAmount;
    const plan = planRefund(state, full, amount, tradeAmount, requestedCapture);
    return this.runPlan(input, plan, [], { captureState: state, captureStateFrom: source });
  }

  /**
   * Sends the plan's DoAction calls from the first one not in `done`. A failure after at least one
   * step went through carries `details.progress` (plan and steps done), so that a retry resumes
   * instead of starting over (a second C on a trade whose capture was requested is refused).
   */
  private async runPlan(input: RefundInput, plan: RefundStep[], done: DoneStep[], about: Record<string, string>): Promise<RefundResult> {
    const steps = [...done];
    const raw = () => ({ ...about, steps });
    for (const step of plan.slice(done.length)) {
      try {
        // Checked before every call: a C sent at 20:14:59 must not be followed by an R at 20:15.
        this.assertDoActionAllowed(steps.length);
        const res = await this.client.doAction({ merchantTradeNo: input.tradeNo, tradeNo: input.gatewayTradeId, action: step.action, totalAmount: step.totalAmount });
        steps.push({ ...step, RtnCode: res.RtnCode, RtnMsg: res.RtnMsg });
        if (res.RtnCode !== '1') return { ok: false, message: `DoAction ${step.action}: ${res.RtnMsg || `RtnCode ${res.RtnCode}`}`, raw: raw() };
      } catch (err) {
        if (steps.length === 0 || !(err instanceof GatewayError)) throw err;
        const progress: RefundProgress = { plan, steps, captureState: about.captureState ?? '' };
        throw new GatewayError(err.code, err.message, err.retryable, { ...err.details, stepsDone: steps.length, progress });
      }
    }
    return { ok: true, message: steps.map((x) => `${x.action} ${x.RtnMsg}`).join('; '), raw: raw() };
  }

  private assertDoActionAllowed(stepsDone = 0): void {
    const wait = doActionBlockedForMs(this.now());
    if (wait > 0) {
      throw new GatewayError('PAUSED', 'ECPay DoAction is not called during the daily capture, 20:15–20:30 Taipei', true, {
        retryAfterMs: wait,
        stepsDone,
      });
    }
  }

  /** Nothing reached DoAction yet: retryable failures are thrown again (try later), others end the refund as not done. */
  private failedBeforeSending(err: unknown, op: string): RefundResult {
    if (err instanceof GatewayError && !err.retryable) return { ok: false, message: `${op}: ${err.code} ${err.message}`, raw: null };
    throw err;
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
