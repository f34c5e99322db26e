import express, { Request, Response, Router } from 'express';
import QRCode from 'qrcode';
import type { Config } from '../config';
import type { Db } from '../data/db';
import type { Members } from '../domain/members';
import { batchSchema, checkSignature } from '../domain/members/pos-journal';
import type { Logger } from '../logger';

/**
 * Member endpoints outside LINE's webhook:
 * - GET /member/qr/<ref>.png: the member card's QR picture. The reference is 256 random bits that
 *   only the member's card message holds, stored hashed; the picture is the one-time code itself,
 *   so it is served only while the code can pay (15 minutes, unused, not replaced) and never
 *   cached (`Cache-Control: no-store`). Unknown, used and expired references get the same 404.
 * - POST /api/pos/journal: store devices' offline purchases, HMAC-signed (off without POS_API_SECRET).
 */
export function memberRouter(deps: { config: Config; db: Db; members: Members; log: Logger }): Router {
  const { config, db, members, log } = deps;
  const r = Router();
  const noStore = (res: Response) => res.set({ 'Cache-Control': 'no-store, private', Pragma: 'no-cache', 'X-Robots-Tag': 'noindex', 'Referrer-Policy': 'no-referrer' });

  r.get('/member/qr/:file', async (req: Request, res: Response) => {
    noStore(res);
    const m = /^([A-Za-z0-9_-]{43})\.png$/.exec(String(req.params.file));
    try {
      const found = m ? await members.codes.codeForPicture(db, m[1]!) : null;
      if (!found) return res.status(404).type('text/plain; charset=utf-8').send('not found');
      const png = await QRCode.toBuffer(found.code, { type: 'png', errorCorrectionLevel: 'M', margin: 2, scale: 10 });
      return res.status(200).type('image/png').send(png);
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'member QR picture failed');
      return res.status(503).type('text/plain; charset=utf-8').send('unavailable');
    }
  });

  r.post('/api/pos/journal', express.raw({ type: () => true, limit: '256kb' }), async (req: Request, res: Response) => {
    const secret = config.posApiSecret;
    if (!secret) return res.status(404).json({ error: 'not-found' });
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const signature = req.get('x-pos-signature');
    const check = checkSignature(secret, req.get('x-pos-timestamp'), signature, raw);
    if (check !== 'ok') {
      log.warn({ check, ip: req.ip }, 'POS journal upload refused');
      return res.status(401).json({ error: check === 'stale' ? 'timestamp-out-of-window' : check === 'missing' ? 'signature-missing' : 'bad-signature' });
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return res.status(400).json({ error: 'invalid-json' });
    }
    const parsed = batchSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return res.status(400).json({ error: 'invalid-batch', path: issue.path.join('.'), message: issue.message });
    }
    try {
      const out = await members.pos.upload(signature!, parsed.data);
      if (out.kind === 'replay') return res.status(409).json({ error: 'replayed' });
      return res.status(200).json({ device_id: parsed.data.device_id, applied: out.applied, duplicate: out.duplicate, rejected: out.rejected, entries: out.results });
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'POS journal upload failed');
      return res.status(503).json({ error: 'unavailable' });
    }
  });

  return r;
}
