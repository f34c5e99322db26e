import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { silentLogger } from '../../src/logger';
import { DEV_SECRETS, startDevSandbox } from '../../src/sandbox/dev-sandbox';
import { exitOf, freePort } from '../helpers/child-process';
import { createTestDb, TestDb } from '../helpers/test-db';
import { newEventId, newUserId, waitFor } from '../helpers/shop';

/** `npm run dev` on a machine where no Redis runs: the sandbox brings its own, and takes it away. */
const ROOT = path.resolve(__dirname, '../..');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the sandbox when no Redis answers at REDIS_URL', () => {
  // Two databases: jest migrates from the .ts migration files, dist/ from the .js ones, and knex
  // refuses a database whose recorded migrations it cannot find.
  let tdb: TestDb;
  let distDb: TestDb;
  beforeAll(async () => {
    tdb = await createTestDb('dev_redis', 10, false);
    distDb = await createTestDb('dev_redis_dist', 10, false);
  });
  afterAll(async () => {
    await tdb.destroy();
    await distDb.destroy();
  });

  test('it starts a private redis-server on a free port, runs the shop on it, and stops it on close', async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    const sandbox = await startDevSandbox({ databaseUrl: tdb.url, redisUrl: nobody, port: 0, queuePrefix: 'dev_redis', log: silentLogger });
    let pid: number | null = null;
    try {
      pid = sandbox.privateRedisPid;
      expect(pid).not.toBeNull();
      expect(sandbox.redisUrl).not.toBe(nobody);
      expect(sandbox.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(alive(pid!)).toBe(true);
      expect(await (await fetch(`${sandbox.shopUrl}/readyz`)).json()).toEqual({ postgres: true, redis: true });

      // The whole chain (webhook → queue → worker → reply) runs through that Redis.
      const user = newUserId();
      const body = JSON.stringify({
        destination: 'U0',
        events: [{ type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: user }, webhookEventId: newEventId(), deliveryContext: { isRedelivery: false }, replyToken: sandbox.line.issueReplyToken(user), message: { type: 'text', id: '1', text: 'help' } }],
      });
      const signature = crypto.createHmac('sha256', DEV_SECRETS.channelSecret).update(body).digest('base64');
      const res = await fetch(`${sandbox.shopUrl}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': signature }, body });
      expect(res.status).toBe(200);
      const texts = await waitFor(() => (sandbox.line.textsTo(user).length ? sandbox.line.textsTo(user) : null), 'the reply', 20_000);
      expect(texts[0]).toContain('購物說明');
    } finally {
      await sandbox.close();
    }
    expect(alive(pid!)).toBe(false);
    const port = Number(new URL(sandbox.redisUrl).port);
    const reachable = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    expect(reachable).toBe(false);
  });

  function dev(env: Record<string, string>): { proc: ChildProcess; out: () => string; err: () => string } {
    const proc = spawn(process.execPath, [path.join(ROOT, 'dist/src/main/dev.js')], { env, stdio: 'pipe' });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    return { proc, out: () => out, err: () => err };
  }

  test('npm run dev (dist/src/main/dev.js) names its private redis-server and stops it on SIGINT', async () => {
    const d = dev({ PATH: process.env.PATH ?? '', DATABASE_URL: distDb.url, PORT: '0', REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      const m = await waitFor(() => /private redis-server redis:\/\/127\.0\.0\.1:(\d+) \(pid (\d+),/.exec(d.out()), 'the sandbox banner', 40_000);
      const pid = Number(m[2]);
      expect(alive(pid)).toBe(true);
      d.proc.kill('SIGINT');
      expect(await exitOf(d.proc)).toBe(0);
      expect(alive(pid)).toBe(false);
    } finally {
      d.proc.kill('SIGKILL');
    }
  });

  test('with no Redis and no redis-server on the PATH, it stops with one line saying how to install Redis or set REDIS_URL', async () => {
    const d = dev({ PATH: '/nonexistent', DATABASE_URL: distDb.url, PORT: '0', REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      expect(await exitOf(d.proc)).toBe(1);
      const lines = d.err().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^sandbox failed to start: no Redis answers at redis:\/\/127\.0\.0\.1:\d+ and redis-server is not on the PATH: install Redis \(.*apt-get install redis-server.*\) or set REDIS_URL/);
      expect(d.out()).toBe('');
    } finally {
      d.proc.kill('SIGKILL');
    }
  });
});
