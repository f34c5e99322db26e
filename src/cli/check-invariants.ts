import { loadDatabaseUrlOrExit } from '../config';
import { createDb } from '../data/db';
import { checkInvariants } from '../domain/invariants';

async function main(): Promise<void> {
  const db = createDb(loadDatabaseUrlOrExit(), { poolMax: 2 });
  try {
    const v = await checkInvariants(db);
    if (v.length === 0) {
      console.log('invariants hold: stock, reservations, payments and the member ledger are consistent');
      return;
    }
    for (const line of v) console.log(`VIOLATION ${line}`);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`invariants check failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
