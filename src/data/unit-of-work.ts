import { Db, Trx, withTransaction } from './db';

/**
 * Work to do after COMMIT: outbox rows to deliver and jobs to enqueue. Collected inside a
 * transaction, run only once it has committed, never inside it (no Redis or HTTP call can then
 * outlive a rolled-back change, or hold a row lock while it waits).
 */
export class AfterCommit {
  readonly outboxIds: number[] = [];
  readonly tasks: Array<() => Promise<void>> = [];

  /** Forgets what an earlier, rolled-back try of the transaction collected. */
  reset(): void {
    this.outboxIds.length = 0;
    this.tasks.length = 0;
  }
}

/** Whoever runs the collected effects (the job queues: deliveries, delayed jobs). Must not throw. */
export interface EffectRunner {
  runAfterCommit(after: AfterCommit): Promise<void>;
}

/**
 * One transaction whose side effects run after it commits. withTransaction may run fn several
 * times (serialization failures, deadlocks, commit-time stock conflicts): the effects collected by
 * a try that rolled back are dropped before the next try, so only the committed try's are run.
 */
export async function inTransactionWithEffects<T>(
  db: Db,
  effects: EffectRunner,
  fn: (trx: Trx, after: AfterCommit) => Promise<T>,
  attempts?: number,
): Promise<T> {
  const after = new AfterCommit();
  const result = await withTransaction(
    db,
    (trx) => {
      after.reset();
      return fn(trx, after);
    },
    attempts,
  );
  await effects.runAfterCommit(after);
  return result;
}

/** The unit of work every use case runs in: the database plus what runs after commit. */
export class UnitOfWork {
  constructor(
    readonly db: Db,
    private readonly effects: EffectRunner,
  ) {}

  run<T>(fn: (trx: Trx, after: AfterCommit) => Promise<T>, attempts?: number): Promise<T> {
    return inTransactionWithEffects(this.db, this.effects, fn, attempts);
  }

  runAfterCommit(after: AfterCommit): Promise<void> {
    return this.effects.runAfterCommit(after);
  }
}
