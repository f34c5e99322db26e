import type { DeliveryDetail, Shipments } from './shipments';
import type { Db, Knex, Trx } from '../data/db';
import { listAudit, AuditRow } from './audit';
import type { OrderAdjustment } from './order-adjustments';
import { Order, OrderItems, orderItems, OrderLine, OrderStatus, TRANSITIONS } from './orders';
import type { PaymentAttempt } from './payments/types';

/**
 * What the owner reads about orders in the back office: lists, one order in full, the dashboard's
 * figures and the rows of the CSV export. Read-only; the actions are OwnerService's.
 * Days are Taipei days ('YYYY-MM-DD'), as the owner lives them.
 */

export const ORDER_STATUSES = Object.keys(TRANSITIONS) as OrderStatus[];
const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const isDay = (s: string | undefined | null): s is string => !!s && DAY.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));

export interface OrderQuery {
  status?: OrderStatus | null;
  from?: string | null;
  to?: string | null;
  /** Order number, the shopper's display name, or a product's name or SKU. */
  q?: string | null;
  page?: number;
}

export interface OrderListRow extends Order {
  display_name: string | null;
  summary: string | null;
}

export const ORDERS_PER_PAGE = 50;
const likeEscape = (s: string) => s.replace(/[%_\\]/g, '\\$&');

/** Restricts `orders o` to created_at within the Taipei days from..to (both included). */
function inDays(q: Knex.QueryBuilder, from?: string | null, to?: string | null) {
  if (isDay(from)) q.whereRaw("o.created_at >= (?::date)::timestamp AT TIME ZONE 'Asia/Taipei'", [from]);
  if (isDay(to)) q.whereRaw("o.created_at < (?::date + 1)::timestamp AT TIME ZONE 'Asia/Taipei'", [to]);
  return q;
}

export async function listOrders(db: Db | Trx, f: OrderQuery): Promise<{ orders: OrderListRow[]; total: number; page: number; pages: number }> {
  const q = inDays(db('orders as o').leftJoin('line_users as u', 'u.user_id', 'o.line_user_id'), f.from, f.to);
  if (f.status) q.where('o.status', f.status);
  const text = (f.q ?? '').normalize('NFC').trim();
  if (text) {
    const like = `%${likeEscape(text)}%`;
    q.where((w) =>
      w
        .whereRaw('upper(o.order_no) = upper(?)', [text])
        .orWhereILike('o.order_no', like)
        .orWhereILike('u.display_name', like)
        .orWhereExists((e) => e.select(db.raw('1')).from('order_lines as l').whereRaw('l.order_id = o.id').andWhere((x) => x.whereILike('l.name', like).orWhereILike('l.sku', like))),
    );
  }
  const [{ n }] = await q.clone().count<{ n: number }[]>({ n: '*' });
  const total = Number(n);
  const pages = Math.max(1, Math.ceil(total / ORDERS_PER_PAGE));
  const page = Math.min(Math.max(1, f.page ?? 1), pages);
  const orders = await q
    .orderBy('o.id', 'desc')
    .offset((page - 1) * ORDERS_PER_PAGE)
    .limit(ORDERS_PER_PAGE)
    .select(
      'o.*',
      'u.display_name',
      db.raw("(SELECT string_agg(l.name || ' × ' || l.qty, '、' ORDER BY l.id) FROM order_lines l WHERE l.order_id = o.id) AS summary"),
    );
  return { orders: orders as OrderListRow[], total, page, pages };
}

export interface RefundRow {
  id: number;
  amount: number;
  status: 'pending' | 'succeeded' | 'failed';
  requested_by: string;
  created_at: Date;
  outcome: string | null;
}

export interface OrderEventRow {
  id: number;
  from_status: string | null;
  to_status: string;
  reason: string;
  actor: string;
  details: Record<string, unknown> | null;
  created_at: Date;
}

/** Which owner actions an order allows now (the use cases check again under the row lock). */
export interface OrderActions {
  ship: boolean;
  complete: boolean;
  cancel: boolean;
  /** Online refund (ECPay card) with this much left, or null when not possible online. */
  refundable: number | null;
}

export interface OrderDetail {
  order: Order & { carrier: string | null; completed_at: Date | null; closed_at: Date | null };
  shopper: { userId: string; displayName: string | null; following: boolean | null };
  items: OrderItems;
  attempts: PaymentAttempt[];
  refunds: RefundRow[];
  events: OrderEventRow[];
  audit: AuditRow[];
  actions: OrderActions;
  /** Method, recipient (masked phone), store or address, shipments with their status history; null when not read. */
  delivery: DeliveryDetail | null;
}

export async function orderDetail(db: Db | Trx, orderNo: string, shipments?: Shipments): Promise<OrderDetail | null> {
  const order = await db('orders').whereRaw('upper(order_no) = upper(?)', [orderNo]).first();
  if (!order) return null;
  const user = await db('line_users').where({ user_id: order.line_user_id }).first('display_name', 'following');
  const items = await orderItems(db, order.id);
  const attempts = await db('payment_attempts').where({ order_id: order.id }).orderBy('id').select<PaymentAttempt[]>('*');
  const refunds = await db('refunds')
    .where({ order_id: order.id })
    .orderBy('id')
    .select('id', 'amount', 'status', 'requested_by', 'created_at', db.raw("gateway_response->>'outcome' AS outcome"));
  const events = await db('order_events').where({ order_id: order.id }).orderBy('id').select<OrderEventRow[]>('*');
  const audit = await listAudit(db, { targetType: 'order', targetId: order.order_no, limit: 100 });
  // Refundable online: an ECPay card payment, or the wallet (refunded to it at once).
  const paidCard = attempts.find((a) => a.status === 'paid' && (a.method === 'ecpay-credit' || a.method === 'wallet'));
  const committed = refunds.filter((r) => r.status !== 'failed').reduce((s, r) => s + r.amount, 0);
  const refundStatus = ['paid', 'shipped', 'at_store', 'returned', 'completed', 'paid_no_stock'].includes(order.status);
  return {
    order,
    shopper: { userId: order.line_user_id, displayName: user?.display_name ?? null, following: user?.following ?? null },
    items,
    attempts,
    refunds,
    events,
    audit,
    actions: {
      ship: order.status === 'paid',
      complete: order.status === 'shipped' || order.status === 'at_store',
      cancel: order.status === 'pending_payment',
      refundable: paidCard && refundStatus ? Math.max(0, order.paid_amount - committed) : null,
    },
    delivery: shipments ? await shipments.delivery(db, order) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Dashboard

export interface MethodFigures {
  method: string | null;
  orders: number;
  amount: number;
}

export interface PeriodFigures {
  /** Orders placed in the period. */
  placed: number;
  /** Paid in the period, by payment method. */
  byMethod: MethodFigures[];
  paidOrders: number;
  revenue: number;
  refunded: number;
}

export interface Dashboard {
  today: PeriodFigures;
  month: PeriodFigures;
  toShip: { count: number; oldest: Order[] };
  unpaid: { count: number; soonest: Order[] };
}

async function period(db: Db | Trx, unit: 'day' | 'month'): Promise<PeriodFigures> {
  const start = `date_trunc('${unit}', now() AT TIME ZONE 'Asia/Taipei') AT TIME ZONE 'Asia/Taipei'`;
  const [{ placed }] = await db('orders').whereRaw(`created_at >= ${start}`).select(db.raw('count(*)::int AS placed'));
  const byMethod = (await db('orders')
    .whereRaw(`paid_at >= ${start}`)
    .groupBy('payment_method')
    .orderBy('payment_method')
    .select('payment_method as method', db.raw('count(*)::int AS orders'), db.raw('coalesce(sum(paid_amount), 0)::int AS amount'))) as MethodFigures[];
  const [{ refunded }] = await db('refunds').where({ status: 'succeeded' }).whereRaw(`created_at >= ${start}`).select(db.raw('coalesce(sum(amount), 0)::int AS refunded'));
  return {
    placed,
    byMethod,
    paidOrders: byMethod.reduce((s, m) => s + m.orders, 0),
    revenue: byMethod.reduce((s, m) => s + m.amount, 0),
    refunded,
  };
}

export async function dashboard(db: Db | Trx): Promise<Dashboard> {
  const today = await period(db, 'day');
  const month = await period(db, 'month');
  const [{ ship }] = await db('orders').where({ status: 'paid' }).select(db.raw('count(*)::int AS ship'));
  const oldest = await db('orders').where({ status: 'paid' }).orderBy('paid_at').limit(10).select<Order[]>('*');
  const [{ unpaid }] = await db('orders').where({ status: 'pending_payment' }).select(db.raw('count(*)::int AS unpaid'));
  const soonest = await db('orders').where({ status: 'pending_payment' }).orderBy('hold_expires_at').limit(10).select<Order[]>('*');
  return { today, month, toShip: { count: ship, oldest }, unpaid: { count: unpaid, soonest } };
}

// ---------------------------------------------------------------------------------------------
// Export rows (streamed by the caller: a page of orders at a time, never the whole range)

export interface OrderExportRow {
  order: Order & { carrier: string | null };
  displayName: string | null;
  /** A goods line, or a fee / discount of the order. */
  line: { kind: 'goods'; l: OrderLine } | { kind: 'adjustment'; a: OrderAdjustment };
}

const EXPORT_PAGE = 500;

/** Every line of every order placed in the Taipei days from..to, one order page at a time, by order id. */
export async function* orderExportRows(db: Db, f: { from?: string | null; to?: string | null }): AsyncGenerator<OrderExportRow> {
  let after = 0;
  for (;;) {
    const orders = await inDays(db('orders as o').leftJoin('line_users as u', 'u.user_id', 'o.line_user_id'), f.from, f.to)
      .where('o.id', '>', after)
      .orderBy('o.id')
      .limit(EXPORT_PAGE)
      .select('o.*', 'u.display_name');
    if (orders.length === 0) return;
    const ids = orders.map((o: { id: number }) => o.id);
    const lines = await db('order_lines').whereIn('order_id', ids).orderBy(['order_id', 'id']).select<OrderLine[]>('*');
    const adjustments = await db('order_adjustments').whereIn('order_id', ids).orderBy(['order_id', 'id']).select<OrderAdjustment[]>('id', 'order_id', 'kind', 'label', 'amount', 'details');
    const byOrder = new Map<number, OrderExportRow['line'][]>();
    for (const l of lines) (byOrder.get(l.order_id) ?? byOrder.set(l.order_id, []).get(l.order_id)!).push({ kind: 'goods', l });
    for (const a of adjustments) (byOrder.get(a.order_id) ?? byOrder.set(a.order_id, []).get(a.order_id)!).push({ kind: 'adjustment', a });
    for (const o of orders) {
      const { display_name, ...order } = o;
      for (const line of byOrder.get(o.id) ?? []) yield { order, displayName: display_name, line };
    }
    after = orders.at(-1)!.id;
  }
}

export interface ProductExportRow {
  id: number;
  sku: string;
  name: string;
  category_name: string;
  price: number;
  active: boolean;
  stock_on_hand: number;
  stock_reserved: number;
  description: string;
  image_url: string | null;
  image_hash: string | null;
}

export async function* productExportRows(db: Db): AsyncGenerator<ProductExportRow> {
  let after = 0;
  for (;;) {
    const rows = await db('products as p')
      .join('product_stock as s', 's.product_id', 'p.id')
      .join('categories as c', 'c.id', 'p.category_id')
      .leftJoin('product_images as pi', 'pi.id', 'p.image_id')
      .where('p.id', '>', after)
      .orderBy('p.id')
      .limit(EXPORT_PAGE)
      .select('p.id', 'p.sku', 'p.name', 'c.name as category_name', 'p.price', 'p.active', 's.stock_on_hand', 's.stock_reserved', 'p.description', 'p.image_url', 'pi.sha256 as image_hash');
    if (rows.length === 0) return;
    yield* rows as ProductExportRow[];
    after = rows.at(-1)!.id;
  }
}


// ---------------------------------------------------------------------------------------------
// What the owner types into the order page's forms

export const SHIPMENT_LIMITS = { carrier: 40, tracking: 60 } as const;

/** Carrier and tracking number as typed (both optional, as in the chat's 出貨); full-width folded. */
export function parseShipment(rawCarrier: string, rawTracking: string): { ok: true; carrier: string | null; tracking: string | null } | { ok: false; error: 'too-long' | 'invalid' } {
  const carrier = rawCarrier.normalize('NFC').trim().replace(/\s+/g, ' ');
  const tracking = rawTracking.normalize('NFKC').trim().replace(/\s+/g, '').toUpperCase();
  if (carrier.length > SHIPMENT_LIMITS.carrier || tracking.length > SHIPMENT_LIMITS.tracking) return { ok: false, error: 'too-long' };
  if (tracking && !/^[A-Z0-9-]+$/.test(tracking)) return { ok: false, error: 'invalid' };
  return { ok: true, carrier: carrier || null, tracking: tracking || null };
}

/** A refund amount as typed: empty means the whole refundable amount (null), as in the chat's 退款. */
export function parseRefundAmount(raw: string): { ok: true; amount: number | null } | { ok: false } {
  const s = raw.normalize('NFKC').replace(/[,\s]/g, '').replace(/^NT\$/i, '');
  if (!s) return { ok: true, amount: null };
  if (!/^\d{1,7}$/.test(s)) return { ok: false };
  return { ok: true, amount: Number(s) };
}
