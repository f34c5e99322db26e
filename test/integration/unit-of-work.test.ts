import { AfterCommit, EffectRunner, inTransactionWithEffects } from '../../src/data/unit-of-work';
import { createTestDb, TestDb } from '../helpers/test-db';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await createTestDb('unit_of_work');
  await tdb.db.schema.createTable('uow_probe', (t) => {
    t.increments('id');
    t.text('note').notNullable();
  });
});
afterAll(async () => {
  await tdb?.destroy();
});

/** Records what it is asked to run after commit, as the job queues would run it. */
class RecordingRunner implements EffectRunner {
  readonly runs: Array<{ outboxIds: number[]; tasks: number }> = [];
  async runAfterCommit(after: AfterCommit): Promise<void> {
    this.runs.push({ outboxIds: [...after.outboxIds], tasks: after.tasks.length });
    for (const t of after.tasks) await t();
  }
}

describe('a unit of work', () => {
  it('runs only the effects of the try that committed: a try that PostgreSQL rolled back (serialization failure) leaves none behind', async () => {
    const runner = new RecordingRunner();
    const ran: string[] = [];
    let tries = 0;
    const result = await inTransactionWithEffects(tdb.db, runner, async (trx, after) => {
      tries++;
      const [{ id }] = await trx('uow_probe').insert({ note: `try ${tries}` }).returning('id');
      after.outboxIds.push(id);
      after.tasks.push(async () => {
        ran.push(`task of try ${tries}`);
      });
      // A real PostgreSQL error with the serialization-failure code: withTransaction retries it.
      if (tries === 1) await trx.raw("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
      return id;
    });
    expect(tries).toBe(2);
    const rows = await tdb.db('uow_probe').select('id', 'note');
    expect(rows).toEqual([{ id: result, note: 'try 2' }]);
    expect(runner.runs).toEqual([{ outboxIds: [result], tasks: 1 }]);
    expect(ran).toEqual(['task of try 2']);
  });

  it('runs no effects when the transaction fails for good', async () => {
    const runner = new RecordingRunner();
    await expect(
      inTransactionWithEffects(tdb.db, runner, async (trx, after) => {
        after.tasks.push(async () => undefined);
        await trx('uow_probe').insert({ note: 'doomed' });
        throw new Error('business rule refused');
      }),
    ).rejects.toThrow('business rule refused');
    expect(runner.runs).toEqual([]);
    expect(await tdb.db('uow_probe').where({ note: 'doomed' })).toHaveLength(0);
  });
});
