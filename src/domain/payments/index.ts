import type { PaymentGateway, PaymentMethod, PaymentProvider } from '../../gateways/payment-gateway';
import { PaymentAttempts } from './attempts';
import { BankFactsApplier } from './bank-facts';
import type { PaymentContext } from './context';
import { BankNotifications } from './notifications';
import { Reconciliation } from './reconciliation';
import { Refunds } from './refunds';
import { TopupPayments } from './topups';
import type { EcpayPort, ShopMethod } from './types';
import { WalletPayments } from './wallet-payments';

export type { PaymentChoice } from './attempts';
export type { TopupChoice, TopupRequest } from './topups';
export type { WalletPayResult } from './wallet-payments';
export type { PaymentContext } from './context';
export type { RefundRequest } from './refunds';
export * from './types';

/**
 * The payments domain as one object for its callers (the bot, the back office, bank callback
 * routes, jobs). Each part lives in its own module; this only wires them to one context.
 */
export class PaymentService {
  readonly attempts: PaymentAttempts;
  readonly facts: BankFactsApplier;
  readonly notifications: BankNotifications;
  readonly reconciliation: Reconciliation;
  readonly refunds: Refunds;
  /** Wallet top-ups: paid through the banks like orders, credited to the wallet. */
  readonly topups: TopupPayments;
  /** Orders paid from the wallet. */
  readonly wallet: WalletPayments;

  constructor(private readonly ctx: PaymentContext) {
    this.topups = new TopupPayments(ctx);
    this.wallet = new WalletPayments(ctx);
    this.attempts = new PaymentAttempts(ctx, this.topups);
    this.facts = new BankFactsApplier(ctx, this.topups);
    this.notifications = new BankNotifications(ctx, this.facts, this.topups);
    this.reconciliation = new Reconciliation(ctx, this.facts);
    this.refunds = new Refunds(ctx);
  }

  gateway(provider: PaymentProvider): PaymentGateway | null {
    return this.ctx.gateways[provider];
  }

  ecpayPort(): EcpayPort | null {
    return this.ctx.gateways.ecpay;
  }

  availableMethods(): ShopMethod[] {
    return this.attempts.availableMethods();
  }

  // Shorthands for the calls that jobs, routes and tests make most.
  readonly preparePayment: PaymentAttempts['preparePayment'] = (a) => this.attempts.preparePayment(a);
  readonly completePayment: PaymentAttempts['completePayment'] = (trx, p, after) => this.attempts.completePayment(trx, p, after);
  readonly retryCardPayment: PaymentAttempts['retryCardPayment'] = (ref) => this.attempts.retryCardPayment(ref);
  readonly ecpayCheckoutPage: PaymentAttempts['ecpayCheckoutPage'] = (ref) => this.attempts.ecpayCheckoutPage(ref);
  readonly tradeState: PaymentAttempts['tradeState'] = (p, t) => this.attempts.tradeState(p, t);
  readonly recordNotification: BankNotifications['recordNotification'] = (a) => this.notifications.recordNotification(a);
  readonly processNotification: BankNotifications['processNotification'] = (id, final) => this.notifications.processNotification(id, final);
  readonly checkEcpayCallback: BankNotifications['checkEcpayCallback'] = (f) => this.notifications.checkEcpayCallback(f);
  readonly sinopacReturnState: BankNotifications['sinopacReturnState'] = (t) => this.notifications.sinopacReturnState(t);
  readonly applyEcpayPaymentInfo: BankNotifications['applyEcpayPaymentInfo'] = (f) => this.notifications.applyEcpayPaymentInfo(f);
  readonly applyBankFacts: BankFactsApplier['apply'] = (f) => this.facts.apply(f);
  readonly reconcileCandidates: Reconciliation['candidates'] = (limit) => this.reconciliation.candidates(limit);
  readonly reconcileSweep: Reconciliation['sweep'] = (limit) => this.reconciliation.sweep(limit);
  readonly reconcileAttempt: Reconciliation['attempt'] = (id) => this.reconciliation.attempt(id);
  readonly requestRefund: Refunds['request'] = (trx, a, after) => this.refunds.request(trx, a, after);
  readonly executeRefund: Refunds['execute'] = (id, final) => this.refunds.execute(id, final);
}
