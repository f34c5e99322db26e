import { loadSandboxSettings } from '../config';
import { createLogger } from '../logger';
import { DEV_SECRETS, startDevSandbox } from '../sandbox/dev-sandbox';

/** `npm run dev`: the whole shop on this machine, no credentials needed. */
async function main(): Promise<void> {
  const s = loadSandboxSettings();
  const log = createLogger('info', 'sandbox');
  let sandbox;
  try {
    sandbox = await startDevSandbox({ port: s.port, databaseUrl: s.databaseUrl, redisUrl: s.redisUrl, log });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`sandbox failed to start: ${msg}\n(Redis must be running at ${s.redisUrl}; port ${s.port} must be free)\n`);
    process.exit(1);
  }
  const lines = [
    '',
    'LINE shop sandbox is running:',
    `  chat simulator   ${sandbox.simulatorUrl}      <- start here: type 商品`,
    `  shop (webhook)   ${sandbox.shopUrl}/webhook/line`,
    `  LINE API double  ${sandbox.line.url}/__double/delivered`,
    `  SinoPac sandbox  ${sandbox.sinopac.url}/   (pay / fail ATM and card orders)`,
    `  ECPay sandbox    ${sandbox.ecpay.url}/   (pay ATM / CVS codes)`,
    `  ECPay logistics  ${sandbox.ecpayLogistics.url}/   (move store-pickup parcels along)`,
    `  shopper ${DEV_SECRETS.shopper}, owner ${DEV_SECRETS.owner}`,
    s.databaseUrl ? '  database         DATABASE_URL' : '  database         embedded PGlite in .data/pglite',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const stop = async () => {
    await sandbox.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

void main();
