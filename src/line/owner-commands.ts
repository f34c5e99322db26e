import type { messagingApi } from '@line/bot-sdk';
import type { Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import type { Actor } from '../domain/audit';
import type { OwnerService, ShipResult } from '../domain/owner';
import { shipmentDropOffCode } from '../domain/shipments';
import type { ChargeResult, Members } from '../domain/members';
import type { OwnerAccess } from '../domain/owner-access';
import type { RefundRequest } from '../domain/payments';
import { lowStockLine, M, METHOD_LABEL, SHIPMENT, STATUS_LABEL, T, taipeiTime, twd } from '../texts';
import type { Command } from './command-parser';
import { chargeOwnerText } from './notifier';
import { adminLoginMessage, text } from './views';

type Message = messagingApi.Message;

const status = (s: string) => STATUS_LABEL[s] ?? s;

/** What `後台` needs: the login-token use case and where the back office is published. */
export interface BackOfficeLink {
  access: OwnerAccess;
  publicBaseUrl: string;
}

/** The owner's chat commands: each calls the owner use case the back office calls too, and renders its result. */
export async function handleOwnerCommand(owner: OwnerService, trx: Trx, after: AfterCommit, userId: string, cmd: Command, backOffice?: BackOfficeLink, members?: Members): Promise<Message[]> {
  const actor: Actor = { userId, source: 'line' };
  switch (cmd.kind) {
    case 'owner-admin': {
      const r = backOffice ? await backOffice.access.issueLoginToken(trx, actor) : { kind: 'not-owner' as const };
      if (r.kind !== 'issued') return [text(T.adminRefused)];
      return [adminLoginMessage(`${backOffice!.publicBaseUrl}/admin/login/${r.token}`, r.expiresAt)];
    }
    case 'owner-today': {
      const t = await owner.todayOrders(trx);
      if (t.orders.length === 0) return [text(T.ownerTodayEmpty)];
      const lines = t.orders.slice(-30).map((r) => `${r.order_no} ${status(r.status)} ${twd(r.total)} ${taipeiTime(r.created_at).slice(11)}`);
      return [text([T.ownerTodayTitle(t.orders.length, t.paidTotal), ...lines].join('\n'))];
    }
    case 'owner-to-ship': {
      const r = await owner.awaitingShipment(trx);
      if (r.count === 0) return [text(T.ownerToShipEmpty)];
      const lines = r.orders.map((o) =>
        [o.order_no, twd(o.total), T.itemCount(o.item_count), o.paid_at ? taipeiTime(o.paid_at) : '', o.shopper_name ?? ''].filter(Boolean).join(' '),
      );
      if (r.count > r.orders.length) lines.push(T.ownerToShipMore(r.count - r.orders.length));
      return [text([T.ownerToShipTitle(r.count), ...lines, '', T.ownerToShipHint].join('\n'))];
    }
    case 'owner-ship': {
      return [text(shipText(await owner.shipOrder(trx, after, actor, { orderNo: cmd.orderNo, tracking: cmd.tracking })))];
    }
    case 'owner-complete': {
      const r = await owner.completeOrder(trx, after, actor, { orderNo: cmd.orderNo });
      if (r.kind === 'not-found') return [text(T.orderUnknown(r.orderNo))];
      if (r.kind === 'conflict') return [text(T.ownerStatusConflict(r.orderNo, status(r.status)))];
      return [text(T.ownerCompleted(r.order.order_no))];
    }
    case 'owner-stock-list': {
      const rows = await owner.lowStock(trx);
      if (rows.length === 0) return [text(T.ownerLowStockEmpty)];
      return [text([T.ownerLowStockTitle(owner.lowStockThreshold), ...rows.map((r) => lowStockLine(r.sku, r.name, r.available, r.stock_on_hand, r.stock_reserved))].join('\n'))];
    }
    case 'owner-stock-set': {
      const r = await owner.setStock(trx, actor, { sku: cmd.sku, qty: cmd.qty, reason: T.stockReasonChat });
      if (r.kind === 'unknown') return [text(T.productUnknown(r.sku))];
      if (r.kind === 'below-reserved') return [text(T.ownerStockBelowReserved(r.sku, r.reserved))];
      return [text(T.ownerStockSet(r.sku, r.qty, r.available))];
    }
    case 'owner-refund':
      return [text(refundText(await owner.requestRefund(trx, after, actor, { orderNo: cmd.orderNo, amount: cmd.amount })))];
    case 'owner-charge':
      if (!members) return [text(T.unknown)];
      return [text(chargeText(await members.codes.charge(trx, after, actor, { code: cmd.code, amount: cmd.amount })))];
    case 'owner-usage':
      return [text(USAGE[cmd.which])];
    default:
      return [text(T.unknown)];
  }
}

/** What 出貨 came to, in the owner's words (chat and back office alike). */
export function shipText(r: ShipResult): string {
  switch (r.kind) {
    case 'not-found':
      return T.orderUnknown(r.orderNo);
    case 'conflict':
      return T.ownerStatusConflict(r.orderNo, status(r.status));
    case 'shipped':
      return T.ownerShipped(r.order.order_no);
    case 'shipping':
      return SHIPMENT.creating(r.order.order_no);
    case 'already': {
      const code = shipmentDropOffCode(r.shipment);
      return code ? SHIPMENT.alreadyCreated(r.order.order_no, code) : SHIPMENT.alreadyCreating(r.order.order_no);
    }
    case 'no-logistics':
      return SHIPMENT.noLogistics(r.orderNo);
    case 'no-store':
      return SHIPMENT.noStore(r.orderNo);
  }
}

/** What a refund request came to, in the owner's words (chat and back office alike). */
export function refundText(r: RefundRequest): string {
  switch (r.kind) {
    case 'not-found':
      return T.orderUnknown(r.orderNo);
    case 'not-paid':
      return T.ownerRefundNotPaid(r.orderNo, status(r.status));
    case 'not-card':
      return T.ownerRefundNotCard;
    case 'too-much':
      return T.ownerRefundTooMuch(r.orderNo, r.refundable);
    case 'requested':
      return T.ownerRefundRequested(r.orderNo, METHOD_LABEL[r.method] ?? r.method, r.amount);
    case 'refunded-to-wallet':
      return M.ownerRefundedToWallet(r.orderNo, r.amount, r.balance);
  }
}

const USAGE = { ship: T.ownerShipUsage, stock: T.ownerStockUsage, refund: T.ownerRefundUsage, charge: M.ownerChargeUsage } as const;

/** What charging a member code came to, in the owner's words (chat and back office alike). */
export function chargeText(r: ChargeResult): string {
  switch (r.kind) {
    case 'charged':
      return chargeOwnerText(r.receipt);
    case 'unknown':
      return M.ownerChargeUnknown;
    case 'used':
      return M.ownerChargeUsed;
    case 'replaced':
      return M.ownerChargeReplaced;
    case 'expired':
      return M.ownerChargeExpired;
    case 'invalid-amount':
      return M.ownerChargeInvalidAmount;
    case 'insufficient':
      return M.ownerChargeInsufficient(r.balance, r.due);
  }
}
