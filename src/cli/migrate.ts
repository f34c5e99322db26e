import { loadDatabaseUrlOrExit } from '../config';
import { createDb, migrationConfig } from '../data/db';

/** `npm run migrate` (latest, idempotent) and `npm run migrate:rollback` (last batch). */
async function main(): Promise<void> {
  const db = createDb(loadDatabaseUrlOrExit(), { poolMax: 2 });
  try {
    if (process.argv[2] === 'rollback') {
      const [batch, files] = await db.migrate.rollback(migrationConfig());
      console.log(files.length ? `rolled back batch ${batch}: ${files.join(', ')}` : 'nothing to roll back');
    } else {
      const [batch, files] = await db.migrate.latest(migrationConfig());
      console.log(files.length ? `applied batch ${batch}: ${files.join(', ')}` : 'already up to date');
    }
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
