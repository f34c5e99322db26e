import type { Db } from '../data/db';

/**
 * Rows that only mattered for a while: used or expired back-office login links, ended or expired
 * back-office sessions (with their remembered form results), and form results older than a day
 * (a form answered twice within a day still finds its first result). Deleted in batches so a big
 * backlog never holds long locks; run hourly by the maintenance queue.
 *
 * Kept on purpose: member codes (an offline store device may replay a code days later and must
 * find it, to refuse it as used or expired) and everything that is money or an audit trail.
 */
export const RETENTION = {
  loginTokenDays: 1,
  sessionDays: 30,
  formResultDays: 1,
} as const;

const BATCH = 5000;

export interface PruneResult {
  loginTokens: number;
  sessions: number;
  formResults: number;
}

export async function pruneExpired(db: Db): Promise<PruneResult> {
  const loop = async (sql: string, bindings: unknown[]): Promise<number> => {
    let total = 0;
    for (;;) {
      const r = await db.raw(sql, [...bindings, BATCH] as never);
      total += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < BATCH) return total;
    }
  };
  const loginTokens = await loop(
    `DELETE FROM admin_login_tokens WHERE id IN (
       SELECT id FROM admin_login_tokens WHERE expires_at < now() - make_interval(days => ?) LIMIT ?)`,
    [RETENTION.loginTokenDays],
  );
  const formResults = await loop(
    `DELETE FROM admin_form_results WHERE (session_id, form_key) IN (
       SELECT session_id, form_key FROM admin_form_results WHERE created_at < now() - make_interval(days => ?) LIMIT ?)`,
    [RETENTION.formResultDays],
  );
  // A session ends at ended_at, its absolute expiry, or 12 h after it was last seen.
  const sessions = await loop(
    `DELETE FROM admin_sessions WHERE id IN (
       SELECT id FROM admin_sessions
        WHERE least(coalesce(ended_at, 'infinity'), expires_at, last_seen_at + interval '12 hours') < now() - make_interval(days => ?)
        LIMIT ?)`,
    [RETENTION.sessionDays],
  );
  return { loginTokens, sessions, formResults };
}
