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

/**
 * Runs fn in one transaction, retrying on serialization failures, deadlocks and commit-time stock
 * conflicts. Lock order is fixed by id everywhere, so a deadlock is a bug; the retry keeps it from
 * reaching a shopper. A stock conflict that outlives the retries surfaces as InsufficientStockError.
 */
export async function withTransaction<T>(db: Db, fn: (trx: Trx) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (i >= attempts || !isRetryablePgError(err)) throw asStockError(err) ?? err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 10));
    }
  }
}
