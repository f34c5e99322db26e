import type { Db, Trx } from '../data/db';
import type { AfterCommit } from '../data/unit-of-work';
import { Actor, actorName, audit } from './audit';
import { available, productsWithStock, Product, setStockOnHand } from './catalog';
import type { Notifier } from './notices';
import type { OrderEvents } from './order-events';
import { cancelOrder, lockOrder, Order, OrderStatus, transition } from './orders';
import type { RefundRequest } from './payments';
import type { Refunds } from './payments/refunds';
import type { DeliveryOrder, ShipmentRow, Shipments } from './shipments';

export type ShipResult =
  | { kind: 'shipped'; order: Order }
  /** Store pickup: the shipment is being created at ECPay (the owner is pushed the drop-off code). */
  | { kind: 'shipping'; order: Order; shipment: ShipmentRow }
  /** Store pickup: the order already has a live shipment (a second 出貨). */
  | { kind: 'already'; order: Order; shipment: ShipmentRow }
  | { kind: 'no-logistics'; orderNo: string }
  | { kind: 'no-store'; orderNo: string }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'conflict'; orderNo: string; status: OrderStatus };

export type CompleteResult =
  | { kind: 'completed'; order: Order }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'conflict'; orderNo: string; status: OrderStatus };

export type OwnerCancelResult =
  | { kind: 'cancelled'; order: Order }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'conflict'; orderNo: string; status: OrderStatus };

export type StockSetResult =
  | { kind: 'set'; sku: string; productId: number; qty: number; available: number }
  | { kind: 'unknown'; sku: string }
  | { kind: 'below-reserved'; sku: string; reserved: number };

/** Paid orders waiting to be shipped, oldest payment first. */
export interface AwaitingShipment {
  orders: Array<Pick<Order, 'order_no' | 'total' | 'item_count' | 'paid_at'> & { shopper_name: string | null }>;
  /** All of them, also those past the list's limit. */
  count: number;
}

export interface TodayOrders {
  orders: Array<Pick<Order, 'order_no' | 'status' | 'total' | 'created_at'>>;
  paidTotal: number;
}

/**
 * The owner's use cases. The chat commands (line/owner-commands.ts) and the back office
 * (web/admin/) call these same functions; each runs in the caller's transaction, records an audit
 * row and leaves notices to the notifier. The caller checks that the actor is an owner.
 */
export class OwnerService {
  constructor(
    private readonly notifier: Notifier,
    private readonly refunds: Refunds,
    private readonly events: OrderEvents,
    /** LOW_STOCK_THRESHOLD: the owner's low-stock list shows products at or below it. */
    readonly lowStockThreshold = 5,
    /** Shipments (store pickup at ECPay, home delivery records); without it every order ships the home way. */
    private readonly shipments: Shipments | null = null,
  ) {}

  /**
   * Ships a paid order. Store pickup (delivery_method cvs): starts the ECPay shipment (created after
   * commit; the owner gets the drop-off code when ECPay answers) — a second 出貨 finds the live
   * shipment and answers with it. Home delivery and orders without a method: the carrier and
   * tracking number the owner gives, recorded as a shipment too.
   */
  async shipOrder(trx: Trx, after: AfterCommit, actor: Actor, args: { orderNo: string; tracking: string | null; carrier?: string | null }): Promise<ShipResult> {
    const order = (await lockOrder(trx, { order_no: args.orderNo })) as DeliveryOrder | undefined;
    if (!order) return { kind: 'not-found', orderNo: args.orderNo };
    if (order.delivery_method === 'cvs' && this.shipments) {
      const live = await this.shipments.live(trx, order.id);
      if (live) return { kind: 'already', order, shipment: live };
      // A shipped order without a live shipment: its parcel's drop-off window passed; ship it again.
      if (order.status !== 'paid' && order.status !== 'shipped') return { kind: 'conflict', orderNo: args.orderNo, status: order.status };
      const r = await this.shipments.startCvs(trx, after, order);
      if (r.kind === 'no-logistics' || r.kind === 'no-store') return { kind: r.kind, orderNo: order.order_no };
      if (r.kind === 'existing') return { kind: 'already', order, shipment: r.shipment };
      await audit(trx, actor, {
        action: 'order.ship',
        targetType: 'order',
        targetId: order.order_no,
        before: { status: order.status },
        after: { delivery: 'cvs', shipmentId: r.shipment.id, merchantTradeNo: r.shipment.merchant_trade_no, subType: order.delivery_sub_type, storeId: order.store_id },
      });
      return { kind: 'shipping', order, shipment: r.shipment };
    }
    if (order.status !== 'paid') return { kind: 'conflict', orderNo: args.orderNo, status: order.status };
    const patch = { shipped_at: trx.fn.now(), tracking_no: args.tracking, carrier: args.carrier ?? null };
    await transition(trx, order, 'shipped', 'shipped by owner', actorName(actor), patch);
    await this.shipments?.recordHome(trx, order, args.carrier ?? null, args.tracking);
    await audit(trx, actor, {
      action: 'order.ship',
      targetType: 'order',
      targetId: order.order_no,
      before: { status: order.status },
      after: { status: 'shipped', tracking: args.tracking, carrier: args.carrier ?? null },
    });
    await this.notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:shipped`, {
      type: 'shipped',
      orderNo: order.order_no,
      tracking: args.tracking,
      carrier: args.carrier ?? null,
    });
    return { kind: 'shipped', order: { ...order, status: 'shipped', tracking_no: args.tracking } };
  }

  async completeOrder(trx: Trx, after: AfterCommit, actor: Actor, args: { orderNo: string }): Promise<CompleteResult> {
    const order = await lockOrder(trx, { order_no: args.orderNo });
    if (!order) return { kind: 'not-found', orderNo: args.orderNo };
    if (order.status !== 'shipped' && order.status !== 'at_store') return { kind: 'conflict', orderNo: args.orderNo, status: order.status };
    await transition(trx, order, 'completed', 'completed by owner', actorName(actor), { completed_at: trx.fn.now() });
    await audit(trx, actor, { action: 'order.complete', targetType: 'order', targetId: order.order_no, before: { status: order.status }, after: { status: 'completed' } });
    await this.notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:completed`, { type: 'completed', orderNo: order.order_no });
    return { kind: 'completed', order: { ...order, status: 'completed' } };
  }

  /** Cancels an unpaid order on the owner's word; its stock is released as for the shopper's own cancel. */
  async cancelOrder(trx: Trx, after: AfterCommit, actor: Actor, args: { orderNo: string }): Promise<OwnerCancelResult> {
    const r = await cancelOrder(trx, '', args.orderNo, actorName(actor));
    if (r.kind === 'not-found') return { kind: 'not-found', orderNo: args.orderNo };
    if (r.kind === 'not-allowed') return { kind: 'conflict', orderNo: args.orderNo, status: r.order.status };
    await this.events.closed(trx, after, { order: r.order, to: 'cancelled', actor: actorName(actor) });
    await audit(trx, actor, { action: 'order.cancel', targetType: 'order', targetId: args.orderNo, before: { status: 'pending_payment' }, after: { status: 'cancelled' } });
    return { kind: 'cancelled', order: r.order };
  }

  async requestRefund(trx: Trx, after: AfterCommit, actor: Actor, args: { orderNo: string; amount: number | null }): Promise<RefundRequest> {
    const r = await this.refunds.request(trx, { orderNo: args.orderNo, amount: args.amount, requestedBy: actorName(actor) }, after);
    if (r.kind === 'requested') {
      await audit(trx, actor, { action: 'refund.request', targetType: 'order', targetId: args.orderNo, after: { refundId: r.refundId, amount: r.amount, method: r.method } });
    }
    return r;
  }

  /**
   * Sets a product's stock on hand (by SKU or id); never below what unpaid orders hold (the
   * database refuses too). The reason is kept in the audit log.
   */
  async setStock(trx: Trx, actor: Actor, args: { sku?: string; productId?: number; qty: number; reason?: string | null }): Promise<StockSetResult> {
    // Product row first, then its slots (stock_set): the order a product DELETE takes them in too.
    const q = trx('products').forUpdate();
    if (args.productId !== undefined) q.where({ id: args.productId });
    else q.whereRaw('upper(sku) = ?', [(args.sku ?? '').toUpperCase()]);
    const p = await q.first('id', 'sku');
    if (!p) return { kind: 'unknown', sku: args.sku ?? String(args.productId) };
    const before = await productsWithStock(trx).where('p.id', p.id).first<Product>();
    const r = await setStockOnHand(trx, p.id, args.qty);
    if (!r.ok) return { kind: 'below-reserved', sku: p.sku, reserved: r.reserved };
    await trx('products').where({ id: p.id }).update({ updated_at: trx.fn.now() });
    await audit(trx, actor, {
      action: 'stock.set',
      targetType: 'product',
      targetId: p.id,
      before: { sku: p.sku, onHand: before!.stock_on_hand, reserved: before!.stock_reserved },
      after: { sku: p.sku, onHand: args.qty, reserved: r.reserved },
      reason: args.reason ?? null,
    });
    return { kind: 'set', sku: p.sku, productId: p.id, qty: args.qty, available: args.qty - r.reserved };
  }

  async todayOrders(trx: Trx): Promise<TodayOrders> {
    const orders = await trx('orders')
      .whereRaw("created_at >= date_trunc('day', now() AT TIME ZONE 'Asia/Taipei') AT TIME ZONE 'Asia/Taipei'")
      .orderBy('id')
      .select('order_no', 'status', 'total', 'created_at');
    const paidTotal = orders.filter((r) => ['paid', 'shipped', 'at_store', 'returned', 'completed'].includes(r.status)).reduce((s, r) => s + r.total, 0);
    return { orders, paidTotal };
  }

  /** Paid orders not shipped yet, oldest payment first (the owner's 待出貨). */
  async awaitingShipment(trx: Trx, limit = 30): Promise<AwaitingShipment> {
    const orders = await trx('orders as o')
      .leftJoin('line_users as u', 'u.user_id', 'o.line_user_id')
      .where('o.status', 'paid')
      .orderBy([{ column: 'o.paid_at' }, { column: 'o.id' }])
      .limit(limit)
      .select('o.order_no', 'o.total', 'o.item_count', 'o.paid_at', 'u.display_name as shopper_name');
    const [{ n }] = await trx('orders').where('status', 'paid').count<{ n: number }[]>({ n: '*' });
    return { orders, count: Number(n) };
  }

  /** Active products whose available units are at or below the threshold, fewest first. */
  async lowStock(trx: Db | Trx, threshold = this.lowStockThreshold): Promise<Array<Product & { available: number }>> {
    const rows = await productsWithStock(trx)
      .where('p.active', true)
      .whereRaw('s.stock_on_hand - s.stock_reserved <= ?', [threshold])
      .orderByRaw('s.stock_on_hand - s.stock_reserved, p.id');
    return (rows as Product[]).map((r) => ({ ...r, available: available(r) }));
  }
}
