import type { MembersConfig } from '../../config';
import type { Db, Trx } from '../../data/db';
import type { UnitOfWork } from '../../data/unit-of-work';
import type { MembersDay, Notifier } from '../notices';
import type { OrderListener } from '../order-events';
import { balanceOf, balancesOf, LedgerEntry, recentEntries } from './ledger';
import { IssuedCode, MemberCodes } from './member-codes';
import { Points } from './points';
import { PosJournal } from './pos-journal';
import type { TierStanding } from './rules';

export type { ChargeResult, IssuedCode } from './member-codes';
export type { PointsSummary, RedeemResult } from './points';
export type { PosBatch, PosEntryResult, UploadResult } from './pos-journal';

export interface WalletSummary {
  balance: number;
  entries: LedgerEntry[];
  topupAmounts: readonly number[];
}

export interface MemberCard {
  displayName: string | null;
  standing: TierStanding & { earned: number };
  points: number;
  wallet: number;
  code: IssuedCode;
}

export interface MemberRow {
  line_user_id: string;
  display_name: string | null;
  points: number;
  wallet: number;
  updated_at: Date;
}

/**
 * The members' use cases, for the chat (line/), the back office and the store devices (web/):
 * points and tiers (points.ts), member codes charged in the shop (member-codes.ts), the offline
 * journal (pos-journal.ts), over one ledger (ledger.ts). Wallet top-ups and wallet payments of
 * orders are payments (domain/payments/topups.ts, wallet-payments.ts).
 */
export class Members {
  readonly points: Points;
  readonly codes: MemberCodes;
  readonly pos: PosJournal;

  constructor(
    readonly cfg: MembersConfig,
    notifier: Notifier,
    uow: UnitOfWork,
  ) {
    this.points = new Points(cfg, notifier);
    this.codes = new MemberCodes(cfg, notifier, this.points);
    this.pos = new PosJournal(cfg, uow, notifier);
  }

  /** Register with OrderEvents: tier discount at checkout, points on payment, close and refund. */
  orderListener(): OrderListener {
    return this.points.listener();
  }

  async walletSummary(db: Db | Trx, userId: string, entries = 5): Promise<WalletSummary> {
    return { balance: await balanceOf(db, userId, 'wallet'), entries: await recentEntries(db, userId, 'wallet', entries), topupAmounts: this.cfg.walletTopupAmounts };
  }

  /** The member card: a fresh one-time code (the old one stops working) with tier and balances. */
  async memberCard(trx: Trx, userId: string): Promise<MemberCard> {
    const code = await this.codes.issue(trx, userId);
    const balances = await balancesOf(trx, userId);
    const user = await trx('line_users').where({ user_id: userId }).first<{ display_name: string | null }>('display_name');
    return { displayName: user?.display_name ?? null, standing: await this.points.standing(trx, userId), points: balances.points, wallet: balances.wallet, code };
  }

  /** For the back office: members with an account, most recently active first (keyset by updated_at is enough here). */
  async listMembers(db: Db, opts: { limit?: number } = {}): Promise<MemberRow[]> {
    const { rows } = await db.raw<{ rows: MemberRow[] }>(
      `SELECT a.line_user_id, u.display_name,
              coalesce(max(a.balance) FILTER (WHERE a.kind = 'points'), 0)::int AS points,
              coalesce(max(a.balance) FILTER (WHERE a.kind = 'wallet'), 0)::int AS wallet,
              max(a.updated_at) AS updated_at
         FROM member_accounts a LEFT JOIN line_users u ON u.user_id = a.line_user_id
        GROUP BY a.line_user_id, u.display_name
        ORDER BY max(a.updated_at) DESC
        LIMIT ?`,
      [Math.min(opts.limit ?? 100, 500)],
    );
    return rows;
  }

  /** For the back office: one member's entries of one kind, newest first (keyset by id). */
  async ledger(db: Db, userId: string, account: 'points' | 'wallet', opts: { beforeId?: number; limit?: number } = {}): Promise<LedgerEntry[]> {
    return recentEntries(db, userId, account, Math.min(opts.limit ?? 50, 500), opts.beforeId);
  }

  /** The members' side of a Taipei day (YYYY-MM-DD): wallet top-ups credited and points granted. */
  async day(db: Db | Trx, date: string): Promise<MembersDay> {
    const { rows } = await db.raw<{ rows: Array<{ topups: number; topup_amount: number; points: number }> }>(
      `SELECT count(*) FILTER (WHERE a.kind = 'wallet' AND e.kind = 'topup')::int AS topups,
              coalesce(sum(e.amount) FILTER (WHERE a.kind = 'wallet' AND e.kind = 'topup'), 0)::int AS topup_amount,
              coalesce(sum(e.amount) FILTER (WHERE a.kind = 'points' AND e.kind = 'earn'), 0)::int AS points
         FROM member_ledger e JOIN member_accounts a ON a.id = e.account_id
        WHERE e.created_at >= (?::date)::timestamp AT TIME ZONE 'Asia/Taipei'
          AND e.created_at < (?::date + 1)::timestamp AT TIME ZONE 'Asia/Taipei'`,
      [date, date],
    );
    const r = rows[0]!;
    return { topups: r.topups, topupAmount: r.topup_amount, pointsGranted: r.points };
  }
}
