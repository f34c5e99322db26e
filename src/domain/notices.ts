import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import type { PaymentMethod, PaymentProvider } from '../gateways/payment-gateway';
import type { Order, OrderItems } from './orders';
import type { PaymentAttempt } from './payments/types';

/**
 * What the shop tells people when its state changes, as data. The domain decides that a notice is
 * due (in the transaction of the change, under a dedupe key naming the event it reports); a
 * channel renders it (line/notifier.ts: LINE messages through the outbox). The domain never builds
 * a chat message.
 */

/** How a shopper can pay an order right now: the attempt's account, code or link, and the other methods. */
export interface PaymentInstructions {
  order: Order;
  attempt: PaymentAttempt;
  otherMethods: PaymentMethod[];
}

export type ShopperNotice =
  | { type: 'payment-instructions'; instructions: PaymentInstructions }
  | { type: 'payment-failed'; order: Order; items: OrderItems; methods: PaymentMethod[] }
  | { type: 'code-issue-failed'; order: Order; items: OrderItems; method: PaymentMethod; methods: PaymentMethod[] }
  | { type: 'receipt'; order: Order; items: OrderItems; method: string; late: boolean }
  | { type: 'paid-no-stock'; orderNo: string }
  | { type: 'refunded'; orderNo: string; amount: number }
  | { type: 'shipped'; orderNo: string; tracking: string | null }
  | { type: 'completed'; orderNo: string }
  | { type: 'expired'; orderNo: string };

/** Why a bank result was not accepted. */
export type MismatchProblem =
  | { kind: 'bank-verify-failed'; code: string }
  | { kind: 'unknown-trade' }
  | { kind: 'merchant' }
  | { kind: 'amount'; bank: number | null; ours: number }
  | { kind: 'pay-type' }
  | { kind: 'double-payment'; orderNo: string }
  | { kind: 'callback-amount'; got: string; ours: number };

export type OwnerNotice =
  | { type: 'paid'; order: Order; items: OrderItems; method: string; late: boolean }
  | { type: 'paid-no-stock'; orderNo: string; amount: number }
  | { type: 'mismatch'; provider: PaymentProvider; tradeNo: string; problems: MismatchProblem[] }
  | { type: 'simulated'; tradeNo: string }
  | { type: 'bad-expire-date'; orderNo: string; tradeNo: string; got: string; hold: Date }
  | { type: 'bank-paused'; until: Date }
  | { type: 'refund-done'; orderNo: string; amount: number; total: number }
  | { type: 'refund-failed'; orderNo: string }
  | { type: 'refund-unknown'; orderNo: string; amount: number }
  | { type: 'refund-unreachable'; orderNo: string; amount: number }
  | { type: 'daily-summary'; date: string; orders: number; paid: number; amount: number };

/** The port through which use cases notify people; written in the caller's transaction. */
export interface Notifier {
  /** One notice to one shopper, at most once per dedupeKey. */
  shopper(trx: Trx, after: AfterCommit, userId: string, dedupeKey: string, notice: ShopperNotice): Promise<void>;
  /** One notice to every configured owner, at most once per dedupeKey and owner. */
  owners(trx: Trx, after: AfterCommit, dedupeKey: string, notice: OwnerNotice): Promise<void>;
}
