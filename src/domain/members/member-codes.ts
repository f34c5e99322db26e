import crypto from 'node:crypto';
import type { MembersConfig } from '../../config';
import type { Db, Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { Actor, audit } from '../audit';
import type { MemberChargeReceipt, Notifier } from '../notices';
import { post } from './ledger';
import type { Points } from './points';
import { pointsFor, tierDiscount } from './rules';

/** A member code works for 15 minutes after it is shown. */
export const CODE_TTL_MS = 15 * 60_000;
/** 16 digits: what a phone's QR reader hands over, short enough to type when it cannot. */
export const CODE_DIGITS = 16;
/** The largest in-store charge the owner can type (TWD). */
export const MAX_CHARGE = 1_000_000;

export interface IssuedCode {
  code: string;
  /** Unguessable reference of the QR picture (GET /member/qr/<ref>.png), dead with the code. */
  qrRef: string;
  expiresAt: Date;
}

interface CodeRow {
  id: number;
  line_user_id: string;
  code_hash: string;
  code_sealed: Buffer | null;
  expires_at: Date;
  created_at: Date;
  used_at: Date | null;
  replaced_at: Date | null;
}

export type ChargeResult =
  | { kind: 'charged'; receipt: MemberChargeReceipt }
  /** No such code (mistyped, or never issued). */
  | { kind: 'unknown' }
  | { kind: 'used' }
  | { kind: 'replaced' }
  | { kind: 'expired' }
  | { kind: 'invalid-amount' }
  /** The wallet holds less than the charge (after the tier discount): nothing changed, the code still works. */
  | { kind: 'insufficient'; balance: number; due: number };

/** Why a code cannot pay (at a given time): used, replaced by a newer one, or past its 15 minutes. */
export type CodeProblem = 'unknown' | 'used' | 'replaced' | 'expired';

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
export const codeHash = (code: string) => sha256(`member-code:${code}`);
export const qrRefHash = (ref: string) => sha256(`member-qr:${ref}`);

/** The code's key is derived from the picture's reference, which only the member's LINE message holds. */
const sealKey = (ref: string) => crypto.createHash('sha256').update(`lineshop member-qr seal v1\0${ref}`).digest();

export function sealCode(code: string, ref: string): Buffer {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', sealKey(ref), iv);
  const body = Buffer.concat([c.update(code, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

export function unsealCode(sealed: Buffer, ref: string): string | null {
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', sealKey(ref), sealed.subarray(0, 12));
    d.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8');
  } catch {
    return null;
  }
}

/** Digits only (a code may be typed with spaces or dashes, or full-width). */
export function normalizeCode(s: string): string | null {
  const digits = s.normalize('NFKC').replace(/[\s-]/g, '');
  return new RegExp(`^\\d{${CODE_DIGITS}}$`).test(digits) ? digits : null;
}

function newCode(): string {
  let s = '';
  while (s.length < CODE_DIGITS) s += String(crypto.randomInt(0, 100_000_000)).padStart(8, '0');
  return s.slice(0, CODE_DIGITS);
}

/** Whether a code row could pay at time `at` (the present for the owner; a purchase's own time for a store device's journal). */
export function codeProblem(row: Pick<CodeRow, 'used_at' | 'replaced_at' | 'expires_at' | 'created_at'> | undefined, at: Date): CodeProblem | null {
  if (!row) return 'unknown';
  if (row.used_at) return 'used';
  if (row.replaced_at && row.replaced_at.getTime() <= at.getTime()) return 'replaced';
  if (row.expires_at.getTime() <= at.getTime()) return 'expired';
  return null;
}

/**
 * One-time member payment codes (the member card's QR code): issued for 15 minutes, only their
 * hash stored; a new one replaces the old; charged once by the owner in the shop (收款).
 */
export class MemberCodes {
  constructor(
    private readonly cfg: MembersConfig,
    private readonly notifier: Notifier,
    private readonly points: Points,
  ) {}

  /** A fresh code for the member; any code shown before stops working. */
  async issue(trx: Trx, userId: string): Promise<IssuedCode> {
    // One live code per member (a partial unique index too): concurrent issues for one member queue here.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`member-code:${userId}`]);
    await trx('member_codes')
      .where({ line_user_id: userId })
      .whereNull('used_at')
      .whereNull('replaced_at')
      .update({ replaced_at: trx.fn.now(), code_sealed: null });
    const expiresAt = new Date(Date.now() + CODE_TTL_MS);
    for (;;) {
      const code = newCode();
      const qrRef = crypto.randomBytes(32).toString('base64url');
      const rows = await trx('member_codes')
        .insert({ line_user_id: userId, code_hash: codeHash(code), qr_ref_hash: qrRefHash(qrRef), code_sealed: sealCode(code, qrRef), expires_at: expiresAt })
        .onConflict('code_hash')
        .ignore()
        .returning('id');
      if (rows.length) return { code, qrRef, expiresAt };
    }
  }

  /** The code behind a QR picture reference, while it can still pay; else null. */
  async codeForPicture(db: Db, qrRef: string): Promise<{ code: string; expiresAt: Date } | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(qrRef)) return null;
    const row = await db('member_codes').where({ qr_ref_hash: qrRefHash(qrRef) }).first<CodeRow>();
    if (!row?.code_sealed || codeProblem(row, new Date())) return null;
    const code = unsealCode(row.code_sealed, qrRef);
    return code ? { code, expiresAt: row.expires_at } : null;
  }

  /** The code row (locked), for a charge. */
  async lockByCode(trx: Trx, code: string): Promise<CodeRow | undefined> {
    return trx('member_codes').where({ code_hash: codeHash(code) }).forUpdate().first<CodeRow>();
  }

  /**
   * The owner charges a member's code in the shop: the code row is locked (a second charge of the
   * same code waits, then finds it used), the tier discount applies, the wallet is debited (never
   * below 0: a short balance is refused and the code keeps working), the code is spent, points are
   * earned, and the member and the owners get a receipt; the audit log records who charged.
   */
  async charge(trx: Trx, after: AfterCommit, actor: Actor, args: { code: string; amount: number }): Promise<ChargeResult> {
    if (!Number.isInteger(args.amount) || args.amount < 1 || args.amount > MAX_CHARGE) return { kind: 'invalid-amount' };
    const code = normalizeCode(args.code);
    if (!code) return { kind: 'unknown' };
    const row = await this.lockByCode(trx, code);
    const problem = codeProblem(row, new Date());
    if (problem) return { kind: problem };
    const userId = row!.line_user_id;
    const { tier } = await this.points.standing(trx, userId);
    const discount = tierDiscount(args.amount, tier);
    const paid = args.amount - discount;
    const debit = await post(trx, {
      userId, account: 'wallet', kind: 'charge', amount: -paid, source: `code:${row!.id}`,
      details: { amount: args.amount, discount, tier: tier.name, by: actor.userId },
    });
    if (debit.outcome === 'insufficient') return { kind: 'insufficient', balance: debit.balance, due: paid };
    if (debit.outcome === 'duplicate') return { kind: 'used' };
    await trx('member_codes').where({ id: row!.id }).update({ used_at: trx.fn.now(), code_sealed: null });
    const earned = pointsFor(paid, this.cfg);
    if (earned > 0) {
      await post(trx, { userId, account: 'points', kind: 'earn', amount: earned, source: `code:${row!.id}:earn`, details: { paid } });
    }
    const user = await trx('line_users').where({ user_id: userId }).first<{ display_name: string | null }>('display_name');
    const receipt: MemberChargeReceipt = {
      chargeId: row!.id, userId, displayName: user?.display_name ?? null, amount: args.amount, discount, tierName: tier.name, paid,
      balance: debit.balance, pointsEarned: earned, codeTail: code.slice(-4), at: new Date(),
    };
    await audit(trx, actor, { action: 'member.charge', targetType: 'member', targetId: userId, after: { code: row!.id, amount: args.amount, discount, paid } });
    await this.notifier.shopper(trx, after, userId, `code:${row!.id}:receipt`, { type: 'member-charge', receipt });
    await this.notifier.owners(trx, after, `code:${row!.id}:owner`, { type: 'member-charge', receipt });
    return { kind: 'charged', receipt };
  }
}
