import crypto from 'node:crypto';
import IORedis from 'ioredis';
import knexFactory from 'knex';
import { createDb, Db, migrationConfig } from '../../src/data/db';

export const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDb {
  url: string;
  name: string;
  db: Db;
  destroy(): Promise<void>;
}

/** A fresh, migrated database of this test file's own; dropped by destroy(). */
export async function createTestDb(label: string, poolMax = 10, migrate = true): Promise<TestDb> {
  const name = `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`CREATE DATABASE ${name}`);
  } finally {
    await admin.destroy();
  }
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const db = createDb(url, { poolMax, applicationName: `test-${label}` });
  if (migrate) await db.migrate.latest(migrationConfig());
  return {
    url,
    name,
    db,
    async destroy() {
      await db.destroy();
      const a = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
      try {
        await a.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.destroy();
      }
    },
  };
}

/** A queue prefix of this test file's own, so files never see each other's jobs. */
export function testQueuePrefix(label: string): string {
  return `test_${label.replace(/[^a-z0-9]/gi, '_')}_${crypto.randomBytes(3).toString('hex')}`;
}

/** Deletes every Redis key under a test's queue prefix, so runs leave nothing behind in Redis. */
export async function dropQueueKeys(prefix: string, url = 'redis://127.0.0.1:6379'): Promise<void> {
  const redis = new IORedis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
