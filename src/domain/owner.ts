import type { messagingApi } from '@line/bot-sdk';
import type { Config } from '../config';
import type { Trx } from '../data/db';
import type { Command } from '../line/command-parser';
import type { AfterCommit } from '../line/bot';
import { text } from '../line/views';
import { lowStockLine, STATUS_LABEL, T, taipeiTime, twd } from '../texts';
import { available, productsWithStock, setStockOnHand } from './catalog';
import { notifyShopper } from './notifications';
import { lockOrder, transition } from './orders';
import type { PaymentService } from './payments';

type Message = messagingApi.Message;

export const LOW_STOCK_THRESHOLD = 5;

/** Shop-owner commands (only for SHOP_OWNER_LINE_USER_IDS; the bot checks before calling). */
export class OwnerService {
  constructor(
    private readonly config: Config,
    private readonly payments: () => PaymentService,
  ) {}

  async handle(trx: Trx, ownerId: string, cmd: Command, after: AfterCommit): Promise<Message[]> {
    switch (cmd.kind) {
      case 'owner-today':
        return [text(await this.today(trx))];
      case 'owner-ship':
        return this.ship(trx, ownerId, cmd.orderNo, cmd.tracking, after);
      case 'owner-complete':
        return this.complete(trx, ownerId, cmd.orderNo, after);
      case 'owner-stock-list':
        return [text(await this.lowStock(trx))];
      case 'owner-stock-set':
        return [text(await this.setStock(trx, cmd.sku, cmd.qty))];
      case 'owner-refund':
        return this.payments().refundByOwner(trx, ownerId, cmd.orderNo, cmd.amount, after);
      case 'owner-usage':
        return [text(cmd.which === 'ship' ? T.ownerShipUsage : cmd.which === 'stock' ? T.ownerStockUsage : T.ownerRefundUsage)];
      default:
        return [text(T.unknown)];
    }
  }

  async today(trx: Trx): Promise<string> {
    const rows = await trx('orders')
      .whereRaw("created_at >= date_trunc('day', now() AT TIME ZONE 'Asia/Taipei') AT TIME ZONE 'Asia/Taipei'")
      .orderBy('id')
      .select('order_no', 'status', 'total', 'created_at');
    if (rows.length === 0) return T.ownerTodayEmpty;
    const paid = rows.filter((r) => ['paid', 'shipped', 'completed'].includes(r.status)).reduce((s, r) => s + r.total, 0);
    const lines = rows.slice(-30).map((r) => `${r.order_no} ${STATUS_LABEL[r.status] ?? r.status} ${twd(r.total)} ${taipeiTime(r.created_at).slice(11)}`);
    return [T.ownerTodayTitle(rows.length, paid), ...lines].join('\n');
  }

  private async ship(trx: Trx, ownerId: string, orderNo: string, tracking: string | null, after: AfterCommit): Promise<Message[]> {
    const order = await lockOrder(trx, { order_no: orderNo });
    if (!order) return [text(T.orderUnknown(orderNo))];
    if (order.status !== 'paid') return [text(T.ownerStatusConflict(orderNo, STATUS_LABEL[order.status] ?? order.status))];
    await transition(trx, order, 'shipped', 'shipped by owner', `owner:${ownerId}`, { shipped_at: trx.fn.now(), tracking_no: tracking });
    await notifyShopper(trx, after, order.line_user_id, `order:${order.id}:shipped`, [text(T.shippedShopper(orderNo, tracking))]);
    return [text(T.ownerShipped(orderNo))];
  }

  private async complete(trx: Trx, ownerId: string, orderNo: string, after: AfterCommit): Promise<Message[]> {
    const order = await lockOrder(trx, { order_no: orderNo });
    if (!order) return [text(T.orderUnknown(orderNo))];
    if (order.status !== 'shipped') return [text(T.ownerStatusConflict(orderNo, STATUS_LABEL[order.status] ?? order.status))];
    await transition(trx, order, 'completed', 'completed by owner', `owner:${ownerId}`, { completed_at: trx.fn.now() });
    await notifyShopper(trx, after, order.line_user_id, `order:${order.id}:completed`, [text(T.completedShopper(orderNo))]);
    return [text(T.ownerCompleted(orderNo))];
  }

  async lowStock(trx: Trx): Promise<string> {
    const rows = await productsWithStock(trx)
      .where('p.active', true)
      .whereRaw('s.stock_on_hand - s.stock_reserved <= ?', [LOW_STOCK_THRESHOLD])
      .orderByRaw('s.stock_on_hand - s.stock_reserved, p.id');
    if (rows.length === 0) return T.ownerLowStockEmpty;
    return [T.ownerLowStockTitle, ...rows.map((r) => lowStockLine(r.sku, r.name, available(r), r.stock_on_hand, r.stock_reserved))].join('\n');
  }

  /** Sets stock on hand; never below what is reserved by unpaid orders (the DB also refuses). */
  private async setStock(trx: Trx, sku: string, qty: number): Promise<string> {
    // Product row first, then its slots (stock_set): the order a product DELETE takes them in too.
    const p = await trx('products').whereRaw('upper(sku) = ?', [sku]).forUpdate().first('id', 'sku');
    if (!p) return T.productUnknown(sku);
    const r = await setStockOnHand(trx, p.id, qty);
    if (!r.ok) return T.ownerStockBelowReserved(p.sku, r.reserved);
    await trx('products').where({ id: p.id }).update({ updated_at: trx.fn.now() });
    return T.ownerStockSet(p.sku, qty, qty - r.reserved);
  }
}
