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

/** PostgreSQL error codes that mean "try the transaction again". */
const RETRYABLE_PG = new Set(['40001', '40P01', '55P03']);

export function isRetryablePgError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && RETRYABLE_PG.has((err as { code?: string }).code ?? '');
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
