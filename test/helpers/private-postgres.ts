import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { createDb, migrationConfig } from '../../src/data/db';
import { freePort } from './child-process';
import type { TestDb } from './test-db';

/** The newest PostgreSQL server binaries installed (Debian layout), or null. */
function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : null;
}

/**
 * A PostgreSQL cluster of a test's own (initdb into a temp dir, a free port of 127.0.0.1, trust
 * auth, no fsync), so a test can stop and restart PostgreSQL without touching the shared server.
 * As root, the server runs as the `postgres` OS user (initdb refuses root).
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  static async create(): Promise<PrivatePostgres> {
    const bin = pgBin();
    if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'private-pg-'));
    fs.chmodSync(dir, 0o777);
    const pg = new PrivatePostgres(dir, await freePort(), bin);
    pg.run('initdb', ['-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
    pg.start();
    return pg;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private run(cmd: string, args: string[]): string {
    const exe = path.join(this.bin, cmd);
    const asRoot = process.getuid?.() === 0;
    const r = asRoot
      ? spawnSync('runuser', ['-u', 'postgres', '--', exe, ...args], { encoding: 'utf8', timeout: 60_000 })
      : spawnSync(exe, args, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  start(): void {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50`;
    this.run('pg_ctl', ['-D', this.dataDir, '-o', opts, '-l', path.join(this.dir, 'log'), '-w', '-t', '30', 'start']);
  }

  /** A fast shutdown: every connection is closed, running transactions roll back. */
  stop(): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
  }

  /** A fresh, migrated database in this cluster, as createTestDb makes on the shared one. */
  async createDb(name: string, poolMax = 10): Promise<TestDb> {
    const admin = knexFactory({ client: 'pg', connection: this.url(), pool: { min: 0, max: 1 } });
    try {
      await admin.raw(`CREATE DATABASE ${name}`);
    } finally {
      await admin.destroy();
    }
    const url = this.url(name);
    const db = createDb(url, { poolMax, applicationName: `test-${name}` });
    await db.migrate.latest(migrationConfig());
    return { url, name, db, destroy: () => db.destroy() };
  }

  /** Stops the server (immediately) and removes its directory. */
  destroy(): void {
    try {
      this.run('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
