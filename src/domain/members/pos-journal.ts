import crypto from 'node:crypto';
import { z } from 'zod';
import type { MembersConfig } from '../../config';
import type { Trx } from '../../data/db';
import type { UnitOfWork } from '../../data/unit-of-work';
import type { Notifier } from '../notices';
import { post } from './ledger';
import { codeHash, codeProblem, normalizeCode } from './member-codes';
import { pointsFor } from './rules';

/**
 * The offline journal of store devices (POST /api/pos/journal, seed 000's reconcile done right):
 * a device that sold to members while offline uploads what it recorded. The upload is authenticated
 * by an HMAC of its body with POS_API_SECRET, with the timestamp inside the signature (5 minutes
 * either way) and each signature accepted once (a replayed body changes nothing). Each purchase is
 * applied at most once by (device_id, txn_no), in a transaction of its own, as a wallet debit that
 * never overdraws: an entry the balance does not cover is rejected and reported, the rest apply.
 */

export const POS_WINDOW_SECONDS = 300;
export const POS_MAX_ENTRIES = 500;

const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const entrySchema = z
  .object({
    txn_no: z.union([id, z.number().int().nonnegative().transform(String)]),
    member_code: z.string().max(40).optional(),
    user_id: z.string().regex(/^U[0-9a-f]{32}$/).optional(),
    amount: z.number().int().positive().max(1_000_000),
    /** When the device sold: ISO 8601, or unix seconds. */
    time: z.union([z.string().datetime({ offset: true }), z.number().int().positive()]),
  })
  .refine((e) => (e.member_code === undefined) !== (e.user_id === undefined), 'needs member_code or user_id (one of them)');
export const batchSchema = z.object({
  device_id: id,
  entries: z.array(entrySchema).min(1).max(POS_MAX_ENTRIES),
});
export type PosBatch = z.infer<typeof batchSchema>;
type PosEntry = PosBatch['entries'][number];

/** Why an entry was not applied (machine-readable, in the device's answer). */
export type PosRejection = 'insufficient-balance' | 'unknown-member' | 'code-used' | 'code-expired' | 'txn-conflict' | 'future-time';

export interface PosEntryResult {
  txn_no: string;
  status: 'applied' | 'duplicate' | 'rejected';
  reason?: PosRejection;
  /** The member's wallet balance after this entry (applied entries). */
  balance?: number;
}

export type SignatureCheck = 'ok' | 'missing' | 'bad-signature' | 'stale';

/** X-Pos-Signature = hex HMAC-SHA256(secret, `<X-Pos-Timestamp>.<raw body>`), timestamp within ±5 minutes. */
export function checkSignature(secret: string, timestamp: string | undefined, signature: string | undefined, rawBody: Buffer, nowMs = Date.now()): SignatureCheck {
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp) || !/^[0-9a-fA-F]{64}$/.test(signature)) return 'missing';
  const expected = crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
  if (!crypto.timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return 'bad-signature';
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > POS_WINDOW_SECONDS) return 'stale';
  return 'ok';
}

/** How a device signs (tests and device makers use this). */
export function signPosBody(secret: string, timestamp: number, rawBody: string | Buffer): string {
  return crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

export type UploadResult =
  | { kind: 'replay' }
  | { kind: 'done'; results: PosEntryResult[]; applied: number; duplicate: number; rejected: number };

export class PosJournal {
  constructor(
    private readonly cfg: MembersConfig,
    private readonly uow: UnitOfWork,
    private readonly notifier: Notifier,
  ) {}

  /** Applies a verified upload (its signature already checked): each entry once, each in its own transaction. */
  async upload(signature: string, batch: PosBatch): Promise<UploadResult> {
    const request = await this.uow.db('pos_requests')
      .insert({ signature: signature.toLowerCase(), device_id: batch.device_id, entries: batch.entries.length })
      .onConflict('signature')
      .ignore()
      .returning<Array<{ id: number }>>('id');
    if (request.length === 0) return { kind: 'replay' };
    const requestId = request[0]!.id;
    const results: PosEntryResult[] = [];
    for (const e of batch.entries) results.push(await this.uow.run((trx) => this.applyEntry(trx, batch.device_id, requestId, e)));
    const count = (s: PosEntryResult['status']) => results.filter((r) => r.status === s).length;
    const summary = { applied: count('applied'), duplicate: count('duplicate'), rejected: count('rejected') };
    const rejected = results.filter((r) => r.status === 'rejected');
    await this.uow.run(async (trx, after) => {
      await trx('pos_requests').where({ id: requestId }).update({ summary: JSON.stringify(summary) });
      if (rejected.length) {
        const amounts = new Map(batch.entries.map((e) => [String(e.txn_no), e.amount]));
        await this.notifier.owners(trx, after, `pos:request:${requestId}:rejected`, {
          type: 'pos-rejected',
          deviceId: batch.device_id,
          entries: rejected.map((r) => ({ txnNo: r.txn_no, amount: amounts.get(r.txn_no) ?? 0, reason: r.reason! })),
        });
      }
    });
    return { kind: 'done', results, ...summary };
  }

  private async applyEntry(trx: Trx, deviceId: string, requestId: number, e: PosEntry): Promise<PosEntryResult> {
    const txnNo = String(e.txn_no);
    const at = typeof e.time === 'number' ? new Date(e.time * 1000) : new Date(e.time);
    const key = { device_id: deviceId, txn_no: txnNo };
    // The journal row first (a concurrent upload of the same entry waits here), then the code, then the wallet.
    await trx('pos_journal')
      .insert({ ...key, amount: e.amount, occurred_at: at, status: 'rejected', reason: 'pending', request_id: requestId })
      .onConflict(['device_id', 'txn_no'])
      .ignore();
    const row = (await trx('pos_journal').where(key).forUpdate().first<{ id: number; status: string; amount: number; line_user_id: string | null; occurred_at: Date }>())!;
    const reject = async (reason: PosRejection, userId: string | null = null): Promise<PosEntryResult> => {
      if (row.status !== 'applied') {
        await trx('pos_journal').where({ id: row.id }).update({ reason, line_user_id: userId, amount: e.amount, occurred_at: at, request_id: requestId, updated_at: trx.fn.now() });
      }
      return { txn_no: txnNo, status: 'rejected', reason };
    };
    if (row.status === 'applied') {
      // The same purchase again: nothing to do. The same number with another amount is a device fault.
      if (row.amount !== e.amount || row.occurred_at.getTime() !== at.getTime()) return { txn_no: txnNo, status: 'rejected', reason: 'txn-conflict' };
      return { txn_no: txnNo, status: 'duplicate' };
    }
    if (at.getTime() > Date.now() + POS_WINDOW_SECONDS * 1000) return reject('future-time');

    let userId: string;
    let codeId: number | null = null;
    if (e.member_code !== undefined) {
      const code = normalizeCode(e.member_code);
      const c = code ? await trx('member_codes').where({ code_hash: codeHash(code) }).forUpdate().first() : undefined;
      const problem = codeProblem(c, at);
      if (problem === 'unknown') return reject('unknown-member');
      if (problem === 'used') return reject('code-used', c.line_user_id);
      if (problem) return reject('code-expired', c.line_user_id);
      userId = c.line_user_id;
      codeId = c.id;
    } else {
      userId = e.user_id!;
      const known = await trx('line_users').where({ user_id: userId }).first('user_id');
      if (!known) return reject('unknown-member');
    }
    const debit = await post(trx, {
      userId, account: 'wallet', kind: 'pos', amount: -e.amount, source: `pos:${deviceId}:${txnNo}`,
      details: { deviceId, txnNo, occurredAt: at.toISOString(), requestId, ...(codeId ? { code: codeId } : {}) },
    });
    if (debit.outcome === 'insufficient') return reject('insufficient-balance', userId);
    if (debit.outcome === 'duplicate') return { txn_no: txnNo, status: 'duplicate' };
    if (codeId) await trx('member_codes').where({ id: codeId }).update({ used_at: trx.fn.now(), code_sealed: null });
    const earned = pointsFor(e.amount, this.cfg);
    if (earned > 0) {
      await post(trx, { userId, account: 'points', kind: 'earn', amount: earned, source: `pos:${deviceId}:${txnNo}:earn`, details: { deviceId, txnNo } });
    }
    await trx('pos_journal')
      .where({ id: row.id })
      .update({ status: 'applied', reason: null, line_user_id: userId, entry_id: debit.entryId, request_id: requestId, updated_at: trx.fn.now() });
    return { txn_no: txnNo, status: 'applied', balance: debit.balance };
  }
}
