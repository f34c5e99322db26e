import type { Config } from '../../config';
import type { Db } from '../../data/db';
import type { UnitOfWork } from '../../data/unit-of-work';
import { GatewayError, METHOD_INFO, PAYMENT_METHODS, PaymentMethod } from '../../gateways/payment-gateway';
import type { Queues } from '../../jobs/queues';
import type { Logger } from '../../logger';
import type { Notifier, OwnerNotice } from '../notices';
import type { OrderEvents } from '../order-events';
import type { PaymentReminders } from '../reminders';
import { Gateways, ShopMethod, WALLET } from './types';

/** What every part of the payments domain works with. */
export interface PaymentContext {
  db: Db;
  config: Config;
  gateways: Gateways;
  queues: Queues;
  log: Logger;
  uow: UnitOfWork;
  notifier: Notifier;
  events: OrderEvents;
  /** A moved hold gets its own payment reminder. */
  reminders: PaymentReminders;
}

/** Bank methods whose provider is configured, in the order shoppers see them (what a top-up can be paid with). */
export function bankMethods(ctx: Pick<PaymentContext, 'gateways'>): PaymentMethod[] {
  return PAYMENT_METHODS.filter((m) => ctx.gateways[METHOD_INFO[m].provider] !== null);
}

/**
 * What an order can be paid with: the configured bank methods, then the shopper's wallet (only
 * beside a bank: a wallet that no bank can top up is no way to pay).
 */
export function availableMethods(ctx: Pick<PaymentContext, 'gateways'>): ShopMethod[] {
  const banks = bankMethods(ctx);
  return banks.length ? [...banks, WALLET] : [];
}

/** An owner alert in a transaction of its own (for paths that have none open). */
export async function alertOwners(ctx: PaymentContext, dedupeKey: string, notice: OwnerNotice): Promise<void> {
  await ctx.uow.run((trx, after) => ctx.notifier.owners(trx, after, dedupeKey, notice));
}

/**
 * A bank that answered HTTP 403 and asked for a pause (ECPay: called too often, or our IP is not
 * allowed) holds back every confirmation and refund until it lets us in again: the owners are
 * told, once a day, so that a block that lasts is looked into.
 */
export async function noteGatewayError(ctx: PaymentContext, err: unknown): Promise<void> {
  if (!(err instanceof GatewayError) || err.details.status !== 403 || err.retryAfterMs === null) return;
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date());
  await alertOwners(ctx, `alert:bank-paused:${day}`, { type: 'bank-paused', until: new Date(Date.now() + err.retryAfterMs) }).catch((e: unknown) =>
    ctx.log.error({ err: e instanceof Error ? e.message : String(e) }, 'bank pause alert not written'),
  );
}
