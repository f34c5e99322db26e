import crypto from 'node:crypto';
import { settled, TestShop } from './shop';

/** Every uri action in the messages delivered to a user (Flex buttons), newest last. */
export function urisTo(shop: TestShop, user: string): string[] {
  const out: string[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    const o = n as Record<string, unknown>;
    if (o.type === 'uri' && typeof o.uri === 'string') out.push(o.uri);
    Object.values(o).forEach(walk);
  };
  for (const d of shop.line.deliveredTo(user)) walk(d.messages);
  return out;
}

/** The owner types 後台; returns the login link the bot answered with. */
export async function requestLoginLink(shop: TestShop, owner: string): Promise<string> {
  const before = urisTo(shop, owner).length;
  await settled(shop, await shop.say(owner, '後台'));
  const uris = urisTo(shop, owner).slice(before).filter((u) => u.includes('/admin/login/'));
  if (uris.length !== 1) throw new Error(`expected one login link, got ${uris.length}`);
  return uris[0]!;
}

export interface AdminResponse {
  status: number;
  headers: Headers;
  text: string;
}

export const newKey = (): string => crypto.randomBytes(18).toString('base64url');
export const csrfOf = (html: string): string => {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token on the page');
  return m[1]!;
};

/** A browser-like client of the back office: keeps the session cookie, sends our Origin on POSTs. */
export class AdminClient {
  cookie: string | null = null;
  csrf: string | null = null;

  constructor(readonly baseUrl: string) {}

  private async fetch(path: string, init: RequestInit = {}): Promise<AdminResponse> {
    const headers = new Headers(init.headers);
    if (this.cookie) headers.set('cookie', this.cookie);
    const res = await fetch(path.startsWith('http') ? path : this.baseUrl + path, { ...init, headers, redirect: 'manual' });
    const set = res.headers.get('set-cookie');
    if (set) {
      const [pair] = set.split(';');
      this.cookie = pair!.endsWith('=') ? null : pair!;
    }
    const text = await res.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(text);
    if (m) this.csrf = m[1]!;
    return { status: res.status, headers: res.headers, text };
  }

  get(path: string): Promise<AdminResponse> {
    return this.fetch(path);
  }

  /** Opens the login link; follows nothing (the answer is a redirect to /admin). */
  async login(link: string): Promise<AdminResponse> {
    const r = await this.fetch(link);
    if (r.status === 303) await this.get('/admin');
    return r;
  }

  /** Posts a urlencoded form with the session's CSRF token and a fresh (or given) idempotency key. */
  post(path: string, fields: Record<string, string>, opts: { key?: string; csrf?: string | null; origin?: string | null } = {}): Promise<AdminResponse> {
    const body = new URLSearchParams({ ...fields });
    const csrf = opts.csrf === undefined ? this.csrf : opts.csrf;
    if (csrf !== null) body.set('_csrf', csrf ?? '');
    body.set('_key', opts.key ?? newKey());
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    const origin = opts.origin === undefined ? new URL(this.baseUrl).origin : opts.origin;
    if (origin !== null) headers.origin = origin;
    return this.fetch(path, { method: 'POST', headers, body: body.toString() });
  }

  /** Posts a multipart form (the product form) with an optional file. */
  postMultipart(path: string, fields: Record<string, string>, file?: { name: string; type: string; data: Buffer }, opts: { key?: string } = {}): Promise<AdminResponse> {
    const fd = new FormData();
    fd.set('_csrf', this.csrf ?? '');
    fd.set('_key', opts.key ?? newKey());
    for (const [k, v] of Object.entries(fields)) fd.set(k, v);
    if (file) fd.set('photo', new Blob([new Uint8Array(file.data)], { type: file.type }), file.name);
    return this.fetch(path, { method: 'POST', headers: { origin: new URL(this.baseUrl).origin }, body: fd });
  }
}

/** Logs the owner in through the LINE link; returns a client holding the session. */
export async function loggedIn(shop: TestShop, owner: string): Promise<AdminClient> {
  const client = new AdminClient(shop.url);
  const r = await client.login(await requestLoginLink(shop, owner));
  if (r.status !== 303) throw new Error(`login answered ${r.status}`);
  return client;
}
