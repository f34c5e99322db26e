/**
 * SinoPac QPay behind the shop's PaymentGateway interface: ATM virtual accounts (PayType A) and the
 * hosted card page (PayType C). The shop deals in trade numbers and integer TWD; bank field names
 * stay in sinopac-client.ts.
 */
import {
  GatewayError,
  type CreatePaymentInput,
  type CreatePaymentResult,
  type PaymentGateway,
  type PaymentMethod,
  type PaymentState,
  type PaymentStatus,
} from '../payment-gateway';
import type { SinopacClient, SinopacPayType } from './sinopac-client';

export interface SinopacGatewayOptions {
  client: SinopacClient;
  shopNo: string;
  /** Our BackendURL (server-to-server notification endpoint). */
  backendUrl: string;
  /** Our ReturnURL (the shopper's browser after the card page). */
  returnUrl: string;
  now?: () => Date;
}

export type SinopacPayTokenStatus = PaymentStatus & {
  /**
   * True only when OrderPayQuery's outer Status is S. Otherwise the query itself did not work and
   * nothing in the answer is a result (spec §5.3): state is 'pending' whatever TSResultContent says.
   */
  confirmed: boolean;
  /** The outer (query-level) Status and Description, for logs. */
  queryStatus: string;
  queryDescription: string;
  /**
   * ShopNo of the result. For a paid result it is TSResultContent.ShopNo as sent (possibly ''); for
   * other answers an absent one falls back to the envelope's, but a different one is reported as is.
   */
  shopNo: string;
  /** 'A' (ATM) or 'C' (card), as the bank reports it; '' when the bank sent no result. */
  payType: string;
  /** OrderNo as reported by the bank (our tradeNo); '' when the bank sent no result. */
  orderNoFromBank: string;
};

/** The bank's bank code for SinoPac virtual accounts. */
export const SINOPAC_BANK_CODE = '807';

const TAIPEI_OFFSET_MS = 8 * 60 * 60 * 1000; // Asia/Taipei has no DST
const DAY_MS = 24 * 60 * 60 * 1000;
const LAST_MINUTE_MS = (23 * 60 + 59) * 60 * 1000;
const PRDT_NAME_MAX_BYTES = 60;

/** Taipei calendar day of an instant, as a day number (days since 1970-01-01 in Taipei). */
function taipeiDay(d: Date): number {
  return Math.floor((d.getTime() + TAIPEI_OFFSET_MS) / DAY_MS);
}

/** 23:59:00 Asia/Taipei on a Taipei day number. */
function taipeiDayEnd(day: number): Date {
  return new Date(day * DAY_MS + LAST_MINUTE_MS - TAIPEI_OFFSET_MS);
}

function formatDay(day: number): string {
  const d = new Date(day * DAY_MS);
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}

/**
 * ATM deadline for a hold: the latest Taipei date whose 23:59 is not after holdExpiresAt, but never
 * before today (the bank takes a date and treats it as the end of that day).
 */
export function atmExpireDate(holdExpiresAt: Date, now: Date): { expireDate: string; expiresAt: Date } {
  let day = taipeiDay(holdExpiresAt);
  if (taipeiDayEnd(day).getTime() > holdExpiresAt.getTime()) day -= 1;
  day = Math.max(day, taipeiDay(now));
  return { expireDate: formatDay(day), expiresAt: taipeiDayEnd(day) };
}

/** Card link validity: whole minutes left in the hold, clamped to the bank's 1–30. */
export function cardExpMinutes(holdExpiresAt: Date, now: Date): number {
  const left = Math.floor((holdExpiresAt.getTime() - now.getTime()) / 60_000);
  return Math.min(30, Math.max(1, left));
}

/** Bank free-text rule: no ' " %; also no control characters. */
function stripForbidden(s: string): string {
  return s.replace(/['"%]/g, '').replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** Cuts at a code point boundary so the UTF-8 length stays within maxBytes (adds … when cut). */
function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const ellipsis = '…';
  const budget = maxBytes - Buffer.byteLength(ellipsis, 'utf8');
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > budget) break;
    out += ch;
    used += n;
  }
  return out.trimEnd() + ellipsis;
}

/** PrdtName (收款名稱) shown on the bank's page: the items, sanitised, at most 60 UTF-8 bytes. */
export function sinopacPrdtName(itemLines: string[], orderNo: string): string {
  const items = itemLines.map(stripForbidden).filter(Boolean).join('、');
  const name = items || stripForbidden(`訂單 ${orderNo}`) || '訂單';
  return truncateUtf8(name, PRDT_NAME_MAX_BYTES);
}

/** yyyyMMddHHmm in Taipei time → Date; null when absent or malformed. */
export function parseTaipeiMinute(s: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi] = m.map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) return null;
  return new Date(Date.UTC(y, mo - 1, d, h, mi) - TAIPEI_OFFSET_MS);
}

function payTypeOf(method: PaymentMethod): SinopacPayType {
  if (method === 'sinopac-atm') return 'A';
  if (method === 'sinopac-card') return 'C';
  throw new RangeError(`SinoPac does not handle payment method ${method}`);
}

export class SinopacGateway implements PaymentGateway {
  readonly provider = 'sinopac' as const;
  readonly methods: readonly PaymentMethod[] = ['sinopac-atm', 'sinopac-card'];
  private readonly client: SinopacClient;
  private readonly shopNo: string;
  private readonly backendUrl: string;
  private readonly returnUrl: string;
  private readonly now: () => Date;

  constructor(opts: SinopacGatewayOptions) {
    if (opts.client.shopNo !== opts.shopNo) throw new Error('SinopacGateway shopNo differs from the client configuration');
    this.client = opts.client;
    this.shopNo = opts.shopNo;
    this.backendUrl = opts.backendUrl;
    this.returnUrl = opts.returnUrl;
    this.now = opts.now ?? (() => new Date());
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult> {
    const payType = payTypeOf(input.method);
    const now = this.now();
    const common = {
      orderNo: input.tradeNo,
      amount: input.amount,
      prdtName: sinopacPrdtName(input.itemLines, input.orderNo),
      returnUrl: this.returnUrl,
      backendUrl: this.backendUrl,
      param1: stripForbidden(input.orderNo).slice(0, 255) || undefined,
    };
    if (payType === 'A') {
      const { expireDate, expiresAt } = atmExpireDate(input.holdExpiresAt, now);
      const res = await this.client.orderCreate({ ...common, payType, atm: { expireDate } });
      return {
        kind: 'virtual-account',
        bankCode: SINOPAC_BANK_CODE,
        account: res.atm!.atmPayNo,
        expiresAt,
        gatewayTradeId: res.tsNo,
        raw: res.raw,
      };
    }
    const expMinutes = cardExpMinutes(input.holdExpiresAt, now);
    const res = await this.client.orderCreate({ ...common, payType, card: { autoBilling: 'Y', expMinutes } });
    return { kind: 'redirect', url: res.card!.cardPayUrl, gatewayTradeId: res.tsNo, raw: res.raw };
  }

  /**
   * Turns a PayToken (from BackendURL or ReturnURL, which are unsigned and must not be trusted) into
   * the bank's verified result. The caller still matches ShopNo, tradeNo, amount and payType against
   * its own attempt before marking anything paid, and retries when the answer is not `confirmed`.
   */
  async confirmPayToken(payToken: string): Promise<SinopacPayTokenStatus> {
    const q = await this.client.orderPayQuery(payToken);
    const r = q.result;
    // The outer Status says whether the query worked; only then is TSResultContent the payment result.
    const confirmed = q.status === 'S';
    let state: PaymentState = 'pending';
    if (confirmed && r?.status === 'S') state = 'paid';
    else if (confirmed && r?.status === 'F') state = 'failed';

    if (state === 'paid' && r!.amount === null) {
      throw new GatewayError('BAD_RESPONSE', 'SinoPac OrderPayQuery reports a paid amount that is not whole TWD', false, {
        service: 'OrderPayQuery',
        amount: r!.amountCents,
      });
    }
    // A payment result must name our ShopNo itself (spec §5.3 acceptance test): an empty one does not
    // pass. The caller compares it with ours; a mismatch changes nothing and alerts the owner.
    const shopNo = state === 'paid' ? r!.shopNo : r?.shopNo || q.shopNo || this.shopNo;
    const status: SinopacPayTokenStatus = {
      state,
      confirmed,
      queryStatus: q.status,
      queryDescription: q.description,
      tradeNo: r?.orderNo ?? '',
      amount: r?.amount ?? null,
      gatewayTradeId: r?.tsNo || null,
      paidAt: state === 'paid' ? parseTaipeiMinute(r!.payDate) : null,
      raw: q.raw,
      shopNo,
      payType: r?.payType ?? '',
      orderNoFromBank: r?.orderNo ?? '',
    };
    if (state === 'failed') status.reason = r!.description || q.description || 'failed';
    return status;
  }

  /**
   * Reconciliation: OrderQuery by OrderNo (+PayType). ATM: paid when the row has a PayDate or
   * PayStatus 1A400. Card: PayStatus codes are not public and a row may exist (even with dates) for
   * a payment that was never captured, so a card is paid only when the same query with PayFlag Y
   * (captured, 已請款) returns the row (spec §6).
   */
  async queryPayment(ref: { tradeNo: string; method: PaymentMethod; createdAt: Date }): Promise<PaymentStatus> {
    const payType = payTypeOf(ref.method);
    const q = await this.client.orderQuery({ orderNo: ref.tradeNo, payType });
    if (q.status !== 'S') {
      // Undocumented whether "no data" is Status F; refuse to guess (spec §6, §11).
      throw new GatewayError('REJECTED', `SinoPac OrderQuery failed: ${q.description || q.status || 'no status'}`, false, {
        service: 'OrderQuery',
        orderNo: ref.tradeNo,
        description: q.description,
      });
    }
    const row = q.orders.find((o) => o.orderNo === ref.tradeNo);
    if (!row) {
      return { state: 'not-found', tradeNo: ref.tradeNo, amount: null, gatewayTradeId: null, paidAt: null, raw: q.raw };
    }
    let paidRow: typeof row | undefined;
    if (payType === 'A') {
      if (row.payDate.trim() !== '' || row.payStatus === '1A400') paidRow = row;
    } else {
      const captured = await this.client.orderQuery({ orderNo: ref.tradeNo, payType, payFlag: 'Y' });
      // Anything but a row under PayFlag Y (including a Status F, which may mean "no data") is not
      // proof of money: the attempt stays pending and is asked about again on the next sweep.
      if (captured.status === 'S') paidRow = captured.orders.find((o) => o.orderNo === ref.tradeNo);
    }
    if (!paidRow) {
      return { state: 'pending', tradeNo: ref.tradeNo, amount: row.amount, gatewayTradeId: row.tsNo || null, paidAt: null, raw: row.raw };
    }
    if (paidRow.amount === null) {
      throw new GatewayError('BAD_RESPONSE', 'SinoPac OrderQuery reports a paid amount that is not whole TWD', false, {
        service: 'OrderQuery',
        orderNo: ref.tradeNo,
        amount: paidRow.amountCents,
      });
    }
    return {
      state: 'paid',
      tradeNo: ref.tradeNo,
      amount: paidRow.amount,
      gatewayTradeId: paidRow.tsNo || row.tsNo || null,
      paidAt: parseTaipeiMinute(paidRow.payDate) ?? parseTaipeiMinute(paidRow.approvedDate),
      raw: paidRow.raw,
    };
  }
}
