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

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux); 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/** CPU time used so far by every process of one command name (e.g. all `postgres` backends). */
export function cpuMsByName(comm: string): number {
  let total = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === comm) total += cpuMs(Number(d));
    } catch {
      /* gone */
    }
  }
  return total;
}

/**
 * Where the CPU went during a measured stretch: each named process, every PostgreSQL and Redis
 * process, and this benchmark process (load generator and LINE double). A process that exits in
 * between loses its share, so take the end snapshot while they run. PostgreSQL and Redis are
 * shared: on a machine doing other work their figures include it.
 */
export function cpuAccount(procs: Record<string, ChildProcess | null>): { report(units: number, unit: string): string } {
  const snap = () => {
    const s: Record<string, number> = {};
    for (const [name, p] of Object.entries(procs)) s[name] = p?.pid ? cpuMs(p.pid) : 0;
    s.postgres = cpuMsByName('postgres');
    s['redis-server'] = cpuMsByName('redis-server');
    const own = process.cpuUsage();
    s['bench (client + LINE double)'] = (own.user + own.system) / 1000;
    return s;
  };
  const start = snap();
  const t0 = Date.now();
  return {
    report(units: number, unit: string) {
      const end = snap();
      const wall = Date.now() - t0;
      const parts = Object.keys(end).map((k) => [k, end[k]! - (start[k] ?? 0)] as const);
      const total = parts.reduce((a, [, v]) => a + v, 0);
      const lines = parts.map(([k, v]) => `  ${k.padEnd(30)} ${(v / units).toFixed(2).padStart(7)} ms/${unit}  ${((100 * v) / wall).toFixed(0).padStart(4)}% of a core`);
      return [
        `CPU in the measured ${(wall / 1000).toFixed(1)} s (2 cores = 200%): ${((100 * total) / wall).toFixed(0)}% in all, ${(total / units).toFixed(2)} ms per ${unit}`,
        ...lines,
      ].join('\n');
    },
  };
}

/** CPU time used by this process's children that have ended and been waited for (e.g. pgbench runs), in ms. */
export function endedChildrenCpuMs(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of the line, 14 and 15 after "pid (comm) ".
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}

/**
 * CPU time used by every process of one command name while tracked, including processes that
 * start and end in between (pgbench's backends), sampled every `everyMs`: a process's share is
 * its last sample minus its first (0 for one that started after the tracking did). A process's
 * last ~everyMs before it exits is missed.
 */
export function cpuTracker(comm: string, everyMs = 100): { stop(): number } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = (initial: boolean) => {
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const pid = Number(d);
      try {
        if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== comm) continue;
      } catch {
        continue;
      }
      const ms = cpuMs(pid);
      if (!first.has(pid)) first.set(pid, initial ? ms : 0);
      last.set(pid, ms);
    }
  };
  sample(true);
  const timer = setInterval(() => sample(false), everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample(false);
      let total = 0;
      for (const [pid, ms] of last) total += ms - (first.get(pid) ?? 0);
      return total;
    },
  };
}
