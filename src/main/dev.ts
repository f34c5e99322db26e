import { loadSandboxSettings } from '../config';
import { createLogger } from '../logger';
import { DEV_SECRETS, DevSandbox, redisLabel, RedisUnavailableError, startDevSandbox } from '../sandbox/dev-sandbox';

/** `npm run dev`: the whole shop on this machine, no credentials needed. */
async function main(): Promise<void> {
  const s = loadSandboxSettings();
  const log = createLogger('info', 'sandbox');
  let sandbox: DevSandbox;
  try {
    sandbox = await startDevSandbox({ port: s.port, databaseUrl: s.databaseUrl, redisUrl: s.redisUrl, log });
  } catch (err) {
    if (err instanceof RedisUnavailableError) {
      process.stderr.write(`sandbox failed to start: ${err.message}\n`);
    } else {
      const msg = err instanceof Error ? err.message : String(err);
      process.stderr.write(`sandbox failed to start: ${msg} (port ${s.port} and the next one must be free)\n`);
    }
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
    sandbox.privateRedisPid !== null
      ? `  redis            private redis-server ${sandbox.redisUrl} (pid ${sandbox.privateRedisPid}, in memory, stopped on exit)`
      : `  redis            ${redisLabel(sandbox.redisUrl)}`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // A close that hangs still ends the process; the exit hook then kills a private redis-server.
    setTimeout(() => process.exit(1), 15_000).unref();
    await sandbox.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

void main();
