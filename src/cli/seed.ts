import { loadDatabaseUrlOrExit } from '../config';
import { createDb } from '../data/db';
import { seedDemoCatalog } from '../data/seed';

async function main(): Promise<void> {
  const db = createDb(loadDatabaseUrlOrExit(), { poolMax: 2 });
  try {
    const r = await seedDemoCatalog(db);
    console.log(`seed: ${r.categories} new categories, ${r.products} new products (existing rows left untouched)`);
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`seed failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
