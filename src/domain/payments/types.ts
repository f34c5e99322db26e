import crypto from 'node:crypto';
import type { EcpayCheckoutInput } from '../../gateways/ecpay/ecpay-gateway';
import type { CreatePaymentResult, PaymentGateway, PaymentMethod, PaymentProvider, PaymentStatus } from '../../gateways/payment-gateway';

/**
 * Payments for orders, independent of the bank. Banks are reached only through PaymentGateway
 * (plus the small bank-specific ports below for callbacks that only one bank has), and never
 * inside a database transaction. The parts:
 * - attempts.ts: choosing a method, creating the bank trade, the pages that lead to the bank;
 * - notifications.ts: bank callbacks recorded, answered, then confirmed with the bank by a job;
 * - bank-facts.ts: applying what the bank said about one trade, exactly once;
 * - reconciliation.ts: asking the bank about trades we heard nothing of;
 * - refunds.ts: refunds requested by the owner, executed by a job.
 */

/** The shopper's stored value: a payment method of the shop itself, no bank involved. */
export const WALLET = 'wallet';

/** What a shopper can pay an order with: a bank's method, or the wallet. */
export type ShopMethod = PaymentMethod | typeof WALLET;

export interface PaymentAttempt {
  id: number;
  /** What the attempt pays: an order, or a wallet top-up (exactly one of the two). */
  order_id: number | null;
  topup_id: number | null;
  provider: PaymentProvider | typeof WALLET;
  method: ShopMethod;
  trade_no: string;
  public_ref: string;
  request_key: string | null;
  amount: number;
  status: 'creating' | 'pending' | 'paid' | 'failed' | 'superseded';
  gateway_trade_id: string | null;
  details: Record<string, unknown>;
  expires_at: Date | null;
  created_at: Date;
  paid_at: Date | null;
}

/** SinoPac: the notification carries only a PayToken; the result comes from OrderPayQuery. */
export interface SinopacPort extends PaymentGateway {
  confirmPayToken(payToken: string): Promise<
    PaymentStatus & { confirmed: boolean; queryStatus: string; queryDescription: string; shopNo: string; payType: string; orderNoFromBank: string }
  >;
}

/** ECPay: callbacks are CheckMacValue-signed form posts; the checkout is a browser form post. */
export interface EcpayPort extends PaymentGateway {
  verifyCallback(body: Record<string, string>): { ok: true; fields: Record<string, string> } | { ok: false; reason: string };
  checkoutPage(input: EcpayCheckoutInput & { now: Date }): string;
  parseDate(s: string): Date;
  readonly isProduction: boolean;
}

/** A shopper's request to add money to the wallet; paid through bank attempts like an order. */
export interface WalletTopup {
  id: number;
  line_user_id: string;
  amount: number;
  status: 'pending' | 'paid';
  created_at: Date;
  paid_at: Date | null;
}

export interface Gateways {
  sinopac: SinopacPort | null;
  ecpay: EcpayPort | null;
}

export type PreparedPayment =
  | { kind: 'ready'; orderId: number; orderNo: string; attemptId: number; method: PaymentMethod; result: CreatePaymentResult; holdExpiresAt: Date }
  | { kind: 'failed'; orderId: number; orderNo: string; attemptId: number; method: PaymentMethod; code: string }
  | { kind: 'existing'; orderNo: string; attemptId: number }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'stale'; orderNo: string; status: string }
  | { kind: 'unavailable'; orderNo: string }
  /** The order's delivery details are not complete yet: no bank was asked. */
  | { kind: 'delivery-needed'; orderNo: string; orderId: number };

export type PreparedTopupPayment =
  | { kind: 'ready'; topupId: number; attemptId: number; method: PaymentMethod; result: CreatePaymentResult; holdExpiresAt: Date }
  | { kind: 'failed'; topupId: number; attemptId: number; method: PaymentMethod; code: string }
  | { kind: 'existing'; attemptId: number }
  | { kind: 'not-found' }
  | { kind: 'stale'; topupId: number; status: 'paid' | 'expired' }
  | { kind: 'unavailable' };

/** A bank's statement about one trade, from a verified notification, OrderPayQuery or a query API. */
export interface BankFacts {
  provider: PaymentProvider;
  tradeNo: string;
  status: PaymentStatus;
  /** Provider-specific identity checks already extracted (SinoPac ShopNo / PayType, ECPay MerchantID). */
  merchantOk: boolean;
  payTypeOk: boolean;
  /** SinoPac OrderPayQuery's PayType (A = ATM, C = card), checked against the attempt's method. */
  payType?: string;
  source: string;
  notificationId?: number;
}

export type ApplyOutcome =
  | 'paid'
  | 'paid-late'
  | 'paid-no-stock'
  | 'duplicate'
  | 'double-payment'
  | 'failed'
  | 'pending'
  | 'unknown-trade'
  | 'mismatch'
  | 'simulated-rejected'
  /** SinoPac OrderPayQuery never answered Status S, on any attempt: closed with no state change. */
  | 'unconfirmed';

/** Grace after a bank's own payment deadline before the hold ends: notifications take a moment. */
export const DEADLINE_GRACE_MS = 10 * 60_000;

/** Order states in which money has been received for the order. */
export const PAID_STATES = ['paid', 'shipped', 'at_store', 'returned', 'completed', 'paid_no_stock', 'refunded'] as const;

/**
 * A fresh bank trade number: provider letter, base-36 milliseconds, 8 random hex digits (17
 * characters of [0-9A-Z]). A SinoPac one never ends in 9: the bank's real sandbox never auto-pays an
 * ATM order whose OrderNo ends in 9 (spec §7), and every order of ours should behave alike there.
 */
export function newTradeNo(provider: PaymentProvider): string {
  for (;;) {
    const tradeNo = (provider === 'sinopac' ? 'S' : 'E') + Date.now().toString(36).toUpperCase() + crypto.randomBytes(4).toString('hex').toUpperCase();
    if (provider !== 'sinopac' || !tradeNo.endsWith('9')) return tradeNo;
  }
}
