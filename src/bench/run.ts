/**
 * `npm run bench`: every benchmark, one after the other (never in parallel: they share one
 * PostgreSQL and would measure each other). Add a benchmark by adding it to BENCHES.
 */
import { checkoutBench } from './checkout-bench';
import { webhookBench } from './webhook-bench';

const BENCHES: Array<[name: string, run: () => Promise<unknown>]> = [
  ['checkout', () => checkoutBench()],
  ['webhook', () => webhookBench()],
];

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  for (const [name, bench] of BENCHES) {
    if (only.length && !only.includes(name)) continue;
    await bench();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
