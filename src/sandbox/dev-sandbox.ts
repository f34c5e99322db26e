import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../config';
import { Container, createContainer } from '../container';
import { createDb, Db, migrationConfig } from '../data/db';
import { seedDemoCatalog } from '../data/seed';
import { startWorkers } from '../jobs/worker';
import { formatRichMenuSummary, loadRichMenuImages, setupRichMenus } from '../line/rich-menu-setup';
import { createLogger, Logger } from '../logger';
import { PROJECT_ROOT } from '../paths';
import { createApp } from '../web/app';
import { ChatSimulator, startChatSimulator } from './chat-simulator';
import { EcpayLogisticsSandbox, startEcpayLogisticsSandbox } from './ecpay-logistics-sandbox';
import { EcpaySandbox, startEcpaySandbox } from './ecpay-sandbox';
import { LineApiDouble, startLineApiDouble } from './line-api-double';
import { PrivateRedis, RedisNotInstalledError, redisAnswers } from './private-redis';
import { SinopacSandbox, startSinopacSandbox } from './sinopac-sandbox';

/**
 * The whole shop on one machine with no credentials: web + worker + LINE API double + chat
 * simulator + SinoPac and ECPay sandboxes. PostgreSQL is an embedded PGlite under .data/ unless
 * DATABASE_URL is given; Redis is REDIS_URL (default 127.0.0.1:6379), or, when nothing answers
 * there, a private redis-server from the PATH on a free port, stopped with the sandbox.
 */

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** No Redis answers and none can be started; the message is the one line to show. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

export const DEV_SECRETS = {
  channelSecret: 'sandbox-channel-secret',
  accessToken: 'sandbox-access-token',
  shopper: 'U' + '5a'.repeat(16),
  owner: 'U' + '0e'.repeat(16),
  // Public test credentials (specs: SinoPac iThome contest shop; ECPay stage merchant 3002607).
  sinopac: {
    shopNo: 'NA0249_001', hashA1: '86D50DEF3EB7400E', hashA2: '01FD27C09E5549E5',
    hashB1: '9E004965F4244953', hashB2: '7FB3385F414E4F91', keyId: 'b5e6986d-8636-4aa0-8c93-441ad14b2098',
  },
  // creditCheckCode is the sandbox's own (stage has no CreditDetail/QueryTrade/V2): refunds read the capture state.
  ecpay: { merchantId: '3002607', hashKey: 'pwFHCqoQZGmho4w6', hashIv: 'EkRm7iFT261dpevs', creditCheckCode: '10000001' },
  // ECPay logistics stage C2C account (specs/ecpay-logistics.md §2); the sender is the SDK examples'.
  ecpayLogistics: {
    merchantId: '2000933', hashKey: 'XBERn1YOvpM9nfZc', hashIv: 'h1ONHk4P4yqbl5LK', kind: 'C2C' as const,
    senderName: '陳大明', senderCellPhone: '0911222333',
  },
};

export interface DevSandbox {
  shopUrl: string;
  /** The Redis in use: REDIS_URL's, or the private one's. */
  redisUrl: string;
  /** The private redis-server's pid, when the sandbox had to start one. */
  privateRedisPid: number | null;
  simulatorUrl: string;
  line: LineApiDouble;
  sinopac: SinopacSandbox;
  ecpay: EcpaySandbox;
  ecpayLogistics: EcpayLogisticsSandbox;
  container: Container;
  close(): Promise<void>;
}

export interface DevSandboxOptions {
  /** Use this PostgreSQL instead of an embedded PGlite. */
  databaseUrl?: string;
  redisUrl?: string;
  /** Web port (0 = any); the simulator and sandboxes take ports of their own. */
  port?: number;
  host?: string;
  queuePrefix?: string;
  env?: Record<string, string>;
  log?: Logger;
  /** Directory for the embedded PGlite (default .data/pglite). */
  dataDir?: string;
}

async function startEmbeddedPostgres(dataDir: string): Promise<{ url: string; stop(): Promise<void> }> {
  // Loaded only when needed: PGlite is a development dependency.
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  fs.mkdirSync(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir);
  const probe = http.createServer();
  const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as AddressInfo).port)));
  await new Promise((r) => probe.close(r));
  // PGlite is a single session: one connection, and knex's pool is 1 to match.
  const server = new PGLiteSocketServer({ db: pg, port, host: '127.0.0.1', maxConnections: 1 });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      await pg.close();
    },
  };
}

/** A Redis URL fit for logs and messages: scheme, host and port, never a password. */
export function redisLabel(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

/** REDIS_URL if a Redis answers there; else a private redis-server, if one is installed. */
async function resolveRedis(url: string, log: Logger): Promise<{ url: string; private: PrivateRedis | null }> {
  if (await redisAnswers(url)) return { url, private: null };
  const where = redisLabel(url);
  try {
    const r = await PrivateRedis.create();
    log.info({ redisUrl: r.url, redisPid: r.pid }, `no Redis answers at ${where}: started a private redis-server (in memory, stopped with the sandbox)`);
    return { url: r.url, private: r };
  } catch (err) {
    if (!(err instanceof RedisNotInstalledError)) throw err;
    throw new RedisUnavailableError(
      `no Redis answers at ${where} and redis-server is not on the PATH: install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL to a running one`,
    );
  }
}

export async function startDevSandbox(o: DevSandboxOptions = {}): Promise<DevSandbox> {
  const log = o.log ?? createLogger('info', 'sandbox');
  // Redis first: without one nothing else is worth starting.
  const redis = await resolveRedis(o.redisUrl ?? DEFAULT_REDIS_URL, log);
  try {
    return await startOnRedis(o, log, redis);
  } catch (err) {
    await redis.private?.stop();
    throw err;
  }
}

async function startOnRedis(o: DevSandboxOptions, log: Logger, redis: { url: string; private: PrivateRedis | null }): Promise<DevSandbox> {
  const host = o.host ?? '127.0.0.1';
  const embedded = o.databaseUrl ? null : await startEmbeddedPostgres(o.dataDir ?? path.join(PROJECT_ROOT, '.data', 'pglite'));
  const databaseUrl = o.databaseUrl ?? embedded!.url;
  const db: Db = createDb(databaseUrl, { poolMax: embedded ? 1 : 10, applicationName: 'sandbox' });
  await db.migrate.latest(migrationConfig());
  await seedDemoCatalog(db);

  const line = await startLineApiDouble({ channelAccessToken: DEV_SECRETS.accessToken, host });
  const sinopac = await startSinopacSandbox({ shops: [DEV_SECRETS.sinopac], host, notifyRetryDelaysMs: [2000, 5000, 15000] });
  const ecpay = await startEcpaySandbox({ merchants: [DEV_SECRETS.ecpay], notifyRetryDelaysMs: [2000, 5000, 15000] });
  const ecpayLogistics = await startEcpayLogisticsSandbox({ merchants: [DEV_SECRETS.ecpayLogistics], notifyRetryDelaysMs: [2000, 5000, 15000] });

  let handler: http.RequestListener = (_q, s) => s.end();
  const server = http.createServer((q, s) => handler(q, s));
  await new Promise<void>((r) => server.listen(o.port ?? 3000, host, () => r()));
  const shopUrl = `http://${host}:${(server.address() as AddressInfo).port}`;

  const config = parseConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    PUBLIC_BASE_URL: shopUrl,
    QUEUE_PREFIX: o.queuePrefix ?? 'lineshop_sandbox',
    LOG_LEVEL: 'info',
    LINE_CHANNEL_SECRET: DEV_SECRETS.channelSecret,
    LINE_CHANNEL_ACCESS_TOKEN: DEV_SECRETS.accessToken,
    LINE_API_BASE_URL: line.url,
    LINE_DATA_API_BASE_URL: line.dataUrl,
    SHOP_OWNER_LINE_USER_IDS: DEV_SECRETS.owner,
    SINOPAC_SHOP_NO: DEV_SECRETS.sinopac.shopNo,
    SINOPAC_HASH_A1: DEV_SECRETS.sinopac.hashA1,
    SINOPAC_HASH_A2: DEV_SECRETS.sinopac.hashA2,
    SINOPAC_HASH_B1: DEV_SECRETS.sinopac.hashB1,
    SINOPAC_HASH_B2: DEV_SECRETS.sinopac.hashB2,
    SINOPAC_KEY_ID: DEV_SECRETS.sinopac.keyId,
    SINOPAC_API_BASE_URL: sinopac.apiBaseUrl,
    ECPAY_MERCHANT_ID: DEV_SECRETS.ecpay.merchantId,
    ECPAY_HASH_KEY: DEV_SECRETS.ecpay.hashKey,
    ECPAY_HASH_IV: DEV_SECRETS.ecpay.hashIv,
    ECPAY_API_BASE_URL: ecpay.url,
    ECPAY_CREDIT_CHECK_CODE: DEV_SECRETS.ecpay.creditCheckCode,
    ECPAY_LOGISTICS_MERCHANT_ID: DEV_SECRETS.ecpayLogistics.merchantId,
    ECPAY_LOGISTICS_HASH_KEY: DEV_SECRETS.ecpayLogistics.hashKey,
    ECPAY_LOGISTICS_HASH_IV: DEV_SECRETS.ecpayLogistics.hashIv,
    ECPAY_LOGISTICS_SENDER_NAME: DEV_SECRETS.ecpayLogistics.senderName,
    ECPAY_LOGISTICS_SENDER_CELLPHONE: DEV_SECRETS.ecpayLogistics.senderCellPhone,
    ECPAY_LOGISTICS_API_BASE_URL: ecpayLogistics.url,
    RECONCILE_AFTER_MINUTES: '2',
    RECONCILE_EVERY_MINUTES: '1',
    // Store pickup: a parcel moved with the logistics sandbox's buttons is also found by the sweep
    // when its notification is lost (e.g. the shop was stopped).
    LOGISTICS_RECONCILE_AFTER_MINUTES: '5',
    LOGISTICS_RECONCILE_EVERY_MINUTES: '1',
    ...o.env,
  });
  const container = createContainer(config, { log, db });
  handler = createApp(container) as unknown as http.RequestListener;
  const workers = await startWorkers(container, { sweepEveryMs: 5000, sweepGraceMs: 3000 });

  // The same setup as `npm run richmenu`, against the double: the simulator shows the menus.
  try {
    const menus = await setupRichMenus({
      channelAccessToken: config.line.channelAccessToken,
      apiBaseUrl: config.line.apiBaseUrl,
      dataApiBaseUrl: config.line.dataApiBaseUrl,
      ownerUserIds: config.ownerLineUserIds,
      images: loadRichMenuImages(),
    });
    log.info({ richMenus: formatRichMenuSummary(menus).split('\n') }, 'rich menus set up');
  } catch (err) {
    await workers.close();
    throw err;
  }

  let simulator: ChatSimulator;
  try {
    simulator = await startChatSimulator({
      line,
      webhookUrl: `${shopUrl}/webhook/line`,
      channelSecret: DEV_SECRETS.channelSecret,
      users: [
        { id: DEV_SECRETS.shopper, name: '顧客 小美' },
        { id: DEV_SECRETS.owner, name: '店長' },
      ],
      host,
      // Next to the shop's port when it is fixed (3000 → 3001), so the simulator URL is stable.
      port: o.port ? o.port + 1 : 0,
    });
  } catch (err) {
    await workers.close();
    throw err;
  }
  line.setProfile(DEV_SECRETS.shopper, { displayName: '小美' });
  line.setProfile(DEV_SECRETS.owner, { displayName: '店長' });

  return {
    shopUrl,
    redisUrl: redis.url,
    privateRedisPid: redis.private?.pid ?? null,
    simulatorUrl: simulator.url,
    line,
    sinopac,
    ecpay,
    ecpayLogistics,
    container,
    async close() {
      await simulator.close();
      await new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
      await workers.close();
      await container.close();
      await db.destroy();
      await line.close();
      await sinopac.close();
      await ecpay.close();
      await ecpayLogistics.close();
      if (embedded) await embedded.stop();
      await redis.private?.stop();
    },
  };
}
