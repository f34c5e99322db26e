import type { messagingApi } from '@line/bot-sdk';
import type { Config } from '../config';
import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import { MemberChargeReceipt, MismatchProblem, Notifier, OwnerNotice, ownerNoticeKind, ShipmentCreatedInfo, ShipmentFailure, ShopperNotice } from '../domain/notices';
import { CHAIN_OF, isCvsSubType, type CvsSubType } from '../gateways/ecpay-logistics/sub-types';
import { CVS_CHAIN_NAME, DELIVERY_TEXT, M, METHOD_LABEL, MISMATCH, SHIPMENT, STORE_CHANGE, T, taipeiTime } from '../texts';
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
    // OWNER_NOTIFY: a kind switched off is not written at all (no row, no push, no quota).
    const kind = ownerNoticeKind(notice);
    if (kind && !this.config.ownerNotify.includes(kind)) return;
    if (this.config.ownerLineUserIds.length === 0) return;
    const messages = renderOwnerNotice(notice, { order: (orderNo) => adminOrderUrl(this.config.publicBaseUrl, orderNo) });
    for (const owner of this.config.ownerLineUserIds) {
      const id = await addOutboxMessage(trx, { recipient: owner, messages, kind: 'notify-owner', dedupeKey: `${dedupeKey}:${owner}` });
      if (id !== null) after.outboxIds.push(id);
    }
  }
}

/** Where the owner's pushes link to: the back office's page of an order. */
export interface OwnerLinks {
  order(orderNo: string): string | null;
}

export const adminOrderUrl = (publicBaseUrl: string, orderNo: string) => `${publicBaseUrl}/admin/orders/${encodeURIComponent(orderNo)}`;

export function renderShopperNotice(n: ShopperNotice): Message[] {
  switch (n.type) {
    case 'payment-instructions':
      return [V.paymentInstructionsMessage(n.instructions)];
    case 'payment-failed':
      return [V.text(T.paymentFailedShopper(n.order.order_no)), V.orderDetailMessage(n.order, n.items, n.methods)];
    case 'code-issue-failed':
      return [V.text(T.codeIssueFailedShopper(n.order.order_no, METHOD_LABEL[n.method] ?? n.method)), V.orderDetailMessage(n.order, n.items, n.methods)];
    case 'receipt':
      return [V.receiptMessage(n.order, n.items, n.method, n.late, n.pointsEarned)];
    case 'paid-no-stock':
      return [V.text(T.paidNoStockShopper(n.orderNo))];
    case 'refunded':
      return [V.refundedMessage(n.orderNo, n.amount, n.method, n.full, n.walletBalance)];
    case 'shipped':
      return [V.shippedMessage(n.orderNo, n.tracking, n.carrier)];
    case 'completed':
      return [V.completedMessage(n.orderNo)];
    case 'arrived':
      return [V.arrivedMessage(n.orderNo, n.storeName, n.storeAddress, n.pickupDeadline)];
    case 'returned':
      return [V.returnedMessage(n.orderNo)];
    case 'expired':
      return [V.text(T.expiredNotice(n.orderNo))];
    case 'payment-reminder':
      return [V.paymentReminderMessage(n.order, n.instructions, n.methods)];
    case 'topup-instructions':
      return [V.topupInstructionsMessage(n.instructions)];
    case 'topup-failed':
      return [V.text(M.topupFailed(n.topup.amount)), V.topupMessage(n.topup, n.methods)];
    case 'topup-credited':
      return [V.text(M.topupCredited(n.amount, n.balance))];
    case 'member-charge':
      return [V.text(M.chargeShopper(n.receipt))];
    case 'delivery-ready':
      return [V.deliveryReadyMessage(n.order, n.items, n.delivery, n.methods, n.storeChosen)];
    case 'delivery-store':
      return [V.text(`${DELIVERY_TEXT.storeChosen(n.chain, n.storeName, n.storeAddress)}\n${DELIVERY_TEXT.storeChosenNext}`)];
    case 'store-closed':
      return [V.storeClosedShopperMessage(n.orderNo, chainName(n.subType), n.storeName, n.url, n.expiresAt)];
    case 'store-changed':
      return [V.text(STORE_CHANGE.changedShopper(n.orderNo, chainName(n.subType), n.storeName, n.storeAddress))];
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

export function renderOwnerNotice(n: OwnerNotice, links: OwnerLinks): Message[] {
  switch (n.type) {
    case 'new-order':
      return [V.ownerNewOrderMessage(n.order, n.items, n.shopperName, links.order(n.order.order_no))];
    case 'order-closed':
      return [V.ownerOrderClosedMessage(n.order, n.to, n.by, links.order(n.order.order_no))];
    case 'low-stock':
      return [V.ownerLowStockMessage(n.product, n.available, n.threshold)];
    case 'sold-out':
      return [V.ownerSoldOutMessage(n.product)];
    case 'paid':
      return [V.ownerPaidMessage(n.order, n.items, n.method, n.late ? [T.lateRereserved] : [], links.order(n.order.order_no))];
    case 'paid-no-stock':
      return [V.ownerAlertMessage(T.ownerAlertTitle, T.ownerPaidNoStock(n.orderNo, n.amount), links.order(n.orderNo), 'bad')];
    case 'mismatch':
      return [V.ownerAlertMessage(T.ownerAlertTitle, T.ownerMismatch(n.provider, n.tradeNo, n.problems.map(mismatchText).join('、')), null, 'bad')];
    case 'simulated':
      return [V.ownerAlertMessage(T.ownerAlertTitle, T.ownerSimulated(n.tradeNo), null)];
    case 'bad-expire-date':
      return [V.ownerAlertMessage(T.ownerAlertTitle, T.ownerBadExpireDate(n.orderNo, n.tradeNo, n.got, n.hold), links.order(n.orderNo))];
    case 'bank-paused':
      return [V.ownerAlertMessage(T.ownerAlertTitle, T.ownerBankPaused(n.until), null)];
    case 'refund-done':
      return [V.ownerAlertMessage(T.ownerRefundTitle, T.ownerRefundDone(n.orderNo, n.amount, n.total), links.order(n.orderNo), 'good')];
    case 'refund-failed':
      return [V.ownerAlertMessage(T.ownerRefundTitle, T.ownerRefundFailed, links.order(n.orderNo), 'bad')];
    case 'refund-unknown':
      return [V.ownerAlertMessage(T.ownerRefundTitle, T.ownerRefundUnknown(n.orderNo, n.amount), links.order(n.orderNo), 'bad')];
    case 'refund-unreachable':
      return [V.ownerAlertMessage(T.ownerRefundTitle, T.ownerRefundUnreachable(n.orderNo, n.amount), links.order(n.orderNo), 'bad')];
    case 'daily-summary': {
      const m = n.members;
      const members = m && (m.topups > 0 || m.pointsGranted > 0) ? M.dailySummaryMembers(m.topups, m.topupAmount, m.pointsGranted) : null;
      return [V.dailySummaryMessage(n.figures, n.quota, members)];
    }
    case 'points-shortfall':
      return [V.ownerAlertMessage(T.ownerAlertTitle, M.ownerPointsShortfall(n.orderNo, n.due, n.taken), links.order(n.orderNo))];
    // The members' in-store receipts stay text: the same text answers the owner's 收款 in the chat.
    case 'member-charge':
      return [V.text(chargeOwnerText(n.receipt))];
    case 'pos-rejected':
      return [V.text(M.ownerPosRejected(n.deviceId, n.entries.slice(0, 50).map((e) => M.posRejectedLine(e.txnNo, e.amount, e.reason))))];
    case 'shipment-created':
      return [V.ownerShipmentCreatedMessage(shipmentCreatedText(n.shipment), n.shipment.dropOffCode, links.order(n.shipment.orderNo))];
    case 'shipment-failed':
      return [V.ownerAlertMessage(SHIPMENT.failedTitle, SHIPMENT.failed(n.orderNo, failureText(n.reason, n.message)), links.order(n.orderNo), 'bad')];
    case 'shipment-unknown':
      return [V.ownerAlertMessage(SHIPMENT.unknownTitle, SHIPMENT.unknown(n.orderNo), links.order(n.orderNo))];
    case 'parcel-returned':
      return [V.ownerAlertMessage(SHIPMENT.returnedOwnerTitle, SHIPMENT.returnedOwner(n.orderNo, n.storeName), links.order(n.orderNo), 'bad')];
    case 'store-closed':
      return [V.ownerAlertMessage(SHIPMENT.storeClosedTitle, (n.shopperAsked ? SHIPMENT.storeClosedAsked : SHIPMENT.storeClosed)(n.orderNo, n.storeName), links.order(n.orderNo), 'bad')];
    case 'store-changed':
      return [V.ownerAlertMessage(SHIPMENT.storeChangedOwnerTitle, SHIPMENT.storeChangedOwner(n.orderNo, n.oldStoreName, n.storeName, n.storeAddress), links.order(n.orderNo), 'good')];
    case 'shipment-problem':
      return [V.ownerAlertMessage(SHIPMENT.problemTitle, SHIPMENT.problem(n.orderNo, n.code, n.message), links.order(n.orderNo), 'bad')];
  }
}

/** The chain of a sub-type as shoppers know it (7-ELEVEN, 全家…). */
export function chainName(subType: string | null | undefined): string {
  return isCvsSubType(subType ?? '') ? CVS_CHAIN_NAME[CHAIN_OF[subType as CvsSubType]] : (subType ?? '');
}

/** The owner's drop-off instructions (the push after 出貨, and the back office). */
export function shipmentCreatedText(s: ShipmentCreatedInfo): string {
  return SHIPMENT.created({
    orderNo: s.orderNo,
    chain: chainName(s.subType),
    store: s.storeName,
    shipmentNo: s.shipmentNo,
    validationNo: s.validationNo,
    code: s.dropOffCode,
    deadline: taipeiTime(s.dropOffBy).slice(0, 10),
  });
}

/** Why ECPay refused a shipment, in the owner's words. */
export function failureText(reason: ShipmentFailure, message: string): string {
  switch (reason) {
    case 'store':
      return SHIPMENT.reasonStore;
    case 'mac':
      return SHIPMENT.reasonMac;
    case 'recipient':
      return SHIPMENT.reasonRecipient;
    case 'expired':
      return SHIPMENT.reasonExpired;
    case 'other':
      return SHIPMENT.reasonOther(message);
  }
}

/** The owner's receipt of an in-store charge (the push, and the reply to 收款). */
export function chargeOwnerText(r: MemberChargeReceipt): string {
  return M.chargeOwner({ ...r, who: r.displayName ?? M.memberFallbackName });
}
