import path from 'node:path';
import knexFactory, { Knex } from 'knex';
import pg from 'pg';
import { asStockError, isRetryablePgError } from '../errors';

export type { Knex };
export type Db = Knex;
export type Trx = Knex.Transaction;

// int8 (bigserial ids, count(*)) as JS numbers: every value we store stays far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number.parseInt(v, 10));

export const MIGRATIONS_DIR = path.resolve(__dirname, '../../migrations');

export interface DbOptions {
  poolMax?: number;
  acquireTimeoutMs?: number;
  applicationName?: string;
}

export function createDb(databaseUrl: string, opts: DbOptions = {}): Db {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: opts.applicationName ?? 'lineshop' },
    pool: { min: 0, max: opts.poolMax ?? 10 },
    acquireConnectionTimeout: opts.acquireTimeoutMs ?? 10000,
    // knex would print to the console; callers log the errors that matter through pino.
    log: { warn: () => undefined, error: () => undefined, deprecate: () => undefined, debug: () => undefined },
    migrations: {
      directory: MIGRATIONS_DIR,
      loadExtensions: ['.js', '.ts'],
      tableName: 'knex_migrations',
    },
  });
}

export function migrationConfig(): Knex.MigratorConfig {
  return { directory: MIGRATIONS_DIR, loadExtensions: ['.js', '.ts'], tableName: 'knex_migrations' };
}

/** How many commit-time stock conflicts one transaction may meet before it gives up. */
const STOCK_CONFLICT_ATTEMPTS = 20;

/**
 * Runs fn in one transaction, retrying on serialization failures, deadlocks and commit-time stock
 * conflicts. Lock order is fixed by id everywhere, so a deadlock is a bug; the retry keeps it from
 * reaching a shopper. A stock conflict means a rival checkout committed, so the next run sees the
 * units gone and normally refuses cleanly before writing anything: those get a budget of their own.
 * One that outlives it surfaces as InsufficientStockError.
 */
export async function withTransaction<T>(db: Db, fn: (trx: Trx) => Promise<T>, attempts = 5): Promise<T> {
  let conflicts = 0;
  let others = 0;
  for (;;) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      const stock = asStockError(err);
      if (stock) {
        if (++conflicts >= STOCK_CONFLICT_ATTEMPTS) throw stock;
        await new Promise((r) => setTimeout(r, Math.random() * 5));
      } else {
        if (++others >= attempts || !isRetryablePgError(err)) throw err;
        await new Promise((r) => setTimeout(r, 5 * others + Math.random() * 10));
      }
    }
  }
}
