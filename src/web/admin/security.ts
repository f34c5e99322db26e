import crypto from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Actor } from '../../domain/audit';
import type { OwnerAccess, OwnerSession } from '../../domain/owner-access';

/**
 * The back office's HTTP hygiene: the session cookie, security headers on every page, the CSRF
 * check of every POST, and who the actor is. Rules about sessions live in domain/owner-access.ts.
 */

export interface CookieSpec {
  name: string;
  secure: boolean;
}

/** `__Host-` pins the cookie to this origin over HTTPS (no Domain, Path=/, Secure). */
export function cookieSpec(publicBaseUrl: string): CookieSpec {
  const secure = publicBaseUrl.startsWith('https://');
  return { name: secure ? '__Host-ls_admin' : 'ls_admin', secure };
}

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function setSessionCookie(res: Response, spec: CookieSpec, token: string, maxAgeSeconds: number): void {
  res.append('Set-Cookie', `${spec.name}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${spec.secure ? '; Secure' : ''}`);
}

export function clearSessionCookie(res: Response, spec: CookieSpec): void {
  res.append('Set-Cookie', `${spec.name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${spec.secure ? '; Secure' : ''}`);
}

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Product photos: ours, and photos hosted elsewhere over HTTPS (the demo catalog).
  "img-src 'self' https: data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Every back-office response: no framing, no inline code, no referrer beyond our origin, never cached. */
export function adminHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  next();
}

/**
 * A POST must come from our own pages: Origin (or, without it, Referer) naming our origin when the
 * browser sends one, and always the session's synchronizer token. Either missing or wrong: refused.
 */
export function sameOrigin(req: Request, publicOrigin: string): boolean {
  const origin = req.get('origin');
  if (origin) return origin === publicOrigin;
  const referer = req.get('referer');
  if (referer) {
    try {
      return new URL(referer).origin === publicOrigin;
    } catch {
      return false;
    }
  }
  return true;
}

export function csrfMatches(session: OwnerSession, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

export function actorOf(req: Request, session: OwnerSession): Actor {
  return { userId: session.userId, source: 'web', origin: { ip: req.ip ?? null, userAgent: (req.get('user-agent') ?? '').slice(0, 300) } };
}

/** Attaches the live session (or null) to res.locals.session. */
export function loadSession(access: OwnerAccess, db: Parameters<OwnerAccess['resume']>[0], spec: CookieSpec) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      res.locals.session = await access.resume(db, readCookie(req, spec.name));
      next();
    } catch (err) {
      next(err);
    }
  };
}

export const newFormKey = (): string => crypto.randomBytes(18).toString('base64url');
