import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createContainer } from '../../src/container';
import { checkInvariants } from '../../src/domain/invariants';
import { silentLogger } from '../../src/logger';
import { ADMIN, T } from '../../src/texts';
import { createApp } from '../../src/web/app';
import { AdminClient, loggedIn, requestLoginLink, urisTo } from '../helpers/admin';
import { count, newUserId, settled, startShop, TestShop } from '../helpers/shop';
import { stockOf } from '../helpers/stock';

const owner = newUserId();
let shop: TestShop;

beforeAll(async () => {
  shop = await startShop({ label: 'bo_security', owners: [owner] });
});
afterAll(async () => {
  await shop?.close();
});

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const tokenOf = (link: string) => link.slice(link.lastIndexOf('/') + 1);

describe('logging in to the back office from LINE', () => {
  it('後台 from an owner answers a one-time login button; only the token\'s hash is stored', async () => {
    const link = await requestLoginLink(shop, owner);
    expect(link).toMatch(new RegExp(`^${shop.url}/admin/login/[A-Za-z0-9_-]{43}$`));
    const rows = await shop.c.db('admin_login_tokens').where({ line_user_id: owner });
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).toBe(sha256(tokenOf(link)));
    expect(JSON.stringify(rows)).not.toContain(tokenOf(link));
    const alt = shop.line.textsTo(owner).at(-1);
    expect(alt).toBe(T.adminLinkAlt);
  });

  it('anyone else who sends 後台 or admin is refused politely and nothing is stored', async () => {
    const stranger = newUserId();
    const tokens = await count(shop.c, 'admin_login_tokens');
    for (const cmd of ['後台', 'ADMIN']) {
      await settled(shop, await shop.say(stranger, cmd));
      expect(shop.line.textsTo(stranger).at(-1)).toBe(T.adminRefused);
    }
    expect(urisTo(shop, stranger)).toEqual([]);
    expect(await count(shop.c, 'admin_login_tokens')).toBe(tokens);
  });

  it('the link works once: a session cookie (HttpOnly, SameSite=Lax) and a redirect to /admin; a second use is refused', async () => {
    const link = await requestLoginLink(shop, owner);
    const client = new AdminClient(shop.url);
    // A link checker's HEAD does not use it up.
    expect((await fetch(link, { method: 'HEAD', redirect: 'manual' })).headers.get('set-cookie')).toBeNull();
    const first = await fetch(link, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/admin');
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^ls_admin=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=604800$/);
    expect(first.headers.get('referrer-policy')).toBe('same-origin');
    client.cookie = cookie.split(';')[0]!;
    const dash = await client.get('/admin');
    expect(dash.status).toBe(200);
    expect(dash.text).toContain(ADMIN.dashboard.title);

    const sessions = await count(shop.c, 'admin_sessions');
    const again = await fetch(link, { redirect: 'manual' });
    expect(again.status).toBe(410);
    expect(again.headers.get('set-cookie')).toBeNull();
    expect(await again.text()).toContain(ADMIN.loginLinkUsedTitle);
    expect(await count(shop.c, 'admin_sessions')).toBe(sessions);
    // The session id is stored as its hash only.
    const raw = client.cookie!.split('=')[1]!;
    expect(await shop.c.db('admin_sessions').where({ session_hash: sha256(raw) }).first()).toBeDefined();
    expect(await shop.c.db('admin_sessions').where({ session_hash: raw }).first()).toBeUndefined();
  });

  it('an expired link, an unknown link and a forged cookie get the login help, never data', async () => {
    const link = await requestLoginLink(shop, owner);
    await shop.c.db('admin_login_tokens').where({ token_hash: sha256(tokenOf(link)) }).update({ expires_at: shop.c.db.raw("now() - interval '1 second'") });
    const sessions = await count(shop.c, 'admin_sessions');
    const expired = await fetch(link, { redirect: 'manual' });
    expect(expired.status).toBe(410);
    expect(expired.headers.get('set-cookie')).toBeNull();
    expect(await expired.text()).toContain(ADMIN.loginLinkExpiredTitle);

    const unknown = await fetch(`${shop.url}/admin/login/${crypto.randomBytes(32).toString('base64url')}`, { redirect: 'manual' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('set-cookie')).toBeNull();
    expect(await count(shop.c, 'admin_sessions')).toBe(sessions);

    const forged = new AdminClient(shop.url);
    forged.cookie = `ls_admin=${crypto.randomBytes(32).toString('base64url')}`;
    for (const path of ['/admin', '/admin/products', '/admin/orders', '/admin/audit', '/admin/export/orders.csv', '/admin/products/1']) {
      const r = await forged.get(path);
      expect(r.status).toBe(401);
      expect(r.text).toContain(ADMIN.loginHelpTitle);
      expect(r.text).not.toContain('TEA-001');
      expect(r.text).not.toContain('_csrf');
    }
    const none = await new AdminClient(shop.url).get('/admin');
    expect(none.status).toBe(401);
    expect(none.text).toContain(ADMIN.loginHelpBody);
  });

  it('every page sends CSP, frame and referrer headers and is never cached', async () => {
    const client = await loggedIn(shop, owner);
    for (const path of ['/admin', '/admin/products', '/admin/products/new', '/admin/categories', '/admin/orders', '/admin/audit', '/admin/nowhere']) {
      const r = await client.get(path);
      expect([200, 404]).toContain(r.status);
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      expect(r.headers.get('referrer-policy')).toBe('same-origin');
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.text).not.toMatch(/<script>|style="|onclick=/);
    }
    const anon = await fetch(`${shop.url}/admin`);
    expect(anon.headers.get('x-frame-options')).toBe('DENY');
  });
});

describe('state-changing requests', () => {
  it('a POST without the CSRF token, with another session\'s token or from another origin is refused and changes nothing', async () => {
    const a = await loggedIn(shop, owner);
    const b = await loggedIn(shop, owner);
    await a.get('/admin/products/1');
    await b.get('/admin/products/1');
    const before = await stockOf(shop.c.db, 1);
    const audits = await count(shop.c, 'audit_log');
    const tries = [
      await a.post('/admin/products/1/stock', { stock: '77', reason: '盤點' }, { csrf: null }),
      await a.post('/admin/products/1/stock', { stock: '77', reason: '盤點' }, { csrf: b.csrf }),
      await a.post('/admin/products/1/stock', { stock: '77', reason: '盤點' }, { origin: 'https://evil.example' }),
    ];
    for (const r of tries) {
      expect(r.status).toBe(403);
      expect(r.text).toContain(ADMIN.forbiddenTitle);
    }
    expect(await stockOf(shop.c.db, 1)).toEqual(before);
    expect(await count(shop.c, 'audit_log')).toBe(audits);

    const ok = await a.post('/admin/products/1/stock', { stock: String(before.stock_on_hand + 1), reason: '盤點' });
    expect(ok.status).toBe(303);
    expect((await stockOf(shop.c.db, 1)).stock_on_hand).toBe(before.stock_on_hand + 1);
  });

  it('an owner removed from the config is refused on the next request, by any web process, with nothing changed', async () => {
    const client = await loggedIn(shop, owner);
    await client.get('/admin/products/2');
    // The same database, the owner list without this owner: a web process started with the new config.
    const c2 = createContainer({ ...shop.config, ownerLineUserIds: [] }, { log: silentLogger, db: shop.tdb.db });
    const server = http.createServer(createApp(c2) as unknown as http.RequestListener);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const other = new AdminClient(url);
      other.cookie = client.cookie;
      other.csrf = client.csrf;
      const page = await other.get('/admin');
      expect(page.status).toBe(401);
      expect(page.text).toContain(ADMIN.loginHelpTitle);
      const before = await stockOf(shop.c.db, 2);
      const post = await fetch(`${url}/admin/products/2/stock`, {
        method: 'POST',
        headers: { cookie: client.cookie!, 'content-type': 'application/x-www-form-urlencoded', origin: shop.url },
        body: new URLSearchParams({ _csrf: client.csrf!, _key: 'k'.repeat(24), stock: '99', reason: 'x' }).toString(),
        redirect: 'manual',
      });
      expect(post.status).toBe(401);
      expect(await stockOf(shop.c.db, 2)).toEqual(before);
      // A link issued while they were an owner no longer opens a session either.
      const link = await requestLoginLink(shop, owner);
      const r = await fetch(link.replace(shop.url, url), { redirect: 'manual' });
      expect(r.status).toBe(403);
      expect(r.headers.get('set-cookie')).toBeNull();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await c2.close();
    }
    // Still an owner in the first process's config: the session works there.
    expect((await client.get('/admin')).status).toBe(200);
  });

  it('登出 ends the session; idle and absolute limits end it too', async () => {
    const client = await loggedIn(shop, owner);
    const cookie = client.cookie!;
    const out = await client.post('/admin/logout', {});
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/^ls_admin=; .*Max-Age=0/);
    const stale = new AdminClient(shop.url);
    stale.cookie = cookie;
    expect((await stale.get('/admin')).status).toBe(401);
    const [logout] = await shop.c.db('audit_log').where({ action: 'session.logout' }).orderBy('id', 'desc').limit(1);
    expect(logout).toMatchObject({ actor: `owner:${owner}`, source: 'web' });

    const idle = await loggedIn(shop, owner);
    await shop.c.db('admin_sessions').where({ session_hash: sha256(idle.cookie!.split('=')[1]!) }).update({ last_seen_at: shop.c.db.raw("now() - interval '12 hours 1 minute'") });
    expect((await idle.get('/admin')).status).toBe(401);

    const old = await loggedIn(shop, owner);
    await shop.c.db('admin_sessions').where({ session_hash: sha256(old.cookie!.split('=')[1]!) }).update({ expires_at: shop.c.db.raw("now() - interval '1 second'") });
    expect((await old.get('/admin')).status).toBe(401);
  });

  it('logging in again in the same browser replaces the old session', async () => {
    const client = await loggedIn(shop, owner);
    const first = client.cookie!;
    await client.login(await requestLoginLink(shop, owner));
    expect(client.cookie).not.toBe(first);
    const replaced = await shop.c.db('admin_sessions').where({ session_hash: sha256(first.split('=')[1]!) }).first();
    expect(replaced).toMatchObject({ ended_reason: 'replaced' });
    expect((await client.get('/admin')).status).toBe(200);
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

describe('housekeeping', () => {
  it('pruneExpired deletes login links, sessions and form results past their retention, and nothing still useful', async () => {
    const db = shop.c.db;
    const user = newUserId();
    const hour = (h: number) => db.raw(`now() + make_interval(hours => ?)`, [h]);
    const tokens = await db('admin_login_tokens')
      .insert([
        { token_hash: sha256('old ' + user), line_user_id: user, expires_at: hour(-25) },
        { token_hash: sha256('fresh ' + user), line_user_id: user, expires_at: hour(-1) },
      ])
      .returning('id');
    const session = (tag: string, patch: Record<string, unknown>) => ({
      session_hash: sha256(tag + user), line_user_id: user, csrf_token: 'x'.repeat(43), expires_at: hour(24 * 7), ...patch,
    });
    const sessions = await db('admin_sessions')
      .insert([
        session('ended-long-ago', { ended_at: hour(-24 * 31), expires_at: hour(-24 * 25) }),
        session('idle-long-ago', { last_seen_at: hour(-24 * 31) }),
        session('ended-recently', { ended_at: hour(-24 * 2) }),
        session('live', {}),
      ])
      .returning('id');
    const live = sessions[3].id;
    await db('admin_form_results').insert([
      { session_id: live, form_key: 'k'.repeat(16), result: JSON.stringify({ ok: true }), created_at: hour(-25) },
      { session_id: live, form_key: 'j'.repeat(16), result: JSON.stringify({ ok: true }), created_at: hour(-1) },
      { session_id: sessions[0].id, form_key: 'i'.repeat(16), result: JSON.stringify({ ok: true }), created_at: hour(-1) },
    ]);

    const { pruneExpired } = await import('../../src/domain/housekeeping');
    const r = await pruneExpired(db);
    expect(r.loginTokens).toBeGreaterThanOrEqual(1);
    expect(r.sessions).toBeGreaterThanOrEqual(2);
    expect(await db('admin_login_tokens').whereIn('id', tokens.map((t: { id: number }) => t.id)).pluck('token_hash')).toEqual([sha256('fresh ' + user)]);
    expect((await db('admin_sessions').where({ line_user_id: user }).orderBy('id').pluck('id')).map(Number)).toEqual([sessions[2].id, live].map(Number));
    // The old form result goes; the recent one of a live session stays; the ended session's went with it.
    expect(await db('admin_form_results').whereIn('session_id', sessions.map((s: { id: number }) => s.id)).pluck('form_key')).toEqual(['j'.repeat(16)]);
    // Run again: nothing more to delete.
    expect(await pruneExpired(db)).toEqual({ loginTokens: 0, sessions: 0, formResults: 0 });
  });
});
