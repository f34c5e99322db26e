import type { Db, Trx } from '../data/db';

export interface DailyFigures {
  /** YYYY-MM-DD in Asia/Taipei. */
  date: string;
  orders: number;
  paid: number;
  amount: number;
}

/** Today's (Taipei) orders, how many were paid and what they brought in. */
export async function dailyFigures(db: Db | Trx): Promise<DailyFigures> {
  const day = await db.raw<{ rows: Array<{ d: string }> }>("SELECT to_char(now() AT TIME ZONE 'Asia/Taipei', 'YYYY-MM-DD') AS d");
  const date = day.rows[0]!.d;
  const [stats] = await db('orders')
    .whereRaw("(created_at AT TIME ZONE 'Asia/Taipei')::date = ?::date", [date])
    .select(
      db.raw('count(*)::int AS orders'),
      db.raw('count(*) FILTER (WHERE paid_at IS NOT NULL)::int AS paid'),
      db.raw('coalesce(sum(paid_amount), 0)::int AS amount'),
    );
  return { date, orders: stats.orders, paid: stats.paid, amount: stats.amount };
}
