/**
 * The one interface both banks implement. The rest of the shop never sees a bank's field names:
 * it deals in our trade numbers, integer TWD amounts and these result shapes.
 */

export const PAYMENT_METHODS = ['sinopac-atm', 'sinopac-card', 'ecpay-credit', 'ecpay-atm', 'ecpay-cvs'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];
export type PaymentProvider = 'sinopac' | 'ecpay';
/** What kind of hold a method gets (HOLD_MINUTES_CARD / _ATM / _CVS). */
export type MethodKind = 'card' | 'atm' | 'cvs';

export const METHOD_INFO: Record<PaymentMethod, { provider: PaymentProvider; kind: MethodKind }> = {
  'sinopac-atm': { provider: 'sinopac', kind: 'atm' },
  'sinopac-card': { provider: 'sinopac', kind: 'card' },
  'ecpay-credit': { provider: 'ecpay', kind: 'card' },
  'ecpay-atm': { provider: 'ecpay', kind: 'atm' },
  'ecpay-cvs': { provider: 'ecpay', kind: 'cvs' },
};

export function isPaymentMethod(s: string): s is PaymentMethod {
  return (PAYMENT_METHODS as readonly string[]).includes(s);
}

export interface CreatePaymentInput {
  /** Our unique trade number for this attempt (bank OrderNo / MerchantTradeNo), [A-Za-z0-9]{1,20}. */
  tradeNo: string;
  method: PaymentMethod;
  /** Integer TWD. */
  amount: number;
  /** Human order number, for descriptions. */
  orderNo: string;
  /** Item lines already formatted, e.g. "珍珠奶茶 x2". */
  itemLines: string[];
  /** When the stock hold ends: payment deadlines are matched to it. */
  holdExpiresAt: Date;
  /** Opaque unguessable reference of the attempt (ECPay checkout page). */
  publicRef: string;
}

export type CreatePaymentResult =
  | {
      kind: 'virtual-account';
      bankCode: string;
      account: string;
      /** Payment deadline as the bank states it. */
      expiresAt: Date;
      gatewayTradeId: string | null;
      /** The bank's verified answer, if it gave one (stored as the attempt's details.bank); never secrets. */
      raw: unknown;
    }
  | {
      /** Send the shopper's browser here (card page, or our own ECPay checkout page). */
      kind: 'redirect';
      url: string;
      gatewayTradeId: string | null;
      /** The bank's verified answer, if it gave one (stored as the attempt's details.bank); never secrets. */
      raw: unknown;
    };

export type PaymentState = 'paid' | 'pending' | 'failed' | 'not-found';

export interface PaymentStatus {
  state: PaymentState;
  tradeNo: string;
  /** Integer TWD as reported by the bank (already converted from ×100 where needed). */
  amount: number | null;
  gatewayTradeId: string | null;
  paidAt: Date | null;
  /** For state 'failed': the bank's reason, for logs and the owner (never shown raw to shoppers). */
  reason?: string;
  /** True when the bank marks the payment as simulated (ECPay SimulatePaid=1). */
  simulated?: boolean;
  raw: unknown;
}

export interface RefundInput {
  tradeNo: string;
  gatewayTradeId: string;
  /** Integer TWD to refund now. */
  amount: number;
  /** Integer TWD originally captured (the full order amount). */
  capturedAmount: number;
  /** Integer TWD already refunded before this call. */
  refundedBefore: number;
  /**
   * What an earlier, interrupted try of this same refund already did at the bank (opaque; taken
   * from that try's GatewayError `details.progress`): the refund resumes after it.
   */
  progress?: unknown;
}

export interface RefundResult {
  ok: boolean;
  message: string;
  raw: unknown;
}

/** Errors from a bank call. `retryable` tells callers whether trying again can help. */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  constructor(
    readonly code:
      | 'TIMEOUT'
      | 'HTTP_STATUS'
      | 'BAD_SIGNATURE'
      | 'BAD_RESPONSE'
      | 'REJECTED'
      | 'NETWORK'
      /** Not sent: the bank must not be called right now; `details.retryAfterMs` says for how long. */
      | 'PAUSED',
    message: string,
    readonly retryable: boolean,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** Milliseconds to wait before trying again, when the bank (or its rules) set a time; else null. */
  get retryAfterMs(): number | null {
    const v = this.details.retryAfterMs;
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null;
  }
}

export interface PaymentGateway {
  readonly provider: PaymentProvider;
  readonly methods: readonly PaymentMethod[];
  /** Creates the payment at the bank (or prepares it, for ECPay's browser-posted form). No DB access. */
  createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult>;
  /** Asks the bank for the authoritative state of one attempt (reconciliation). */
  queryPayment(ref: { tradeNo: string; method: PaymentMethod; createdAt: Date }): Promise<PaymentStatus>;
  /** Refunds part or all of a captured card payment, where the bank allows it. */
  refund?(input: RefundInput): Promise<RefundResult>;
  /** Milliseconds until a refund may be sent (a time of day when the bank forbids it); 0: now. */
  refundDelayMs?(): number;
  /** Milliseconds until the bank may be called at all (it asked for a pause); 0: now. */
  callsPausedForMs?(): Promise<number>;
}
