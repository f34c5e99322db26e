import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import IORedis from 'ioredis';
import knexFactory from 'knex';
import { createDb, Db, migrationConfig } from '../data/db';
import { PROJECT_ROOT } from '../paths';

/** Shared pieces of the benchmarks that run the shop's real entry points as child processes. */

export const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Resident set size of a process, from /proc (Linux): current and the peak so far, in MB. */
export function rss(pid: number): { now: number; peak: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** Samples a process's RSS every `everyMs` until stopped; returns the highest. */
export function rssSampler(pid: number, everyMs = 50): { stop(): number } {
  let peak = rss(pid).now;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid).now);
    } catch {
      /* the process ended */
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export function freePort(): Promise<number> {
  const s = http.createServer();
  return new Promise((r) =>
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => r(port));
    }),
  );
}

/** A fresh, migrated database of the benchmark's own; drop() removes it. */
export async function benchDatabase(label: string, poolMax = 10): Promise<{ url: string; db: Db; drop(): Promise<void> }> {
  const name = `bench_${label}_${crypto.randomBytes(3).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  await admin.destroy();
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const db = createDb(url, { poolMax });
  await db.migrate.latest(migrationConfig());
  return {
    url,
    db,
    async drop() {
      await db.destroy();
      const a = knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
      await a.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.destroy();
    },
  };
}

/** Deletes a queue prefix's keys from Redis (the run's jobs, schedulers and meta keys). */
export async function dropKeys(prefix: string): Promise<void> {
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Runs a compiled script of this project (`dist/...`) with exactly this environment. */
export function spawnNode(script: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  return spawn(process.execPath, [path.join(PROJECT_ROOT, script), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Polls a URL until it answers 200; returns the milliseconds it took from `since`. */
export async function waitFor200(url: string, since: number, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return Date.now() - since;
    if (Date.now() - since > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function stop(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
