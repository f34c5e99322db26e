import type { messagingApi } from '@line/bot-sdk';
import type { Config } from '../config';
import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import type { MismatchProblem, Notifier, OwnerNotice, ShopperNotice } from '../domain/notices';
import { METHOD_LABEL, MISMATCH, T } from '../texts';
import { addOutboxMessage } from './delivery';
import * as V from './views';

type Message = messagingApi.Message;

/** The domain's notices as LINE messages, written to the outbox in the caller's transaction. */
export class LineNotifier implements Notifier {
  constructor(private readonly config: Config) {}

  async shopper(trx: Trx, after: AfterCommit, userId: string, dedupeKey: string, notice: ShopperNotice): Promise<void> {
    const id = await addOutboxMessage(trx, { recipient: userId, messages: renderShopperNotice(notice), kind: 'notify-shopper', dedupeKey });
    if (id !== null) after.outboxIds.push(id);
  }

  async owners(trx: Trx, after: AfterCommit, dedupeKey: string, notice: OwnerNotice): Promise<void> {
    const messages = renderOwnerNotice(notice);
    for (const owner of this.config.ownerLineUserIds) {
      const id = await addOutboxMessage(trx, { recipient: owner, messages, kind: 'notify-owner', dedupeKey: `${dedupeKey}:${owner}` });
      if (id !== null) after.outboxIds.push(id);
    }
  }
}

export function renderShopperNotice(n: ShopperNotice): Message[] {
  switch (n.type) {
    case 'payment-instructions':
      return [V.paymentInstructionsMessage(n.instructions)];
    case 'payment-failed':
      return [V.text(T.paymentFailedShopper(n.order.order_no)), V.orderDetailMessage(n.order, n.items, n.methods)];
    case 'code-issue-failed':
      return [V.text(T.codeIssueFailedShopper(n.order.order_no, METHOD_LABEL[n.method] ?? n.method)), V.orderDetailMessage(n.order, n.items, n.methods)];
    case 'receipt':
      return [V.receiptMessage(n.order, n.items, n.method, n.late)];
    case 'paid-no-stock':
      return [V.text(T.paidNoStockShopper(n.orderNo))];
    case 'refunded':
      return [V.text(T.refundShopper(n.orderNo, n.amount))];
    case 'shipped':
      return [V.text(T.shippedShopper(n.orderNo, n.tracking))];
    case 'completed':
      return [V.text(T.completedShopper(n.orderNo))];
    case 'expired':
      return [V.text(T.expiredNotice(n.orderNo))];
  }
}

export function mismatchText(p: MismatchProblem): string {
  switch (p.kind) {
    case 'bank-verify-failed':
      return MISMATCH.bankVerifyFailed(p.code);
    case 'unknown-trade':
      return MISMATCH.unknownTrade;
    case 'merchant':
      return MISMATCH.merchant;
    case 'amount':
      return MISMATCH.amount(p.bank, p.ours);
    case 'pay-type':
      return MISMATCH.payType;
    case 'double-payment':
      return MISMATCH.doublePayment(p.orderNo);
    case 'callback-amount':
      return MISMATCH.callbackAmount(p.got, p.ours);
  }
}

export function renderOwnerNotice(n: OwnerNotice): Message[] {
  switch (n.type) {
    case 'paid':
      return [V.ownerPaidMessage(n.order, n.items, n.method, n.late ? [T.lateRereserved] : [])];
    case 'paid-no-stock':
      return [V.text(T.ownerPaidNoStock(n.orderNo, n.amount))];
    case 'mismatch':
      return [V.text(T.ownerMismatch(n.provider, n.tradeNo, n.problems.map(mismatchText).join('、')))];
    case 'simulated':
      return [V.text(T.ownerSimulated(n.tradeNo))];
    case 'bad-expire-date':
      return [V.text(T.ownerBadExpireDate(n.orderNo, n.tradeNo, n.got, n.hold))];
    case 'bank-paused':
      return [V.text(T.ownerBankPaused(n.until))];
    case 'refund-done':
      return [V.text(T.ownerRefundDone(n.orderNo, n.amount, n.total))];
    case 'refund-failed':
      return [V.text(T.ownerRefundFailed)];
    case 'refund-unknown':
      return [V.text(T.ownerRefundUnknown(n.orderNo, n.amount))];
    case 'refund-unreachable':
      return [V.text(T.ownerRefundUnreachable(n.orderNo, n.amount))];
    case 'daily-summary':
      return [V.text(T.ownerDailySummary(n.date, n.orders, n.paid, n.amount))];
  }
}
