import { Router } from 'express';
import type { Db } from '../data/db';
import { loadPhoto, placeholderJpeg } from '../domain/photos';
import { PLACEHOLDER_PATH } from '../domain/photo-urls';

/**
 * Product photos, from PostgreSQL, for LINE's servers (the carousel) and browsers. A photo's URL
 * names the SHA-256 of its bytes, so its content never changes: cached for a year everywhere.
 */
export function mediaRouter(db: Db): Router {
  const router = Router();
  const longCache = (res: import('express').Response, etag: string) => {
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.setHeader('ETag', `"${etag}"`);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', "default-src 'none'");
  };

  router.get('/media/products/:file', async (req, res, next) => {
    try {
      const m = /^([0-9a-f]{64})\.jpg$/.exec(req.params.file);
      const photo = m ? await loadPhoto(db, m[1]!) : undefined;
      if (!photo) {
        res.status(404).type('text/plain').send('not found');
        return;
      }
      longCache(res, m![1]!);
      if (req.get('if-none-match') === `"${m![1]}"`) {
        res.status(304).end();
        return;
      }
      res.type('image/jpeg').send(photo.bytes);
    } catch (err) {
      next(err);
    }
  });

  router.get(PLACEHOLDER_PATH, async (req, res, next) => {
    try {
      const bytes = await placeholderJpeg();
      longCache(res, 'placeholder-v1');
      if (req.get('if-none-match') === '"placeholder-v1"') {
        res.status(304).end();
        return;
      }
      res.type('image/jpeg').send(bytes);
    } catch (err) {
      next(err);
    }
  });
  return router;
}
