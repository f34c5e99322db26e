import type { Db, Trx } from '../../data/db';
import { withTransaction } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { isPaymentMethod, METHOD_INFO, PaymentMethod } from '../../gateways/payment-gateway';
import { M } from '../../texts';
import { post } from '../members/ledger';
import type { TopupInstructions } from '../notices';
import { createTrade, newAttemptRow, Payable, tradeDetails, tradeHold } from './attempts';
import { bankMethods, PaymentContext } from './context';
import type { PaymentAttempt, PreparedTopupPayment, WalletTopup } from './types';

/** How long a top-up request's method buttons stay good (a stale tap is answered, not paid). */
export const TOPUP_REQUEST_TTL_MS = 24 * 3600_000;

/** What choosing a method for a top-up came to, for the chat to show. */
export type TopupChoice =
  | { kind: 'unavailable' }
  | { kind: 'not-found' }
  | { kind: 'stale'; topup: WalletTopup; status: 'paid' | 'expired' }
  | { kind: 'instructions'; instructions: TopupInstructions }
  /** Nothing new to pay (a repeated tap): the top-up and its methods again. */
  | { kind: 'topup'; topup: WalletTopup; methods: PaymentMethod[] }
  | { kind: 'create-failed'; topup: WalletTopup; methods: PaymentMethod[] };

export type TopupRequest =
  | { kind: 'created'; topup: WalletTopup; methods: PaymentMethod[] }
  | { kind: 'invalid-amount'; amounts: readonly number[] }
  | { kind: 'unavailable' };

/** The ledger source of a top-up attempt's credit: each attempt the bank says is paid credits once. */
export const topupSource = (attemptId: number) => `topup:${attemptId}`;

/**
 * Wallet top-ups, paid like orders through the bank's trades (payment_attempts with a topup_id):
 * the same two-phase creation (bank call outside any transaction), the same callbacks, bank
 * confirmation, amount and merchant checks and reconciliation (bank-facts.ts). What differs is
 * only what a confirmed payment does: it credits the wallet, once per attempt (ledger source
 * `topup:<attempt id>`), and pushes the new balance.
 */
export class TopupPayments {
  constructor(private readonly ctx: PaymentContext) {}

  methods(): PaymentMethod[] {
    return bankMethods(this.ctx);
  }

  /** A top-up request for one of the offered amounts (WALLET_TOPUP_AMOUNTS), in the caller's transaction. */
  async request(trx: Trx, args: { userId: string; amount: number }): Promise<TopupRequest> {
    const amounts = this.ctx.config.members.walletTopupAmounts;
    if (!amounts.includes(args.amount)) return { kind: 'invalid-amount', amounts };
    const methods = this.methods();
    if (methods.length === 0) return { kind: 'unavailable' };
    const [topup] = await trx('wallet_topups').insert({ line_user_id: args.userId, amount: args.amount }).returning<WalletTopup[]>('*');
    return { kind: 'created', topup: topup!, methods };
  }

  // Phase 1 (before the event transaction, may call the bank).
  async prepare(args: { userId: string; topupId: number; method: string; requestKey: string }): Promise<PreparedTopupPayment> {
    const { db, config } = this.ctx;
    if (!isPaymentMethod(args.method) || !this.methods().includes(args.method)) return { kind: 'unavailable' };
    const method = args.method;
    const holdExpiresAt = new Date(Date.now() + config.holdMinutes[METHOD_INFO[method].kind] * 60_000);
    const start = await withTransaction(db, async (trx) => {
      const topup = await trx('wallet_topups').where({ id: args.topupId }).forUpdate().first<WalletTopup>();
      if (!topup || topup.line_user_id !== args.userId) return { kind: 'not-found' as const };
      const existing = await trx('payment_attempts').where({ request_key: args.requestKey }).first<PaymentAttempt>();
      if (existing && existing.status !== 'creating') return { kind: 'existing' as const, attempt: existing };
      const stale = staleness(topup);
      if (stale) return { kind: 'stale' as const, status: stale };
      if (existing) return { kind: 'go' as const, topup, attempt: existing };
      const [attempt] = await trx('payment_attempts')
        .insert(newAttemptRow(method, topup.amount, { topup_id: topup.id }, args.requestKey))
        .returning<PaymentAttempt[]>('*');
      return { kind: 'go' as const, topup, attempt: attempt! };
    });
    if (start.kind === 'not-found') return { kind: 'not-found' };
    if (start.kind === 'stale') return { kind: 'stale', topupId: args.topupId, status: start.status };
    if (start.kind === 'existing') return { kind: 'existing', attemptId: start.attempt.id };
    const { topup, attempt } = start;
    const made = await createTrade(this.ctx, attempt, method, holdExpiresAt, describe(topup));
    if (made.kind === 'failed') return { kind: 'failed', topupId: topup.id, attemptId: attempt.id, method, code: made.code };
    return { kind: 'ready', topupId: topup.id, attemptId: attempt.id, method, result: made.result, holdExpiresAt };
  }

  // Phase 2 (inside the caller's transaction): record the outcome.
  async complete(trx: Trx, p: PreparedTopupPayment, _after: AfterCommit): Promise<TopupChoice> {
    switch (p.kind) {
      case 'unavailable':
        return { kind: 'unavailable' };
      case 'not-found':
        return { kind: 'not-found' };
      case 'stale':
        return { kind: 'stale', topup: (await topupRow(trx, p.topupId))!, status: p.status };
      case 'existing': {
        const attempt = (await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>())!;
        const topup = (await topupRow(trx, attempt.topup_id!))!;
        if (attempt.status === 'pending' && topup.status === 'pending') return { kind: 'instructions', instructions: this.instructions(topup, attempt) };
        return { kind: 'topup', topup, methods: this.methods() };
      }
      case 'failed': {
        await trx('payment_attempts')
          .where({ id: p.attemptId, status: 'creating' })
          .update({ status: 'failed', details: JSON.stringify({ error: p.code }), updated_at: trx.fn.now() });
        return { kind: 'create-failed', topup: (await topupRow(trx, p.topupId))!, methods: this.methods() };
      }
      case 'ready': {
        const topup = (await trx('wallet_topups').where({ id: p.topupId }).forUpdate().first<WalletTopup>())!;
        const details = tradeDetails(p.result);
        const hold = tradeHold(p.result, p.holdExpiresAt);
        if (topup.status !== 'pending') {
          // Paid meanwhile by another attempt: this one stays payable at the bank until its deadline
          // (and would be credited too), but is no longer what the shopper is told to pay.
          await trx('payment_attempts').where({ id: p.attemptId }).update({ status: 'superseded', details: JSON.stringify(details), expires_at: hold, updated_at: trx.fn.now() });
          return { kind: 'stale', topup, status: 'paid' };
        }
        await trx('payment_attempts')
          .where({ topup_id: topup.id })
          .whereIn('status', ['pending', 'creating'])
          .whereNot({ id: p.attemptId })
          .update({ status: 'superseded', updated_at: trx.fn.now() });
        await trx('payment_attempts').where({ id: p.attemptId }).update({
          status: 'pending',
          gateway_trade_id: p.result.gatewayTradeId,
          details: JSON.stringify(details),
          expires_at: hold,
          updated_at: trx.fn.now(),
        });
        const attempt = (await trx('payment_attempts').where({ id: p.attemptId }).first<PaymentAttempt>())!;
        return { kind: 'instructions', instructions: this.instructions(topup, attempt) };
      }
    }
  }

  instructions(topup: WalletTopup, attempt: PaymentAttempt): TopupInstructions {
    return { topup, attempt, otherMethods: this.methods().filter((m) => m !== attempt.method) };
  }

  /** For the bank's pages: what the attempt pays and whether it can still be paid. */
  async payableOf(db: Db | Trx, attempt: PaymentAttempt): Promise<Payable> {
    const topup = (await topupRow(db, attempt.topup_id!))!;
    const holdExpiresAt = attempt.expires_at ?? new Date(topup.created_at.getTime() + TOPUP_REQUEST_TTL_MS);
    const state = topup.status === 'paid' ? 'paid' : holdExpiresAt.getTime() <= Date.now() ? 'expired' : 'payable';
    return { kind: 'topup', topup, state, ...describe(topup), holdExpiresAt };
  }

  /**
   * The bank says this top-up attempt is paid (bank-facts.ts has checked merchant, amount, pay type
   * and that it is real money; the top-up row and the attempt are locked): the attempt is paid, the
   * wallet credited once and the shopper told the new balance.
   */
  async credit(trx: Trx, after: AfterCommit, topup: WalletTopup, attempt: PaymentAttempt, gatewayTradeId: string | null): Promise<'paid' | 'duplicate'> {
    await trx('payment_attempts')
      .where({ topup_id: topup.id })
      .whereIn('status', ['pending', 'creating'])
      .whereNot({ id: attempt.id })
      .update({ status: 'superseded', updated_at: trx.fn.now() });
    await trx('payment_attempts')
      .where({ id: attempt.id })
      .update({ status: 'paid', paid_at: trx.fn.now(), gateway_trade_id: gatewayTradeId ?? attempt.gateway_trade_id, updated_at: trx.fn.now() });
    if (topup.status === 'pending') await trx('wallet_topups').where({ id: topup.id }).update({ status: 'paid', paid_at: trx.fn.now(), updated_at: trx.fn.now() });
    const r = await post(trx, {
      userId: topup.line_user_id, account: 'wallet', kind: 'topup', amount: attempt.amount, source: topupSource(attempt.id),
      details: { topupId: topup.id, method: attempt.method, tradeNo: attempt.trade_no },
    });
    if (r.outcome !== 'posted') return 'duplicate';
    await this.ctx.notifier.shopper(trx, after, topup.line_user_id, `topup:${attempt.id}:credited`, { type: 'topup-credited', amount: attempt.amount, balance: r.balance });
    return 'paid';
  }

  /** The bank says the attempt failed: the shopper may pick a method again (nothing was credited). */
  async failed(trx: Trx, after: AfterCommit, topup: WalletTopup, attempt: PaymentAttempt): Promise<void> {
    if (topup.status !== 'pending') return;
    await this.ctx.notifier.shopper(trx, after, topup.line_user_id, `attempt:${attempt.id}:failed`, { type: 'topup-failed', topup, methods: this.methods() });
  }
}

export async function topupRow(db: Db | Trx, id: number): Promise<WalletTopup | undefined> {
  return db('wallet_topups').where({ id }).first<WalletTopup>();
}

export async function lockTopup(trx: Trx, id: number): Promise<WalletTopup | undefined> {
  return trx('wallet_topups').where({ id }).forUpdate().first<WalletTopup>();
}

function staleness(topup: WalletTopup): 'paid' | 'expired' | null {
  if (topup.status === 'paid') return 'paid';
  if (topup.created_at.getTime() + TOPUP_REQUEST_TTL_MS <= Date.now()) return 'expired';
  return null;
}

/** How the bank's pages and statements name a top-up (the label in ASCII: ECPay's CustomField1 takes nothing else). */
function describe(topup: WalletTopup): { label: string; itemLines: string[] } {
  return { label: `TOPUP-${topup.id}`, itemLines: [M.topupItem(topup.amount)] };
}
