import type { Db, Trx } from '../data/db';

/** One Taipei calendar day of the shop, as the owner's daily summary reports it. */
export interface DailyFigures {
  /** YYYY-MM-DD in Asia/Taipei. */
  date: string;
  /** Orders placed that day (whatever became of them). */
  orders: number;
  /** Orders paid that day (money received, whenever they were placed). */
  paid: number;
  /** Money received that day: the paid amounts of the orders paid that day (refunds are not subtracted). */
  amount: number;
  /** The same money by payment method, largest first. */
  byMethod: Array<{ method: string; orders: number; amount: number }>;
  /** The 3 products sold most that day (units of the orders paid that day), then by takings. */
  topProducts: Array<{ productId: number; name: string; qty: number; amount: number }>;
  /** Active products at or below the threshold now, fewest first (at most 10), and how many there are. */
  lowStock: Array<{ id: number; sku: string; name: string; available: number }>;
  lowStockCount: number;
  threshold: number;
  /** Messages delivered as pushes (LINE counts them against the monthly quota; replies are free). */
  pushesToday: number;
  pushesThisMonth: number;
}

export const LOW_STOCK_LIST_MAX = 10;

/**
 * The day's figures in one SQL statement (so they are one consistent snapshot): the given Taipei
 * date, or today's.
 */
export async function dailyFigures(db: Db | Trx, threshold: number, date?: string): Promise<DailyFigures> {
  const { rows } = await db.raw<{ rows: Array<Record<string, unknown>> }>(
    `WITH b AS (
       SELECT d AS day,
              d::timestamp AT TIME ZONE 'Asia/Taipei' AS start,
              (d + 1)::timestamp AT TIME ZONE 'Asia/Taipei' AS stop,
              date_trunc('month', d::timestamp) AT TIME ZONE 'Asia/Taipei' AS month_start
         FROM (SELECT coalesce(?::date, (now() AT TIME ZONE 'Asia/Taipei')::date) AS d) x
     ), paid AS (
       SELECT o.id, o.payment_method, o.paid_amount FROM orders o, b WHERE o.paid_at >= b.start AND o.paid_at < b.stop
     ), low AS (
       SELECT p.id, p.sku, p.name, s.stock_on_hand - s.stock_reserved AS available
         FROM products p JOIN product_stock s ON s.product_id = p.id
        WHERE p.active AND s.stock_on_hand - s.stock_reserved <= ?
     )
     SELECT to_char(b.day, 'YYYY-MM-DD') AS date,
            (SELECT count(*) FROM orders o WHERE o.created_at >= b.start AND o.created_at < b.stop)::int AS orders,
            (SELECT count(*) FROM paid)::int AS paid,
            (SELECT coalesce(sum(paid_amount), 0) FROM paid)::int AS amount,
            coalesce((SELECT json_agg(m ORDER BY m.amount DESC, m.method)
                        FROM (SELECT payment_method AS method, count(*)::int AS orders, sum(paid_amount)::int AS amount
                                FROM paid GROUP BY payment_method) m), '[]') AS by_method,
            coalesce((SELECT json_agg(t ORDER BY t.qty DESC, t.amount DESC, t."productId")
                        FROM (SELECT l.product_id AS "productId", (array_agg(l.name ORDER BY l.id DESC))[1] AS name,
                                     sum(l.qty)::int AS qty, sum(l.line_total)::int AS amount
                                FROM order_lines l JOIN paid ON paid.id = l.order_id
                               GROUP BY l.product_id
                               ORDER BY 3 DESC, 4 DESC, 1
                               LIMIT 3) t), '[]') AS top_products,
            coalesce((SELECT json_agg(x ORDER BY x.available, x.id)
                        FROM (SELECT * FROM low ORDER BY available, id LIMIT ${LOW_STOCK_LIST_MAX}) x), '[]') AS low_stock,
            (SELECT count(*) FROM low)::int AS low_stock_count,
            (SELECT count(*) FROM outbox_messages
              WHERE delivered_via = 'push' AND sent_at >= b.start AND sent_at < b.stop)::int AS pushes_today,
            (SELECT count(*) FROM outbox_messages
              WHERE delivered_via = 'push' AND sent_at >= b.month_start AND sent_at < b.stop)::int AS pushes_this_month
       FROM b`,
    [date ?? null, threshold],
  );
  const r = rows[0]!;
  return {
    date: r.date as string,
    orders: r.orders as number,
    paid: r.paid as number,
    amount: r.amount as number,
    byMethod: r.by_method as DailyFigures['byMethod'],
    topProducts: r.top_products as DailyFigures['topProducts'],
    lowStock: r.low_stock as DailyFigures['lowStock'],
    lowStockCount: r.low_stock_count as number,
    threshold,
    pushesToday: r.pushes_today as number,
    pushesThisMonth: r.pushes_this_month as number,
  };
}
