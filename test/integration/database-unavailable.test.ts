import knexFactory from 'knex';
import { AppError, isDatabaseUnavailable } from '../../src/errors';
import { failsForGood } from '../../src/jobs/worker';
import { freePort } from '../helpers/child-process';
import { createTestDb, TestDb } from '../helpers/test-db';

/**
 * Which failures mean "the database was away" (retry later, never give the work up) and which are
 * the work's own, told apart on real errors from a real PostgreSQL and a real closed port.
 */
let t: TestDb;
beforeAll(async () => {
  t = await createTestDb('db_unavailable', 3, false);
});
afterAll(async () => {
  await t?.destroy();
});

const errorOf = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
};

describe('isDatabaseUnavailable', () => {
  test('a closed port, a terminated connection and an exhausted pool are the database being away', async () => {
    const port = await freePort();
    const nowhere = knexFactory({ client: 'pg', connection: `postgres://postgres@127.0.0.1:${port}/x`, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 2000 });
    const refused = await errorOf(nowhere.raw('SELECT 1'));
    await nowhere.destroy();
    expect(isDatabaseUnavailable(refused)).toBe(true);

    // Our own backend terminated while it runs a statement: 57P01 (admin_shutdown).
    const terminated = await errorOf(
      t.db.transaction(async (trx) => {
        const { rows } = await trx.raw('SELECT pg_backend_pid() AS pid');
        await t.db.raw('SELECT pg_terminate_backend(?)', [rows[0].pid]);
        await trx.raw('SELECT 1');
      }),
    );
    expect(isDatabaseUnavailable(terminated)).toBe(true);

    const small = knexFactory({ client: 'pg', connection: t.url, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 300 });
    const holder = small.transaction(async (trx) => {
      await trx.raw('SELECT pg_sleep(1)');
    });
    const starved = await errorOf(small.raw('SELECT 1'));
    await holder;
    await small.destroy();
    expect(isDatabaseUnavailable(starved)).toBe(true);
  });

  test('errors of the work itself are not', async () => {
    expect(isDatabaseUnavailable(await errorOf(t.db.raw('SELEC 1')))).toBe(false);
    expect(isDatabaseUnavailable(await errorOf(t.db.raw('SELECT 1/0')))).toBe(false);
    expect(isDatabaseUnavailable(await errorOf(t.db.raw("SELECT 'x'::int")))).toBe(false);
    expect(isDatabaseUnavailable(new AppError('ILLEGAL_TRANSITION', 'no', 409))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
  });
});

describe('failsForGood (an event job that failed)', () => {
  const job = (attemptsMade: number) => ({ attemptsMade, opts: { attempts: 6 } });
  test('only its last attempt, and only for a failure of its own', async () => {
    const own = await errorOf(t.db.raw('SELECT 1/0'));
    const away = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    expect(failsForGood(job(5), own)).toBe(true);
    expect(failsForGood(job(2), own)).toBe(false);
    // A PostgreSQL outage longer than the retries: the event stays for the inbox sweeper.
    expect(failsForGood(job(5), away)).toBe(false);
  });
});
