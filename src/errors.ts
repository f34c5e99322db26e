/**
 * Application errors carry an UPPER_SNAKE code, an HTTP status and context for logs.
 * Users never see `message` of an unknown error: they get a generic zh-TW text with the code.
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 500,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Raised at COMMIT by the reservations trigger (migration 20261201000200) when a held reservation
 * finds too little stock: another checkout took the units after this one's availability check.
 */
export const STOCK_CONFLICT_SQLSTATE = 'LS409';

/** Not enough stock for these products: the transaction must roll back. */
export class InsufficientStockError extends AppError {
  constructor(readonly productIds: number[]) {
    super('INSUFFICIENT_STOCK', 'not enough stock', 409, { productIds });
  }
}

/**
 * PostgreSQL error codes that mean "try the transaction again" (serialization failure, deadlock,
 * lock not available). Stock conflicts are retried too, with a budget of their own (withTransaction).
 */
const RETRYABLE_PG = new Set(['40001', '40P01', '55P03']);

export function isRetryablePgError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && RETRYABLE_PG.has((err as { code?: string }).code ?? '');
}

/** Socket-level failures: the database (or the network to it) was away, not the work wrong. */
const UNAVAILABLE_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The database was unavailable, so the work never had its chance: connection exceptions (class
 * 08), an administrator or crash shutdown or start-up (57P01-57P03), too many connections
 * (53300), a connection lost mid-query, no pooled connection in time. Retrying later can succeed
 * without any change; work that failed only this way must never be given up for good.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: string; name?: string; message?: string };
  const code = e.code ?? '';
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  if (UNAVAILABLE_NODE.has(code)) return true;
  if (e.name === 'KnexTimeoutError') return true;
  return /Connection terminated|connection is closed|Client has encountered a connection error/i.test(e.message ?? '');
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

/** A commit-time stock conflict as the domain error (after the retries ran out). */
export function asStockError(err: unknown): InsufficientStockError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { code?: string; detail?: string };
  if (e.code !== STOCK_CONFLICT_SQLSTATE) return null;
  const id = Number(e.detail);
  return new InsufficientStockError(Number.isInteger(id) ? [id] : []);
}

/**
 * Thrown by a job's work when it must not run now but later (a bank asked for a pause, a time of
 * day when an action is forbidden). The worker moves the job back to the delayed set for delayMs
 * without using up one of its attempts; nothing was done.
 */
export class DeferJob extends Error {
  override readonly name = 'DeferJob';
  constructor(
    readonly delayMs: number,
    readonly reason: string,
  ) {
    super(`deferred ${Math.round(delayMs / 1000)} s: ${reason}`);
  }
}
