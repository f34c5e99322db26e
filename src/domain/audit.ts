import type { Db, Trx } from '../data/db';

/** Who does an owner action, and through which door (the same use case serves the chat and the back office). */
export interface Actor {
  /** LINE userId of the owner (or of the shopper, with role 'shopper'), or null for the system itself. */
  userId: string | null;
  /** Default owner; a shopper acts only on their own order (e.g. a new pickup store after a closure). */
  role?: 'owner' | 'shopper';
  source: 'line' | 'web' | 'system';
  /** For the web: the client's IP and user agent. */
  origin?: Record<string, unknown>;
}

export const actorName = (a: Actor): string => (a.userId ? `${a.role ?? 'owner'}:${a.userId}` : 'system');

export interface AuditEntry {
  action: string;
  targetType: string;
  targetId: string | number;
  before?: unknown;
  after?: unknown;
  reason?: string | null;
}

/** Appends one audit row in the caller's transaction: it commits or rolls back with the action. */
export async function audit(trx: Trx, actor: Actor, e: AuditEntry): Promise<void> {
  await trx('audit_log').insert({
    actor: actorName(actor),
    source: actor.source,
    action: e.action,
    target_type: e.targetType,
    target_id: String(e.targetId),
    before: e.before === undefined ? null : JSON.stringify(e.before),
    after: e.after === undefined ? null : JSON.stringify(e.after),
    reason: e.reason ?? null,
    origin: actor.origin ? JSON.stringify(actor.origin) : null,
  });
}

export interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  source: string;
  action: string;
  target_type: string;
  target_id: string;
  before: unknown;
  after: unknown;
  reason: string | null;
  origin: Record<string, unknown> | null;
}

/** Newest first, filtered by any of action prefix, target, actor; keyset-paginated by id. */
export async function listAudit(
  db: Db | Trx,
  f: { action?: string; targetType?: string; targetId?: string; actor?: string; source?: Actor['source']; beforeId?: number; limit?: number } = {},
): Promise<AuditRow[]> {
  const q = db('audit_log').orderBy('id', 'desc').limit(Math.min(f.limit ?? 50, 500));
  if (f.action) q.whereLike('action', `${f.action.replace(/[%_\\]/g, '\\$&')}%`);
  if (f.targetType) q.where('target_type', f.targetType);
  if (f.targetId) q.where('target_id', f.targetId);
  if (f.actor) q.where('actor', f.actor);
  if (f.source) q.where('source', f.source);
  if (f.beforeId) q.where('id', '<', f.beforeId);
  return q.select<AuditRow[]>('*');
}
