/**
 * `npm run bench [name…] [--seconds N] [--rounds N] [--clients N] [--pgbench PATH] [--admin-url URL] [--orders N]`:
 * every benchmark (or the named ones), one after the other (never in parallel: they share one
 * PostgreSQL and would measure each other). Add a benchmark by adding it to BENCHES.
 */
import { parseArgs } from 'node:util';
import { checkoutBench } from './checkout-bench';
import { walletBench } from './wallet-bench';
import { csvExportBench } from './csv-export-bench';
import { botCheckoutBench } from './bot-checkout-bench';
import { latencyBench } from './latency-bench';
import { pushDrainBench } from './push-drain-bench';
import { webhookBench } from './webhook-bench';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    clients: { type: 'string' },
    pgbench: { type: 'string' },
    'admin-url': { type: 'string' },
    rate: { type: 'string' },
    count: { type: 'string' },
    limit: { type: 'string' },
    orders: { type: 'string' },
  },
});
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

const BENCHES: Array<[name: string, run: () => Promise<unknown>]> = [
  [
    'checkout',
    () =>
      checkoutBench({
        seconds: num(values.seconds),
        rounds: num(values.rounds),
        clients: num(values.clients),
        pgbench: values.pgbench,
        adminUrl: values['admin-url'],
      }),
  ],
  ['webhook', () => webhookBench({ seconds: num(values.seconds), connections: num(values.clients) })],
  ['bot-checkout', () => botCheckoutBench({ seconds: num(values.seconds), clients: num(values.clients), pgbench: values.pgbench })],
  ['latency', () => latencyBench({ seconds: num(values.seconds), rate: num(values.rate) })],
  [
    'wallet',
    () =>
      walletBench({
        seconds: num(values.seconds),
        rounds: num(values.rounds),
        clients: num(values.clients),
        pgbench: values.pgbench,
        adminUrl: values['admin-url'],
      }),
  ],
  ['push-drain', () => pushDrainBench({ count: num(values.count), limit: num(values.limit) })],
  ['csv', () => csvExportBench({ orders: num(values.orders) })],
];

async function main(): Promise<void> {
  const only = positionals;
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
