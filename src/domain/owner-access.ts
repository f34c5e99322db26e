import crypto from 'node:crypto';
import type { Db, Trx } from '../data/db';
import { Actor, audit } from './audit';

/**
 * How an owner gets into the back office, with no password: `後台` in the chat issues a one-time
 * login token; opening its link turns it into a session. Only SHA-256 hashes of tokens and
 * session ids are stored, so a copy of the database opens nothing. Every moment is the database's
 * clock, so any number of web processes agree. Whether someone is an owner is asked on every
 * request (`isOwner`), so a change of the owner list takes effect at once.
 */

export const LOGIN_TOKEN_TTL_MINUTES = 10;
export const SESSION_IDLE_HOURS = 12;
export const SESSION_MAX_DAYS = 7;
/** last_seen_at is written at most this often (not on every page view). */
const TOUCH_EVERY_SECONDS = 60;

/** 256 random bits, URL-safe. */
export const randomToken = (): string => crypto.randomBytes(32).toString('base64url');
export const sha256Hex = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export interface OwnerSession {
  id: number;
  userId: string;
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
}

export type LoginResult =
  | { kind: 'ok'; sessionToken: string; session: OwnerSession }
  | { kind: 'invalid' | 'used' | 'expired' | 'not-owner' };

export type FormClaim = { kind: 'first' } | { kind: 'repeat'; result: unknown } | { kind: 'bad-key' };

/** A form's idempotency key: random, as the page made it. */
export const FORM_KEY_SHAPE = /^[A-Za-z0-9_-]{16,64}$/;

export class OwnerAccess {
  constructor(private readonly isOwner: (userId: string) => boolean) {}

  /** A login link's token for an owner (the caller sends it); refused for anyone else. */
  async issueLoginToken(trx: Trx, actor: Actor): Promise<{ kind: 'issued'; token: string; expiresAt: Date } | { kind: 'not-owner' }> {
    if (!actor.userId || !this.isOwner(actor.userId)) return { kind: 'not-owner' };
    const token = randomToken();
    const [row] = await trx('admin_login_tokens')
      .insert({
        token_hash: sha256Hex(token),
        line_user_id: actor.userId,
        expires_at: trx.raw(`now() + interval '${LOGIN_TOKEN_TTL_MINUTES} minutes'`),
      })
      .returning(['id', 'expires_at']);
    await audit(trx, actor, { action: 'session.link', targetType: 'owner', targetId: actor.userId, after: { tokenId: row.id, expiresAt: row.expires_at } });
    return { kind: 'issued', token, expiresAt: row.expires_at };
  }

  /**
   * Uses a login token once and opens a session. A session the browser already had is ended (a
   * new id at every login, so a planted cookie is worth nothing after it).
   */
  async login(trx: Trx, token: string, origin: Record<string, unknown>, previousSessionToken?: string | null): Promise<LoginResult> {
    if (!TOKEN_SHAPE.test(token)) return { kind: 'invalid' };
    const row = await trx('admin_login_tokens')
      .where({ token_hash: sha256Hex(token) })
      .forUpdate()
      .first('id', 'line_user_id', 'used_at', trx.raw('expires_at <= now() AS expired'));
    if (!row) return { kind: 'invalid' };
    if (row.used_at) return { kind: 'used' };
    if (row.expired) return { kind: 'expired' };
    await trx('admin_login_tokens').where({ id: row.id }).update({ used_at: trx.fn.now() });
    const actor: Actor = { userId: row.line_user_id, source: 'web', origin };
    if (!this.isOwner(row.line_user_id)) return { kind: 'not-owner' };
    if (previousSessionToken) await this.end(trx, previousSessionToken, 'replaced');
    const sessionToken = randomToken();
    const [s] = await trx('admin_sessions')
      .insert({
        session_hash: sha256Hex(sessionToken),
        line_user_id: row.line_user_id,
        csrf_token: randomToken(),
        expires_at: trx.raw(`now() + interval '${SESSION_MAX_DAYS} days'`),
        origin: JSON.stringify(origin),
      })
      .returning(['id', 'line_user_id', 'csrf_token', 'created_at', 'expires_at']);
    await audit(trx, actor, { action: 'session.login', targetType: 'owner', targetId: row.line_user_id, after: { sessionId: s.id, tokenId: row.id } });
    return { kind: 'ok', sessionToken, session: toSession(s) };
  }

  /** The live session a cookie names, or null: unknown, ended, idle too long, too old, or no longer an owner's. */
  async resume(db: Db, sessionToken: string | undefined): Promise<OwnerSession | null> {
    if (!sessionToken || !TOKEN_SHAPE.test(sessionToken)) return null;
    const s = await db('admin_sessions')
      .where({ session_hash: sha256Hex(sessionToken) })
      .whereNull('ended_at')
      .whereRaw('expires_at > now()')
      .whereRaw(`last_seen_at > now() - interval '${SESSION_IDLE_HOURS} hours'`)
      .first('id', 'line_user_id', 'csrf_token', 'created_at', 'expires_at', db.raw(`last_seen_at < now() - interval '${TOUCH_EVERY_SECONDS} seconds' AS stale`));
    if (!s || !this.isOwner(s.line_user_id)) return null;
    if (s.stale) await db('admin_sessions').where({ id: s.id }).update({ last_seen_at: db.fn.now() });
    return toSession(s);
  }

  /** 登出: ends the session for good. */
  async logout(trx: Trx, actor: Actor, session: OwnerSession): Promise<void> {
    const n = await trx('admin_sessions').where({ id: session.id }).whereNull('ended_at').update({ ended_at: trx.fn.now(), ended_reason: 'logout' });
    if (n) await audit(trx, actor, { action: 'session.logout', targetType: 'owner', targetId: session.userId, after: { sessionId: session.id } });
  }

  private async end(trx: Trx, sessionToken: string, reason: string): Promise<void> {
    if (!TOKEN_SHAPE.test(sessionToken)) return;
    await trx('admin_sessions').where({ session_hash: sha256Hex(sessionToken) }).whereNull('ended_at').update({ ended_at: trx.fn.now(), ended_reason: reason });
  }

  /**
   * Claims a form submission's key in the caller's transaction. A second submission of the same
   * form waits here for the first one's transaction and then gets its stored result; a first
   * submission that rolls back frees the key.
   */
  async claimForm(trx: Trx, sessionId: number, formKey: string): Promise<FormClaim> {
    if (!FORM_KEY_SHAPE.test(formKey)) return { kind: 'bad-key' };
    const inserted = await trx('admin_form_results').insert({ session_id: sessionId, form_key: formKey }).onConflict(['session_id', 'form_key']).ignore().returning('form_key');
    if (inserted.length) return { kind: 'first' };
    const row = await trx('admin_form_results').where({ session_id: sessionId, form_key: formKey }).first('result');
    return { kind: 'repeat', result: row?.result ?? null };
  }

  async saveFormResult(trx: Trx, sessionId: number, formKey: string, result: unknown): Promise<void> {
    await trx('admin_form_results').where({ session_id: sessionId, form_key: formKey }).update({ result: JSON.stringify(result) });
  }

  async formResult(db: Db, sessionId: number, formKey: string): Promise<unknown> {
    const row = await db('admin_form_results').where({ session_id: sessionId, form_key: formKey }).first('result');
    return row?.result ?? null;
  }
}

function toSession(s: { id: number; line_user_id: string; csrf_token: string; created_at: Date; expires_at: Date }): OwnerSession {
  return { id: Number(s.id), userId: s.line_user_id, csrfToken: s.csrf_token, createdAt: s.created_at, expiresAt: s.expires_at };
}
