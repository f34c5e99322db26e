import type { OwnerNotifyKind } from '../config';
import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import type { PaymentMethod, PaymentProvider } from '../gateways/payment-gateway';
import type { Order, OrderItems } from './orders';
import type { PaymentAttempt, ShopMethod, WalletTopup } from './payments/types';
import type { DailyFigures } from './reports';
import type { DeliveryDetails } from './delivery';

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
  otherMethods: ShopMethod[];
}

export type ShopperNotice =
  | { type: 'payment-instructions'; instructions: PaymentInstructions }
  | { type: 'payment-failed'; order: Order; items: OrderItems; methods: ShopMethod[] }
  | { type: 'code-issue-failed'; order: Order; items: OrderItems; method: PaymentMethod; methods: ShopMethod[] }
  | { type: 'receipt'; order: Order; items: OrderItems; method: string; late: boolean; pointsEarned?: number }
  | { type: 'paid-no-stock'; orderNo: string }
  /** `method`: how the money goes back (the order's payment method); `full`: nothing is left paid; `walletBalance` when it went to the wallet. */
  | { type: 'refunded'; orderNo: string; amount: number; method: string | null; full: boolean; walletBalance?: number }
  /** `carrier` as the owner named it (free text or a known code; line/carriers.ts knows tracking pages). */
  | { type: 'shipped'; orderNo: string; tracking: string | null; carrier: string | null }
  | { type: 'completed'; orderNo: string }
  /** Store pickup: the parcel waits at the store until pickupDeadline (null when unknown). */
  | { type: 'arrived'; orderNo: string; storeName: string; storeAddress: string | null; pickupDeadline: Date | null }
  /** Store pickup: never collected, back with the seller. */
  | { type: 'returned'; orderNo: string }
  | { type: 'expired'; orderNo: string }
  /** Still unpaid shortly before the hold ends: how to pay now (the pending attempt), or the methods to choose from. */
  | { type: 'payment-reminder'; order: Order; instructions: PaymentInstructions | null; methods: ShopMethod[] }
  // Members (wallet top-ups, in-store charges).
  | { type: 'topup-instructions'; instructions: TopupInstructions }
  | { type: 'topup-failed'; topup: WalletTopup; methods: PaymentMethod[] }
  | { type: 'topup-credited'; amount: number; balance: number }
  | { type: 'member-charge'; receipt: MemberChargeReceipt }
  // Delivery at checkout.
  /** The delivery details are complete: the summary, and the payment methods to choose from. */
  | { type: 'delivery-ready'; order: Order; items: OrderItems; delivery: DeliveryDetails; methods: ShopMethod[]; storeChosen: boolean }
  /** A store was chosen on the map; the recipient is still to be filled in on the page. */
  | { type: 'delivery-store'; orderNo: string; chain: string; storeName: string; storeAddress: string }
  // Store pickup after shipping.
  /** The pickup store closed: a new store of the same chain is chosen on ECPay's map from `url` (until expiresAt). */
  | { type: 'store-closed'; orderNo: string; subType: string; storeName: string; url: string; expiresAt: Date }
  /** ECPay took the parcel's new pickup store. */
  | { type: 'store-changed'; orderNo: string; subType: string; storeName: string; storeAddress: string | null };

/** How a shopper can pay a wallet top-up: the attempt's account, code or link, and the other methods. */
export interface TopupInstructions {
  topup: WalletTopup;
  attempt: PaymentAttempt;
  otherMethods: PaymentMethod[];
}

/** An in-store charge of a member code (owner 收款), as both receipts show it. */
export interface MemberChargeReceipt {
  chargeId: number;
  userId: string;
  displayName: string | null;
  /** What the owner asked for, before the tier discount. */
  amount: number;
  discount: number;
  tierName: string;
  /** What the wallet paid. */
  paid: number;
  balance: number;
  pointsEarned: number;
  /** The code's last four digits, for the owner to match the receipt to the card shown. */
  codeTail: string;
  at: Date;
}

/** Why a bank result was not accepted. */
export type MismatchProblem =
  | { kind: 'bank-verify-failed'; code: string }
  | { kind: 'unknown-trade' }
  | { kind: 'merchant' }
  | { kind: 'amount'; bank: number | null; ours: number }
  | { kind: 'pay-type' }
  | { kind: 'double-payment'; orderNo: string }
  | { kind: 'callback-amount'; got: string; ours: number };

/** Who closed an unpaid order: the shopper, an owner (by display name when known), or the hold's expiry. */
export interface ClosedBy {
  kind: 'shopper' | 'owner' | 'system';
  name: string | null;
}

export interface StockProduct {
  id: number;
  sku: string;
  name: string;
}

/** LINE's monthly message quota: `limit` null when the plan has none; `used` as LINE counts it. */
export interface MessageQuota {
  limit: number | null;
  used: number;
}

export type OwnerNotice =
  | { type: 'new-order'; order: Order; items: OrderItems; shopperName: string | null }
  | { type: 'order-closed'; order: Order; to: 'expired' | 'cancelled'; by: ClosedBy }
  | { type: 'low-stock'; product: StockProduct; available: number; threshold: number }
  | { type: 'sold-out'; product: StockProduct }
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
  /** `quota` null when LINE could not be asked; `members` the members' side of the day. */
  | { type: 'daily-summary'; figures: DailyFigures; quota: MessageQuota | null; members?: MembersDay }
  // Members.
  | { type: 'points-shortfall'; orderNo: string; userId: string; due: number; taken: number }
  | { type: 'member-charge'; receipt: MemberChargeReceipt }
  | { type: 'pos-rejected'; deviceId: string; entries: Array<{ txnNo: string; amount: number; reason: string }> }
  // Shipments (store pickup at ECPay).
  | { type: 'shipment-created'; shipment: ShipmentCreatedInfo }
  | { type: 'shipment-failed'; orderNo: string; reason: ShipmentFailure; message: string }
  | { type: 'shipment-unknown'; orderNo: string }
  | { type: 'parcel-returned'; orderNo: string; storeName: string }
  /** `shopperAsked`: the shopper was pushed a link to choose a new store (§8 bot flow). */
  | { type: 'store-closed'; orderNo: string; storeName: string; shopperAsked: boolean }
  /** The shopper chose a new pickup store after a closure and ECPay took it. */
  | { type: 'store-changed'; orderNo: string; storeName: string; storeAddress: string; oldStoreName: string }
  | { type: 'shipment-problem'; orderNo: string; code: string; message: string };

/** A store-pickup shipment ECPay accepted: what the owner needs to hand the parcel in. */
export interface ShipmentCreatedInfo {
  orderNo: string;
  subType: string;
  storeName: string;
  /** CVSPaymentNo (B2C: ShipmentNo). */
  shipmentNo: string;
  /** CVSValidationNo (7-ELEVEN C2C), '' otherwise. */
  validationNo: string;
  /** What to type at the store's kiosk (specs/ecpay-logistics.md §10). */
  dropOffCode: string;
  /** Last day to drop the parcel off (§6.3). */
  dropOffBy: Date;
}

/** Why ECPay refused a shipment, as the owner is told. */
export type ShipmentFailure = 'store' | 'mac' | 'recipient' | 'expired' | 'other';

/** The members' side of a day: wallet top-ups credited, points granted. */
export interface MembersDay {
  topups: number;
  topupAmount: number;
  pointsGranted: number;
}

/**
 * Which OWNER_NOTIFY kind a notice belongs to; null for the answers to the owner's own requests
 * (refunds, in-store charges), which are always sent.
 */
export function ownerNoticeKind(n: OwnerNotice): OwnerNotifyKind | null {
  switch (n.type) {
    case 'new-order':
      return 'order';
    case 'paid':
      return 'paid';
    case 'order-closed':
      return n.to;
    case 'low-stock':
      return 'low-stock';
    case 'sold-out':
      return 'sold-out';
    case 'daily-summary':
      return 'summary';
    case 'paid-no-stock':
    case 'mismatch':
    case 'simulated':
    case 'bad-expire-date':
    case 'bank-paused':
    case 'points-shortfall':
    case 'pos-rejected':
    case 'shipment-unknown':
    case 'parcel-returned':
    case 'store-closed':
    case 'store-changed':
    case 'shipment-problem':
      return 'alert';
    case 'shipment-created':
    case 'shipment-failed':
      return null;
    case 'refund-done':
    case 'refund-failed':
    case 'refund-unknown':
    case 'refund-unreachable':
    case 'member-charge':
      return null;
  }
}

/** The port through which use cases notify people; written in the caller's transaction. */
export interface Notifier {
  /** One notice to one shopper, at most once per dedupeKey. */
  shopper(trx: Trx, after: AfterCommit, userId: string, dedupeKey: string, notice: ShopperNotice): Promise<void>;
  /** One notice to every configured owner, at most once per dedupeKey and owner. */
  owners(trx: Trx, after: AfterCommit, dedupeKey: string, notice: OwnerNotice): Promise<void>;
}
