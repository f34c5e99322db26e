import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import type { MismatchProblem } from '../notices';
import { lockOrder, Order, orderItems } from '../orders';
import { availableMethods, PaymentContext } from './context';
import { settleOrderPayment } from './settle';
import { lockTopup, TopupPayments } from './topups';
import type { ApplyOutcome, BankFacts, PaymentAttempt, WalletTopup } from './types';

/** What a bank attempt pays, locked: an order or a wallet top-up. */
type Locked = { kind: 'order'; order: Order } | { kind: 'topup'; topup: WalletTopup };

/**
 * Applies what a bank said about one trade, exactly once: checks merchant, amount and pay type
 * against our attempt, then confirms what the attempt pays — an order's payment (receipt and owner
 * notice through the outbox, in the same transaction), or a wallet top-up's credit. Every path that
 * learns a bank's answer ends here: callbacks confirmed with the bank, and reconciliation.
 */
export class BankFactsApplier {
  constructor(
    private readonly ctx: PaymentContext,
    private readonly topups: TopupPayments,
  ) {}

  async apply(f: BankFacts): Promise<ApplyOutcome> {
    const { gateways, log, notifier } = this.ctx;
    return this.ctx.uow.run(async (trx, after): Promise<ApplyOutcome> => {
      const close = async (o: ApplyOutcome) => {
        if (f.notificationId) {
          await trx('payment_notifications').where({ id: f.notificationId }).whereNull('processed_at').update({ processed_at: trx.fn.now(), outcome: o });
        }
        return o;
      };
      const mismatch = (key: string, tradeNo: string, problems: MismatchProblem[]) =>
        notifier.owners(trx, after, key, { type: 'mismatch', provider: f.provider, tradeNo, problems });
      if (!f.merchantOk) {
        // Another merchant's result (or a paid one naming none) is not ours to apply, paid or failed.
        log.error({ provider: f.provider, tradeNo: f.tradeNo, problems: ['merchant'], source: f.source }, 'bank result does not match our attempt');
        await mismatch(`alert:mismatch:${f.provider}:${f.tradeNo || '-'}:${f.notificationId ?? f.source}`, f.tradeNo || '-', [{ kind: 'merchant' }]);
        return close('mismatch');
      }
      const found = await trx('payment_attempts').where({ trade_no: f.tradeNo, provider: f.provider }).first<PaymentAttempt>();
      if (!found) {
        if (f.status.state === 'paid') {
          await mismatch(`alert:unknown-trade:${f.provider}:${f.tradeNo}`, f.tradeNo, [{ kind: 'unknown-trade' }]);
        }
        log.warn({ provider: f.provider, tradeNo: f.tradeNo, source: f.source }, 'bank result for an unknown trade');
        return close('unknown-trade');
      }
      // What the attempt pays is locked first, then the attempt: the lock order of every path.
      const paying: Locked =
        found.topup_id !== null
          ? { kind: 'topup', topup: (await lockTopup(trx, found.topup_id))! }
          : { kind: 'order', order: (await lockOrder(trx, { id: found.order_id! }))! };
      const attempt = (await trx('payment_attempts').where({ id: found.id }).forUpdate().first<PaymentAttempt>())!;
      await trx('payment_attempts').where({ id: attempt.id }).update({ last_checked_at: trx.fn.now(), check_count: trx.raw('check_count + 1') });

      if (f.status.state !== 'paid') {
        if (f.status.state === 'failed' && ['pending', 'creating'].includes(attempt.status)) {
          await trx('payment_attempts').where({ id: attempt.id }).update({ status: 'failed', updated_at: trx.fn.now() });
          if (paying.kind === 'topup') await this.topups.failed(trx, after, paying.topup, attempt);
          else if (paying.order.status === 'pending_payment') {
            const order = paying.order;
            await notifier.shopper(trx, after, order.line_user_id, `attempt:${attempt.id}:failed`, {
              type: 'payment-failed',
              order,
              items: await orderItems(trx, order.id),
              methods: availableMethods(this.ctx),
            });
          }
          return close('failed');
        }
        return close(f.status.state === 'failed' ? 'failed' : 'pending');
      }

      // Paid, says the bank. Check that it is the payment we asked for.
      const expectedPayType = attempt.method === 'sinopac-atm' ? 'A' : attempt.method === 'sinopac-card' ? 'C' : null;
      const problems: MismatchProblem[] = [];
      if (f.status.amount !== attempt.amount) problems.push({ kind: 'amount', bank: f.status.amount, ours: attempt.amount });
      if (expectedPayType && f.payType !== undefined && f.payType !== expectedPayType) problems.push({ kind: 'pay-type' });
      if (!f.payTypeOk) problems.push({ kind: 'pay-type' });
      if (problems.length) {
        log.error({ tradeNo: f.tradeNo, problems: problems.map((p) => p.kind), source: f.source }, 'bank result does not match our attempt');
        await mismatch(`alert:mismatch:${f.provider}:${f.tradeNo}:${f.notificationId ?? f.source}`, f.tradeNo, problems);
        return close('mismatch');
      }
      // QueryTradeInfo carries no SimulatePaid: a recorded ECPay callback for this trade that said
      // SimulatePaid=1 still makes it simulated (else reconciliation would take it for money).
      const simulated =
        f.status.simulated ||
        (f.provider === 'ecpay' &&
          gateways.ecpay?.isProduction === true &&
          (await trx('payment_notifications').where({ provider: 'ecpay', trade_no: f.tradeNo }).whereRaw("payload->>'SimulatePaid' = '1'").first('id')) !== undefined);
      if (simulated && gateways.ecpay?.isProduction) {
        await notifier.owners(trx, after, `alert:simulated:${f.tradeNo}`, { type: 'simulated', tradeNo: f.tradeNo });
        return close('simulated-rejected');
      }
      if (attempt.status === 'paid') return close('duplicate');

      if (paying.kind === 'topup') return close(await this.topups.credit(trx, after, paying.topup, attempt, f.status.gatewayTradeId));
      return close(await this.payOrder(trx, after, paying.order, attempt, f));
    });
  }

  private async payOrder(trx: Trx, after: AfterCommit, order: Order, attempt: PaymentAttempt, f: BankFacts): Promise<ApplyOutcome> {
    const orderAlreadyPaid = !['pending_payment', 'expired', 'cancelled'].includes(order.status);
    if (orderAlreadyPaid) {
      // Money for an order that another attempt already paid: record it and ask the owner to refund.
      await trx('payment_attempts')
        .where({ id: attempt.id })
        .update({ details: trx.raw(`details || ?::jsonb`, [JSON.stringify({ doublePaid: true, amount: f.status.amount })]), updated_at: trx.fn.now() });
      await this.ctx.notifier.owners(trx, after, `alert:double:${attempt.id}`, {
        type: 'mismatch', provider: f.provider, tradeNo: f.tradeNo, problems: [{ kind: 'double-payment', orderNo: order.order_no }],
      });
      return 'double-payment';
    }

    await trx('payment_attempts')
      .where({ order_id: order.id })
      .whereIn('status', ['pending', 'creating'])
      .whereNot({ id: attempt.id })
      .update({ status: 'superseded', updated_at: trx.fn.now() });
    await trx('payment_attempts')
      .where({ id: attempt.id })
      .update({ status: 'paid', paid_at: trx.fn.now(), gateway_trade_id: f.status.gatewayTradeId ?? attempt.gateway_trade_id, updated_at: trx.fn.now() });
    return settleOrderPayment(this.ctx, trx, after, order, attempt);
  }
}
