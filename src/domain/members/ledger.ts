import type { Db, Trx } from '../../data/db';

/**
 * The member ledger (migration 20261204040000): one account per LINE user and kind, append-only
 * entries whose source is unique per account. Every entry is written in the transaction of the
 * business change that caused it, by the caller passing its `trx`. Lock order: an order or code
 * row first (if any), then the wallet account, then the points account.
 */

export type AccountKind = 'points' | 'wallet';

export interface LedgerEntry {
  id: number;
  account_id: number;
  kind: string;
  amount: number;
  balance_after: number;
  shortfall: number;
  source: string;
  details: Record<string, unknown> | null;
  created_at: Date;
}

export type PostResult =
  /** Written; `balance` is the account's balance after it. */
  | { outcome: 'posted'; balance: number; entryId: number }
  /** The source was posted before: nothing changed. */
  | { outcome: 'duplicate'; balance: number }
  /** A debit larger than the balance: nothing changed. */
  | { outcome: 'insufficient'; balance: number };

export interface NewEntry {
  userId: string;
  account: AccountKind;
  /** What happened, e.g. earn, redeem, topup, pay, refund, charge, pos. */
  kind: string;
  /** Signed: points, or integer TWD for the wallet. */
  amount: number;
  /** Unique per account, e.g. `order:12:earn`, `topup:34`, `pos:<device>:<txn_no>`. */
  source: string;
  details?: Record<string, unknown>;
  shortfall?: number;
}

/**
 * One entry, in one round trip (`ledger_post()`): a conditional update of the account that never
 * takes it below 0 and holds its row lock until the caller commits, then the entry with the
 * balance after it. A source already posted changes nothing ('duplicate').
 */
export async function post(trx: Trx | Db, e: NewEntry): Promise<PostResult> {
  if (!Number.isInteger(e.amount)) throw new Error(`ledger amount must be an integer, got ${e.amount}`);
  const { rows } = await trx.raw<{ rows: Array<{ outcome: PostResult['outcome']; balance: number; entry_id: number | null }> }>(
    'SELECT outcome, balance, entry_id FROM ledger_post(?, ?, ?, ?, ?, ?::jsonb, ?)',
    [e.userId, e.account, e.kind, e.amount, e.source, e.details ? JSON.stringify(e.details) : null, e.shortfall ?? 0],
  );
  const r = rows[0]!;
  if (r.outcome === 'posted') return { outcome: 'posted', balance: r.balance, entryId: Number(r.entry_id) };
  return { outcome: r.outcome, balance: r.balance };
}

/**
 * Takes up to `due` from an account, never below 0: what it could not take is recorded as the
 * entry's shortfall (for the owner to settle). Locks the account row first, so that the amount
 * taken is decided on the balance that the entry then changes.
 */
export async function takeUpTo(
  trx: Trx,
  e: Omit<NewEntry, 'amount' | 'shortfall'> & { due: number },
): Promise<{ outcome: 'posted' | 'duplicate' | 'nothing'; taken: number; shortfall: number; balance: number }> {
  const account = await trx('member_accounts').where({ line_user_id: e.userId, kind: e.account }).forUpdate().first<{ id: number; balance: number }>('id', 'balance');
  const balance = account?.balance ?? 0;
  if (e.due <= 0) return { outcome: 'nothing', taken: 0, shortfall: 0, balance };
  if (account && (await trx('member_ledger').where({ account_id: account.id, source: e.source }).first('id'))) {
    return { outcome: 'duplicate', taken: 0, shortfall: 0, balance };
  }
  const taken = Math.min(e.due, balance);
  const shortfall = e.due - taken;
  const r = await post(trx, { ...e, amount: -taken, shortfall });
  if (r.outcome !== 'posted') return { outcome: 'duplicate', taken: 0, shortfall: 0, balance: r.balance };
  return { outcome: 'posted', taken, shortfall, balance: r.balance };
}

export async function balanceOf(db: Db | Trx, userId: string, account: AccountKind): Promise<number> {
  const row = await db('member_accounts').where({ line_user_id: userId, kind: account }).first<{ balance: number }>('balance');
  return row?.balance ?? 0;
}

/** Both balances of a member (0 for an account not opened yet). */
export async function balancesOf(db: Db | Trx, userId: string): Promise<{ points: number; wallet: number }> {
  const rows = await db('member_accounts').where({ line_user_id: userId }).select<Array<{ kind: AccountKind; balance: number }>>('kind', 'balance');
  const of = (k: AccountKind) => rows.find((r) => r.kind === k)?.balance ?? 0;
  return { points: of('points'), wallet: of('wallet') };
}

/** The newest entries first. */
export async function recentEntries(db: Db | Trx, userId: string, account: AccountKind, limit = 5, beforeId?: number): Promise<LedgerEntry[]> {
  const q = db('member_ledger as e')
    .join('member_accounts as a', 'a.id', 'e.account_id')
    .where({ 'a.line_user_id': userId, 'a.kind': account })
    .orderBy('e.id', 'desc')
    .limit(limit)
    .select<LedgerEntry[]>('e.*');
  if (beforeId) q.where('e.id', '<', beforeId);
  return q;
}

/** The entries of one account whose source starts with `prefix` (e.g. every points entry of one order). */
export async function entriesWithPrefix(db: Db | Trx, userId: string, account: AccountKind, prefix: string): Promise<LedgerEntry[]> {
  return db('member_ledger as e')
    .join('member_accounts as a', 'a.id', 'e.account_id')
    .where({ 'a.line_user_id': userId, 'a.kind': account })
    .whereLike('e.source', `${prefix.replace(/[%_\\]/g, '\\$&')}%`)
    .orderBy('e.id')
    .select<LedgerEntry[]>('e.*');
}

/** Ledger invariants for `npm run check:invariants`: each balance is the sum of its entries, and never negative. */
export async function ledgerViolations(db: Db): Promise<string[]> {
  const out: string[] = [];
  const q = async (sql: string) => (await db.raw(sql)).rows as Array<Record<string, unknown>>;
  for (const r of await q(`SELECT a.id, a.line_user_id, a.kind, a.balance, coalesce(sum(e.amount), 0)::int AS sum
      FROM member_accounts a LEFT JOIN member_ledger e ON e.account_id = a.id
      GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0) OR a.balance < 0 ORDER BY a.id`)) {
    out.push(`member ${r.line_user_id} ${r.kind} account: balance ${r.balance} but its entries sum to ${r.sum}`);
  }
  for (const r of await q(`SELECT id, account_id, balance_after, running FROM (
        SELECT id, account_id, balance_after, sum(amount) OVER (PARTITION BY account_id ORDER BY id) AS running FROM member_ledger) x
      WHERE balance_after <> running OR balance_after < 0 ORDER BY id LIMIT 50`)) {
    out.push(`ledger entry ${r.id} (account ${r.account_id}): balance_after ${r.balance_after} but the running sum is ${r.running}`);
  }
  return out;
}
