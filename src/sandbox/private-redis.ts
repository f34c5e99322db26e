import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import IORedis from 'ioredis';

/** `redis-server` is not on the PATH. */
export class RedisNotInstalledError extends Error {
  override readonly name = 'RedisNotInstalledError';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Whether a Redis listens at this URL: false when nothing accepts a connection there. Something
 * that accepts but does not answer PING (a password required, not Redis at all) is an error worth
 * seeing, not a reason to start another Redis, so that throws.
 */
export async function redisAnswers(url: string): Promise<boolean> {
  const u = new URL(url);
  if (!(await tcpReachable(u.hostname.replace(/^\[|\]$/g, ''), Number(u.port || 6379)))) return false;
  const redis = new IORedis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch (err) {
    throw new Error(`${u.host} accepts connections but does not answer as Redis: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    redis.disconnect();
  }
}

/**
 * A redis-server of our own (from the PATH) on a free port of 127.0.0.1, in memory only. Used by
 * the sandbox when no Redis answers, and by tests that stop and start Redis. It is stopped by
 * stop(), and killed when this process exits, however it exits.
 */
export class PrivateRedis {
  private proc: ChildProcess | null = null;
  private readonly killOnExit = () => this.proc?.kill('SIGKILL');
  constructor(readonly port: number) {}

  static async create(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  async start(): Promise<void> {
    // Its own process group: a Ctrl-C in the terminal reaches us, not it, so we stop it after the
    // workers that use it have closed.
    const p = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
      detached: true,
    });
    this.proc = p;
    process.on('exit', this.killOnExit);
    let failure: Error | null = null;
    p.once('error', (err: NodeJS.ErrnoException) => {
      failure = err.code === 'ENOENT' ? new RedisNotInstalledError('redis-server is not on the PATH') : err;
    });
    p.once('exit', (code) => {
      failure ??= new Error(`redis-server exited with code ${code}`);
    });
    for (let i = 0; i < 100; i++) {
      if (failure) break;
      if (await this.reachable()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.stop();
    throw failure ?? new Error('private redis did not start');
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    process.off('exit', this.killOnExit);
    if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  reachable(): Promise<boolean> {
    return tcpReachable('127.0.0.1', this.port);
  }
}
