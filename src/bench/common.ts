import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import knexFactory, { Knex } from 'knex';

const run = promisify(execFile);

/** What the benchmarks share: pgbench's single-row baseline and how results are printed. */

export function dbUrl(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export function table(title: string, rows: Array<[string, string]>): string {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const line = `+${'-'.repeat(w0 + 2)}+${'-'.repeat(w1 + 2)}+`;
  return [title, line, ...rows.map(([k, v]) => `| ${k.padEnd(w0)} | ${v.padStart(w1)} |`), line].join('\n');
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  const m = Math.floor(a.length / 2);
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
};

/**
 * pgbench's conditional decrement of one row (`UPDATE hot SET stock = stock - 1 WHERE id = 1 AND
 * stock > 0`, each its own transaction) at `clients` clients: the ceiling of any hot-row workload
 * on this PostgreSQL. The caller creates the table `hot` in the database first.
 */
export async function pgbench(
  bin: string,
  url: string,
  clients: number,
  seconds: number,
  sql = 'UPDATE hot SET stock = stock - 1 WHERE id = 1 AND stock > 0;\n',
): Promise<{ tps: number; transactions: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-pgbench-'));
  const script = path.join(dir, 'bench.sql');
  try {
    await fs.writeFile(script, sql);
    const threads = Math.max(1, Math.min(2, clients));
    const { stdout } = await run(bin, ['-n', '-f', script, '-c', String(clients), '-j', String(threads), '-T', String(seconds), url], {
      maxBuffer: 10 * 1024 * 1024,
    });
    const tps = /tps = ([\d.]+)/.exec(stdout);
    const tx = /number of transactions actually processed: (\d+)/.exec(stdout);
    if (!tps) throw new Error(`could not read tps from pgbench output:\n${stdout}`);
    return { tps: Number(tps[1]), transactions: tx ? Number(tx[1]) : NaN };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The median, or the sum, of one figure over a benchmark's rounds. */
export const medianBy = <R>(rs: R[], f: (r: R) => number) => median(rs.map(f));
export const sumBy = <R>(rs: R[], f: (r: R) => number) => rs.reduce((a, r) => a + f(r), 0);

/** Latency percentile of sorted milliseconds. */
export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** The shape of a hot-row benchmark run: `npm run bench <name> -- --seconds N --rounds N --clients N --pgbench PATH --admin-url URL`. */
export interface HotRowOptions {
  /** Server-level URL used to create and drop the temporary database. */
  adminUrl?: string;
  seconds?: number;
  rounds?: number;
  clients?: number;
  pgbench?: string;
}

export function hotRowSettings(opts: HotRowOptions): { adminUrl: string; seconds: number; rounds: number; clients: number; bin: string } {
  return {
    adminUrl: opts.adminUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    seconds: opts.seconds ?? 5,
    rounds: opts.rounds ?? 3,
    clients: opts.clients ?? 8,
    bin: opts.pgbench ?? 'pgbench',
  };
}

/** Runs `fn` with a database of its own (`<prefix>_<random>`), created empty and dropped afterwards whatever happens. */
export async function inBenchDatabase<T>(adminUrl: string, prefix: string, fn: (env: { url: string; name: string; admin: Knex }) => Promise<T>): Promise<T> {
  const name = `${prefix}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`CREATE DATABASE ${name}`);
    return await fn({ url: dbUrl(adminUrl, name), name, admin });
  } finally {
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err) => console.error(`could not drop ${name}: ${err.message}`));
    await admin.destroy();
  }
}
